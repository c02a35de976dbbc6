"""Bad input is refused with ValueError (or TypeError) before anything is sent."""

import pytest

import ipcbus

GOOD = ("org.example.Dest", "/org/example/Obj", "org.example.Iface", "Member")


def sent(bus):
    return bus._core.serial


@pytest.mark.parametrize("index,value", [
    (0, "no_dots"), (0, ":"), (0, ":1..2"), (0, "org.example.Dest!"), (0, "org." + "x" * 255), (0, None), (0, 42),
    (1, "relative"), (1, "/trailing/"), (1, "//double"), (1, "/bad-char"), (1, "/" + "x" * 1024), (1, ""),
    (2, "nodots"), (2, "org.1digit"), (2, "org.with-dash"), (2, ""),
    (3, "With.Dot"), (3, "1digit"), (3, ""), (3, None), (3, "x" * 256),
])
def test_call_names(bus, index, value):
    args = list(GOOD)
    args[index] = value
    before = sent(bus)
    with pytest.raises(ValueError) as e:
        bus.call(*args)
    assert ("destination", "path", "interface", "member")[index] in str(e.value)
    with pytest.raises(ValueError):
        bus.call_noreply(*args)
    assert sent(bus) == before


def test_interface_may_be_absent_in_a_call_only(bus):
    with pytest.raises(ValueError):
        bus.emit("/a", None, "M")


@pytest.mark.parametrize("args", [
    ("relative", "org.example.I", "M"),
    ("/a", "org.example.I", "bad.member"),
    ("/a", "org", "M"),
])
def test_emit_names(bus, args):
    before = sent(bus)
    with pytest.raises(ValueError):
        bus.emit(*args)
    assert sent(bus) == before


def test_emit_destination(bus):
    with pytest.raises(ValueError):
        bus.emit("/a", "org.example.I", "M", destination="nope")


@pytest.mark.parametrize("body,exc", [
    ([1, 2], TypeError),
    ("text", TypeError),
    ({1: "int key"}, TypeError),
    ({"f": float("nan")}, ValueError),
    ({"f": float("inf")}, ValueError),
    ({"s": "nul\0inside"}, ValueError),
    ({"o": object()}, TypeError),
])
def test_bad_bodies(bus, body, exc):
    before = sent(bus)
    with pytest.raises(exc):
        bus.call(*GOOD, body)
    assert sent(bus) == before


def test_reply_error_name(bus):
    call = ipcbus.Message("call", serial=3, sender=":1.9", path="/", member="M")
    with pytest.raises(ValueError):
        bus.reply_error(call, "not an error name", "x")
    with pytest.raises(TypeError):
        bus.reply(ipcbus.Message("signal", path="/", interface="a.b", member="S"))


def test_name_checks():
    assert ipcbus.is_unique_name(":1.42") and not ipcbus.is_unique_name("1.42")
    assert ipcbus.is_well_known_name("org.example.Notes") and not ipcbus.is_well_known_name(":1.2")
    assert ipcbus.is_well_known_name("org.ex-ample.x_1")
    assert ipcbus.is_bus_name(":1.42") and ipcbus.is_bus_name("a.b")
    assert ipcbus.is_object_path("/") and ipcbus.is_object_path("/a/b_1") and not ipcbus.is_object_path("/a/")
    assert ipcbus.is_interface_name("a.b") and not ipcbus.is_interface_name("a.b-c")
    assert ipcbus.is_member_name("Get_1") and not ipcbus.is_member_name("1Get")
    assert ipcbus.is_error_name("org.example.Error.X")
    assert not ipcbus.is_object_path("/é")
