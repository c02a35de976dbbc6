"""Messages: what a received one holds, how one to send is made and
checked, and how a body becomes JSON text (PROTOCOL.md sections 3, 4, 13.2
and 14.5)."""

import base64
import math
import os

from . import _wire, errors, memfd

__all__ = ["Message", "encode_body"]

_INT_LIMIT = _wire.INT_EXACT_MAX


class _Blobs:
    """bytes values kept apart from the text while a body is encoded."""

    def __init__(self):
        self.parts = []
        self.size = 0

    def add(self, data):
        ref = {"$bytes": [self.size, len(data)]}
        self.parts.append(data)
        self.size += len(data)
        return ref


def _prepare(value, blobs, where):
    """value with bytes as base64 (or, with blobs, large ones as references),
    integers beyond 2^53-1 as decimal strings (13.2), tuples as lists."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError("%s: key %r is not a string" % (where, k))
            out[k] = _prepare(v, blobs, "%s.%s" % (where, k))
        return out
    if isinstance(value, (list, tuple)):
        return [_prepare(v, blobs, "%s[%d]" % (where, i)) for i, v in enumerate(value)]
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if blobs is not None and len(data) >= memfd.BLOB_MIN:
            return blobs.add(data)
        return base64.b64encode(data).decode("ascii")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        if isinstance(value, str) and "\0" in value:
            raise ValueError("%s: a string with a NUL character (send bytes instead)" % where)
        return value
    if isinstance(value, int):
        return str(value) if abs(value) > _INT_LIMIT else value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("%s: %r cannot be sent (JSON has no NaN or infinity)" % (where, value))
        return value
    raise TypeError("%s: a %s cannot be sent (JSON values, bytes and tuples only)" % (where, type(value).__name__))


def _check_text(body):
    """Section 2 before anything is sent: a NUL in a key, an unpaired
    surrogate, nesting beyond 64 would make the broker close the
    connection (or the receiver drop a memfd body)."""
    fault = _wire.text_fault(body)
    if fault:
        raise ValueError("body: %s (PROTOCOL.md section 2)" % fault)


def encode_body(body, threshold=0):
    """The JSON text of a body (a dict, or None for none: b""), and the
    binary area when the body should travel in a memfd (threshold > 0 and
    the text at least that long, or bytes kept apart of 8 KiB or more),
    else None. In a memfd body, bytes values of 4096 bytes or more are
    references into the binary area; everywhere else, base64."""
    if body is None:
        return b"", None
    if not isinstance(body, dict):
        raise TypeError("body: a dict expected, got %s" % type(body).__name__)
    _check_text(body)
    if threshold <= 0:
        return _wire.json_dumps(_prepare(body, None, "body")), None
    blobs = _Blobs()
    text = _wire.json_dumps(_prepare(body, blobs, "body"))
    if blobs.parts:
        # the size the text would have with the blobs in base64, each in quotes
        in_frame = len(text) + sum(4 * ((len(b) + 2) // 3) + 2 for b in blobs.parts)
        in_frame -= sum(len(_wire.json_dumps({"$bytes": [0, 0]})) for _ in blobs.parts)
        if in_frame >= threshold or blobs.size >= memfd.BLOBS_BY_MEMFD:
            return text, b"".join(blobs.parts)
        return _wire.json_dumps(_prepare(body, None, "body")), None
    if len(text) >= threshold:
        return text, b""
    return text, None


def _fd_number(f, i):
    if isinstance(f, int) and not isinstance(f, bool):
        fd = f
    elif hasattr(f, "fileno"):
        fd = f.fileno()
    else:
        raise TypeError("fds[%d]: an int or an object with fileno() expected, got %s" % (i, type(f).__name__))
    if fd < 0:
        raise ValueError("fds[%d]: %d is not a descriptor" % (i, fd))
    return fd


def check_fds(fds):
    """The descriptor numbers of fds (ints or objects with fileno()), at most 16."""
    fds = [_fd_number(f, i) for i, f in enumerate(fds or ())]
    if len(fds) > _wire.FDS_MAX:
        raise ValueError("fds: %d descriptors, more than the %d a message may carry" % (len(fds), _wire.FDS_MAX))
    return fds


class Message:
    """A message, received or to send.

    Fields: ``type`` ("call", "return", "error", "signal"), ``serial``,
    ``reply_serial``, ``sender``, ``sender_uid``, ``sender_pid``,
    ``destination``, ``path``, ``interface``, ``member``, ``error`` (the
    error name), ``no_reply``, ``no_auto_start``, ``timeout_ms``, ``body``
    (a dict, {} when none) and ``fds`` (descriptor numbers).

    Descriptors of a received message: those of ``Bus.call_message`` belong
    to the caller. A message handed to a handler or a subscription keeps its
    descriptors until the callback returns (an async one: until it
    finishes), then they are closed, unless taken with ``take_fds()``.

    ``binary`` is the binary area of a body that came in a memfd (else
    None); ``get_bytes(value)`` decodes a ``bytes`` value of the body
    either way it was written (base64, or ``{"$bytes":[O,L]}``).
    """

    __slots__ = ("type", "serial", "reply_serial", "sender", "sender_uid", "sender_pid", "destination", "path",
                 "interface", "member", "error", "no_reply", "no_auto_start", "timeout_ms", "body", "body_given",
                 "fds", "binary", "bus", "__weakref__")

    def __init__(self, type, *, serial=0, reply_serial=None, sender=None, sender_uid=None, sender_pid=None,
                 destination=None, path=None, interface=None, member=None, error=None, no_reply=False,
                 no_auto_start=False, timeout_ms=None, body=None, fds=(), binary=None):
        if type not in _wire.TYPES:
            raise ValueError("type %r: one of %s" % (type, ", ".join(_wire.TYPES)))
        self.type = type
        self.serial = serial
        self.reply_serial = reply_serial
        self.sender = sender
        self.sender_uid = sender_uid
        self.sender_pid = sender_pid
        self.destination = destination
        self.path = path
        self.interface = interface
        self.member = member
        self.error = error
        self.no_reply = no_reply
        self.no_auto_start = no_auto_start
        self.timeout_ms = timeout_ms
        self.body = {} if body is None else body
        self.body_given = body is not None  # sent as given, {} included; None: no body at all
        self.fds = list(fds)
        self.binary = binary
        self.bus = None  # the connection it came in on

    def __repr__(self):
        what = self.error if self.type == "error" else "%s %s.%s" % (self.path, self.interface, self.member)
        return "<ipcbus.Message %s serial=%s from %s: %s>" % (self.type, self.serial, self.sender, what)

    # ---- making messages to send (arguments checked here, before anything is sent) ----

    @classmethod
    def new_call(cls, destination, path, interface, member, body=None, *, fds=(), no_reply=False,
                 no_auto_start=False):
        _wire.check_name("destination", "bus name", destination)
        _wire.check_name("path", "object path", path)
        _wire.check_name("interface", "interface name", interface, optional=True)
        _wire.check_name("member", "member name", member)
        _check_body(body)
        return cls("call", destination=destination, path=path, interface=interface, member=member, body=body,
                   fds=check_fds(fds), no_reply=bool(no_reply), no_auto_start=bool(no_auto_start))

    @classmethod
    def new_signal(cls, path, interface, member, body=None, *, destination=None, fds=()):
        _wire.check_name("destination", "bus name", destination, optional=True)
        _wire.check_name("path", "object path", path)
        _wire.check_name("interface", "interface name", interface)
        _wire.check_name("member", "member name", member)
        _check_body(body)
        return cls("signal", destination=destination, path=path, interface=interface, member=member, body=body,
                   fds=check_fds(fds))

    @classmethod
    def new_return(cls, call, body=None, *, fds=()):
        _check_call(call)
        _check_body(body)
        return cls("return", reply_serial=call.serial, destination=call.sender, body=body, fds=check_fds(fds))

    @classmethod
    def new_error(cls, call, name, message=None):
        _check_call(call)
        _wire.check_name("name", "error name", name)
        if message is not None and not isinstance(message, str):
            raise TypeError("message: a string expected, got %s" % type(message).__name__)
        body = {"message": message} if message else None
        return cls("error", reply_serial=call.serial, destination=call.sender, error=name, body=body)

    # ---- reading ----

    @property
    def body_in_memfd(self):
        """True when the body came in a sealed memfd (PROTOCOL.md 14)."""
        return self.binary is not None

    @property
    def error_message(self):
        """An error's text: the body's string member "message", or ""."""
        m = self.body.get("message") if isinstance(self.body, dict) else None
        return m if isinstance(m, str) else ""

    def exception(self):
        """For an error message, the CallError (subclass) it stands for."""
        if self.type != "error":
            raise ValueError("not an error message")
        return errors.CallError.create(self.error or errors.Failed.NAME, self.error_message)

    def get_bytes(self, value):
        """The bytes of a ``bytes`` value of this body (base64 or a $bytes reference)."""
        return memfd.bytes_value(value, self.binary)

    def take_fds(self):
        """The descriptors, now the caller's (closed by nobody else)."""
        fds, self.fds = self.fds, []
        return fds

    def detach(self):
        """A copy of this message that owns its descriptors, taken from this one
        (to keep a message handed to a callback beyond the callback)."""
        copy = Message.__new__(Message)
        for key in Message.__slots__:
            if key != "__weakref__":
                setattr(copy, key, getattr(self, key))
        copy.fds = self.take_fds()
        return copy

    def duplicate(self):
        """A copy of this message with duplicates of its descriptors, which
        the copy owns (this one keeps its own)."""
        copy = Message.__new__(Message)
        for key in Message.__slots__:
            if key != "__weakref__":
                setattr(copy, key, getattr(self, key))
        copy.fds = []
        try:
            for fd in self.fds:
                copy.fds.append(os.dup(fd))
        except OSError:
            copy.close_fds()
            raise
        return copy

    def close_fds(self):
        """Close the descriptors not taken."""
        fds, self.fds = self.fds, []
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    # ---- wire ----

    def header_fields(self):
        return {key: getattr(self, key) for key, _ in _wire.HEADER_FIELDS if key not in ("body_fd", "body_size")}

    @classmethod
    def from_header(cls, h, body, fds, binary=None):
        """A received message from its header dict, body dict and descriptors."""
        kw = {key: h.get(key) for key, _ in _wire.HEADER_FIELDS if key not in ("type", "body_fd", "body_size")}
        kw["no_reply"] = bool(kw["no_reply"])
        kw["no_auto_start"] = bool(kw["no_auto_start"])
        return cls(h["type"], body=body, fds=fds, binary=binary, **kw)


def _check_body(body):
    if body is not None and not isinstance(body, dict):
        raise TypeError("body: a dict expected, got %s" % type(body).__name__)


def _check_call(call):
    if not isinstance(call, Message) or call.type != "call":
        raise TypeError("call: the Message of a received call expected")
    if not call.sender:
        raise ValueError("call: it has no sender to answer")
