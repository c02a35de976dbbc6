"""The asyncio API over the same core: calls in flight together, errors,
handlers (plain and async), subscriptions and the signal iterator, names."""

import asyncio
import os
import signal

import pytest

import ipcbus
from ipcbus import errors


async def echo_service(bus, name="org.example.AEcho"):
    assert await bus.request_name(name) == ipcbus.PRIMARY_OWNER

    async def slow(msg):
        await asyncio.sleep(msg.body.get("delay", 0))
        bus.reply(msg, {"slept": msg.body.get("delay", 0), "n": msg.body.get("n")})
        return True

    def handler(msg):
        if msg.type != "call" or msg.path != "/e":
            return False
        if msg.member == "Echo":
            bus.reply(msg, msg.body)
            return True
        if msg.member == "Slow":
            return slow(msg)
        if msg.member == "Fail":
            raise errors.AccessDenied("not you")
        return False

    bus.add_handler(handler)
    return name


async def test_call(abus, aconnect):
    service = await aconnect()
    name = await echo_service(service)
    assert await abus.call(name, "/e", None, "Echo", {"a": [1, "b"]}) == {"a": [1, "b"]}
    reply = await abus.call_message(name, "/e", None, "Echo", {})
    assert reply.sender == service.unique_name and reply.body == {}


async def test_calls_in_flight_together(abus, aconnect):
    service = await aconnect()
    name = await echo_service(service)
    delays = [0.6, 0.2, 0.4, 0.0]
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(*[abus.call(name, "/e", None, "Slow", {"delay": d, "n": i})
                                     for i, d in enumerate(delays)])
    assert [r["n"] for r in results] == [0, 1, 2, 3]
    assert loop.time() - start < 1.0  # concurrently, not one after the other (1.2 s)


async def test_errors(abus, aconnect):
    service = await aconnect()
    name = await echo_service(service)
    with pytest.raises(errors.AccessDenied) as e:
        await abus.call(name, "/e", None, "Fail")
    assert e.value.message == "not you"
    with pytest.raises(errors.UnknownObject):
        await abus.call(name, "/none", None, "Echo")
    with pytest.raises(errors.ServiceUnknown):
        await abus.call("org.example.Nobody", "/e", None, "Echo")
    with pytest.raises(ValueError):
        await abus.call("bad", "/e", None, "Echo")


async def test_broker_timeout(abus, aconnect):
    service = await aconnect()
    service.add_handler(lambda m: m.path == "/never")
    with pytest.raises(errors.Timeout) as e:
        await abus.call(service.unique_name, "/never", None, "M", timeout=0.3)
    assert "local" not in e.value.message


async def test_async_handler_declining_goes_on(abus, aconnect):
    service = await aconnect()
    order = []

    async def first(msg):
        order.append("first")
        await asyncio.sleep(0.01)
        return False

    def second(msg):
        order.append("second")
        service.reply(msg, {"by": "second"})
        return True

    service.add_handler(first)
    service.add_handler(second)
    assert await abus.call(service.unique_name, "/x", None, "M") == {"by": "second"}
    assert order == ["first", "second"]


async def test_async_handler_exception(abus, aconnect):
    service = await aconnect()

    async def broken(msg):
        raise errors.CallError("org.example.Error.Broken", "async broke")

    service.add_handler(broken)
    with pytest.raises(ipcbus.CallError) as e:
        await abus.call(service.unique_name, "/x", None, "M")
    assert (e.value.name, e.value.message) == ("org.example.Error.Broken", "async broke")


async def test_subscribe_callback(abus, aconnect):
    emitter = await aconnect()
    got = asyncio.Queue()
    sub = await abus.subscribe("interface=org.example.A,member=S", got.put_nowait)
    emitter.emit("/p", "org.example.A", "S", {"v": 1})
    msg = await asyncio.wait_for(got.get(), 5)
    assert msg.body == {"v": 1} and msg.sender == emitter.unique_name
    sub.cancel()
    emitter.emit("/p", "org.example.A", "S", {"v": 2})
    await asyncio.sleep(0.2)
    assert got.empty()


async def test_async_subscription_callback(abus, aconnect):
    emitter = await aconnect()
    got = []

    async def cb(msg):
        await asyncio.sleep(0)
        got.append(msg.body)

    await abus.subscribe({"interface": "org.example.A"}, cb)
    emitter.emit("/p", "org.example.A", "S", {"v": 3})
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.02)
    assert got == [{"v": 3}]


