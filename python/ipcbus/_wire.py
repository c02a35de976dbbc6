"""The wire level (PROTOCOL.md sections 1 to 6): constants, name checks,
frames and their incremental reader, canonical headers. Knows nothing of
sockets or of bus semantics."""

import json
import re
import struct

VERSION = 1
MAGIC = b"IPCB"
PREFIX_SIZE = 16
HEADER_MAX = 64 * 1024
CLIENT_HEADER_MAX = HEADER_MAX - 1024
BODY_MAX = 64 * 1024 * 1024
FDS_MAX = 16
DEPTH_MAX = 64
NAME_MAX = 255
PATH_MAX = 1024
TIMEOUT_MS_MAX = 2147483647
SERIAL_MAX = 4294967295
INT_EXACT_MAX = 2 ** 53 - 1  # beyond it integers travel as decimal strings (13.2)

DRIVER_NAME = "org.ipcbus.Bus"
DRIVER_PATH = "/org/ipcbus/Bus"
DRIVER_INTERFACE = "org.ipcbus.Bus"
PEER_INTERFACE = "org.ipcbus.Peer"

_PREFIX = struct.Struct("<4sBBHII")

# The header fields in their canonical order (3.1) and their JSON types.
HEADER_FIELDS = (
    ("sender", str),
    ("sender_uid", int),
    ("sender_pid", int),
    ("type", str),
    ("serial", int),
    ("reply_serial", int),
    ("destination", str),
    ("path", str),
    ("interface", str),
    ("member", str),
    ("error", str),
    ("no_reply", bool),
    ("no_auto_start", bool),
    ("timeout_ms", int),
    ("body_fd", int),
    ("body_size", int),
)

TYPES = ("call", "return", "error", "signal")


class FramingError(Exception):
    """The stream broke PROTOCOL.md section 2: it cannot be read on."""


# ---- names (section 5) ----

_ELEMENT_BUS = r"[A-Za-z0-9_-]+"
_ELEMENT_BUS_NODIGIT = r"[A-Za-z_-][A-Za-z0-9_-]*"
_ELEMENT = r"[A-Za-z_][A-Za-z0-9_]*"
_UNIQUE = re.compile(r":%s(?:\.%s)+\Z" % (_ELEMENT_BUS, _ELEMENT_BUS))
_WELL_KNOWN = re.compile(r"%s(?:\.%s)+\Z" % (_ELEMENT_BUS_NODIGIT, _ELEMENT_BUS_NODIGIT))
_INTERFACE = re.compile(r"%s(?:\.%s)+\Z" % (_ELEMENT, _ELEMENT))
_MEMBER = re.compile(r"%s\Z" % _ELEMENT)
_PATH = re.compile(r"/\Z|(?:/[A-Za-z0-9_]+)+\Z")


def _ascii(s, limit):
    return isinstance(s, str) and 0 < len(s) <= limit and s.isascii()


def is_unique_name(s):
    return _ascii(s, NAME_MAX) and _UNIQUE.match(s) is not None


def is_well_known_name(s):
    return _ascii(s, NAME_MAX) and _WELL_KNOWN.match(s) is not None


def is_bus_name(s):
    return is_unique_name(s) or is_well_known_name(s)


def is_interface_name(s):
    return _ascii(s, NAME_MAX) and _INTERFACE.match(s) is not None


is_error_name = is_interface_name


def is_member_name(s):
    return _ascii(s, NAME_MAX) and _MEMBER.match(s) is not None


def is_object_path(s):
    return _ascii(s, PATH_MAX) and _PATH.match(s) is not None


def path_in_namespace(path, namespace):
    """Whether path is namespace or lies below it ('/' holds every path)."""
    if namespace == "/" or path == namespace:
        return True
    return path.startswith(namespace + "/")


_RULES = {
    "bus name": (is_bus_name, "a unique name (':1.42') or a well-known name ('org.example.Notes'): "
                              "two or more elements of [A-Za-z0-9_-], at most 255 bytes"),
    "well-known name": (is_well_known_name, "two or more elements of [A-Za-z0-9_-] separated by '.', "
                                            "not starting with a digit or ':', at most 255 bytes"),
    "object path": (is_object_path, "'/' or '/'-separated elements of [A-Za-z0-9_], no trailing '/', "
                                    "at most 1024 bytes"),
    "interface name": (is_interface_name, "two or more elements of [A-Za-z0-9_] separated by '.', "
                                          "not starting with a digit, at most 255 bytes"),
    "error name": (is_error_name, "two or more elements of [A-Za-z0-9_] separated by '.', "
                                  "not starting with a digit, at most 255 bytes"),
    "member name": (is_member_name, "one element of [A-Za-z0-9_], not starting with a digit, at most 255 bytes"),
}


def check_name(what, kind, value, optional=False):
    """Raise ValueError naming the argument unless value is a valid `kind`
    (a key of _RULES; None passes when optional). Returns value."""
    if value is None and optional:
        return value
    test, rule = _RULES[kind]
    if not test(value):
        raise ValueError("%s %r: not a valid %s (PROTOCOL.md section 5: %s)" % (what, value, kind, rule))
    return value


# ---- JSON ----

