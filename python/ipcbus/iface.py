# SPDX-License-Identifier: MIT
"""Interface descriptions (PROTOCOL.md section 13): parsing, loading, checking.

An interface description says what an interface's methods take and return,
what its signals carry and what properties it has, with a type for every
named member. This module reads them as libipcbus does (``libclient/iface.c``)
and checks values against them with the same rules and the same sentences
(``libclient/iface-check.c``)::

    from ipcbus import iface
    notes = iface.load("org.example.Notes")      # $IPCBUS_INTERFACE_PATH, then the installed ones
    notes.methods["Add"].in_args.check({"text": 3})
    # iface.CheckError: argument 'text': expected string, got integer

Values on the wire are JSON (13.2): an ``int``/``uint`` beyond 2^53-1 travels
as a string of decimal digits, ``bytes`` as base64 (or a ``$bytes`` reference
in a body that travels in a memfd, 14.5), ``fd`` as an index into the
message's descriptors. :meth:`Args.encode` turns Python values into that form
(``bytes`` to base64, large integers to strings, descriptors to indexes) and
:meth:`Args.decode` turns a received body back (strings of digits to ``int``,
base64 and ``$bytes`` to ``bytes``, indexes to descriptors).

Nothing here needs a connection.
"""

import base64
import binascii
import json
import os
import re

from ._wire import depth_ok, is_interface_name, is_member_name

__all__ = [
    "DescriptionError",
    "CheckError",
    "NotFound",
    "Type",
    "Field",
    "Args",
    "Method",
    "Signal",
    "Property",
    "Interface",
    "parse",
    "load",
    "standard",
    "canonical_json",
    "interface_dirs",
    "INSTALL_DIRS",
]

# Where installed descriptions are, after the directories of $IPCBUS_INTERFACE_PATH.
# libipcbus reads $(datadir)/ipcbus/interfaces: /usr/share for a distribution's
# package, /usr/local/share for the default ./configure prefix.
INSTALL_DIRS = ("/usr/share/ipcbus/interfaces", "/usr/local/share/ipcbus/interfaces")

NAME_MAX = 255  # bus, interface, member and error names (PROTOCOL.md 5)
BODY_MAX = 64 * 1024 * 1024  # a body, and a description's text (PROTOCOL.md 6)
DEPTH_MAX = 64  # JSON nesting (PROTOCOL.md 2)
FDS_MAX = 16  # descriptors per message (PROTOCOL.md 1)
FILE_MAX = 1024 * 1024  # a description file is read whole, up to this size
PATH_MAX = 512  # JSON paths in sentences are cut below this many bytes, as libipcbus's
JS_SAFE_INTEGER_MAX = (1 << 53) - 1  # what a JavaScript number holds exactly

SCALARS = ("bool", "int", "uint", "double", "string", "bytes", "fd", "any")
COMPOSITES = ("array", "map", "optional", "struct")

_BASE64_RE = re.compile(r"[A-Za-z0-9+/]*\Z")


class DescriptionError(ValueError):
    """A description that cannot be read: the sentence libipcbus writes
    (``methods.Add.inn: unknown key``), prefixed with the file when loading."""


class CheckError(ValueError):
    """A value that does not fit its description, in the sentence libipcbus
    writes (``argument 'notes[2].id': expected uint, got object``); a peer
    answers it as ``org.ipcbus.Error.InvalidArgs`` with this text."""


def _is_field_name(name):
    # Argument, result and struct field names (13.1): the same rule as a member's.
    return is_member_name(name)


