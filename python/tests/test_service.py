# SPDX-License-Identifier: MIT
"""ipcbus.service against a real ipcbusd: exported objects answer calls
checked against their descriptions, handlers' exceptions and bad replies
become error answers, Introspectable, Properties, ObjectManager and Peer
answer as libipcbus does, signals and PropertiesChanged are checked and
sent, async handlers run on the asyncio bus."""

import asyncio
import os
import time

import pytest

from ipcbus import errors, iface, service

IFACE = "org.example.Test"
DESCRIPTION = """{
  "interface": "org.example.Test",
  "doc": "what the tests export",
  "methods": {
    "Add": {"in": {"text": "string"}, "out": {"id": "uint"}},
    "Echo": {"in": {"n": "uint", "data": "bytes", "opt": {"optional": "string"}},
             "out": {"n": "uint", "data": "bytes", "opt": {"optional": "string"}}},
    "Raise": {"in": {"how": "string"}},
    "BadReply": {"in": {"how": "string"}, "out": {"id": "uint"}},
    "Who": {"out": {"sender": "string"}},
    "ReadFd": {"in": {"fd": "fd"}, "out": {"text": "string"}},
    "OpenFd": {"out": {"fd": "fd"}},
    "Raw": {"unchecked": true},
    "Quiet": {"no_reply": true},
    "Slow": {"in": {"ms": "uint"}, "out": {"sender": "string"}},
    "Blob": {"in": {"data": "bytes"}, "out": {"size": "uint", "data": "bytes"}}
  },
  "signals": {"Changed": {"args": {"id": "uint"}}},
  "properties": {
    "Count": {"type": "uint", "access": "read"},
    "Theme": {"type": {"optional": "string"}, "access": "readwrite", "changes": "invalidate"},
    "Secret": {"type": "string", "access": "write"},
    "Version": {"type": "string", "access": "read", "changes": "const"},
    "Level": {"type": "int", "access": "readwrite"}
  }
}"""
DESC = iface.parse(DESCRIPTION)
OTHER = iface.parse('{"interface":"org.example.Other","methods":{"Hello":{"out":{"who":"string"}}},'
                    '"properties":{"Name":{"type":"string","access":"read"}}}')


class Thing(service.Object):
    interfaces = [DESC]

    def __init__(self):
        super().__init__()
        self.texts = []
        self.Theme = None
        self.Secret = None
        self.Version = "1"
        self.Level = -1
        self.quiet = 0
        self.opened = []

    @property
    def Count(self):
        return len(self.texts)

    def Add(self, text):
        self.texts.append(text)
        return {"id": len(self.texts)}

    def Echo(self, n, data, opt):
        assert isinstance(n, int) and isinstance(data, bytes)
        return {"n": n, "data": data, "opt": opt}

    def Raise(self, how):
        if how == "call":
            raise errors.CallError("org.example.Error.Nope", "nope")
        if how == "invalid":
            raise errors.InvalidArgs("bad how")
        raise RuntimeError("boom")

    def BadReply(self, how):
        return {} if how == "missing" else {"id": 1, "x": 2} if how == "extra" else 7

    def Who(self):
        return {"sender": service.current_message().sender}

    def ReadFd(self, fd):
        return {"text": os.read(fd, 100).decode()}

    def OpenFd(self):
        r, w = os.pipe()
        os.write(w, b"from the service")
        os.close(w)
        self.opened.append(r)
        return {"fd": r}

    def Raw(self, **body):
        return {"got": body}

    def Quiet(self):
        self.quiet += 1

    def Blob(self, data):
        return {"size": len(data), "data": data[::-1]}

    async def Slow(self, ms):
        await asyncio.sleep(ms / 1000)
        return {"sender": service.current_message().sender}


def call(bus2, bus, member, body=None, path="/t", interface=IFACE):
    return bus2.call(bus.unique_name, path, interface, member, body, timeout=10)


def assert_error(cls, text, fn, *args, **kw):
    with pytest.raises(cls) as e:
        fn(*args, **kw)
    assert e.value.message == text
    return e.value


