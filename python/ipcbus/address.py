"""Bus addresses (PROTOCOL.md section 1): "unix:path=/absolute/path", and
where the session, system and starter buses are found."""

import os

__all__ = ["parse", "session", "system", "starter"]

PREFIX = "unix:path="
SYSTEM_DEFAULT = PREFIX + "/run/ipcbus/system_bus_socket"
_SUN_PATH_MAX = 108


def parse(address):
    """The socket path of an address; ValueError when it is not of the form
    unix:path=/absolute/path (or the path is too long for a socket)."""
    if not isinstance(address, str) or not address.startswith(PREFIX):
        raise ValueError("address %r: expected unix:path=/absolute/path" % (address,))
    path = address[len(PREFIX):]
    if not path.startswith("/"):
        raise ValueError("address %r: the path must be absolute" % address)
    if len(os.fsencode(path)) >= _SUN_PATH_MAX:
        raise ValueError("address %r: the path is longer than a Unix socket's %d bytes" % (address, _SUN_PATH_MAX - 1))
    return path


def session():
    """$IPCBUS_ADDRESS, else $XDG_RUNTIME_DIR/ipcbus/bus, else /run/user/UID/ipcbus/bus."""
    address = os.environ.get("IPCBUS_ADDRESS")
    if address:
        return address
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if not runtime.startswith("/"):
        runtime = "/run/user/%d" % os.getuid()
    return PREFIX + runtime + "/ipcbus/bus"


def system():
    """$IPCBUS_SYSTEM_ADDRESS, else /run/ipcbus/system_bus_socket."""
    return os.environ.get("IPCBUS_SYSTEM_ADDRESS") or SYSTEM_DEFAULT


def starter():
    """The bus that started this process: $IPCBUS_STARTER_ADDRESS (set by the
    broker for the services it starts), else the session bus."""
    return os.environ.get("IPCBUS_STARTER_ADDRESS") or session()
