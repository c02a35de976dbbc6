"""Errors: a remote error name and message (CallError and its subclasses),
and the loss of the connection (ConnectionLost).

Every error of PROTOCOL.md section 9 has a class here, named as the last
element of its error name (``org.ipcbus.Error.InvalidArgs`` is
``InvalidArgs``). ``CallError.create(name, message)`` gives the instance of
the right class for a name that came over the wire; an unknown name gives a
plain CallError. A handler of an exported object may raise any of them, or
``CallError("org.example.Error.Full", "no room")``, to answer with that
error.
"""

__all__ = [
    "Error",
    "CallError",
    "ConnectionLost",
    "Failed",
    "NoMemory",
    "ServiceUnknown",
    "NameHasNoOwner",
    "NoReply",
    "Timeout",
    "AccessDenied",
    "InvalidArgs",
    "InvalidMessage",
    "ProtocolError",
    "UnknownMethod",
    "UnknownObject",
    "UnknownInterface",
    "UnexpectedReply",
    "MatchRuleInvalid",
    "MatchRuleNotFound",
    "LimitsExceeded",
    "NotSupported",
    "Disconnected",
    "ConfigInvalid",
    "UnknownProperty",
    "PropertyReadOnly",
    "SpawnError",
]

PREFIX = "org.ipcbus.Error."


class Error(Exception):
    """The base of every exception this package raises (but ValueError and
    TypeError for bad arguments, and OSError from the system)."""


class CallError(Error):
    """An error answer: ``name`` (an error name, section 5) and ``message``
    (human-readable text, possibly "")."""

    #: the error name of a subclass for one well-known error
    NAME = None

    def __init__(self, name, message=""):
        super().__init__(name, message)
        self.name = name
        self.message = message or ""

    def __str__(self):
        return "%s: %s" % (self.name, self.message) if self.message else self.name

    @staticmethod
    def create(name, message=""):
        """The exception for an error answer: the class of a well-known
        name (a Spawn.* name gives SpawnError), else a CallError."""
        cls = _BY_NAME.get(name)
        if cls is None and name.startswith(PREFIX + "Spawn."):
            cls = SpawnError
        if cls is None:
            return CallError(name, message)
        return cls(message, name=name)


class _Known(CallError):
    """A well-known error: made from its message alone."""

    def __init__(self, message="", name=None):
        super().__init__(name or self.NAME, message)


def _known(short, doc, base=_Known):
    cls = type(short, (base,), {"NAME": PREFIX + short, "__doc__": doc, "__module__": __name__})
    return cls


Failed = _known("Failed", "generic failure (also: an exception in a handler)")
NoMemory = _known("NoMemory", "the broker could not allocate")
ServiceUnknown = _known("ServiceUnknown", "the destination name has no owner")
NameHasNoOwner = _known("NameHasNoOwner", "a driver method's name argument has no owner")
NoReply = _known("NoReply", "the callee disconnected without answering")
Timeout = _known("Timeout", "no answer before the call's timeout (the broker's, or locally)")
AccessDenied = _known("AccessDenied", "not allowed by the broker's policy")
InvalidArgs = _known("InvalidArgs", "a method's arguments are missing or wrong")
InvalidMessage = _known("InvalidMessage", "the message breaks the protocol")
ProtocolError = _known("ProtocolError", "framing error or malformed JSON; the connection is closed")
UnknownMethod = _known("UnknownMethod", "no such method")
UnknownObject = _known("UnknownObject", "no such object path")
UnknownInterface = _known("UnknownInterface", "no such interface at this path")
UnexpectedReply = _known("UnexpectedReply", "a return or error answers no pending call")
MatchRuleInvalid = _known("MatchRuleInvalid", "a match rule breaks PROTOCOL.md section 8")
MatchRuleNotFound = _known("MatchRuleNotFound", "RemoveMatch of a rule not added")
LimitsExceeded = _known("LimitsExceeded", "a broker limit was reached; the message names it")
NotSupported = _known("NotSupported", "the broker does not offer this")
ConfigInvalid = _known("ConfigInvalid", "ReloadConfig: the configuration did not load")
UnknownProperty = _known("UnknownProperty", "the interface has no such property")
PropertyReadOnly = _known("PropertyReadOnly", "Set of a read-only property")


class SpawnError(_Known):
    """Service activation failed: ``name`` is one of the
    ``org.ipcbus.Error.Spawn.*`` names (PROTOCOL.md 7.5)."""

    NAME = PREFIX + "Spawn.Failed"


class ConnectionLost(_Known, ConnectionError):
    """The connection to the bus is lost or closed: raised for every call
    still waiting and every later one. Its name is
    ``org.ipcbus.Error.Disconnected``, as libipcbus reports it."""

    NAME = PREFIX + "Disconnected"

    def __init__(self, message="", name=None):
        _Known.__init__(self, message, name)

    def __str__(self):
        return CallError.__str__(self)


Disconnected = ConnectionLost

_BY_NAME = {
    cls.NAME: cls
    for cls in (
        Failed,
        NoMemory,
        ServiceUnknown,
        NameHasNoOwner,
        NoReply,
        Timeout,
        AccessDenied,
        InvalidArgs,
        InvalidMessage,
        ProtocolError,
        UnknownMethod,
        UnknownObject,
        UnknownInterface,
        UnexpectedReply,
        MatchRuleInvalid,
        MatchRuleNotFound,
        LimitsExceeded,
        NotSupported,
        ConnectionLost,
        ConfigInvalid,
        UnknownProperty,
        PropertyReadOnly,
    )
}