def collect(bus2, rule):
    got = []
    bus2.subscribe(rule, got.append)
    return got


def wait_for(bus2, got, n=1, timeout=10):
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        bus2.process(0.05)
    assert len(got) >= n, "%d of %d signals came" % (len(got), n)
    return got


@pytest.fixture
def thing(bus, bus2, serve):
    obj = service.export(bus, "/t", Thing())
    serve(bus)
    yield obj
    for fd in obj.opened:
        os.close(fd)


# ---- described methods ----------------------------------------------------------------------


def test_call_checked_and_answered(bus, bus2, thing):
    assert call(bus2, bus, "Add", {"text": "a"}) == {"id": 1}
    assert call(bus2, bus, "Add", {"text": "b", "tags": ["newer callers' extra arguments are ignored"]}) == {"id": 2}
    assert thing.texts == ["a", "b"]
    # without interface: the first interface at the path with the member
    assert call(bus2, bus, "Add", {"text": "c"}, interface=None) == {"id": 3}


def test_values_in_their_python_form(bus, bus2, thing):
    reply = call(bus2, bus, "Echo", {"n": "18446744073709551615", "data": "AP9oaQ=="})
    assert reply == {"n": "18446744073709551615", "data": "AP9oaQ==", "opt": None}
    reply = call(bus2, bus, "Echo", {"n": 5, "data": "", "opt": "x"})
    assert reply == {"n": 5, "data": "", "opt": "x"}


def test_invalid_args_never_reach_the_handler(bus, bus2, thing):
    assert_error(errors.InvalidArgs, "argument 'text': expected string, got integer", call, bus2, bus, "Add",
                 {"text": 5})
    assert_error(errors.InvalidArgs, "argument 'text': missing (expected string)", call, bus2, bus, "Add")
    assert_error(errors.InvalidArgs, "argument 'n': out of range for uint", call, bus2, bus, "Echo",
                 {"n": -1, "data": ""})
    assert_error(errors.InvalidArgs, "argument 'data': expected bytes, got string (not base64)", call, bus2, bus,
                 "Echo", {"n": 1, "data": "a"})
    assert thing.texts == []


def test_handler_exceptions_are_answers(bus, bus2, thing):
    e = assert_error(errors.CallError, "nope", call, bus2, bus, "Raise", {"how": "call"})
    assert e.name == "org.example.Error.Nope"
    assert_error(errors.InvalidArgs, "bad how", call, bus2, bus, "Raise", {"how": "invalid"})
    assert_error(errors.Failed, "RuntimeError: boom", call, bus2, bus, "Raise", {"how": "other"})


def test_replies_are_checked_before_they_are_sent(bus, bus2, thing):
    assert_error(errors.Failed, "the reply was refused: the reply to BadReply: argument 'id': missing (expected uint)",
                 call, bus2, bus, "BadReply", {"how": "missing"})
    assert_error(errors.Failed, "the reply was refused: the reply to BadReply: argument 'x': not in the description",
                 call, bus2, bus, "BadReply", {"how": "extra"})
    assert_error(errors.Failed,
                 "the reply was refused: the reply to BadReply: the body is not a JSON object but integer",
                 call, bus2, bus, "BadReply", {"how": "int"})


def test_unknown_members_interfaces_objects(bus, bus2, thing):
    assert_error(errors.UnknownMethod, "No method Nope in interface org.example.Test at path /t", call, bus2, bus,
                 "Nope")
    assert_error(errors.UnknownMethod, "No method Nope at path /t", call, bus2, bus, "Nope", interface=None)
    assert_error(errors.UnknownInterface, "No interface org.example.Other at path /t", call, bus2, bus, "Hello",
                 interface="org.example.Other")
    assert_error(errors.UnknownObject, "No object at path /nope", call, bus2, bus, "Add", {"text": "a"}, path="/nope")
    assert_error(errors.UnknownMethod, "No method Nope in interface org.ipcbus.Peer", call, bus2, bus, "Nope",
                 interface=iface.PEER)
    # Peer.Ping on any path, with or without interface
    for path in ("/t", "/", "/nope"):
        assert call(bus2, bus, "Ping", path=path, interface=iface.PEER) == {}
        assert call(bus2, bus, "Ping", path=path, interface=None) == {}
    assert_error(errors.InvalidArgs, "argument 'interface': missing (expected string)", call, bus2, bus, "GetAll",
                 interface=iface.PROPERTIES)


