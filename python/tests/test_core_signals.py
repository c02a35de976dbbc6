"""emit and subscribe: rules in both forms, matching the broker's way, cancel, unicast."""

import os
import signal
import time

import pytest

import ipcbus
from ipcbus import errors

IFACE = "org.example.Sig"


def pump(bus, until, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        bus.process(0.05)
    return until()


def settle(bus, seconds=0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        bus.process(0.02)


def test_emit_and_subscribe(bus, bus2):
    got = []
    sub = bus2.subscribe({"interface": IFACE, "member": "Changed"}, got.append)
    bus.emit("/a", IFACE, "Changed", {"id": 7})
    bus.emit("/a", IFACE, "Other", {"id": 8})
    assert pump(bus2, lambda: got)
    settle(bus2)
    assert [(m.type, m.path, m.member, m.body, m.sender) for m in got] == [
        ("signal", "/a", "Changed", {"id": 7}, bus.unique_name)]
    assert got[0].destination is None
    sub.cancel()
    sub.cancel()  # idempotent
    bus.emit("/a", IFACE, "Changed", {"id": 9})
    settle(bus2, 0.3)
    assert len(got) == 1


def test_string_rules_and_args(bus, bus2):
    got = []
    bus2.subscribe("type=signal,interface=%s,arg.title='a,b=c',path_namespace=/n" % IFACE, got.append)
    bus.emit("/n/x", IFACE, "S", {"title": "a,b=c"})
    bus.emit("/n", IFACE, "S", {"title": "a,b=c", "more": 1})
    bus.emit("/n/x", IFACE, "S", {"title": "other"})
    bus.emit("/nx", IFACE, "S", {"title": "a,b=c"})
    bus.emit("/n/x", IFACE, "S", {"title": 5})
    assert pump(bus2, lambda: len(got) >= 2)
    settle(bus2)
    assert [m.path for m in got] == ["/n/x", "/n"]


def test_one_delivery_for_two_matching_subscriptions_each_callback_once(bus, bus2):
    a, b = [], []
    bus2.subscribe({"interface": IFACE}, a.append)
    bus2.subscribe({"interface": IFACE, "member": "M"}, b.append)
    bus.emit("/", IFACE, "M")
    bus.emit("/", IFACE, "N")
    assert pump(bus2, lambda: len(a) >= 2)
    settle(bus2)
    assert [m.member for m in a] == ["M", "N"] and [m.member for m in b] == ["M"]


def test_sender_by_unique_and_well_known_name(bus, bus2, connect):
    other = connect()
    by_unique, by_name = [], []
    bus2.subscribe({"sender": bus.unique_name, "interface": IFACE}, by_unique.append)
    bus2.subscribe({"sender": "org.example.Sender", "interface": IFACE}, by_name.append)
    bus.emit("/", IFACE, "One")
    other.emit("/", IFACE, "Two")
    assert pump(bus2, lambda: by_unique)
    settle(bus2)
    assert [m.member for m in by_unique] == ["One"]
    assert by_name == []
    assert other.request_name("org.example.Sender") == ipcbus.PRIMARY_OWNER
    other.emit("/", IFACE, "Three")
    bus.emit("/", IFACE, "Four")
    assert pump(bus2, lambda: by_name)
    settle(bus2)
    assert [m.member for m in by_name] == ["Three"]


def test_unicast_signal(bus, bus2, connect):
    third = connect()
    got2, got3 = [], []
    bus2.add_handler(lambda m: m.interface == IFACE and got2.append(m) and False)
    third.add_handler(lambda m: m.interface == IFACE and got3.append(m) and False)
    bus.emit("/u", IFACE, "Direct", {"x": 1}, destination=bus2.unique_name)
    assert pump(bus2, lambda: got2)
    settle(third)
    assert got2[0].destination == bus2.unique_name and got2[0].body == {"x": 1}
    assert got3 == []


def test_callback_exception_does_not_stop_dispatch(bus, bus2):
    got = []

    def broken(msg):
        raise RuntimeError("callback bug")

    bus2.subscribe({"interface": IFACE}, broken)
    bus2.subscribe({"interface": IFACE}, got.append)
    bus.emit("/", IFACE, "M")
    assert pump(bus2, lambda: got)


@pytest.mark.parametrize("rule", [
    {"nonsense": "x"},
    {"type": "sometimes"},
    {"interface": "nodots"},
    {"path": "relative"},
    {"path": "/a", "path_namespace": "/"},
    {"args": {"a": 1}},
    {"args": ["a"]},
    {"member": 5},
    "interface",
    "interface=org.x.Y,interface=org.x.Z",
    "arg.a=1,arg.a=2",
    "member='unterminated",
    {"args": {"a%d" % i: "v" for i in range(17)}},
])
def test_bad_rules_are_refused_locally(bus, rule):
    serial = bus._core.serial
    with pytest.raises(ValueError):
        bus.subscribe(rule, lambda m: None)
    assert bus._core.serial == serial


def test_rule_forms():
    r = ipcbus.Rule("interface=org.x.Y,member=M,arg.b=2,arg.a='1,2'", default_type="signal")
    assert r.to_json() == {"type": "signal", "interface": "org.x.Y", "member": "M", "args": {"a": "1,2", "b": "2"}}
    assert ipcbus.Rule(str(r)) == r
    assert ipcbus.Rule(r.to_json()) == r
    assert ipcbus.Rule("").to_json() == {}


def test_broker_limit_surfaces(start_broker):
    config = {"type": "session", "standard_service_dirs": False, "service_dirs": [],
              "limits": {"max_matches_per_connection": 2}}
    broker = start_broker(config)
    with ipcbus.connect(broker.address) as b:
        b.subscribe({"member": "A"}, print)
        b.subscribe({"member": "B"}, print)
        with pytest.raises(errors.LimitsExceeded) as e:
            b.subscribe({"member": "C"}, print)
        assert "max_matches_per_connection" in e.value.message


def test_many_large_signals_through_a_full_socket(ipcbusd, bus, bus2, serve):
    """Output the socket does not take at once stays queued and goes out in order."""
    got = []
    bus2.subscribe({"interface": IFACE, "member": "Big"}, lambda m: got.append(m.body["i"]))
    serve(bus2)
    payload = "b" * 100000
    os.kill(ipcbusd.pid, signal.SIGSTOP)  # nobody reads: the socket fills
    try:
        for i in range(60):  # 6 MB
            bus.emit("/big", IFACE, "Big", {"i": i, "p": payload})
        assert bus._core.wants_write()
    finally:
        os.kill(ipcbusd.pid, signal.SIGCONT)
    bus.flush(30)
    deadline = time.monotonic() + 30
    while len(got) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got == list(range(60))


def test_body_over_the_limit(bus):
    serial = bus._core.serial
    with pytest.raises(ValueError):
        bus.emit("/", IFACE, "Huge", {"s": "h" * (64 * 1024 * 1024)})
    assert bus._core.serial == serial


def test_sender_tracking_ends_with_the_last_subscription(bus, bus2):
    a = bus2.subscribe({"sender": "org.example.Tracked", "member": "A"}, print)
    b = bus2.subscribe({"sender": "org.example.Tracked", "member": "B"}, print)
    assert bus2._core.owners == {"org.example.Tracked": [None, 2]}
    assert bus.request_name("org.example.Tracked") == ipcbus.PRIMARY_OWNER
    assert pump(bus2, lambda: bus2._core.owner_of("org.example.Tracked") == bus.unique_name)
    a.cancel()
    assert bus2._core.owners["org.example.Tracked"][1] == 1
    b.cancel()
    assert bus2._core.owners == {}
    # the broker has no rule of ours left: removing the owner rule again is MatchRuleNotFound
    rule = ipcbus.connection.owner_rule("org.example.Tracked").to_json()
    with pytest.raises(errors.MatchRuleNotFound):
        bus2.call_driver("RemoveMatch", {"rule": rule})