def _cut(text, limit):
    """text cut to fewer than `limit` UTF-8 bytes, as the C library's fixed buffers cut it."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) < limit:
        return text
    return data[: limit - 1].decode("utf-8", "ignore")


# ---- types -------------------------------------------------------------------------


class Type:
    """A type of 13.2: ``kind`` is one of SCALARS or COMPOSITES; ``elem`` the
    element type of array, map and optional; ``fields`` the list of
    :class:`Field` of a struct. ``str(t)`` is the short form people read:
    ``array<struct{id: uint, text: string}>``."""

    __slots__ = ("kind", "elem", "fields")

    def __init__(self, kind, elem=None, fields=None):
        self.kind = kind
        self.elem = elem
        self.fields = list(fields) if fields is not None else []

    def __str__(self):
        if self.kind in ("array", "map", "optional"):
            return "%s<%s>" % (self.kind, self.elem)
        if self.kind == "struct":
            return "struct{%s}" % ", ".join("%s: %s" % (f.name, f.type) for f in self.fields)
        return self.kind

    def __repr__(self):
        return "Type(%r)" % str(self)

    def __eq__(self, other):
        return isinstance(other, Type) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def check(self, value, where="value", strict=False, n_fds=FDS_MAX, binary_len=None):
        """Check one JSON value (as received, or as :meth:`encode` made it)
        against this type; raise CheckError naming it `where`
        (``argument 'value': expected uint, got string``). strict: members a
        struct does not name are refused (what this side sends). n_fds: the
        descriptors of the message, which ``fd`` values index. binary_len: the
        bytes of the binary area of a body that travelled in a memfd, None for
        a body that came in its frame (no ``$bytes`` references)."""
        _Check(strict, n_fds, binary_len, where).type(self, value)

    def encode(self, value, fds=None, raw_bytes=False):
        """The JSON form of a Python value of this type (see :meth:`Args.encode`)."""
        return _encode(self, value, fds, raw_bytes)

    def decode(self, value, fds=None, binary=None):
        """The Python form of a received (and checked) value (see :meth:`Args.decode`)."""
        return _decode(self, value, fds, binary)


class Field:
    """A named, typed member: an argument, a result, a struct's field."""

    __slots__ = ("name", "type")

    def __init__(self, name, type):
        self.name = name
        self.type = type

    def __repr__(self):
        return "Field(%r, %s)" % (self.name, self.type)


class Args:
    """The named arguments of a method (``in``), its results (``out``) or a
    signal's body (``args``), in the order written. Iterating gives the
    :class:`Field` objects; ``args["id"]`` the type of one."""

    __slots__ = ("fields",)

    def __init__(self, fields=()):
        self.fields = list(fields)

    def __iter__(self):
        return iter(self.fields)

    def __len__(self):
        return len(self.fields)

    def __contains__(self, name):
        return any(f.name == name for f in self.fields)

    def __getitem__(self, name):
        for f in self.fields:
            if f.name == name:
                return f.type
        raise KeyError(name)

    @property
    def names(self):
        return [f.name for f in self.fields]

    def check(self, body, strict=False, n_fds=FDS_MAX, binary_len=None):
        """Check a body (a dict; None counts as {}) against the arguments:
        a missing member whose type is not optional, a member of the wrong
        type at any depth, an fd index not below n_fds. strict: members the
        arguments do not name are refused too (what this side sends; a
        receiver ignores them, 13.3). Raises CheckError with libipcbus's
        sentence."""
        if body is not None and not isinstance(body, dict):
            raise CheckError("the body is not a JSON object but %s" % _json_kind(body))
        _Check(strict, n_fds, binary_len, "").fields(self.fields, body)

    def encode(self, values, fds=None, raw_bytes=False):
        """A body to send from Python values (a dict, None: {}): integers of
        ``int``/``uint`` beyond 2^53-1 become decimal strings, ``bytes`` (or
        bytearray, memoryview) of ``bytes`` become base64, tuples lists. With
        `fds` (a list), a value of type ``fd`` is a descriptor (an int or an
        object with fileno()): it is appended to fds and written as its index.
        raw_bytes: bytes stay bytes, for a connection that writes them itself
        (ipcbus's: base64 in a frame, raw in a memfd's binary area); the
        checks accept them as ``bytes``. Members the arguments do not name
        are copied as they are (the strict check refuses them). Returns a
        new dict; nothing is checked."""
        values = {} if values is None else values
        if not isinstance(values, dict):
            return values
        out = {}
        for key, value in values.items():
            t = self._type_of(key)
            out[key] = value if t is None else _encode(t, value, fds, raw_bytes)
        return out

    def decode(self, body, fds=None, binary=None):
        """The Python values of a received body that passed :meth:`check`:
        ``int``/``uint`` given as decimal strings become int, ``bytes`` become
        bytes (base64 decoded, or a ``$bytes`` reference read from `binary`,
        the binary area of a memfd body), and with `fds` (the message's
        descriptors) an ``fd`` index becomes the descriptor itself. An absent
        optional member is None. Members the arguments do not name are kept
        as they came."""
        body = {} if body is None else body
        out = dict(body)
        for f in self.fields:
            if f.name in body:
                out[f.name] = _decode(f.type, body[f.name], fds, binary)
            elif f.type.kind == "optional":
                out[f.name] = None
        return out

    def _type_of(self, name):
        for f in self.fields:
            if f.name == name:
                return f.type
        return None

    def __repr__(self):
        return "Args(%s)" % ", ".join("%s: %s" % (f.name, f.type) for f in self.fields)


