"""Bodies as JSON text (bytes, big integers, the memfd decision) and local rule matching, without a bus."""

import json

import pytest

import ipcbus
from ipcbus import memfd
from ipcbus.message import Message, encode_body


def test_no_body():
    assert encode_body(None) == (b"", None)


def test_bytes_and_integers_in_a_frame():
    text, binary = encode_body({"b": b"\x00\xff", "t": (1, 2), "big": 2 ** 60, "neg": -(2 ** 53), "ok": 2 ** 53 - 1})
    assert binary is None
    assert json.loads(text) == {"b": "AP8=", "t": [1, 2], "big": str(2 ** 60), "neg": str(-(2 ** 53)),
                                "ok": 2 ** 53 - 1}


def test_memfd_decision():
    small = {"s": "x" * 10}
    assert encode_body(small, 100)[1] is None
    assert encode_body(small, 0)[1] is None
    text, binary = encode_body({"s": "x" * 200}, 100)
    assert binary == b"" and json.loads(text) == {"s": "x" * 200}
    # large bytes: raw in the binary area, in order, referenced
    a, b = b"a" * 5000, b"b" * 5000
    text, binary = encode_body({"a": a, "b": b, "c": b"tiny"}, memfd.THRESHOLD_DEFAULT)
    assert binary == a + b
    assert json.loads(text) == {"a": {"$bytes": [0, 5000]}, "b": {"$bytes": [5000, 5000]}, "c": "dGlueQ=="}
    # one blob under 8 KiB in a small body: base64 in the frame
    text, binary = encode_body({"a": a}, memfd.THRESHOLD_DEFAULT)
    assert binary is None and isinstance(json.loads(text)["a"], str)
    # the same with a threshold its base64 reaches: a memfd
    text, binary = encode_body({"a": a}, 6000)
    assert binary == a
    # threshold 0: never, whatever the blobs
    text, binary = encode_body({"a": a * 4}, 0)
    assert binary is None


def test_get_bytes_both_forms():
    m = Message("signal", body={"x": "AAE=", "y": {"$bytes": [1, 2]}}, binary=b"abcd")
    assert m.get_bytes(m.body["x"]) == b"\x00\x01"
    assert m.get_bytes(m.body["y"]) == b"bc"
    assert m.body_in_memfd
    m2 = Message("signal", body={"y": {"$bytes": [1, 2]}})
    with pytest.raises(ValueError):
        m2.get_bytes(m2.body["y"])


def sig(**kw):
    kw.setdefault("path", "/a/b")
    kw.setdefault("interface", "org.x.I")
    kw.setdefault("member", "M")
    kw.setdefault("sender", ":1.5")
    return Message("signal", **kw)


@pytest.mark.parametrize("rule,msg,want", [
    ({}, sig(), True),
    ({"type": "signal"}, sig(), True),
    ({"type": "call"}, sig(), False),
    ({"interface": "org.x.I", "member": "M"}, sig(), True),
    ({"member": "N"}, sig(), False),
    ({"path": "/a/b"}, sig(), True),
    ({"path": "/a"}, sig(), False),
    ({"path_namespace": "/a"}, sig(), True),
    ({"path_namespace": "/"}, sig(), True),
    ({"path_namespace": "/a/b/c"}, sig(), False),
    ({"path_namespace": "/a/bc"}, sig(path="/a/b"), False),
    ({"sender": ":1.5"}, sig(), True),
    ({"sender": ":1.6"}, sig(), False),
    ({"destination": ":1.9"}, sig(), False),
    ({"destination": ":1.9"}, sig(destination=":1.9"), True),
    ({"args": {"k": "v"}}, sig(body={"k": "v", "o": 1}), True),
    ({"args": {"k": "v"}}, sig(body={"k": "w"}), False),
    ({"args": {"k": "1"}}, sig(body={"k": 1}), False),
    ({"args": {"k": "v"}}, sig(body={"k": "v"}, binary=b""), False),  # never a body in a memfd
])
def test_rule_matches(rule, msg, want):
    assert ipcbus.Rule(rule).matches(msg) is want


def test_rule_sender_by_well_known_name():
    r = ipcbus.Rule({"sender": "org.x.Owner"})
    assert r.matches(sig(sender=":1.5"), {"org.x.Owner": ":1.5"}.get)
    assert not r.matches(sig(sender=":1.6"), {"org.x.Owner": ":1.5"}.get)
    assert not r.matches(sig(sender=":1.5"), {}.get)
    assert not r.matches(sig(sender=":1.5"))