def test_current_message(bus, bus2, thing):
    assert call(bus2, bus, "Who") == {"sender": bus2.unique_name}
    assert service.current_message() is None


def test_descriptors_both_ways(bus, bus2, thing):
    r, w = os.pipe()
    try:
        os.write(w, b"through the bus")
        reply = bus2.call(bus.unique_name, "/t", IFACE, "ReadFd", {"fd": 0}, fds=[r], timeout=10)
        assert reply == {"text": "through the bus"}
        assert_error(errors.InvalidArgs, "argument 'fd': descriptor index 1 is out of range (the message carries 1)",
                     bus2.call, bus.unique_name, "/t", IFACE, "ReadFd", {"fd": 1}, fds=[r], timeout=10)
    finally:
        os.close(r)
        os.close(w)
    msg = bus2.call_message(bus.unique_name, "/t", IFACE, "OpenFd", timeout=10)
    try:
        assert msg.body == {"fd": 0} and len(msg.fds) == 1
        assert os.read(msg.fds[0], 100) == b"from the service"
    finally:
        msg.close_fds()


def test_large_bytes_travel_in_memfds_both_ways(bus, bus2, thing):
    data = bytes(range(256)) * 64  # 16 KiB of bytes: the body goes in a memfd, the bytes raw in its binary area
    msg = bus2.call_message(bus.unique_name, "/t", IFACE, "Blob", {"data": data}, timeout=10)
    assert msg.body_in_memfd and msg.body["size"] == len(data)
    assert "$bytes" in msg.body["data"]
    assert msg.get_bytes(msg.body["data"]) == data[::-1]
    # small ones in base64, in the frame
    assert call(bus2, bus, "Blob", {"data": b"abc"}) == {"size": 3, "data": "Y2Jh"}
    # a reference needs a binary area
    assert_error(errors.InvalidArgs,
                 "argument 'data': expected bytes, got a $bytes reference in a body that came in its frame",
                 call, bus2, bus, "Blob", {"data": {"$bytes": [0, 1]}})


def test_unchecked_and_no_reply_methods(bus, bus2, thing):
    assert call(bus2, bus, "Raw", {"a": [1, "x"], "b": None}) == {"got": {"a": [1, "x"], "b": None}}
    bus2.call_noreply(bus.unique_name, "/t", IFACE, "Quiet")
    # the call after it is answered after it ran
    assert call(bus2, bus, "Who") == {"sender": bus2.unique_name}
    assert thing.quiet == 1


def test_async_handler_needs_the_asyncio_bus(bus, bus2, thing):
    assert_error(errors.Failed, "the handler of Slow is async: it needs the asyncio bus (ipcbus.aio)", call, bus2,
                 bus, "Slow", {"ms": 1})


async def test_async_handlers(aconnect):
    abus, abus2 = await aconnect(), await aconnect()
    obj = abus.export("/t", Thing())  # the connection's shorthand for service.export
    # two slow calls at once: both answered, each with its own caller
    a = abus2.call(abus.unique_name, "/t", IFACE, "Slow", {"ms": 200}, timeout=10)
    b = abus2.call(abus.unique_name, "/t", IFACE, "Slow", {"ms": 10}, timeout=10)
    assert await asyncio.gather(a, b) == [{"sender": abus2.unique_name}] * 2
    assert await abus2.call(abus.unique_name, "/t", IFACE, "Add", {"text": "x"}) == {"id": 1}
    with pytest.raises(errors.InvalidArgs):
        await abus2.call(abus.unique_name, "/t", IFACE, "Slow", {"ms": "x"})
    assert obj.texts == ["x"]
    got = []
    sub = await abus2.subscribe({"path": "/t", "interface": IFACE, "member": "Changed"}, got.append)
    obj.emit_signal(IFACE, "Changed", {"id": 7})
    for _ in range(200):
        if got:
            break
        await asyncio.sleep(0.01)
    assert got and got[0].body == {"id": 7}
    sub.cancel()


