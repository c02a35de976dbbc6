"""Calls between two connections, the driver's answers, error classes."""

import os
import time

import pytest

import ipcbus
from ipcbus import errors

DEST = "org.example.Echo"
PATH = "/org/example/Echo"
IFACE = "org.example.Echo"


def echo_service(bus):
    """A service on bus answering Echo (its body back), Fail (a named error), Raise, Slow, Nothing."""
    assert bus.request_name(DEST) == ipcbus.PRIMARY_OWNER
    seen = []

    def handler(msg):
        if msg.type != "call" or msg.path != PATH:
            return False
        seen.append(msg)
        if msg.member == "Echo":
            bus.reply(msg, msg.body)
        elif msg.member == "Fail":
            bus.reply_error(msg, "org.example.Error.Full", "no room for %s" % msg.body.get("what"))
        elif msg.member == "Raise":
            raise ValueError("the handler broke")
        elif msg.member == "RaiseCallError":
            raise errors.InvalidArgs("argument 'x': missing (expected uint)")
        elif msg.member == "Nothing":
            bus.reply(msg)
        elif msg.member == "Never":
            pass  # no answer at all
        else:
            return False
        return True

    bus.add_handler(handler)
    return seen


def test_call_returns_the_body(bus, bus2, serve):
    echo_service(bus)
    serve(bus)
    body = {"text": "hello", "n": 3, "nested": {"list": [1, 2.5, None, True]}, "uni": "é€😀"}
    assert bus2.call(DEST, PATH, IFACE, "Echo", body) == body


def test_call_without_result_gives_empty_dict(bus, bus2, serve):
    echo_service(bus)
    serve(bus)
    assert bus2.call(DEST, PATH, IFACE, "Nothing") == {}


def test_call_message_fields(bus, bus2, serve):
    seen = echo_service(bus)
    serve(bus)
    reply = bus2.call_message(DEST, PATH, IFACE, "Echo", {"a": 1})
    assert reply.type == "return"
    assert reply.sender == bus.unique_name
    assert reply.destination == bus2.unique_name
    assert reply.sender_uid == os.getuid()
    assert reply.sender_pid == os.getpid()
    assert reply.body == {"a": 1}
    assert reply.fds == []
    call = seen[-1]
    assert call.type == "call"
    assert reply.reply_serial == call.serial
    assert call.sender == bus2.unique_name
    assert call.destination == DEST
    assert (call.path, call.interface, call.member) == (PATH, IFACE, "Echo")
    assert call.no_reply is False
    assert call.timeout_ms == 25000


def test_big_integers_travel_as_strings(bus, bus2, serve):
    echo_service(bus)
    serve(bus)
    out = bus2.call(DEST, PATH, IFACE, "Echo", {"small": 2 ** 53 - 1, "big": 2 ** 64 - 1, "neg": -(2 ** 63)})
    assert out == {"small": 2 ** 53 - 1, "big": str(2 ** 64 - 1), "neg": str(-(2 ** 63))}


def test_named_error_from_the_service(bus, bus2, serve):
    echo_service(bus)
    serve(bus)
    with pytest.raises(ipcbus.CallError) as e:
        bus2.call(DEST, PATH, IFACE, "Fail", {"what": "x"})
    assert type(e.value) is ipcbus.CallError
    assert e.value.name == "org.example.Error.Full"
    assert e.value.message == "no room for x"
    assert str(e.value) == "org.example.Error.Full: no room for x"


def test_handler_exception_is_failed(bus, bus2, serve):
    echo_service(bus)
    serve(bus)
    with pytest.raises(errors.Failed) as e:
        bus2.call(DEST, PATH, IFACE, "Raise")
    assert e.value.name == "org.ipcbus.Error.Failed"
    assert "the handler broke" in e.value.message


def test_handler_call_error_keeps_its_name(bus, bus2, serve):
    echo_service(bus)
    serve(bus)
    with pytest.raises(errors.InvalidArgs) as e:
        bus2.call(DEST, PATH, IFACE, "RaiseCallError")
    assert e.value.name == "org.ipcbus.Error.InvalidArgs"
    assert e.value.message == "argument 'x': missing (expected uint)"


def test_unhandled_call_is_unknown_object(bus, bus2, serve):
    echo_service(bus)
    serve(bus)
    with pytest.raises(errors.UnknownObject) as e:
        bus2.call(DEST, "/elsewhere", IFACE, "Echo")
    assert e.value.message == "No object at path /elsewhere"


def test_peer_ping_on_any_path(bus, bus2, serve):
    echo_service(bus)
    serve(bus)
    assert bus2.call(bus.unique_name, "/any/path", "org.ipcbus.Peer", "Ping") == {}
    assert bus2.call(bus.unique_name, "/", None, "Ping") == {}
    with pytest.raises(errors.UnknownMethod):
        bus2.call(bus.unique_name, "/", "org.ipcbus.Peer", "Pong")


def test_service_unknown(bus):
    with pytest.raises(errors.ServiceUnknown) as e:
        bus.call("org.example.Nobody", "/", None, "Ping")
    assert e.value.name == "org.ipcbus.Error.ServiceUnknown"
    assert isinstance(e.value, ipcbus.CallError)


