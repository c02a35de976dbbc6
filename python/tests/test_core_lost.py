"""A lost connection: every pending and later call raises ConnectionLost."""

import asyncio
import threading
import time

import pytest

import ipcbus


def test_broker_killed_mid_call(ipcbusd, bus, bus2):
    bus.add_handler(lambda m: m.path == "/s")  # takes the call, never answers
    threading.Thread(target=bus.process, args=(5,), daemon=True).start()
    killer = threading.Timer(0.3, ipcbusd.kill)
    killer.start()
    start = time.monotonic()
    with pytest.raises(ipcbus.ConnectionLost) as e:
        bus2.call(bus.unique_name, "/s", None, "Wait", timeout=20)
    assert time.monotonic() - start < 5
    assert e.value.name == "org.ipcbus.Error.Disconnected"
    assert isinstance(e.value, ConnectionError) and isinstance(e.value, ipcbus.CallError)
    with pytest.raises(ipcbus.ConnectionLost):
        bus2.call("org.ipcbus.Bus", "/org/ipcbus/Bus", None, "Ping")
    with pytest.raises(ipcbus.ConnectionLost):
        bus2.emit("/", "org.example.X", "S")
    with pytest.raises(ipcbus.ConnectionLost):
        for _ in range(100):  # what was queued before the loss is still dispatched, then it raises
            bus2.process(0)
    assert not bus2.is_open
    killer.join()


def test_run_forever_returns_when_the_bus_goes(ipcbusd, bus):
    t = threading.Thread(target=bus.run_forever)
    t.start()
    time.sleep(0.1)
    ipcbusd.kill()
    t.join(5)
    assert not t.is_alive()


def test_closed_connection(bus):
    bus.close()
    bus.close()
    with pytest.raises(ipcbus.ConnectionLost):
        bus.call_driver("ListNames")
    assert bus.fileno() == -1


def test_connect_to_nothing(tmp_path):
    with pytest.raises(OSError):
        ipcbus.connect("unix:path=%s/none" % tmp_path)


async def test_aio_broker_killed(ipcbusd, aconnect):
    service = await aconnect()
    client = await aconnect()
    service.add_handler(lambda m: m.path == "/s")
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, ipcbusd.kill)
    calls = [client.call(service.unique_name, "/s", None, "Wait", timeout=20) for _ in range(3)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ipcbus.ConnectionLost) for r in results), results
    with pytest.raises(ipcbus.ConnectionLost):
        await client.call_driver("ListNames")
    await asyncio.wait_for(client.wait_closed(), 5)
    assert not client.is_open
