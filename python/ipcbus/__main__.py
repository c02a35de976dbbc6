"""python -m ipcbus: a small command line over the package.

    python -m ipcbus [--address ADDR | --system] [--json] [--timeout SECS] COMMAND ...
      call DEST PATH IFACE MEMBER [JSON]   call a method, print the reply's body (IFACE '-': none)
      emit PATH IFACE MEMBER [JSON]        emit a signal (--destination NAME: to NAME only)
      introspect DEST PATH                 the interfaces and children of an object
      monitor [RULE...]                    print every message (BecomeMonitor) until interrupted

Exit status: 0 success, 1 failure (an error reply included), 2 usage.
"""

import argparse
import json
import signal
import sys

from . import address as _address, errors
from .connection import connect


def _body(text):
    if text is None:
        return None
    try:
        body = json.loads(text)
    except ValueError as e:
        raise SystemExit2("invalid JSON argument: %s" % e)
    if not isinstance(body, dict):
        raise SystemExit2("the JSON argument must be an object")
    return body


class SystemExit2(Exception):
    pass


def _print(value, as_json):
    if as_json:
        print(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    else:
        print(json.dumps(value, ensure_ascii=False, indent=2))


def _describe(msg):
    head = {"type": msg.type, "serial": msg.serial, "sender": msg.sender}
    for key in ("reply_serial", "destination", "path", "interface", "member", "error"):
        if getattr(msg, key) is not None:
            head[key] = getattr(msg, key)
    if msg.fds:
        head["n_fds"] = len(msg.fds)
    return head


def _monitor(bus, rules, as_json):
    def show(msg):
        if as_json:
            print(json.dumps({"header": _describe(msg), "body": msg.body}, ensure_ascii=False,
                             separators=(",", ":")), flush=True)
        else:
            h = _describe(msg)
            what = h.get("error") or "%s %s.%s" % (h.get("path", ""), h.get("interface", "-"), h.get("member", ""))
            print("%s %s -> %s serial=%s %s %s" % (msg.type, msg.sender, msg.destination or "*", msg.serial, what,
                                                   json.dumps(msg.body, ensure_ascii=False)), flush=True)
        return True

    bus.become_monitor(rules)
    bus.add_handler(show)
    # SIGINT and SIGTERM end it cleanly (also when SIGINT came ignored, as in a background job)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: bus.stop())
    bus.run_forever()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m ipcbus", description="Talk to an ipcbus bus.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--address", help="the bus address (unix:path=/absolute/path); default: the session bus")
    where.add_argument("--system", action="store_true", help="the system bus")
    p.add_argument("--json", action="store_true", help="print JSON on one line")
    p.add_argument("--timeout", type=float, default=25.0, help="seconds to wait for an answer (default 25)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    c = sub.add_parser("call", help="call a method and print the reply's body")
    c.add_argument("dest")
    c.add_argument("path")
    c.add_argument("iface", help="interface, or '-' for none")
    c.add_argument("member")
    c.add_argument("json_body", nargs="?", metavar="JSON")
    e = sub.add_parser("emit", help="emit a signal")
    e.add_argument("path")
    e.add_argument("iface")
    e.add_argument("member")
    e.add_argument("json_body", nargs="?", metavar="JSON")
    e.add_argument("--destination", help="send the signal to this name only")
    i = sub.add_parser("introspect", help="the interfaces and children of an object")
    i.add_argument("dest")
    i.add_argument("path")
    m = sub.add_parser("monitor", help="print every message until interrupted")
    m.add_argument("rules", nargs="*", metavar="RULE", help="match rules in the string form")
    args = p.parse_args(argv)
    if not args.command:
        p.print_usage(sys.stderr)
        return 2
    try:
        addr = _address.system() if args.system else args.address
        with connect(addr) as bus:
            if args.command == "call":
                iface = None if args.iface == "-" else args.iface
                _print(bus.call(args.dest, args.path, iface, args.member, _body(args.json_body),
                                timeout=args.timeout), args.json)
            elif args.command == "emit":
                bus.emit(args.path, args.iface, args.member, _body(args.json_body), destination=args.destination)
            elif args.command == "introspect":
                _print(bus.call(args.dest, args.path, "org.ipcbus.Introspectable", "Introspect",
                                timeout=args.timeout), args.json)
            else:
                _monitor(bus, args.rules, args.json)
    except SystemExit2 as e:
        print("python -m ipcbus: %s" % e, file=sys.stderr)
        return 2
    except ValueError as e:
        print("python -m ipcbus: %s" % e, file=sys.stderr)
        return 2
    except errors.CallError as e:
        print("%s: %s" % (e.name, e.message), file=sys.stderr)
        return 1
    except OSError as e:
        print("python -m ipcbus: cannot reach the bus: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