async def test_signal_iterator(abus, aconnect):
    emitter = await aconnect()
    async with abus.signals({"interface": "org.example.It"}) as signals:
        for i in range(3):
            emitter.emit("/i", "org.example.It", "N", {"i": i})
        seen = []
        async for msg in signals:
            seen.append(msg.body["i"])
            if len(seen) == 3:
                break
    assert seen == [0, 1, 2]
    assert abus._core.subs == []


async def test_signal_iterator_keeps_fds(abus, aconnect):
    emitter = await aconnect()
    r, w = os.pipe()
    os.write(w, b"fd!")
    async with abus.signals({"interface": "org.example.It"}) as signals:
        emitter.emit("/i", "org.example.It", "F", fds=[r])
        msg = await asyncio.wait_for(signals.__anext__(), 5)
    assert len(msg.fds) == 1 and os.read(msg.fds[0], 10) == b"fd!"
    for fd in msg.take_fds() + [r, w]:
        os.close(fd)


async def test_signal_iterator_ends_with_the_connection(ipcbusd, abus, aconnect):
    async with abus.signals({"interface": "org.example.It"}) as signals:
        asyncio.get_running_loop().call_later(0.2, ipcbusd.kill)
        with pytest.raises(ipcbus.ConnectionLost):
            await asyncio.wait_for(signals.__anext__(), 5)


async def test_names(abus, aconnect):
    other = await aconnect()
    assert await abus.request_name("org.example.N") == ipcbus.PRIMARY_OWNER
    assert await other.request_name("org.example.N", ipcbus.DO_NOT_QUEUE) == ipcbus.EXISTS
    assert await abus.release_name("org.example.N") == ipcbus.RELEASED
    assert await other.get_name_owner("org.example.N") is None
    with pytest.raises(ValueError):
        await abus.request_name(":1.1")


async def test_oneway_and_ping(abus, aconnect):
    service = await aconnect()
    got = []
    service.add_handler(lambda m: m.member == "Fire" and (got.append(m.no_reply) or True))
    await abus.call_noreply(service.unique_name, "/x", None, "Fire")
    assert await abus.call(service.unique_name, "/x", "org.ipcbus.Peer", "Ping") == {}
    assert got == [True]


async def test_sync_and_async_talk(bus, serve, aconnect):
    bus.add_handler(lambda m: m.member == "Hi" and (bus.reply(m, {"from": "sync"}) or True))
    serve(bus)
    a = await aconnect()
    assert await a.call(bus.unique_name, "/", None, "Hi") == {"from": "sync"}


async def test_connect_from_env(ipcbusd, monkeypatch):
    monkeypatch.setenv("IPCBUS_ADDRESS", ipcbusd.address)
    async with await ipcbus.aio.connect() as bus:
        assert ipcbus.is_unique_name(bus.unique_name)
    assert not bus.is_open


async def test_many_large_signals_from_asyncio(ipcbusd, abus, aconnect):
    receiver = await aconnect()
    got = []
    done = asyncio.get_running_loop().create_future()

    def on_big(msg):
        got.append(msg.body["i"])
        if len(got) == 60 and not done.done():
            done.set_result(None)

    await receiver.subscribe({"interface": "org.example.Big"}, on_big)
    os.kill(ipcbusd.pid, signal.SIGSTOP)  # nobody reads: the socket fills
    try:
        for i in range(60):
            abus.emit("/big", "org.example.Big", "Big", {"i": i, "p": "a" * 100000})
        assert abus._core.wants_write()
    finally:
        os.kill(ipcbusd.pid, signal.SIGCONT)
    await asyncio.wait_for(done, 30)
    assert got == list(range(60))
    await abus.flush(5)


async def test_sender_by_well_known_name(abus, aconnect):
    owner = await aconnect()
    other = await aconnect()
    got = asyncio.Queue()
    await abus.subscribe({"sender": "org.example.AOwner", "interface": "org.example.W"}, got.put_nowait)
    other.emit("/", "org.example.W", "NotOwner")
    assert await owner.request_name("org.example.AOwner") == ipcbus.PRIMARY_OWNER
    owner.emit("/", "org.example.W", "Owner")
    msg = await asyncio.wait_for(got.get(), 5)
    assert msg.member == "Owner" and msg.sender == owner.unique_name
    await asyncio.sleep(0.1)
    assert got.empty()
