"""What a review of the package found, each kept from coming back: an error
answer that cannot be sent, descriptors for async callbacks and for every
signal iterator, bodies that break section 2 on the way out and on the way
in (a memfd body, which the broker does not read)."""

import asyncio
import os

import pytest

import ipcbus
from ipcbus import _wire, errors, memfd


def _pipe_with(data):
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def _serve_bad_errors(service):
    """/e answers Bad with an error whose name cannot be sent, Echo with its body."""

    def handler(msg):
        if msg.type != "call" or msg.path != "/e":
            return False
        if msg.member == "Bad":
            raise errors.CallError("Broken", "not an error name")
        if msg.member == "Nul":
            raise errors.CallError("org.example.Error.Nul", "a NUL \0 in the text")
        service.reply(msg, msg.body)
        return True

    service.add_handler(handler)


@pytest.mark.parametrize("member", ["Bad", "Nul"])
def test_an_error_that_cannot_be_sent_is_answered_failed(bus, bus2, serve, member):
    _serve_bad_errors(bus2)
    serve(bus2)
    with pytest.raises(errors.Failed, match="could not be sent"):
        bus.call(bus2.unique_name, "/e", None, member)
    # the service goes on answering
    assert bus.call(bus2.unique_name, "/e", None, "Echo", {"a": 1}) == {"a": 1}


async def test_an_error_that_cannot_be_sent_stops_nothing_asyncio(abus, aconnect):
    service = await aconnect()
    _serve_bad_errors(service)
    # several calls in one read: each is answered
    calls = [abus.call(service.unique_name, "/e", None, m, {"n": i})
             for i, m in enumerate(["Bad", "Echo", "Nul", "Echo"])]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[0], errors.Failed) and isinstance(results[2], errors.Failed)
    assert results[1] == {"n": 1} and results[3] == {"n": 3}


async def test_async_callbacks_and_iterators_get_the_descriptors(abus, aconnect):
    sender = await aconnect()
    rule = {"interface": "org.example.Fds", "member": "Here"}
    got = []

    async def callback(msg):
        await asyncio.sleep(0.05)  # the dispatch is over by then
        got.append(os.read(msg.fds[0], 16))

    await abus.subscribe(rule, callback)
    it1, it2 = abus.signals(rule), abus.signals(rule)
    await it1.start()
    await it2.start()
    r = _pipe_with(b"fd!")
    sender.emit("/f", "org.example.Fds", "Here", {"fd": 0}, fds=[r])
    os.close(r)
    m1 = await asyncio.wait_for(it1.__anext__(), 10)
    m2 = await asyncio.wait_for(it2.__anext__(), 10)
    # each iterator owns a descriptor of its own for the same pipe
    assert len(m1.fds) == 1 and len(m2.fds) == 1 and m1.fds[0] != m2.fds[0]
    assert os.fstat(m1.fds[0]).st_ino == os.fstat(m2.fds[0]).st_ino
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.05)
    assert got == [b"fd!"]
    m1.close_fds()
    m2.close_fds()
    await it1.aclose()
    await it2.aclose()


def _nested(depth):
    body = {}
    cur = body
    for _ in range(depth - 1):
        cur["a"] = {}
        cur = cur["a"]
    return body


@pytest.mark.parametrize("body, what", [
    ({"k\0": 1}, "NUL"),
    ({"s": "\ud800"}, "surrogate"),
    ({"a": ["x", {"b\0": 1}]}, "NUL"),
    (_nested(65), "deeper than 64"),
])
def test_a_body_that_breaks_section_2_is_refused_before_sending(bus, body, what):
    with pytest.raises(ValueError, match=what):
        bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetId", body)
    with pytest.raises(ValueError, match=what):
        bus.emit("/x", "org.example.X", "Y", body)
    # nothing reached the broker: the connection is fine
    assert bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetId")["id"]


def test_64_deep_is_allowed(bus):
    body = _nested(64)
    assert _wire.text_fault(body) is None
    bus.emit("/x", "org.example.X", "Y", body)
    bus.flush()


@pytest.mark.parametrize("text", [
    b'{"k\\u0000":1}',
    b'{"s":"\\ud800"}',
    b'{"s":"a\\u0000b"}',
])
def test_a_memfd_body_that_breaks_section_2_is_invalid(text):
    fd = memfd.make_sealed([text, b"\0"])
    try:
        with pytest.raises(memfd.InvalidBody, match="section 2"):
            memfd.read_body(fd, len(text))
    finally:
        os.close(fd)
    # the same text, well formed, reads
    fd = memfd.make_sealed([b'{"s":"\\u00e9"}', b"\0"])
    try:
        assert memfd.read_body(fd, len(b'{"s":"\\u00e9"}'))[0] == {"s": "\u00e9"}
    finally:
        os.close(fd)


def test_serials_wrap_around_past_pending_calls(bus):
    """After 2^32-1 the serials start again at 1, skipping any still pending."""
    core = bus._core
    core.serial = _wire.SERIAL_MAX - 1
    core.pending[1] = lambda m: None
    try:
        assert core.next_serial() == _wire.SERIAL_MAX
        assert core.next_serial() == 2
    finally:
        core.pending.pop(1, None)
    assert bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetId")["id"]
