"""The connection: the core both APIs share (socket, frames in and out
with their descriptors, bodies in memfds, pending calls, dispatch to
subscriptions and handlers) and the synchronous API, ``Bus``.

The core never blocks: it writes what the socket takes, reads what is
there, and says what it needs (``wants_write``). ``Bus`` waits with
poll(2); ``ipcbus.aio.Bus`` with the asyncio loop.
"""

import array
import collections
import inspect
import errno
import logging
import math
import os
import select
import socket
import time

from . import _wire, address as _address, errors, memfd
from .match import Rule
from .message import Message, encode_body

__all__ = [
    "Bus",
    "Subscription",
    "Handle",
    "connect",
    "connect_system",
    "connect_starter",
]

log = logging.getLogger("ipcbus")

DEFAULT_TIMEOUT = 25.0
# Messages read and waiting for process() (libipcbus's BUS_RQUEUE_MAX): a
# synchronous call that would queue more, while peers keep sending, fails
# with ENOBUFS instead of growing without bound.
RQUEUE_MAX = 384 * 1024
TIMEOUT_GRACE = 0.25  # the local deadline comes this much after the broker's (as libipcbus)
_READ_MIN = 64 * 1024
_READ_MAX = 16 * 1024 * 1024
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_RECV_FLAGS = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
_ANCILLARY = socket.CMSG_SPACE(_wire.FDS_MAX * array.array("i").itemsize)

# RequestName flags and results, ReleaseName results (PROTOCOL.md 7.2)
ALLOW_REPLACEMENT = 0x1
REPLACE_EXISTING = 0x2
DO_NOT_QUEUE = 0x4
PRIMARY_OWNER = 1
IN_QUEUE = 2
EXISTS = 3
ALREADY_OWNER = 4
RELEASED = 1
NON_EXISTENT = 2
NOT_OWNER = 3


def timeout_ms(timeout):
    """The header's timeout_ms for a timeout in seconds (None: the largest)."""
    if timeout is None:
        return _wire.TIMEOUT_MS_MAX
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError("timeout %r: a number of seconds above 0, or None for no limit" % (timeout,))
    return min(max(1, math.ceil(timeout * 1000)), _wire.TIMEOUT_MS_MAX)


def local_deadline(timeout):
    """When a call of this timeout gives up locally (monotonic), or None."""
    if timeout is None or timeout * 1000 >= _wire.TIMEOUT_MS_MAX:
        return None
    return time.monotonic() + timeout + TIMEOUT_GRACE


def local_timeout_error(timeout):
    return errors.Timeout("no answer within %g s (local timeout)" % timeout)


def _close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def name_flags(flags):
    known = ALLOW_REPLACEMENT | REPLACE_EXISTING | DO_NOT_QUEUE
    if isinstance(flags, bool) or not isinstance(flags, int) or flags < 0 or flags & ~known:
        raise ValueError("flags %r: a combination of ALLOW_REPLACEMENT, REPLACE_EXISTING and DO_NOT_QUEUE" % (flags,))
    return flags


def owner_rule(name):
    """The rule following the owner of a well-known name."""
    return Rule({"type": "signal", "sender": _wire.DRIVER_NAME, "interface": _wire.DRIVER_INTERFACE,
                 "member": "NameOwnerChanged", "args": {"name": name}})


def tracked_sender(rule):
    """The well-known name whose owner a rule's sender needs, or None."""
    s = rule.sender
    return s if s and not s.startswith(":") and s != _wire.DRIVER_NAME else None


class Handle:
    """What add_handler returns: ``remove()`` unregisters the handler."""

    __slots__ = ("_core", "fn")

    def __init__(self, core, fn):
        self._core = core
        self.fn = fn

    def remove(self):
        if self in self._core.handlers:
            self._core.handlers.remove(self)

    cancel = remove


