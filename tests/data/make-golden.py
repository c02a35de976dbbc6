#!/usr/bin/env python3
"""Write the golden frames of PROTOCOL.md section 12, independently of the C codec.

Each frame is the 16-byte prefix (magic "IPCB", version 1, reserved 0, n_fds,
header_len, body_len, little-endian) then the canonical header and the body.
"""
import struct
import sys

FRAMES = {
    "call-hello": (
        '{"type":"call","serial":1,"destination":"org.ipcbus.Bus","path":"/org/ipcbus/Bus","member":"Hello"}',
        ""),
    "call-echo": (
        '{"type":"call","serial":2,"destination":"org.example.Echo","path":"/org/example/Echo",'
        '"interface":"org.example.Echo","member":"Echo","timeout_ms":5000}',
        '{"data":"hello, world"}'),
    "call-noreply": (
        '{"type":"call","serial":3,"destination":":1.12","path":"/","member":"Poke",'
        '"no_reply":true,"no_auto_start":true}',
        '{}'),
    "return": (
        '{"type":"return","serial":7,"reply_serial":2,"destination":":1.3"}',
        '{"data":"hello, world"}'),
    "error": (
        '{"type":"error","serial":8,"reply_serial":2,"destination":":1.3","error":"org.ipcbus.Error.ServiceUnknown"}',
        '{"message":"The name org.example.Gone has no owner"}'),
    "signal": (
        '{"type":"signal","serial":9,"path":"/org/example/Notes","interface":"org.example.Notes","member":"Changed"}',
        '{"title":"hello","count":3}'),
    "signal-stamped": (
        '{"sender":":1.7","sender_uid":1000,"sender_pid":4242,"type":"signal","serial":9,'
        '"path":"/org/example/Notes","interface":"org.example.Notes","member":"Changed"}',
        '{"title":"hello","count":3}'),
    "signal-unicode": (
        '{"type":"signal","serial":10,"destination":":1.4","path":"/a/b","interface":"org.example.I","member":"Text"}',
        '{"text":"gr\u00fc\u00dfe \\u00e9 \\ud83d\\ude00","nested":{"a":[1,2.5e3,true,false,null]}}'),
    # PROTOCOL.md 14: the body is in the frame's one descriptor, a sealed memfd
    "call-memfd": (
        '{"type":"call","serial":4,"destination":"org.example.Echo","path":"/org/example/Echo",'
        '"interface":"org.example.Echo","member":"Echo","timeout_ms":5000,"body_fd":0,"body_size":1048588}',
        "", 1),
}


def frame(header, body, n_fds=0):
    h = header.encode("utf-8")
    b = body.encode("utf-8")
    return b"IPCB" + struct.pack("<BBHII", 1, 0, n_fds, len(h), len(b)) + h + b


if __name__ == "__main__":
    for name, spec in FRAMES.items():
        with open(f"{name}.frame", "wb") as f:
            f.write(frame(*spec))
    sys.exit(0)
