"""RequestName and ReleaseName: every flag and reply code, the signals, bad input."""

import pytest

import ipcbus
from ipcbus import errors

NAME = "org.example.Names"


def drain(*buses):
    for b in buses:
        while b.process(0.05):
            pass


def test_request_and_release_codes(bus, bus2):
    assert bus.request_name(NAME) == ipcbus.PRIMARY_OWNER
    assert bus.request_name(NAME) == ipcbus.ALREADY_OWNER
    assert bus.get_name_owner(NAME) == bus.unique_name
    assert bus2.request_name(NAME) == ipcbus.IN_QUEUE
    assert bus.call_driver("ListQueuedOwners", {"name": NAME})["owners"] == [bus.unique_name, bus2.unique_name]
    assert bus2.release_name(NAME) == ipcbus.RELEASED  # only waiting: leaves the queue
    assert bus2.request_name(NAME, ipcbus.DO_NOT_QUEUE) == ipcbus.EXISTS
    assert bus2.release_name(NAME) == ipcbus.NOT_OWNER
    assert bus.release_name(NAME) == ipcbus.RELEASED
    assert bus.release_name(NAME) == ipcbus.NON_EXISTENT
    assert bus.get_name_owner(NAME) is None


def test_replacement(bus, bus2):
    lost, acquired = [], []
    bus.add_handler(lambda m: m.member == "NameLost" and lost.append(m.body["name"]) and False)
    bus2.add_handler(lambda m: m.member == "NameAcquired" and acquired.append(m.body["name"]) and False)
    assert bus.request_name(NAME, ipcbus.ALLOW_REPLACEMENT) == ipcbus.PRIMARY_OWNER
    assert bus2.request_name(NAME, ipcbus.REPLACE_EXISTING) == ipcbus.PRIMARY_OWNER
    assert bus.get_name_owner(NAME) == bus2.unique_name
    drain(bus, bus2)
    assert lost == [NAME]
    assert NAME in acquired
    # the old owner waits in the queue (it did not ask DO_NOT_QUEUE) and gets it back
    assert bus.call_driver("ListQueuedOwners", {"name": NAME})["owners"] == [bus2.unique_name, bus.unique_name]
    assert bus2.release_name(NAME) == ipcbus.RELEASED
    assert bus.get_name_owner(NAME) == bus.unique_name


def test_replace_without_permission_queues(bus, bus2):
    assert bus.request_name(NAME) == ipcbus.PRIMARY_OWNER
    assert bus2.request_name(NAME, ipcbus.REPLACE_EXISTING) == ipcbus.IN_QUEUE
    assert bus2.request_name(NAME, ipcbus.REPLACE_EXISTING | ipcbus.DO_NOT_QUEUE) == ipcbus.EXISTS
    assert bus.call_driver("ListQueuedOwners", {"name": NAME})["owners"] == [bus.unique_name]


def test_flag_values():
    assert (ipcbus.ALLOW_REPLACEMENT, ipcbus.REPLACE_EXISTING, ipcbus.DO_NOT_QUEUE) == (1, 2, 4)
    assert (ipcbus.PRIMARY_OWNER, ipcbus.IN_QUEUE, ipcbus.EXISTS, ipcbus.ALREADY_OWNER) == (1, 2, 3, 4)
    assert (ipcbus.RELEASED, ipcbus.NON_EXISTENT, ipcbus.NOT_OWNER) == (1, 2, 3)


@pytest.mark.parametrize("name", [":1.5", "org", "org.", "1org.x", "org..x", "org.ex ample", "", None, 5,
                                  "org.ipcbus." + "x" * 250])
def test_bad_names_are_refused_locally(bus, name):
    serial = bus._core.serial
    with pytest.raises(ValueError):
        bus.request_name(name)
    with pytest.raises(ValueError):
        bus.release_name(name)
    assert bus._core.serial == serial  # nothing was sent


@pytest.mark.parametrize("flags", [8, -1, 1.0, "1", 0x10 | 1])
def test_bad_flags(bus, flags):
    with pytest.raises(ValueError):
        bus.request_name(NAME, flags)


def test_the_driver_refuses_its_own_name(bus):
    with pytest.raises(errors.InvalidArgs):
        bus.request_name("org.ipcbus.Bus")