# ---- Introspectable -----------------------------------------------------------------------


def names(reply):
    return [d["interface"] for d in reply["interfaces"]]


def test_introspect(bus, bus2, serve):
    service.export(bus, "/t", Thing())
    service.export(bus, "/t", _other("other"))
    service.export(bus, "/t/a/b", _other("b"))
    service.export(bus, "/t/c", _other("c"))
    service.export_object_manager(bus, "/t")
    serve(bus)

    r = call(bus2, bus, "Introspect", path="/t", interface=iface.INTROSPECTABLE)
    assert r["path"] == "/t"
    assert names(r) == [IFACE, "org.example.Other", iface.INTROSPECTABLE, iface.PROPERTIES, iface.PEER,
                        iface.OBJECT_MANAGER]
    assert r["interfaces"][0] == DESC.description
    assert r["interfaces"][2] == iface.standard(iface.INTROSPECTABLE).description
    assert r["children"] == ["a", "c"]
    assert call(bus2, bus, "Hello", path="/t", interface="org.example.Other") == {"who": "other"}

    r = call(bus2, bus, "Introspect", path="/", interface=iface.INTROSPECTABLE)
    assert (r["path"], names(r), r["children"]) == ("/", [iface.INTROSPECTABLE, iface.PEER], ["t"])
    r = call(bus2, bus, "Introspect", path="/t/a", interface=iface.INTROSPECTABLE)
    assert (names(r), r["children"]) == ([iface.INTROSPECTABLE, iface.PEER], ["b"])
    r = call(bus2, bus, "Introspect", path="/t/a/b", interface=iface.INTROSPECTABLE)
    assert (names(r), r["children"]) == (["org.example.Other", iface.INTROSPECTABLE, iface.PROPERTIES, iface.PEER], [])
    assert_error(errors.UnknownObject, "No object at path /t/x", call, bus2, bus, "Introspect", path="/t/x",
                 interface=iface.INTROSPECTABLE)
    # above exported paths there is no object: Properties and methods are refused there
    assert_error(errors.UnknownObject, "No object at path /t/a", call, bus2, bus, "GetAll", {"interface": IFACE},
                 path="/t/a", interface=iface.PROPERTIES)
    assert_error(errors.UnknownObject, "No object at path /t/a", call, bus2, bus, "Add", {"text": "x"}, path="/t/a")


def _other(name):
    o = service.Object([OTHER])
    o.Hello = lambda: {"who": name}
    o.Name = name
    return o


# ---- Properties -----------------------------------------------------------------------------


def test_properties(bus, bus2, thing):
    def props(member, body):
        return call(bus2, bus, member, body, interface=iface.PROPERTIES)

    thing.texts.append("x")
    assert props("Get", {"interface": IFACE, "name": "Count"}) == {"value": 1}
    assert props("GetAll", {"interface": IFACE}) == {
        "properties": {"Count": 1, "Theme": None, "Version": "1", "Level": -1}
    }
    assert_error(errors.AccessDenied, "Property Secret of org.example.Test is write-only", props, "Get",
                 {"interface": IFACE, "name": "Secret"})
    assert_error(errors.PropertyReadOnly, "Property Count of org.example.Test is read-only", props, "Set",
                 {"interface": IFACE, "name": "Count", "value": 3})
    assert_error(errors.InvalidArgs, "argument 'value': expected int, got string (not a decimal integer)", props,
                 "Set", {"interface": IFACE, "name": "Level", "value": "x"})
    assert_error(errors.InvalidArgs, "argument 'value': missing (expected any)", props, "Set",
                 {"interface": IFACE, "name": "Level"})
    assert props("Set", {"interface": IFACE, "name": "Level", "value": "-9223372036854775808"}) == {}
    assert thing.Level == -(2**63)
    assert props("Get", {"interface": IFACE, "name": "Level"}) == {"value": "-9223372036854775808"}
    assert props("Set", {"interface": IFACE, "name": "Secret", "value": "s"}) == {}
    assert thing.Secret == "s"
    assert_error(errors.UnknownProperty, "No property Nope in interface org.example.Test", props, "Get",
                 {"interface": IFACE, "name": "Nope"})
    assert_error(errors.UnknownInterface, "No interface org.example.Other at path /t", props, "Get",
                 {"interface": "org.example.Other", "name": "Name"})
    assert_error(errors.UnknownInterface, "No interface org.ipcbus.Peer at path /t", props, "GetAll",
                 {"interface": iface.PEER})
    assert_error(errors.InvalidArgs, "argument 'name': expected string, got integer", props, "Get",
                 {"interface": IFACE, "name": 3})
    assert_error(errors.UnknownMethod, "No method Nope in interface org.ipcbus.Properties", props, "Nope", None)


