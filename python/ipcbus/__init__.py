"""ipcbus: a client of the ipcbus message bus, in pure Python (3.9+).

    import ipcbus
    with ipcbus.connect() as bus:            # the session bus
        print(bus.call("org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "ListNames"))

The synchronous API is ``ipcbus.Bus`` (``connect``, ``connect_system``,
``connect_starter``); the asyncio one ``ipcbus.aio.Bus`` (``await
ipcbus.aio.connect()``), over the same core. Errors are in
``ipcbus.errors``; the wire protocol is protocol/PROTOCOL.md.
"""

from . import address, errors, match, memfd
from .connection import (
    ALLOW_REPLACEMENT,
    ALREADY_OWNER,
    DO_NOT_QUEUE,
    EXISTS,
    IN_QUEUE,
    NON_EXISTENT,
    NOT_OWNER,
    PRIMARY_OWNER,
    RELEASED,
    REPLACE_EXISTING,
    Bus,
    Handle,
    Subscription,
    connect,
    connect_starter,
    connect_system,
)
from .errors import CallError, ConnectionLost, Error
from .match import Rule
from .message import Message
from ._wire import (
    is_bus_name,
    is_error_name,
    is_interface_name,
    is_member_name,
    is_object_path,
    is_unique_name,
    is_well_known_name,
)
from . import aio

from . import iface, service

__version__ = "0.1.0"

__all__ = [
    "iface",
    "service",
    "ALLOW_REPLACEMENT",
    "ALREADY_OWNER",
    "DO_NOT_QUEUE",
    "EXISTS",
    "IN_QUEUE",
    "NON_EXISTENT",
    "NOT_OWNER",
    "PRIMARY_OWNER",
    "RELEASED",
    "REPLACE_EXISTING",
    "Bus",
    "CallError",
    "ConnectionLost",
    "Error",
    "Handle",
    "Message",
    "Rule",
    "Subscription",
    "address",
    "aio",
    "connect",
    "connect_starter",
    "connect_system",
    "errors",
    "is_bus_name",
    "is_error_name",
    "is_interface_name",
    "is_member_name",
    "is_object_path",
    "is_unique_name",
    "is_well_known_name",
    "match",
    "memfd",
]