class Subscription:
    """A match rule added to the broker with its callback. ``cancel()``
    removes it (RemoveMatch); it is idempotent."""

    def __init__(self, core, rule, callback):
        self._core = core
        self.rule = rule
        self.callback = callback
        self.active = True

    def cancel(self):
        if not self.active:
            return
        self.active = False
        core = self._core
        if self in core.subs:
            core.subs.remove(self)
        core.remove_match(self.rule)
        name = tracked_sender(self.rule)
        if name:
            core.untrack_owner(name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()


class Core:
    """The state of one connection, without blocking and without a loop."""

    def __init__(self, sock, memfd_threshold=None):
        self.sock = sock
        self.fd = sock.fileno()
        self.reader = _wire.FrameReader()
        self.rfds = []  # descriptors received and not yet claimed by a frame
        self.wqueue = collections.deque()  # [bytes left to write, fds to attach to the first of them]
        self.serial = 0
        self.lost = None  # why the connection ended (a sentence), once it has
        self.unique_name = None
        self.threshold = memfd.threshold_from_env() if memfd_threshold is None else int(memfd_threshold)
        if not memfd.available():
            self.threshold = 0
        self.pending = {}  # serial -> fn(Message or exception)
        self.handlers = []
        self.subs = []
        self.owners = {}  # well-known name -> [owner or None, references]
        self.monitor = False
        self.on_lost = None  # what the API does when the connection ends (before pending calls hear it)
        self.await_hook = None  # aio: runs the rest of a call's dispatch after an awaitable
        self.on_output = None  # aio: output is left queued (the socket is full)

    # ---- state ----

    def lost_error(self):
        return errors.ConnectionLost(self.lost or "the connection is closed")

    def check_open(self):
        if self.lost:
            raise self.lost_error()

    def lose(self, why):
        """End the connection: close the socket, fail every pending call."""
        if self.lost:
            return
        self.lost = why
        if self.on_lost:
            self.on_lost()
        try:
            self.sock.close()
        except OSError:
            pass
        for item in self.wqueue:
            _close_all(item[1])
        self.wqueue.clear()
        _close_all(self.rfds)
        self.rfds = []
        pending, self.pending = self.pending, {}
        exc = self.lost_error()
        for fn in pending.values():
            fn(exc)

    def next_serial(self):
        """The next serial, 1 ... 2^32-1 and round again, skipping those of
        calls still pending (unique among them, section 3)."""
        while True:
            self.serial = self.serial % _wire.SERIAL_MAX + 1
            if self.serial not in self.pending:
                return self.serial

    # ---- output ----

    def wants_write(self):
        return bool(self.wqueue) and not self.lost

    def send(self, msg, on_reply=None):
        """Encode msg (checked already by its constructor), give it the next
        serial, queue it and write what the socket takes. on_reply(result)
        gets the answer (a Message) or an exception. Returns the serial."""
        self.check_open()
        if msg.type == "call" and not msg.no_reply and msg.timeout_ms is None:
            msg.timeout_ms = timeout_ms(DEFAULT_TIMEOUT)
        if msg.no_reply:
            msg.timeout_ms = None
        fields = msg.header_fields()
        for key in ("sender", "sender_uid", "sender_pid"):  # the broker's to set
            fields.pop(key, None)
        may_memfd = (msg.type in ("call", "return", "signal") and msg.destination != _wire.DRIVER_NAME and
                     len(msg.fds) < _wire.FDS_MAX)
        text, binary = encode_body(msg.body if msg.body_given else None, self.threshold if may_memfd else 0)
        fds = []
        try:
            for fd in msg.fds:
                fds.append(os.dup(fd))  # the caller may close its own at once
            body = text
            if binary is not None and len(text) + 1 + len(binary) > _wire.BODY_MAX:
                raise ValueError("body: %d bytes, more than the %d a message may carry" % (
                    len(text) + 1 + len(binary), _wire.BODY_MAX))
            if binary is not None:
                try:
                    fds.append(memfd.make_sealed([text, b"\0", binary]))
                    fields["body_fd"] = len(fds) - 1
                    fields["body_size"] = len(text)
                    body = b""
                except OSError:
                    if binary:  # the body names bytes in a binary area that will not exist: base64 them
                        body, _ = encode_body(msg.body, 0)
            if len(body) > _wire.BODY_MAX:
                raise ValueError("body: %d bytes, more than the %d a message may carry" % (len(body), _wire.BODY_MAX))
            serial = self.next_serial()
            fields["serial"] = serial
            frame = _wire.encode_frame(_wire.encode_header(fields), body, len(fds))
        except BaseException:
            _close_all(fds)
            raise
        msg.serial = serial
        if on_reply is not None:
            self.pending[serial] = on_reply
        self.wqueue.append([memoryview(frame), fds])
        self.write()
        if self.wqueue and self.on_output:
            self.on_output()
        return serial

    def write(self):
        """Write queued frames until the socket is full. A frame's
        descriptors go with the sendmsg carrying its first byte (section 1)."""
        while self.wqueue and not self.lost:
            item = self.wqueue[0]
            data, fds = item
            try:
                if fds:
                    n = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))],
                                          _SEND_FLAGS)
                else:
                    n = self.sock.send(data, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.lose("writing to the bus failed: %s" % e.strerror)
                return
            if fds:
                _close_all(fds)  # the kernel holds them now
                item[1] = []
            if n >= len(data):
                self.wqueue.popleft()
            else:
                item[0] = data[n:]

    # ---- input ----

    def read(self):
        """Read once without blocking. Returns the messages that came (maybe
        none); a closed or broken stream ends the connection."""
        if self.lost:
            return []
        size = min(max(_READ_MIN, self.reader.wanted()), _READ_MAX)
        try:
            data, ancdata, flags, _ = self.sock.recvmsg(size, _ANCILLARY, _RECV_FLAGS)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as e:
            self.lose("reading from the bus failed: %s" % e.strerror)
            return []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                self.rfds.extend(fds)
        if flags & getattr(socket, "MSG_CTRUNC", 0x8):
            self.lose("the bus sent more descriptors than a frame may carry")
            return []
        if not data:
            self.lose("the bus closed the connection")
            return []
        self.reader.feed(data)
        out = []
        while not self.lost:
            try:
                frame = self.reader.next()
            except _wire.FramingError as e:
                self.lose("framing error from the bus: %s" % e)
                break
            if frame is None:
                break
            if frame.n_fds > len(self.rfds):
                self.lose("a frame announced %d descriptors, %d came" % (frame.n_fds, len(self.rfds)))
                break
            fds, self.rfds = self.rfds[:frame.n_fds], self.rfds[frame.n_fds:]
            msg = self._parse(frame, fds)
            if msg is not None:
                out.append(msg)
        return out

    def _parse(self, frame, fds):
        """The message of a frame, or None when it is dropped (its descriptors closed)."""
        try:
            h = _wire.decode_header(frame.header)
        except _wire.FramingError as e:
            _close_all(fds)
            self.lose("bad header from the bus: %s" % e)
            return None
        except ValueError:
            _close_all(fds)
            return None
        binary = None
        try:
            if "body_size" in h or "body_fd" in h:
                if h.get("body_fd") != len(fds) - 1 or not h.get("body_size") or frame.body:
                    raise memfd.InvalidBody("body_fd and body_size do not fit the frame")
                fd = fds.pop()
                try:
                    body, binary = memfd.read_body(fd, h["body_size"])
                finally:
                    os.close(fd)
            elif frame.body:
                body = _wire.json_loads(frame.body)
                if not isinstance(body, dict):
                    raise ValueError("the body is not an object")
            else:
                body = {}
        except (memfd.InvalidBody, ValueError, RecursionError, OSError):
            _close_all(fds)
            return None
        return Message.from_header(h, body, fds, binary)

    # ---- dispatch ----

    def resolve(self, msg):
        """If msg answers a pending call, give it to the caller: True."""
        if msg.type in ("return", "error") and not self.monitor:
            fn = self.pending.pop(msg.reply_serial, None)
            if fn is not None:
                fn(msg)
                return True
        return False

    def dispatch(self, msg):
        """Give a received message to whom it is for: the pending call it
        answers, the subscriptions whose rules it matches (signals), the
        handlers in the order they were added (calls and signals; the first
        returning True takes it), else the library's answer to a call."""
        if self.resolve(msg):
            return
        if msg.type in ("return", "error") and not self.monitor:
            msg.close_fds()  # a late answer: nobody waits for it
            return
        self._owner_update(msg)
        if msg.type == "signal" and not self.monitor:
            for sub in list(self.subs):
                if sub.active and sub.rule.matches(msg, self.owner_of):
                    self._run_callback(sub.callback, msg)
        self.run_handlers(msg, 0)

    def _run_callback(self, fn, msg):
        # an async callback runs after the dispatch closed msg's descriptors: it gets copies, closed when it ends
        own = msg.duplicate() if msg.fds and inspect.iscoroutinefunction(fn) else msg
        try:
            r = fn(own)
        except Exception:
            log.exception("ipcbus: a subscription's callback failed on %r", msg)
            if own is not msg:
                own.close_fds()
            return
        if r is not None and hasattr(r, "__await__") and self.await_hook:
            self.await_hook(r, own, None)
        elif own is not msg:
            own.close_fds()

    def run_handlers(self, msg, start):
        """Run the handlers from index start on; the end of a message's dispatch."""
        handlers = list(self.handlers)
        for i in range(start, len(handlers)):
            h = handlers[i]
            if h not in self.handlers:
                continue
            try:
                r = h.fn(msg)
            except Exception as e:
                self.handler_failed(msg, e)
                msg.close_fds()
                return
            if r is not None and not isinstance(r, bool) and hasattr(r, "__await__") and self.await_hook:
                self.await_hook(r, msg, i + 1)  # the rest of the dispatch once it is done
                return
            if r:
                msg.close_fds()
                return
        if msg.type == "call" and not self.monitor:
            self.answer_unhandled(msg)
        msg.close_fds()

    def handler_failed(self, msg, exc):
        """A handler raised: an error answer to a call (a CallError keeps its
        name, anything else is Failed), a log line for anything else."""
        if msg.type == "call" and not msg.no_reply and not self.monitor and not self.lost:
            if isinstance(exc, errors.CallError):
                name, text = exc.name, exc.message
            else:
                name, text = errors.Failed.NAME, "%s: %s" % (type(exc).__name__, exc)
                log.debug("ipcbus: a handler failed on %r", msg, exc_info=exc)
            try:
                self.send(Message.new_error(msg, name, text))
            except (TypeError, ValueError) as e:  # a name or text that cannot be sent: the caller still hears
                log.error("ipcbus: a handler's error %r cannot be sent (%s): answering Failed", name, e)
                self.send(Message.new_error(msg, errors.Failed.NAME, "the handler's error could not be sent"))
        elif not isinstance(exc, errors.CallError):
            log.error("ipcbus: a handler failed on %r", msg, exc_info=exc)

    def answer_unhandled(self, msg):
        """A call no handler took: Peer's Ping on any path, else UnknownObject."""
        if msg.no_reply or self.lost:
            return
        if msg.interface == _wire.PEER_INTERFACE or (msg.interface is None and msg.member == "Ping"):
            if msg.member == "Ping":
                self.send(Message.new_return(msg, {}))  # as libipcbus answers it
            else:
                self.send(Message.new_error(msg, errors.UnknownMethod.NAME, "No method %s in interface %s" % (
                    msg.member, msg.interface)))
            return
        self.send(Message.new_error(msg, errors.UnknownObject.NAME, "No object at path %s" % msg.path))

    # ---- matches and the owners of names they use ----

    def remove_match(self, rule):
        if not self.lost and not self.monitor:
            self.send(_driver_message("RemoveMatch", {"rule": rule.to_json()}, no_reply=True))

    def owner_of(self, name):
        entry = self.owners.get(name)
        return entry[0] if entry else None

    def _owner_update(self, msg):
        if (self.owners and msg.type == "signal" and msg.sender == _wire.DRIVER_NAME and
                msg.interface == _wire.DRIVER_INTERFACE and msg.member == "NameOwnerChanged"):
            entry = self.owners.get(msg.body.get("name"))
            if entry is not None:
                entry[0] = msg.body.get("new_owner") or None

    def untrack_owner(self, name):
        entry = self.owners.get(name)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self.owners[name]
            self.remove_match(owner_rule(name))


def _driver_message(member, body=None, no_reply=False):
    return Message.new_call(_wire.DRIVER_NAME, _wire.DRIVER_PATH, _wire.DRIVER_INTERFACE, member, body,
                            no_reply=no_reply)


def _call_message(destination, path, interface, member, body, timeout, fds, no_auto_start):
    msg = Message.new_call(destination, path, interface, member, body, fds=fds, no_auto_start=no_auto_start)
    msg.timeout_ms = timeout_ms(timeout)
    return msg


def open_socket(addr):
    """A connected, non-blocking socket to an address (None: the session bus)."""
    path = _address.parse(_address.session() if addr is None else addr)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class BusBase:
    """What the synchronous Bus and the asyncio one (ipcbus.aio.Bus) do
    alike: sending without waiting, handlers, exported objects. A subclass
    has _core and may wrap _send (the asyncio one then polls for writing)."""

    def _send(self, msg, on_reply=None):
        return self._core.send(msg, on_reply)

    def _answer(self, result):
        """What a call's wait ended with: the reply, or raise the error
        (an error reply as its exception, its descriptors closed)."""
        if isinstance(result, BaseException):
            raise result
        result.bus = self
        if result.type == "error":
            result.close_fds()
            raise result.exception()
        return result

    def _take_hello(self, reply):
        """The unique name from Hello's reply."""
        name = reply.body.get("name")
        if not _wire.is_unique_name(name):
            self.close()
            raise errors.ConnectionLost("the bus answered Hello with no unique name")
        self._core.unique_name = name

    @property
    def unique_name(self):
        """The unique name the bus gave this connection (":1.42")."""
        return self._core.unique_name

    @property
    def is_open(self):
        return not self._core.lost

    def emit(self, path, interface, member, body=None, *, destination=None, fds=()):
        """Emit a signal: broadcast, or unicast to destination. Returns its serial.
        A signal described here (a standard interface's, or one of an object
        exported at path) is checked against its description first, as
        libipcbus does: ValueError naming the field, nothing sent."""
        msg = Message.new_signal(path, interface, member, body, destination=destination, fds=fds)
        from . import service
        service.check_signal(self, path, interface, member, msg.body, len(msg.fds))
        return self._send(msg)

    def reply(self, call, body=None, fds=()):
        """Answer a call with a return (nothing when the call has no_reply)."""
        msg = Message.new_return(call, body, fds=fds)
        if call.no_reply:
            return None
        return self._send(msg)

    def reply_error(self, call, name, message=None):
        """Answer a call with an error (nothing when the call has no_reply)."""
        msg = Message.new_error(call, name, message)
        if call.no_reply:
            return None
        return self._send(msg)

    def send(self, msg):
        """Send a Message made with Message.new_* as it is (a call's answer
        goes to process(), where nobody waits for it). Returns the serial."""
        if not isinstance(msg, Message):
            raise TypeError("msg: a Message expected")
        return self._send(msg)

    def add_handler(self, fn):
        """Run fn(msg) for every incoming call and signal (after the
        subscriptions); the first handler returning True takes it. A call no
        handler takes is answered by the library (Peer.Ping, else
        UnknownObject). An exception in fn answers the call with an error
        (a CallError keeps its name; others are Failed). On the asyncio bus fn
        may be async (return an awaitable). Returns a Handle."""
        if not callable(fn):
            raise TypeError("fn: not callable")
        h = Handle(self._core, fn)
        self._core.handlers.append(h)
        return h

    # ---- exported objects (ipcbus.service, which builds on add_handler) ----

    def export(self, path, obj):
        """Export an object of ipcbus.service at path: ipcbus.service.export(self, path, obj)."""
        from . import service
        return service.export(self, path, obj)

    def unexport(self, path, obj=None):
        """Stop serving obj (or every object) at path: ipcbus.service.unexport(self, path, obj)."""
        from . import service
        return service.unexport(self, path, obj)

    def export_object_manager(self, path):
        """Serve org.ipcbus.ObjectManager at path: ipcbus.service.export_object_manager(self, path)."""
        from . import service
        return service.export_object_manager(self, path)


class Bus(BusBase):
    """A synchronous connection to a bus (made by ``ipcbus.connect``).

    One thread uses a connection at a time; ``stop()`` may come from any.
    While ``call`` waits, other incoming messages are queued and dispatched
    by the next ``process()``, as libipcbus's ipcbus_call does.
    """

    def __init__(self, sock, memfd_threshold=None):
        self._core = Core(sock, memfd_threshold)
        self._rqueue = collections.deque()
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # ---- opening and closing ----

    def _hello(self, timeout=DEFAULT_TIMEOUT):
        self._take_hello(self._call(_driver_message("Hello"), timeout))

    def fileno(self):
        """The socket, for select and selectors (-1 once closed)."""
        return -1 if self._core.lost else self._core.fd

    def close(self, flush_timeout=5.0):
        """Write what is queued (for at most flush_timeout seconds), then
        close. Pending calls and later ones raise ConnectionLost."""
        core = self._core
        if not core.lost:
            try:
                self.flush(flush_timeout)
            except (errors.Timeout, errors.ConnectionLost):
                pass
            core.lose("the connection is closed")
        for m in self._rqueue:
            m.close_fds()
        self._rqueue.clear()
        for s in (self._wake_r, self._wake_w):
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        core = getattr(self, "_core", None)
        if core is not None and not core.lost:
            core.lose("the connection is closed")

    # ---- waiting ----

    def _pump(self, deadline, wake=False):
        """Wait for the socket (and the stop wake-up with wake) until
        deadline (monotonic; None: no limit), then write and read once.
        Answers to pending calls are handed over, the rest queued."""
        core = self._core
        core.write()
        if core.lost:
            return
        if len(self._rqueue) >= RQUEUE_MAX:
            raise OSError(errno.ENOBUFS, "%d messages wait for process(): not reading more until they are "
                          "dispatched" % len(self._rqueue))
        p = select.poll()
        p.register(core.fd, select.POLLIN | (select.POLLOUT if core.wants_write() else 0))
        if wake:
            p.register(self._wake_r.fileno(), select.POLLIN)
        if deadline is None:
            ms = None
        else:
            ms = max(0, math.ceil((deadline - time.monotonic()) * 1000))
        ready = p.poll(ms)
        for fd, ev in ready:
            if fd != core.fd:
                try:
                    self._wake_r.recv(4096)
                except OSError:
                    pass
                continue
            if ev & select.POLLOUT:
                core.write()
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                for m in core.read():
                    m.bus = self
                    if not core.resolve(m):
                        self._rqueue.append(m)

    def _call(self, msg, timeout):
        """Send a call and wait for its answer; the reply Message, or raise."""
        core = self._core
        box = []
        deadline = local_deadline(timeout)
        serial = core.send(msg, box.append)
        try:
            while not box:
                if core.lost:
                    raise core.lost_error()
                if deadline is not None and time.monotonic() >= deadline:
                    raise local_timeout_error(timeout)
                self._pump(deadline)
        finally:
            if not box:
                core.pending.pop(serial, None)
        return self._answer(box[0])

    def flush(self, timeout=None):
        """Block until every queued message is written (Timeout after timeout seconds)."""
        core = self._core
        deadline = None if timeout is None else time.monotonic() + timeout
        while core.wants_write():
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.Timeout("output not written within %g s" % timeout)
            p = select.poll()
            p.register(core.fd, select.POLLOUT)
            p.poll(None if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1000)))
            core.write()
        core.check_open()

    def process(self, timeout=None):
        """Dispatch what has come: the queued messages, else wait for input
        at most timeout seconds (None: until something comes or stop()),
        read and dispatch it. Returns how many messages were dispatched.
        Raises ConnectionLost when the connection has ended and nothing is
        left to dispatch."""
        core = self._core
        if not self._rqueue:
            core.check_open()
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._rqueue and not core.lost and not self._stopping:
                self._pump(deadline, wake=True)
                if deadline is not None and time.monotonic() >= deadline:
                    break
        n = 0
        for _ in range(len(self._rqueue)):
            msg = self._rqueue.popleft()
            core.dispatch(msg)
            n += 1
        core.write()
        return n

    def run_forever(self):
        """Process until stop() or until the connection ends. A stop() that
        comes before run_forever starts makes it return at once."""
        try:
            while not self._stopping:
                try:
                    self.process(None)
                except errors.ConnectionLost:
                    return
        finally:
            self._stopping = False

    def stop(self):
        """Make run_forever return (from a handler, another thread or a signal handler)."""
        self._stopping = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    # ---- calls ----

    def call_message(self, destination, path, interface, member, body=None, *, timeout=DEFAULT_TIMEOUT, fds=(),
                     no_auto_start=False):
        """Call a method and wait: the return Message (its fds are the
        caller's). An error answer raises CallError (a subclass for the
        well-known names); no answer in time raises errors.Timeout, from the
        broker (which enforces timeout) or locally a little later."""
        msg = _call_message(destination, path, interface, member, body, timeout, fds, no_auto_start)
        return self._call(msg, timeout)

    def call(self, destination, path, interface, member, body=None, *, timeout=DEFAULT_TIMEOUT, fds=(),
             no_auto_start=False):
        """Call a method and wait: the return's body, a dict ({} for none).
        Descriptors that come with the answer are closed: use call_message
        to get them. Raises as call_message does."""
        reply = self.call_message(destination, path, interface, member, body, timeout=timeout, fds=fds,
                                  no_auto_start=no_auto_start)
        reply.close_fds()
        return reply.body

    def call_noreply(self, destination, path, interface, member, body=None, *, fds=(), no_auto_start=False):
        """Send a call that expects no answer (no_reply). Returns its serial."""
        msg = Message.new_call(destination, path, interface, member, body, fds=fds, no_reply=True,
                               no_auto_start=no_auto_start)
        return self._core.send(msg)

    def call_driver(self, member, body=None, *, timeout=DEFAULT_TIMEOUT):
        """Call a method of the bus driver (org.ipcbus.Bus): its result body."""
        msg = _driver_message(member, body)
        msg.timeout_ms = timeout_ms(timeout)
        return self._call(msg, timeout).body

    # ---- names ----

    def request_name(self, name, flags=0):
        """RequestName: PRIMARY_OWNER, IN_QUEUE, EXISTS or ALREADY_OWNER."""
        _wire.check_name("name", "well-known name", name)
        return self.call_driver("RequestName", {"name": name, "flags": name_flags(flags)})["result"]

    def release_name(self, name):
        """ReleaseName: RELEASED, NON_EXISTENT or NOT_OWNER."""
        _wire.check_name("name", "well-known name", name)
        return self.call_driver("ReleaseName", {"name": name})["result"]

    def get_name_owner(self, name):
        """The unique name owning name, or None."""
        _wire.check_name("name", "bus name", name)
        try:
            return self.call_driver("GetNameOwner", {"name": name})["owner"]
        except errors.NameHasNoOwner:
            return None

    # ---- signals and handlers ----

    def subscribe(self, rule, callback):
        """Add a match rule (dict or string form; "type" defaults to
        "signal") on the broker and run callback(msg) for every signal
        matching it. Returns a Subscription; ``cancel()`` removes it."""
        rule = Rule(rule, default_type="signal")
        if not callable(callback):
            raise TypeError("callback: not callable")
        core = self._core
        core.check_open()
        name = tracked_sender(rule)
        if name:
            self._track_owner(name)
        try:
            self.call_driver("AddMatch", {"rule": rule.to_json()})
        except BaseException:
            if name:
                core.untrack_owner(name)
            raise
        sub = Subscription(core, rule, callback)
        core.subs.append(sub)
        return sub

    def _track_owner(self, name):
        core = self._core
        entry = core.owners.get(name)
        if entry is not None:
            entry[1] += 1
            return
        rule = owner_rule(name)
        self.call_driver("AddMatch", {"rule": rule.to_json()})
        core.owners[name] = entry = [None, 1]
        try:
            entry[0] = self.get_name_owner(name)
        except BaseException:
            core.untrack_owner(name)
            raise

    def become_monitor(self, rules=()):
        """BecomeMonitor with these rules (none: everything). Afterwards the
        connection only receives: handlers see every message, nothing is
        answered."""
        body = {"rules": [Rule(r).to_json() for r in rules]}
        self.call_driver("BecomeMonitor", body)
        self._core.monitor = True
        for m in self._rqueue:  # what came before is not traffic the monitor asked for
            m.close_fds()
        self._rqueue.clear()


def connect(address=None, *, memfd_threshold=None, timeout=DEFAULT_TIMEOUT):
    """Connect to a bus and say Hello: the session bus by default, else
    ``address`` ("unix:path=/absolute/path"). memfd_threshold: bodies of
    this many bytes or more go in a sealed memfd (None:
    $IPCBUS_MEMFD_THRESHOLD or 256 KiB; 0: never)."""
    bus = Bus(open_socket(address), memfd_threshold)
    try:
        bus._hello(timeout)
    except BaseException:
        bus.close(0)
        raise
    return bus


def connect_system(**kw):
    """The system bus: $IPCBUS_SYSTEM_ADDRESS, else /run/ipcbus/system_bus_socket."""
    return connect(_address.system(), **kw)


def connect_starter(**kw):
    """The bus that started this process ($IPCBUS_STARTER_ADDRESS), else the session bus."""
    return connect(_address.starter(), **kw)