def test_property_getter_failures(bus, bus2, serve):
    class Broken(Thing):
        @property
        def Count(self):
            raise errors.CallError("org.example.Error.Busy", "busy")

        @property
        def Version(self):
            return 5

        @Version.setter
        def Version(self, value):
            pass

    service.export(bus, "/t", Broken())
    serve(bus)
    e = assert_error(errors.CallError, "busy", call, bus2, bus, "Get", {"interface": IFACE, "name": "Count"},
                     interface=iface.PROPERTIES)
    assert e.name == "org.example.Error.Busy"
    assert_error(errors.Failed, "ValueError: property Version of org.example.Test: "
                 "argument 'Version': expected string, got integer", call, bus2, bus, "Get",
                 {"interface": IFACE, "name": "Version"}, interface=iface.PROPERTIES)


def test_properties_changed(bus, bus2):
    obj = service.export(bus, "/t", Thing())
    got = collect(bus2, {"path": "/t", "interface": iface.PROPERTIES, "member": "PropertiesChanged"})
    obj.set_property(IFACE, "Level", 3)
    assert obj.Level == 3
    obj.set_property(IFACE, "Theme", "dark")
    obj.texts.append("x")
    obj.emit_properties_changed(IFACE, "Count", "Theme")
    obj.set_property(IFACE, "Level", 4, emit_changed=False)
    bus.flush()
    wait_for(bus2, got, 3)
    assert [m.body for m in got] == [
        {"interface": IFACE, "changed": {"Level": 3}, "invalidated": []},
        {"interface": IFACE, "changed": {}, "invalidated": ["Theme"]},
        {"interface": IFACE, "changed": {"Count": 1}, "invalidated": ["Theme"]},
    ]
    assert got[0].sender == bus.unique_name
    with pytest.raises(ValueError, match="^property 'Version': constant, it does not change$"):
        obj.emit_properties_changed(IFACE, "Version")
    with pytest.raises(ValueError, match="^property 'Nope': not in interface org.example.Test$"):
        obj.emit_properties_changed(IFACE, "Nope")
    with pytest.raises(ValueError, match="^argument 'Level': expected int, got string"):
        obj.set_property(IFACE, "Level", "x")
    assert obj.Level == 4
    time.sleep(0.1)
    bus2.process(0.1)
    assert len(got) == 3  # nothing more was sent


# ---- signals ------------------------------------------------------------------------------------


def test_emit_signal(bus, bus2):
    obj = Thing()
    with pytest.raises(RuntimeError, match="not exported"):
        obj.emit_signal(IFACE, "Changed", {"id": 1})
    service.export(bus, "/t", obj)
    got = collect(bus2, {"interface": IFACE, "member": "Changed"})
    obj.emit_signal(IFACE, "Changed", {"id": 2**60})
    with pytest.raises(ValueError, match=r"^signal Changed: argument 'id': expected uint, got string \(not a deci"):
        obj.emit_signal(IFACE, "Changed", {"id": "x"})
    with pytest.raises(ValueError, match="^signal Changed: argument 'extra': not in the description$"):
        obj.emit_signal(IFACE, "Changed", {"id": 1, "extra": 2})
    with pytest.raises(ValueError, match="^signal Changed: argument 'id': missing"):
        obj.emit_signal(IFACE, "Changed")
    with pytest.raises(ValueError, match="^interface org.example.Test has no signal 'Nope'$"):
        obj.emit_signal(IFACE, "Nope", {})
    with pytest.raises(KeyError):
        obj.emit_signal("org.example.Other", "Changed", {"id": 1})
    obj.emit_signal(IFACE, "Changed", {"id": 5}, destination=bus2.unique_name)
    bus.flush()
    wait_for(bus2, got, 2)
    assert [(m.path, m.body) for m in got] == [("/t", {"id": str(2**60)}), ("/t", {"id": 5})]
    assert got[1].destination == bus2.unique_name
    time.sleep(0.1)
    bus2.process(0.1)
    assert len(got) == 2


