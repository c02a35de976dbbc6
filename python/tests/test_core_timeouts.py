"""Timeouts: enforced by the broker (timeout_ms) and, when the broker says
nothing, locally; NoReply when the callee leaves; one-way calls."""

import os
import signal
import threading
import time

import pytest

import ipcbus
from ipcbus import errors


def silent_service(bus):
    """Takes every call to /s and never answers; records them."""
    seen = []

    def handler(msg):
        if msg.path == "/s":
            seen.append(msg)
            return True
        return False

    bus.add_handler(handler)
    return seen


def test_broker_enforces_the_timeout(bus, bus2, serve):
    seen = silent_service(bus)
    serve(bus)
    start = time.monotonic()
    with pytest.raises(errors.Timeout) as e:
        bus2.call_message(bus.unique_name, "/s", None, "Wait", timeout=0.4)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.35, elapsed
    assert "local" not in e.value.message  # the broker's Timeout came first
    assert seen and seen[0].timeout_ms == 400


def test_local_timeout_when_the_broker_is_stopped(ipcbusd, bus):
    os.kill(ipcbusd.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(errors.Timeout) as e:
            bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "ListNames", timeout=0.3)
        elapsed = time.monotonic() - start
    finally:
        os.kill(ipcbusd.pid, signal.SIGCONT)
    assert "local timeout" in e.value.message
    assert 0.3 + ipcbus.connection.TIMEOUT_GRACE - 0.05 <= elapsed < 2.0, elapsed
    # the connection goes on; the late answer is dropped
    assert bus.unique_name in bus.call_driver("ListNames")["names"]


def test_aio_local_timeout(ipcbusd, abus, event_loop):
    async def main():
        os.kill(ipcbusd.pid, signal.SIGSTOP)
        try:
            with pytest.raises(errors.Timeout) as e:
                await abus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "ListNames", timeout=0.2)
        finally:
            os.kill(ipcbusd.pid, signal.SIGCONT)
        assert "local timeout" in e.value.message
        assert abus._core.pending == {}
        assert abus.unique_name in (await abus.call_driver("ListNames"))["names"]

    event_loop.run_until_complete(main())


def test_no_timeout_sends_the_largest(bus, bus2, serve):
    seen = []

    def handler(msg):
        if msg.type != "call":
            return False
        seen.append(msg)
        bus.reply(msg, {})
        return True

    bus.add_handler(handler)
    serve(bus)
    assert bus2.call(bus.unique_name, "/x", None, "M", timeout=None) == {}
    assert seen[0].timeout_ms == 2147483647


def test_bad_timeouts(bus):
    for bad in (0, -1, "1", True):
        with pytest.raises(ValueError):
            bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", None, "Ping", timeout=bad)


def test_no_reply_when_the_callee_leaves(bus, bus2, connect):
    seen = silent_service(bus)
    done = threading.Event()

    def leave():
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            bus.process(0.1)  # takes the call, answers nothing
        bus.close()
        done.set()

    t = threading.Thread(target=leave)
    t.start()
    with pytest.raises(errors.NoReply):
        bus2.call(bus.unique_name, "/s", None, "Wait", timeout=10)
    t.join(10)
    assert done.is_set()


def test_oneway_call(bus, bus2, serve):
    seen = []
    answers = []

    def handler(msg):
        if msg.type == "call" and msg.path == "/o":
            seen.append(msg)
            answers.append(bus.reply(msg, {"ignored": True}))  # None: nothing is sent for a no_reply call
            return True
        return False

    bus.add_handler(handler)
    serve(bus)
    serial = bus2.call_noreply(bus.unique_name, "/o", "org.example.O", "Fire", {"n": 1})
    assert serial > 0
    # a call after it is answered after it: the one-way call has arrived by then
    assert bus2.call(bus.unique_name, "/", "org.ipcbus.Peer", "Ping") == {}
    assert [(m.member, m.no_reply, m.body, m.timeout_ms) for m in seen] == [("Fire", True, {"n": 1}, None)]
    assert answers == [None]