class Method:
    """A described method: ``in_args`` and ``out_args`` (:class:`Args`),
    ``no_reply``, ``deprecated``, ``unchecked`` (arguments not described and
    not checked either way), ``doc``."""

    def __init__(self, name):
        self.name = name
        self.in_args = Args()
        self.out_args = Args()
        self.no_reply = False
        self.deprecated = False
        self.unchecked = False
        self.doc = None

    def __repr__(self):
        return "Method(%r, in=%r, out=%r)" % (self.name, self.in_args, self.out_args)


class Signal:
    """A described signal: ``args`` (:class:`Args`), ``deprecated``, ``doc``."""

    def __init__(self, name):
        self.name = name
        self.args = Args()
        self.deprecated = False
        self.doc = None

    def __repr__(self):
        return "Signal(%r, %r)" % (self.name, self.args)


class Property:
    """A described property: ``type``, ``access`` ("read", "write" or
    "readwrite"), ``changes`` ("emit", "invalidate", "const" or "none"),
    ``deprecated``, ``doc``."""

    def __init__(self, name):
        self.name = name
        self.type = None
        self.access = None
        self.changes = "emit"
        self.deprecated = False
        self.doc = None

    @property
    def readable(self):
        return self.access in ("read", "readwrite")

    @property
    def writable(self):
        return self.access in ("write", "readwrite")

    def __repr__(self):
        return "Property(%r, %s, %s, %s)" % (self.name, self.type, self.access, self.changes)


class Interface:
    """A parsed description: ``name``, ``methods``, ``signals`` and
    ``properties`` (dicts by name, in the order written), ``deprecated``,
    ``doc``, ``description`` (the JSON object as parsed) and ``json``, its
    canonical text (13.1: no whitespace, keys in the order written,
    extensions and ``doc`` kept, ``/`` not escaped), which is what
    Introspect returns for it. Immutable by convention, shared freely."""

    def __init__(self):
        self.name = None
        self.methods = {}
        self.signals = {}
        self.properties = {}
        self.deprecated = False
        self.doc = None
        self.description = None
        self.json = None

    def __repr__(self):
        return "<Interface %s>" % self.name

    def check(self, kind, member, body):
        """Check a body (a dict, JSON text, or None) as libipcbus's
        ipcbus_interface_check does: kind "call" (a method's arguments),
        "return" (its results) or "signal" (a signal's arguments); what fits
        is what a receiver accepts, fd indexes within what a frame can carry.
        Raises KeyError when the interface has no such member, CheckError
        (an InvalidArgs sentence) when the body does not fit."""
        if kind in ("call", "return"):
            m = self.methods.get(member)
            if m is None:
                raise KeyError("interface %s has no method '%s'" % (self.name, _cut(member, NAME_MAX + 1)))
            if m.unchecked:
                return
            args = m.in_args if kind == "call" else m.out_args
        elif kind == "signal":
            s = self.signals.get(member)
            if s is None:
                raise KeyError("interface %s has no signal '%s'" % (self.name, _cut(member, NAME_MAX + 1)))
            args = s.args
        else:
            raise ValueError("type: only calls, returns and signals are described")
        if isinstance(body, (str, bytes)):
            body = json_loads(body) if body else None
        args.check(body, strict=False, n_fds=FDS_MAX)


# ---- JSON text ------------------------------------------------------------------------


def _refuse_constant(name):
    raise ValueError("%s is not JSON" % name)