def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def json_loads(data):
    """Parse one JSON text (bytes or str) strictly enough for a receiver:
    NaN and the infinities are refused."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).decode("utf-8")
    return json.loads(data, parse_constant=_reject_constant)


def depth_ok(value, limit=DEPTH_MAX):
    """Whether a parsed JSON value nests arrays and objects at most limit
    deep, the outermost counting as one (section 2)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if depth > limit:
            return False
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True


_SURROGATE = re.compile("[\ud800-\udfff]")


def text_fault(value, limit=DEPTH_MAX):
    """What breaks section 2 in a JSON value (parsed, or about to be sent):
    a NUL character or an unpaired surrogate in a key or a string, or arrays
    and objects nested more than limit deep; None when nothing does. json
    accepts all of these where the protocol does not."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            items = v.items()
        elif isinstance(v, (list, tuple)):
            items = ((None, c) for c in v)
        else:
            continue
        if depth > limit:
            return "nested deeper than %d" % limit
        for k, c in items:
            for t in (k, c):
                if isinstance(t, str) and ("\0" in t or _SURROGATE.search(t)):
                    return "a NUL character or an unpaired surrogate in %r" % (t[:40],)
            if isinstance(c, (dict, list, tuple)):
                stack.append((c, depth + 1))
    return None


def json_dumps(value):
    """Compact JSON text in UTF-8, no NaN, '/' not escaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


# ---- headers and frames ----

def encode_header(fields):
    """The canonical header text (3.1) of a dict of header fields: fields
    in table order, absent and false flags left out."""
    out = {}
    for key, _ in HEADER_FIELDS:
        value = fields.get(key)
        if value is None or value is False:
            continue
        out[key] = value
    return json_dumps(out)


def encode_frame(header, body=b"", n_fds=0):
    """A whole frame: prefix, header bytes, body bytes."""
    if not 2 <= len(header) <= CLIENT_HEADER_MAX:
        raise ValueError("header: %d bytes, more than the %d a client may send" % (len(header), CLIENT_HEADER_MAX))
    if len(body) > BODY_MAX:
        raise ValueError("body: %d bytes, more than the %d a frame may carry" % (len(body), BODY_MAX))
    if n_fds > FDS_MAX:
        raise ValueError("fds: %d descriptors, more than the %d a message may carry" % (n_fds, FDS_MAX))
    return _PREFIX.pack(MAGIC, VERSION, 0, n_fds, len(header), len(body)) + header + body


def decode_header(data):
    """The header dict of a received header text; FramingError when it is
    not a JSON object with an integer serial, ValueError for a field of the
    wrong type (an invalid message: dropped by the caller)."""
    try:
        h = json_loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise FramingError("header is not JSON: %s" % e)
    if not isinstance(h, dict):
        raise FramingError("header is not a JSON object")
    serial = h.get("serial")
    if type(serial) is not int or not 1 <= serial <= SERIAL_MAX:
        raise FramingError("header has no valid serial")
    types = dict(HEADER_FIELDS)
    for key, value in h.items():
        want = types.get(key)
        if want is None:
            raise ValueError("header field %r is unknown" % key)
        if want is int and (type(value) is not int):
            raise ValueError("header field %r is not an integer" % key)
        if want is not int and not isinstance(value, want):
            raise ValueError("header field %r has the wrong type" % key)
    if h.get("type") not in TYPES:
        raise ValueError("header type %r is unknown" % h.get("type"))
    return h


class Frame:
    """One received frame: the header text, the body bytes (b"" for none),
    and the number of descriptors it announced."""

    __slots__ = ("header", "body", "n_fds")

    def __init__(self, header, body, n_fds):
        self.header = header
        self.body = body
        self.n_fds = n_fds


class FrameReader:
    """Cuts frames out of a byte stream fed in pieces of any size."""

    def __init__(self):
        self._buf = bytearray()
        self._need = PREFIX_SIZE  # bytes the next frame needs in all, once its prefix is read

    def wanted(self):
        """How many bytes would complete the frame being read (at least 1)."""
        return max(1, self._need - len(self._buf))

    def feed(self, data):
        self._buf += data

    def next(self):
        """The next whole frame, or None; FramingError on a bad prefix."""
        buf = self._buf
        if len(buf) < PREFIX_SIZE:
            self._need = PREFIX_SIZE
            return None
        magic, version, reserved, n_fds, header_len, body_len = _PREFIX.unpack_from(buf)
        if magic != MAGIC:
            raise FramingError("wrong magic %r" % bytes(magic))
        if version != VERSION:
            raise FramingError("version %d" % version)
        if reserved != 0:
            raise FramingError("reserved byte %d" % reserved)
        if not 2 <= header_len <= HEADER_MAX:
            raise FramingError("header_len %d" % header_len)
        if body_len > BODY_MAX:
            raise FramingError("body_len %d" % body_len)
        if n_fds > FDS_MAX:
            raise FramingError("n_fds %d" % n_fds)
        total = PREFIX_SIZE + header_len + body_len
        self._need = total
        if len(buf) < total:
            return None
        header = bytes(buf[PREFIX_SIZE:PREFIX_SIZE + header_len])
        body = bytes(buf[PREFIX_SIZE + header_len:total])
        del buf[:total]
        self._need = PREFIX_SIZE
        return Frame(header, body, n_fds)
