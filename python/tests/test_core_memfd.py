"""Bodies in sealed memfds (PROTOCOL.md 14), both ways, with Python and C peers."""

import json
import os

import pytest

from ipcbus import memfd


def echo(bus):
    seen = []

    def handler(msg):
        if msg.type != "call" or msg.path != "/e":
            return False
        seen.append(msg)
        body = dict(msg.body)
        if "data" in body:
            body["data"] = msg.get_bytes(body["data"])
        bus.reply(msg, body)
        return True

    bus.add_handler(handler)
    return seen


def test_large_body_goes_in_a_memfd_and_back(bus, bus2, serve):
    seen = echo(bus)
    serve(bus)
    text = "x" * (memfd.THRESHOLD_DEFAULT + 10)
    reply = bus2.call_message(bus.unique_name, "/e", None, "Echo", {"text": text})
    assert seen[0].body_in_memfd and seen[0].body == {"text": text}
    assert reply.body_in_memfd and reply.body == {"text": text}
    assert reply.fds == [] and seen[0].fds == []


def test_small_body_stays_in_the_frame(bus, bus2, serve):
    seen = echo(bus)
    serve(bus)
    reply = bus2.call_message(bus.unique_name, "/e", None, "Echo", {"text": "short"})
    assert not seen[0].body_in_memfd and not reply.body_in_memfd


def test_threshold_zero_never(connect, serve):
    service = connect(memfd_threshold=0)
    client = connect(memfd_threshold=0)
    seen = echo(service)
    serve(service)
    text = "y" * (memfd.THRESHOLD_DEFAULT * 2)
    reply = client.call_message(service.unique_name, "/e", None, "Echo", {"text": text})
    assert not seen[0].body_in_memfd and not reply.body_in_memfd and reply.body["text"] == text


def test_bytes_raw_in_the_binary_area(bus, bus2, serve):
    seen = echo(bus)
    serve(bus)
    data = os.urandom(20000)  # 8 KiB or more of bytes kept apart: a memfd below the threshold
    reply = bus2.call_message(bus.unique_name, "/e", None, "Echo", {"data": data})
    assert seen[0].body_in_memfd
    assert seen[0].body["data"] == {"$bytes": [0, len(data)]}
    assert reply.body_in_memfd and reply.get_bytes(reply.body["data"]) == data


def test_small_bytes_are_base64(bus, bus2, serve):
    seen = echo(bus)
    serve(bus)
    reply = bus2.call_message(bus.unique_name, "/e", None, "Echo", {"data": b"\x00\x01\xff"})
    assert not seen[0].body_in_memfd
    assert seen[0].body["data"] == "AAH/"
    assert reply.get_bytes(reply.body["data"]) == b"\x00\x01\xff"


def test_memfd_with_fds_keeps_their_indices(bus, bus2, serve):
    seen = []

    def handler(msg):
        seen.append((msg.body_in_memfd, [os.read(fd, 10) for fd in msg.fds], len(msg.body["text"])))
        bus.reply(msg)
        return True

    bus.add_handler(handler)
    serve(bus)
    r, w = os.pipe()
    os.write(w, b"pipe")
    bus2.call(bus.unique_name, "/e", None, "E", {"text": "z" * 300000, "fd": 0}, fds=[r])
    os.close(r)
    os.close(w)
    assert seen == [(True, [b"pipe"], 300000)]


def test_c_client_sends_a_memfd_body(bus, serve, ipcctl):
    """ipcctl (libipcbus) sends a body above its threshold in a memfd; Python reads it and answers big."""
    seen = echo(bus)
    serve(bus)
    text = "c" * 5000
    r = ipcctl("--json", "call", "--no-check", bus.unique_name, "/e", "-", "Echo", json.dumps({"text": text}),
               env={"IPCBUS_MEMFD_THRESHOLD": "1024"})
    assert r.returncode == 0, r.stderr
    assert seen[0].body_in_memfd and seen[0].body == {"text": text}
    assert json.loads(r.stdout) == {"text": text}


def test_c_client_receives_a_memfd_body(connect, serve, ipcctl):
    service = connect(memfd_threshold=1024)
    seen = echo(service)
    serve(service)
    text = "p" * 4000
    r = ipcctl("--json", "call", "--no-check", service.unique_name, "/e", "-", "Echo", json.dumps({"text": text}),
               env={"IPCBUS_MEMFD_THRESHOLD": "0"})
    assert r.returncode == 0, r.stderr
    assert not seen[0].body_in_memfd
    assert json.loads(r.stdout) == {"text": text}


def test_unsealed_file_is_refused():
    fd = os.memfd_create("unsealed", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, b'{"a":1}\0')
    with pytest.raises(memfd.InvalidBody):
        memfd.read_body(fd, 7)
    os.close(fd)


def test_sealed_file_checks():
    ok = memfd.make_sealed([b'{"a":1}', b"\0", b"bin"])
    assert memfd.read_body(ok, 7) == ({"a": 1}, b"bin")
    with pytest.raises(memfd.InvalidBody):
        memfd.read_body(ok, 9)  # beyond the file / no NUL at M
    with pytest.raises(OSError):
        os.pwrite(ok, b"x", 0)  # sealed against writing
    os.close(ok)
    no_nul = memfd.make_sealed([b'{"a":1}x'])
    with pytest.raises(memfd.InvalidBody):
        memfd.read_body(no_nul, 7)
    os.close(no_nul)
    not_object = memfd.make_sealed([b"[1]\0"])
    with pytest.raises(memfd.InvalidBody):
        memfd.read_body(not_object, 3)
    os.close(not_object)


def test_depth_and_recursion():
    ok = b'{"a":' * 63 + b"1" + b"}" * 63 + b"\0"
    deep = b'{"a":' * 65 + b"1" + b"}" * 65 + b"\0"
    very_deep = b'{"a":' + b"[" * 200000 + b"]" * 200000 + b"}\0"
    fd = memfd.make_sealed([ok])
    assert memfd.read_body(fd, len(ok) - 1)[0]["a"]["a"]
    os.close(fd)
    for text in (deep, very_deep):
        fd = memfd.make_sealed([text])
        with pytest.raises(memfd.InvalidBody):
            memfd.read_body(fd, len(text) - 1)
        os.close(fd)


def test_bytes_references():
    assert memfd.bytes_value({"$bytes": [1, 2]}, b"abcd") == b"bc"
    with pytest.raises(ValueError):
        memfd.bytes_value({"$bytes": [3, 2]}, b"abcd")
    with pytest.raises(ValueError):
        memfd.bytes_value({"$bytes": [0, 1]}, None)  # came in a frame
    with pytest.raises(ValueError):
        memfd.bytes_value("not base64!", None)
    assert memfd.bytes_value("", None) == b""