def json_loads(text):
    """One JSON text as libipcbus reads one (RFC 8259, strictly: no NaN or
    Infinity, UTF-8, at most 64 deep). Raises DescriptionError
    ``not a JSON text: ...``."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise DescriptionError("not a JSON text: invalid utf-8 string") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise DescriptionError("not a JSON text: nesting too deep") from None
    except json.JSONDecodeError as e:
        raise DescriptionError("not a JSON text: %s" % _json_error(e)) from None
    except ValueError as e:
        raise DescriptionError("not a JSON text: %s" % e) from None
    if not depth_ok(value, DEPTH_MAX):
        raise DescriptionError("not a JSON text: nesting too deep")
    return value


def _json_error(e):
    """json's complaint in libipcbus's words where they say the same thing."""
    if e.msg == "Extra data":
        return "text after the JSON value"
    if not e.doc[e.pos :].strip():
        return "unexpected end of text"
    return "%s at line %d column %d" % (e.msg, e.lineno, e.colno)


def canonical_json(value):
    """The canonical text of a JSON value (13.1): no whitespace, keys in the
    order written, non-ASCII kept, ``/`` not escaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# ---- parsing a description ---------------------------------------------------------------


class _Path:
    """Where in a description or a value a sentence points: ``methods.Add.in.text``, ``notes[2].id``."""

    __slots__ = ("s",)

    def __init__(self, start=""):
        self.s = _cut(start, PATH_MAX)

    def push(self, key):
        """Append a member ("key" at the top, ".key" below); returns what pop restores."""
        return self.pushf(("." if self.s else "") + key)

    def pushf(self, text):
        old = self.s
        self.s = _cut(self.s + text, PATH_MAX)
        return old

    def pop(self, old):
        self.s = old


def _is_extension(key):
    return key.startswith("x-")


class _Parser:
    """One description's parse: every refusal names its place, as libipcbus's does."""

    def __init__(self):
        self.p = _Path()

    def fail(self, what):
        what = _cut(what, PATH_MAX)
        raise DescriptionError("%s: %s" % (self.p.s, what) if self.p.s else what)

    def fail_at(self, key, what):
        self.p.push(key)
        self.fail(what)

    def unknown_key(self, key):
        if not _is_extension(key):
            self.fail_at(key, "unknown key")

    def boolean(self, key, v):
        if not isinstance(v, bool):
            self.fail_at(key, "expected true or false")
        return v

    def doc(self, key, v):
        if not isinstance(v, str):
            self.fail_at(key, "expected a string")
        return v

    def common_key(self, key, v, obj, deprecated=True):
        """The keys every part may have: "deprecated" (where allowed), "doc", "x-" extensions."""
        if deprecated and key == "deprecated":
            obj.deprecated = self.boolean(key, v)
        elif key == "doc":
            obj.doc = self.doc(key, v)
        else:
            self.unknown_key(key)

    def named(self, v, valid_name, invalid_name, not_object, parse_one):
        """An object of named members, in the order written: [parse_one(name, value), ...]."""
        if not isinstance(v, dict):
            self.fail(not_object)
        out = []
        for name, member in v.items():
            if _is_extension(name):
                continue
            old = self.p.push(name)
            if not valid_name(name):
                self.fail(invalid_name)
            out.append(parse_one(name, member))
            self.p.pop(old)
        return out

    def fields(self, v):
        """Arguments, results, a struct's fields: an object of named types."""
        return self.named(
            v,
            _is_field_name,
            "not a valid name ([A-Za-z_][A-Za-z0-9_]*, at most 255 bytes)",
            "expected an object of named types",
            lambda name, t: Field(name, self.type(t)),
        )

    def type(self, v):
        if isinstance(v, str):
            if v not in SCALARS:
                self.fail("unknown type '%s'" % _cut(v, 65))
            return Type(v)
        if isinstance(v, dict):
            return self.composite(v)
        self.fail('a type is a name ("uint") or an object ({"array": "uint"})')

    def composite(self, v):
        """A type object: exactly one of array, map, optional, struct (plus "doc" and "x-" keys)."""
        found = inner = None
        for key, member in v.items():
            if key in COMPOSITES:
                if found is not None:
                    self.fail("a type object has one key of array, map, optional, struct, not two")
                found, inner = key, member
            elif key == "doc":
                self.doc(key, member)
            elif not _is_extension(key):
                self.fail("unknown type '%s'" % key)
        if found is None:
            self.fail("a type object has one key of array, map, optional, struct")
        old = self.p.push(found)
        if found == "struct":
            t = Type("struct", fields=self.fields(inner))
        else:
            t = Type(found, elem=self.type(inner))
        self.p.pop(old)
        return t

    def args(self, key, v):
        old = self.p.push(key)
        a = Args(self.fields(v))
        self.p.pop(old)
        return a

    def method(self, name, v):
        m = Method(name)
        if not isinstance(v, dict):
            self.fail("expected an object")
        has_args = False
        for key, member in v.items():
            if key in ("in", "out"):
                a = self.args(key, member)
                if key == "in":
                    m.in_args = a
                else:
                    m.out_args = a
                has_args = True
            elif key == "no_reply":
                m.no_reply = self.boolean(key, member)
            elif key == "unchecked":
                m.unchecked = self.boolean(key, member)
            else:
                self.common_key(key, member, m)
        if m.unchecked and has_args:
            self.fail('an unchecked method describes no "in" or "out"')
        return m

    def signal(self, name, v):
        s = Signal(name)
        if not isinstance(v, dict):
            self.fail("expected an object")
        for key, member in v.items():
            if key == "args":
                s.args = self.args(key, member)
            else:
                self.common_key(key, member, s)
        return s

    def word(self, key, v, words, expected):
        if isinstance(v, str) and v in words:
            return v
        self.fail_at(key, "expected %s" % expected)

    def property(self, name, v):
        prop = Property(name)
        if not isinstance(v, dict):
            self.fail("expected an object")
        for key, member in v.items():
            if key == "type":
                old = self.p.push(key)
                prop.type = self.type(member)
                self.p.pop(old)
            elif key == "access":
                # "" is what libipcbus takes for "no access given" and reports as missing
                prop.access = self.word(key, member, ("", "read", "write", "readwrite"),
                                        '"read", "write" or "readwrite"') or None
            elif key == "changes":
                prop.changes = self.word(key, member, ("emit", "invalidate", "const", "none"),
                                         '"emit", "invalidate", "const" or "none"')
            else:
                self.common_key(key, member, prop)
        if prop.type is None:
            self.fail('missing key "type"')
        if prop.access is None:
            self.fail('missing key "access"')
        return prop

    def members(self, key, v, parse_one):
        old = self.p.push(key)
        out = self.named(
            v,
            is_member_name,
            "not a valid member name (section 5 of PROTOCOL.md)",
            "expected an object of named members",
            parse_one,
        )
        self.p.pop(old)
        return {m.name: m for m in out}

    def description(self, root):
        i = Interface()
        if not isinstance(root, dict):
            self.fail("a description is a JSON object")
        for key, v in root.items():
            if key == "interface":
                if not is_interface_name(v):
                    self.fail_at("interface", "expected an interface name (section 5 of PROTOCOL.md)")
                i.name = v
            elif key == "methods":
                i.methods = self.members(key, v, self.method)
            elif key == "signals":
                i.signals = self.members(key, v, self.signal)
            elif key == "properties":
                i.properties = self.members(key, v, self.property)
            else:
                self.common_key(key, v, i)
        if i.name is None:
            self.fail('missing key "interface"')
        i.description = root
        i.json = canonical_json(root)
        return i