def test_plain_emit_is_checked_as_libipcbus_checks_it(bus, bus2, abus):
    """bus.emit of a signal described here, by an object exported at its path
    or by a standard interface, is checked first (libipcbus's
    object_check_outgoing); one nobody here describes is not."""
    service.export(bus, "/t", Thing())
    got = collect(bus2, {"interface": IFACE, "member": "Changed"})
    with pytest.raises(ValueError, match=r"^signal Changed: argument 'id': expected uint, got string"):
        bus.emit("/t", IFACE, "Changed", {"id": "x"})
    with pytest.raises(ValueError, match="^signal PropertiesChanged: argument "):
        bus.emit("/anywhere", "org.ipcbus.Properties", "PropertiesChanged", {"interface": 5})
    bus.emit("/t", IFACE, "Changed", {"id": 3})
    bus.emit("/elsewhere", IFACE, "Changed", {"id": "not checked: nothing is exported there"})
    bus.emit("/t", "org.example.Undescribed", "Whatever", {"any": ["thing"]})
    bus.flush()
    wait_for(bus2, got, 2)
    assert [(m.path, m.body) for m in got] == [("/t", {"id": 3}), ("/elsewhere", {"id": "not checked: nothing is exported there"})]
    # the asyncio bus checks the standard interfaces' signals the same way
    with pytest.raises(ValueError, match="^signal PropertiesChanged: "):
        abus.emit("/anywhere", "org.ipcbus.Properties", "PropertiesChanged", {"interface": 5})


# ---- ObjectManager ------------------------------------------------------------------------------


def test_object_manager(bus, bus2, serve):
    manager = service.export_object_manager(bus, "/")
    got = collect(bus2, {"path": "/", "interface": iface.OBJECT_MANAGER})
    obj = Thing()
    obj.texts.append("x")
    service.export(bus, "/t", obj)
    service.unexport(bus, "/t")
    assert obj.path is None and obj.bus is None
    service.export(bus, "/t/deeper", obj)
    bus.flush()
    wait_for(bus2, got, 3)
    props = {"Count": 1, "Theme": None, "Version": "1", "Level": -1}
    assert [(m.member, m.body) for m in got] == [
        ("InterfacesAdded", {"path": "/t", "interfaces": {IFACE: props}}),
        ("InterfacesRemoved", {"path": "/t", "interfaces": [IFACE]}),
        ("InterfacesAdded", {"path": "/t/deeper", "interfaces": {IFACE: props}}),
    ]
    service.export(bus, "/elsewhere", _other("e"))
    serve(bus)
    r = call(bus2, bus, "GetManagedObjects", path="/", interface=iface.OBJECT_MANAGER)
    assert r == {"objects": {"/t/deeper": {IFACE: props}, "/elsewhere": {"org.example.Other": {"Name": "e"}}}}
    assert_error(errors.UnknownInterface, "No interface org.ipcbus.ObjectManager at path /t/deeper", call, bus2, bus,
                 "GetManagedObjects", path="/t/deeper", interface=iface.OBJECT_MANAGER)
    r = call(bus2, bus, "Introspect", path="/", interface=iface.INTROSPECTABLE)
    assert names(r) == [iface.INTROSPECTABLE, iface.PROPERTIES, iface.PEER, iface.OBJECT_MANAGER]
    assert r["children"] == ["elsewhere", "t"]
    assert_error(errors.UnknownInterface, "No interface org.example.Test at path /", call, bus2, bus, "GetAll",
                 {"interface": IFACE}, path="/", interface=iface.PROPERTIES)
    assert manager.path == "/"


