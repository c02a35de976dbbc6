"""Descriptors both ways: calls, replies and signals carry them (PROTOCOL.md 1)."""

import os
import tempfile
import time

import pytest


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def test_fds_to_a_service_and_back(bus, bus2, serve):
    got = []

    def handler(msg):
        if msg.member != "Take":
            return False
        fds = msg.take_fds()
        got.append(fds)
        data = os.read(fds[0], 100)
        r, w = os.pipe()
        os.write(w, b"answer:" + data)
        os.close(w)
        bus.reply(msg, {"fd": 0}, fds=[r])
        os.close(r)  # the message was given a duplicate
        for fd in fds:
            os.close(fd)
        return True

    bus.add_handler(handler)
    serve(bus)
    r, w = os.pipe()
    os.write(w, b"question")
    os.close(w)
    reply = bus2.call_message(bus.unique_name, "/f", None, "Take", {"fd": 0}, fds=[r])
    os.close(r)
    assert len(got) == 1 and len(got[0]) == 1
    assert len(reply.fds) == 1
    assert os.read(reply.fds[0], 100) == b"answer:question"
    for fd in reply.take_fds():
        os.close(fd)


def test_file_objects_and_several_fds(bus, bus2, serve):
    seen = []

    def handler(msg):
        if msg.member != "Many":
            return False
        seen.append([os.read(fd, 10) for fd in msg.fds])  # closed by the library after the handler
        bus.reply(msg, {"n": len(msg.fds)})
        return True

    bus.add_handler(handler)
    serve(bus)
    files = []
    for i in range(5):
        f = tempfile.TemporaryFile()
        f.write(b"file%d" % i)
        f.flush()
        f.seek(0)
        files.append(f)
    before = fd_count()
    assert bus2.call(bus.unique_name, "/f", None, "Many", fds=files) == {"n": 5}
    assert seen == [[b"file%d" % i for i in range(5)]]
    for f in files:
        f.close()
    assert fd_count() <= before


def test_received_fds_are_closed_unless_taken(bus, bus2):
    r, w = os.pipe()
    got = []
    bus2.subscribe({"interface": "org.example.F"}, lambda m: got.append(list(m.fds)))
    bus.emit("/", "org.example.F", "S", {"fd": 0}, fds=[r])
    os.close(r)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        bus2.process(0.05)
    assert len(got) == 1 and len(got[0]) == 1
    with pytest.raises(OSError):
        os.fstat(got[0][0])  # closed after the callback (unless the number was reused, which it is not here)
    os.close(w)


def test_too_many_fds(bus):
    r, w = os.pipe()
    with pytest.raises(ValueError):
        bus.emit("/", "org.example.F", "S", fds=[r] * 17)
    with pytest.raises(TypeError):
        bus.emit("/", "org.example.F", "S", fds=["x"])
    os.close(r)
    os.close(w)


def test_sixteen_fds(bus, bus2, serve):
    counts = []

    def handler(msg):
        if msg.type != "call":
            return False
        counts.append(len(msg.fds))
        bus.reply(msg)
        return True

    bus.add_handler(handler)
    serve(bus)
    r, w = os.pipe()
    bus2.call(bus.unique_name, "/f", None, "Sixteen", fds=[r] * 16)
    assert counts == [16]
    os.close(r)
    os.close(w)