def test_driver_errors_have_their_classes(bus):
    with pytest.raises(errors.UnknownMethod):
        bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "NoSuchMethod")
    with pytest.raises(errors.UnknownObject):
        bus.call("org.ipcbus.Bus", "/not/the/driver", "org.ipcbus.Bus", "ListNames")
    with pytest.raises(errors.InvalidArgs):
        bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "RequestName", {"name": ":1.5"})
    with pytest.raises(errors.NameHasNoOwner):
        bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetNameOwner", {"name": "org.x.Y"})
    with pytest.raises(errors.MatchRuleNotFound):
        bus.call_driver("RemoveMatch", {"rule": {"type": "signal", "member": "Never"}})


def test_driver_calls(bus, bus2):
    names = bus.call_driver("ListNames")["names"]
    assert bus.unique_name in names and bus2.unique_name in names and "org.ipcbus.Bus" in names
    assert bus.get_name_owner(bus2.unique_name) == bus2.unique_name
    assert bus.get_name_owner("org.example.Nobody") is None
    assert len(bus.call_driver("GetId")["id"]) == 32


def test_error_class_table():
    for short in ("Failed", "NoMemory", "ServiceUnknown", "NameHasNoOwner", "NoReply", "Timeout", "AccessDenied",
                  "InvalidArgs", "InvalidMessage", "ProtocolError", "UnknownMethod", "UnknownObject",
                  "UnknownInterface", "UnexpectedReply", "MatchRuleInvalid", "MatchRuleNotFound", "LimitsExceeded",
                  "NotSupported", "ConfigInvalid", "UnknownProperty", "PropertyReadOnly", "Disconnected"):
        e = ipcbus.CallError.create("org.ipcbus.Error." + short, "text")
        assert type(e) is getattr(errors, short)
        assert e.name == "org.ipcbus.Error." + short and e.message == "text"
    spawn = ipcbus.CallError.create("org.ipcbus.Error.Spawn.ChildExited", "exit 3")
    assert isinstance(spawn, errors.SpawnError) and spawn.name == "org.ipcbus.Error.Spawn.ChildExited"
    other = ipcbus.CallError.create("org.example.Error.X", "")
    assert type(other) is ipcbus.CallError and str(other) == "org.example.Error.X"
    assert errors.ConnectionLost is errors.Disconnected
    assert issubclass(errors.ConnectionLost, ConnectionError)


def test_messages_during_a_call_wait_for_process(bus, bus2, serve):
    """While call() waits, a signal that comes is queued, and dispatched by process()."""
    got = []
    bus2.subscribe({"interface": "org.example.Tick"}, got.append)
    bus2.add_handler(lambda m: got.append(("handler", m.member)) and False)

    def emit_then_echo(msg):
        if msg.member == "EmitThenEcho":
            bus.emit("/t", "org.example.Tick", "Tick", {"n": 1})
            bus.reply(msg, {"ok": True})
            return True
        return False

    bus.add_handler(emit_then_echo)
    echo_service(bus)
    serve(bus)
    assert bus2.call(DEST, PATH, IFACE, "EmitThenEcho") == {"ok": True}
    assert got == []
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        bus2.process(0.1)
    assert [m.body for m in got if not isinstance(m, tuple)] == [{"n": 1}]
    assert ("handler", "Tick") in got


def test_call_from_a_handler(bus, bus2, connect, serve):
    """A handler may make a synchronous call of its own while process() runs it."""
    echo_service(bus)
    serve(bus)
    relay = connect()

    def handler(msg):
        if msg.member == "Relay":
            relay.reply(msg, relay.call(DEST, PATH, IFACE, "Echo", msg.body))
            return True
        return False

    relay.add_handler(handler)
    serve(relay)
    assert bus2.call(relay.unique_name, "/r", None, "Relay", {"x": [1, 2]}) == {"x": [1, 2]}


def test_handler_order_and_removal(bus, bus2, serve):
    order = []

    def first(msg):
        if msg.type != "call":
            return False
        order.append("first")
        return False

    def second(msg):
        if msg.type != "call":
            return False
        order.append("second")
        bus.reply(msg, {"by": "second"})
        return True

    def third(msg):  # never reached by a call
        if msg.type != "call":
            return False
        order.append("third")
        return True

    h1 = bus.add_handler(first)
    bus.add_handler(second)
    bus.add_handler(third)
    serve(bus)
    assert bus2.call(bus.unique_name, "/x", None, "M") == {"by": "second"}
    assert order == ["first", "second"]
    h1.remove()
    assert bus2.call(bus.unique_name, "/x", None, "M") == {"by": "second"}
    assert order == ["first", "second", "second"]


def test_queue_of_unprocessed_messages_is_bounded(bus, bus2, monkeypatch):
    """Signals that come while a synchronous call waits are queued for
    process(), up to a bound (libipcbus's BUS_RQUEUE_MAX); past it the call
    fails with ENOBUFS instead of queueing without end, and the queued
    messages are still dispatched by process()."""
    import errno
    from ipcbus import connection

    monkeypatch.setattr(connection, "RQUEUE_MAX", 50)
    got = []
    bus.subscribe({"interface": "org.example.Flood", "member": "Tick"}, got.append)
    for i in range(200):
        bus2.emit("/f", "org.example.Flood", "Tick", {"i": i})
    bus2.flush()
    with pytest.raises(OSError) as e:
        for _ in range(20):  # until the signals have come while a call waits
            bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetId")
    assert e.value.errno == errno.ENOBUFS
    while len(got) < 200:
        assert bus.process(5) > 0
    assert [m.body["i"] for m in got] == list(range(200))
    bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetId")