def test_object_manager_removed(bus, bus2):
    manager = service.export_object_manager(bus, "/")
    with pytest.raises(ValueError, match="already has an object manager"):
        service.export_object_manager(bus, "/")
    manager.remove()
    got = collect(bus2, {"interface": iface.OBJECT_MANAGER})
    service.export(bus, "/t", Thing())
    bus.flush()
    time.sleep(0.1)
    bus2.process(0.1)
    assert got == []


# ---- exporting ----------------------------------------------------------------------------------


def test_export_refusals(bus):
    class NoAdd(Thing):
        Add = None

    with pytest.raises(ValueError, match="^no handler for method 'Add' of org.example.Test$"):
        service.export(bus, "/t", NoAdd())

    class NoCount(service.Object):
        interfaces = [iface.parse('{"interface":"t.T","properties":{"Count":{"type":"uint","access":"read"}}}')]

    with pytest.raises(ValueError, match="^no getter for property 'Count' of t.T$"):
        service.export(bus, "/t", NoCount())

    class ReadOnlyLevel(Thing):
        Level = property(lambda self: 1)  # readwrite in the description

        def __init__(self):
            service.Object.__init__(self)
            self.texts, self.Theme, self.Secret, self.Version = [], None, None, "1"

    with pytest.raises(ValueError, match="^no setter for property 'Level' of org.example.Test$"):
        service.export(bus, "/t", ReadOnlyLevel())

    obj = service.export(bus, "/t", Thing())
    with pytest.raises(ValueError, match="^interface org.example.Test: already exported at /t$"):
        service.export(bus, "/t", Thing())
    with pytest.raises(ValueError, match="already exported at /t"):
        service.export(bus, "/u", obj)
    for bad in ("t", "/t/", "//t", "/t-x", "", None):
        with pytest.raises(ValueError, match="not a valid object path"):
            service.export(bus, bad, Thing())
    with pytest.raises(TypeError):
        service.export(bus, "/u", object())

    class NoInit(Thing):
        def __init__(self):
            pass

    with pytest.raises(TypeError, match="did not call ipcbus.service.Object.__init__"):
        service.export(bus, "/u", NoInit())
    with pytest.raises(ValueError, match="answered by the library"):
        service.Object([iface.standard(iface.PEER)])
    with pytest.raises(ValueError, match="listed twice"):
        service.Object([DESC, DESC])
    with pytest.raises(iface.NotFound):
        service.Object(["org.example.NotInstalledAnywhere"])
    service.unexport(bus, "/t", obj)
    with pytest.raises(ValueError, match="not exported at /t"):
        service.unexport(bus, "/t", obj)


def test_interfaces_by_name(bus, monkeypatch, tmp_path):
    (tmp_path / "org.example.Test.json").write_text(DESCRIPTION)
    monkeypatch.setenv("IPCBUS_INTERFACE_PATH", str(tmp_path))

    class ByName(Thing):
        interfaces = ["org.example.Test"]

    obj = bus.export("/t", ByName())  # the connection's shorthand for service.export
    assert obj.interface(IFACE).json == DESC.json
    assert [i.name for i in obj.exported_interfaces] == [IFACE]
    assert obj.path == "/t" and obj.bus is bus


def test_unexported_path_left_to_the_connection(bus, bus2, serve):
    """Calls to paths nothing is exported at get the connection's answer, also after an unexport."""
    service.export(bus, "/t", Thing())
    service.unexport(bus, "/t")
    serve(bus)
    assert_error(errors.UnknownObject, "No object at path /t", call, bus2, bus, "Add", {"text": "a"})
    assert_error(errors.UnknownObject, "No object at path /t", call, bus2, bus, "Introspect",
                 interface=iface.INTROSPECTABLE)
    assert call(bus2, bus, "Ping", interface=iface.PEER) == {}

