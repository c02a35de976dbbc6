"""Finding and opening the bus: addresses, the session, system and starter buses."""

import os

import pytest

import ipcbus


def test_connect_address(ipcbusd):
    with ipcbus.connect(ipcbusd.address) as bus:
        assert ipcbus.is_unique_name(bus.unique_name)
        assert bus.is_open and bus.fileno() >= 0
    assert not bus.is_open


def test_session_from_env(ipcbusd, monkeypatch):
    monkeypatch.setenv("IPCBUS_ADDRESS", ipcbusd.address)
    with ipcbus.connect() as bus:
        assert bus.get_name_owner(bus.unique_name) == bus.unique_name


def test_session_from_xdg_runtime_dir(start_broker, tmp_path, monkeypatch):
    os.mkdir(tmp_path / "ipcbus")
    broker = start_broker(socket_path=str(tmp_path / "ipcbus" / "bus"))
    monkeypatch.delenv("IPCBUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert ipcbus.address.session() == broker.address
    with ipcbus.connect() as bus:
        assert bus.unique_name


def test_session_default_without_runtime_dir(monkeypatch):
    monkeypatch.delenv("IPCBUS_ADDRESS", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert ipcbus.address.session() == "unix:path=/run/user/%d/ipcbus/bus" % os.getuid()


def test_system(ipcbusd, monkeypatch):
    monkeypatch.delenv("IPCBUS_SYSTEM_ADDRESS", raising=False)
    assert ipcbus.address.system() == "unix:path=/run/ipcbus/system_bus_socket"
    monkeypatch.setenv("IPCBUS_SYSTEM_ADDRESS", ipcbusd.address)
    with ipcbus.connect_system() as bus:
        assert bus.unique_name


def test_starter(ipcbusd, start_broker, monkeypatch):
    other = start_broker()
    monkeypatch.setenv("IPCBUS_ADDRESS", other.address)
    monkeypatch.setenv("IPCBUS_STARTER_ADDRESS", ipcbusd.address)
    with ipcbus.connect_starter() as bus, ipcbus.connect(ipcbusd.address) as probe:
        assert probe.get_name_owner(bus.unique_name) == bus.unique_name
    monkeypatch.setenv("IPCBUS_STARTER_ADDRESS", "")  # unset or empty: the session bus
    with ipcbus.connect_starter() as bus, ipcbus.connect(other.address) as probe:
        assert probe.get_name_owner(bus.unique_name) == bus.unique_name


@pytest.mark.parametrize("address", ["", "tcp:host=x", "unix:path=relative", "unix:abstract=x",
                                     "unix:path=/" + "x" * 200, 5])
def test_bad_addresses(address):
    with pytest.raises(ValueError):
        ipcbus.connect(address)


def test_unique_names_differ(bus, bus2):
    assert bus.unique_name != bus2.unique_name


def test_name_acquired_after_hello(bus):
    got = []
    bus.add_handler(lambda m: got.append((m.member, m.body.get("name"))) and False)
    bus.process(1)
    assert ("NameAcquired", bus.unique_name) in got
