"""The codec against the golden frames of tests/data (PROTOCOL.md 12)."""

import json

import pytest

from conftest import REPO
from ipcbus import _wire
from ipcbus.message import Message

DATA = REPO / "tests" / "data"


@pytest.mark.parametrize("name", ["call-hello", "call-echo", "call-noreply", "return", "error", "signal",
                                  "signal-stamped", "signal-unicode", "call-memfd"])
def test_golden_frames_decode_and_encode(name):
    raw = (DATA / (name + ".frame")).read_bytes()
    reader = _wire.FrameReader()
    frames = []
    for i in range(len(raw)):  # one byte at a time
        reader.feed(raw[i:i + 1])
        f = reader.next()
        if f is not None:
            frames.append(f)
    assert len(frames) == 1
    f = frames[0]
    h = _wire.decode_header(f.header)
    # the header in canonical form is the bytes that came (3.1)
    assert _wire.encode_header(h) == f.header
    assert _wire.encode_frame(f.header, f.body, f.n_fds) == raw
    body = json.loads(f.body) if f.body else {}
    msg = Message.from_header(h, body, [])
    assert msg.type == h["type"] and msg.serial == h["serial"]


def test_hello_frame_is_what_the_package_writes():
    raw = (DATA / "call-hello.frame").read_bytes()
    msg = Message.new_call("org.ipcbus.Bus", "/org/ipcbus/Bus", None, "Hello")
    fields = msg.header_fields()
    fields["serial"] = 1
    assert _wire.encode_frame(_wire.encode_header(fields)) == raw


def test_several_frames_in_one_piece_and_bad_prefixes():
    raw = (DATA / "signal.frame").read_bytes()
    reader = _wire.FrameReader()
    reader.feed(raw * 3)
    assert [reader.next() is not None for _ in range(4)] == [True, True, True, False]
    for bad in (b"XPCB", b"IPCB\x02", b"IPCB\x01\x01", b"IPCB\x01\x00\x11\x00"):
        r = _wire.FrameReader()
        r.feed(bad + raw[len(bad):])
        with pytest.raises(_wire.FramingError):
            r.next()