def parse(description):
    """Parse a description: JSON text (str or bytes) or the object already
    parsed (a dict). Returns an :class:`Interface`; raises DescriptionError
    with libipcbus's sentence, naming the place as a path of keys
    (``methods.Add.in.text: unknown type 'strin'``)."""
    if isinstance(description, (str, bytes, bytearray, memoryview)):
        size = len(description.encode("utf-8", "surrogatepass")) if isinstance(description, str) else len(description)
        if size > BODY_MAX:
            raise DescriptionError("a description is at most %u bytes" % BODY_MAX)
        description = json_loads(description)
    return _Parser().description(description)


# ---- loading ------------------------------------------------------------------------------


def interface_dirs():
    """Where :func:`load` looks, in order: the directories of
    $IPCBUS_INTERFACE_PATH (colon-separated, empty ones skipped), then
    INSTALL_DIRS."""
    env = os.environ.get("IPCBUS_INTERFACE_PATH", "")
    return [d for d in env.split(":") if d] + list(INSTALL_DIRS)


def _load_from(directory, name):
    """dir/NAME.json parsed, or None when there is none."""
    path = os.path.join(directory, name + ".json")
    try:
        with open(path, "rb") as f:
            data = f.read(FILE_MAX + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise DescriptionError("%s: %s" % (path, e.strerror or e)) from None
    if len(data) > FILE_MAX:
        raise DescriptionError("%s: larger than %u bytes" % (path, FILE_MAX))
    if b"\0" in data:
        raise DescriptionError("%s: not a JSON text: a NUL byte" % path)
    try:
        i = parse(data)
    except DescriptionError as e:
        raise DescriptionError("%s: %s" % (path, e)) from None
    if i.name != name:
        raise DescriptionError("%s: describes %s, not %s" % (path, i.name, name))
    return i


def load(name):
    """Load NAME.json from the directories of $IPCBUS_INTERFACE_PATH, then
    the installed ones (INSTALL_DIRS), as ipcbus_interface_load does: the
    first directory holding the file wins, and a file there that does not
    parse (or describes another interface) is an error, not skipped.
    Raises DescriptionError (FileNotFoundError-like text when no directory
    has it: see :class:`NotFound`)."""
    if not is_interface_name(name):
        shown = "(null)" if name is None else _cut(str(name), NAME_MAX + 1)
        raise DescriptionError("interface '%s': not a valid interface name" % shown)
    for d in interface_dirs():
        i = _load_from(d, name)
        if i is not None:
            return i
    raise NotFound(
        "interface %s: no %s.json in $IPCBUS_INTERFACE_PATH or %s" % (name, name, " or ".join(INSTALL_DIRS))
    )


class NotFound(DescriptionError, LookupError):
    """:func:`load` found no NAME.json in any directory."""


# ---- the standard interfaces (PROTOCOL.md 13.4) -------------------------------------------

# The descriptions libipcbus answers for every exported object, as in the
# tree's interfaces/*.json (a test compares them). Built in, as in libipcbus,
# so that a service works before anything is installed.
_STANDARD_TEXT = {
    "org.ipcbus.Introspectable": r"""{
  "interface": "org.ipcbus.Introspectable",
  "doc": "What an object path serves: the descriptions of its interfaces and the next components of the paths below it (PROTOCOL.md 13.4).",
  "methods": {
    "Introspect": {
      "doc": "interfaces: description objects as in their files; children: sorted, unique.",
      "out": {"path": "string", "interfaces": {"array": "any"}, "children": {"array": "string"}}
    }
  }
}""",
    "org.ipcbus.Properties": r"""{
  "interface": "org.ipcbus.Properties",
  "doc": "The properties of an object's described interfaces (PROTOCOL.md 13.4).",
  "methods": {
    "Get": {
      "doc": "The value of a readable property.",
      "in": {"interface": "string", "name": "string"},
      "out": {"value": "any"}
    },
    "GetAll": {
      "doc": "The values of every readable property of the interface.",
      "in": {"interface": "string"},
      "out": {"properties": {"map": "any"}}
    },
    "Set": {
      "doc": "Set a writable property; the value is checked against its type.",
      "in": {"interface": "string", "name": "string", "value": "any"},
      "out": {}
    }
  },
  "signals": {
    "PropertiesChanged": {
      "doc": "Emitted on the object's path: new values of properties that emit, names of those that only invalidate.",
      "args": {"interface": "string", "changed": {"map": "any"}, "invalidated": {"array": "string"}}
    }
  }
}""",
    "org.ipcbus.ObjectManager": r"""{
  "interface": "org.ipcbus.ObjectManager",
  "doc": "The described objects at and below the manager's path, with their interfaces and properties (PROTOCOL.md 13.4).",
  "methods": {
    "GetManagedObjects": {
      "doc": "objects: path -> interface -> property -> value.",
      "out": {"objects": {"map": {"map": {"map": "any"}}}}
    }
  },
  "signals": {
    "InterfacesAdded": {
      "doc": "An object below the manager was exported: its interfaces with their properties.",
      "args": {"path": "string", "interfaces": {"map": {"map": "any"}}}
    },
    "InterfacesRemoved": {
      "doc": "Interfaces of an object below the manager were dropped.",
      "args": {"path": "string", "interfaces": {"array": "string"}}
    }
  }
}""",
    "org.ipcbus.Peer": r"""{
  "interface": "org.ipcbus.Peer",
  "doc": "Answered by every connection made with libipcbus, and by the driver, on any path (PROTOCOL.md 10.1).",
  "methods": {
    "Ping": {
      "doc": "Liveness: answered at once.",
      "out": {}
    }
  }
}""",
}

INTROSPECTABLE = "org.ipcbus.Introspectable"
PROPERTIES = "org.ipcbus.Properties"
OBJECT_MANAGER = "org.ipcbus.ObjectManager"
PEER = "org.ipcbus.Peer"

_standard = {}


def standard(name):
    """The built-in description of a standard interface (13.4:
    org.ipcbus.Introspectable, Properties, ObjectManager, Peer), parsed once;
    KeyError for any other name."""
    i = _standard.get(name)
    if i is None:
        i = _standard[name] = parse(_STANDARD_TEXT[name])
    return i


# ---- checking values (13.3) -------------------------------------------------------------


def _json_kind(v):
    """What came, for "got ...": the JSON kind of a value, as json-c sees it
    (an integer beyond 64 bits is read as the double it is)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer" if -(1 << 63) <= v < (1 << 64) else "number"
    if isinstance(v, float):
        return "number"
    if isinstance(v, (str, bytes, bytearray, memoryview)):
        return "string"  # bytes travel as base64 strings
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _is_json_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < (1 << 64)


def _decimal_parse(s):
    """(negative, magnitude) of "-"? digits, read as libipcbus reads it: the
    magnitude is 2^64 once it passes 64 bits (before any later non-digit is
    seen), None when a non-digit comes first or there is no digit."""
    negative = s.startswith("-")
    digits = s[1:] if negative else s
    if not digits:
        return negative, None
    m = 0
    for c in digits:
        if not "0" <= c <= "9":
            return negative, None
        m = m * 10 + ord(c) - 48
        if m >= 1 << 64:
            return negative, 1 << 64
    return negative, m


def _is_base64(s):
    """RFC 4648 base64, standard alphabet, padded: libipcbus's test, exactly."""
    if len(s) % 4:
        return False
    pad = 0
    if s.endswith("="):
        pad = 2 if len(s) > 1 and s[-2] == "=" else 1
    return bool(_BASE64_RE.match(s[: len(s) - pad]))


def _bytes_ref(v):
    """(offset, length) of a {"$bytes":[OFFSET,LENGTH]} reference (14.5), or None."""
    if not isinstance(v, dict) or len(v) != 1 or "$bytes" not in v:
        return None
    a = v["$bytes"]
    if not isinstance(a, list) or len(a) != 2 or not all(_is_json_int(x) and x >= 0 for x in a):
        return None
    # json-c reads an integer above 2^63-1 as that maximum
    return tuple(min(x, (1 << 63) - 1) for x in a)


class _Check:
    """One check of a value or a body; the first misfit raises CheckError."""

    def __init__(self, strict, n_fds, binary_len, where):
        self.strict = strict
        self.n_fds = n_fds
        self.binary_len = binary_len
        self.path = _Path(where)

    def fail(self, what):
        raise CheckError("argument '%s': %s" % (self.path.s, what))

    def fail_type(self, t, v, missing=False):
        if missing:
            self.fail("missing (expected %s)" % t)
        self.fail("expected %s, got %s" % (t, _json_kind(v)))

    def fields(self, fields, obj):
        """The named fields of a struct, or the arguments of a body, in obj (None: {})."""
        for f in fields:
            old = self.path.push(f.name)
            if obj is not None and f.name in obj:
                self.type(f.type, obj[f.name])
            elif f.type.kind != "optional":
                self.fail_type(f.type, None, missing=True)
            self.path.pop(old)
        if not self.strict or obj is None:
            return
        names = {f.name for f in fields}
        for key in obj:
            if key not in names:
                self.path.push(key)
                self.fail("not in the description")

    def integer(self, t, v):
        if _is_json_int(v):
            negative, m = v < 0, abs(v)
        elif isinstance(v, str):
            negative, m = _decimal_parse(v)
            if m is None:
                self.fail("expected %s, got string (not a decimal integer)" % t.kind)
            if m >= 1 << 64:
                self.fail("out of range for %s" % t.kind)
        else:
            self.fail_type(t, v)
        if (t.kind == "uint" and negative and m > 0) or (
            t.kind == "int" and m > ((1 << 63) if negative else (1 << 63) - 1)
        ):
            self.fail("out of range for %s" % t.kind)

    def bytes_ref(self, v):
        ref = _bytes_ref(v)
        if ref is None:
            self.fail('expected bytes, got object (not {"$bytes":[offset,length]})')
        if self.binary_len is None:
            self.fail("expected bytes, got a $bytes reference in a body that came in its frame")
        offset, length = ref
        if offset > self.binary_len or length > self.binary_len - offset:
            self.fail("bytes %d+%d beyond the binary area (%d bytes)" % (offset, length, self.binary_len))

    def elements(self, t, v):
        if t.kind == "array":
            for i, e in enumerate(v):
                old = self.path.pushf("[%d]" % i)
                self.type(t.elem, e)
                self.path.pop(old)
            return
        for key, member in v.items():
            old = self.path.push(key)
            self.type(t.elem, member)
            self.path.pop(old)

    def type(self, t, v):
        k = t.kind
        if k == "bool":
            if not isinstance(v, bool):
                self.fail_type(t, v)
        elif k in ("int", "uint"):
            self.integer(t, v)
        elif k == "double":
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                self.fail_type(t, v)
        elif k == "string":
            if not isinstance(v, str):
                self.fail_type(t, v)
        elif k == "bytes":
            if isinstance(v, dict):
                self.bytes_ref(v)
            elif isinstance(v, (bytes, bytearray, memoryview)):
                pass  # a Python value that encode did not see: it travels as base64
            elif not isinstance(v, str):
                self.fail_type(t, v)
            elif not _is_base64(v):
                self.fail("expected bytes, got string (not base64)")
        elif k == "fd":
            if not _is_json_int(v):
                self.fail_type(t, v)
            if v < 0 or v >= self.n_fds:
                self.fail(
                    "descriptor index %d is out of range (the message carries %u)"
                    % (min(v, (1 << 63) - 1), self.n_fds)
                )
        elif k == "any":
            pass
        elif k == "optional":
            if v is not None:
                self.type(t.elem, v)
        elif k == "array":
            if not isinstance(v, (list, tuple)):
                self.fail_type(t, v)
            self.elements(t, v)
        elif k == "map":
            if not isinstance(v, dict):
                self.fail_type(t, v)
            self.elements(t, v)
        elif k == "struct":
            if not isinstance(v, dict):
                self.fail_type(t, v)
            self.fields(t.fields, v)
        else:
            self.fail("unknown type")


# ---- Python values to JSON and back -----------------------------------------------------


def _encode(t, v, fds, raw_bytes):
    k = t.kind
    if k in ("int", "uint"):
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > JS_SAFE_INTEGER_MAX:
            return str(v)
        return v
    if k == "bytes":
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v) if raw_bytes else base64.b64encode(bytes(v)).decode("ascii")
        return v
    if k == "fd":
        if fds is None or isinstance(v, bool) or v is None:
            return v
        if not isinstance(v, int):
            if not hasattr(v, "fileno"):
                return v
            v = v.fileno()
        fds.append(v)
        return len(fds) - 1
    if k == "optional":
        return None if v is None else _encode(t.elem, v, fds, raw_bytes)
    if k == "array" and isinstance(v, (list, tuple)):
        return [_encode(t.elem, e, fds, raw_bytes) for e in v]
    if k == "map" and isinstance(v, dict):
        return {key: _encode(t.elem, e, fds, raw_bytes) for key, e in v.items()}
    if k == "struct" and isinstance(v, dict):
        types = {f.name: f.type for f in t.fields}
        return {key: (_encode(types[key], e, fds, raw_bytes) if key in types else e) for key, e in v.items()}
    if isinstance(v, tuple):
        return list(v)
    return v


def _decode(t, v, fds, binary):
    k = t.kind
    if k in ("int", "uint"):
        return int(v) if isinstance(v, str) else v
    if k == "bytes":
        if isinstance(v, str):
            try:
                return base64.b64decode(v, validate=True)
            except binascii.Error:
                return v
        ref = _bytes_ref(v)
        if ref is not None and binary is not None:
            offset, length = ref
            return bytes(binary[offset : offset + length])
        return v
    if k == "fd":
        if fds is not None and _is_json_int(v) and 0 <= v < len(fds):
            return fds[v]
        return v
    if k == "optional":
        return None if v is None else _decode(t.elem, v, fds, binary)
    if k == "array" and isinstance(v, list):
        return [_decode(t.elem, e, fds, binary) for e in v]
    if k == "map" and isinstance(v, dict):
        return {key: _decode(t.elem, e, fds, binary) for key, e in v.items()}
    if k == "struct" and isinstance(v, dict):
        out = dict(v)
        for f in t.fields:
            if f.name in v:
                out[f.name] = _decode(f.type, v[f.name], fds, binary)
            elif f.type.kind == "optional":
                out[f.name] = None
        return out
    return v
