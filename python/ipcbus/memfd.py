"""Bodies in sealed memfds (PROTOCOL.md 14): making one to send, reading
one received, and the bytes of the binary area that ``{"$bytes":[O,L]}``
references name.

The package sends a body in a memfd when its JSON text is at least the
connection's threshold ($IPCBUS_MEMFD_THRESHOLD when the connection opens,
bytes; 0: never; default 256 KiB, libipcbus's), or when the ``bytes``
values of 4096 bytes or more that it keeps apart hold 8 KiB in all, as
libipcbus does. In such a body those values are written raw into the
binary area and referenced; everywhere else ``bytes`` are base64.
"""

import base64
import binascii
import fcntl
import os

from . import _wire

__all__ = ["THRESHOLD_DEFAULT", "threshold_from_env", "make_sealed", "read_body", "bytes_value"]

THRESHOLD_DEFAULT = 256 * 1024
BLOB_MIN = 4096  # a bytes value this long or longer is kept apart
BLOBS_BY_MEMFD = 8192  # blobs this large in all take the body into a memfd below the threshold

# fcntl has these from Python 3.8 on Linux; the numbers are the kernel's.
F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
F_GET_SEALS = getattr(fcntl, "F_GET_SEALS", 1034)
F_SEAL_SEAL = getattr(fcntl, "F_SEAL_SEAL", 0x1)
F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x2)
F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 0x4)
F_SEAL_WRITE = getattr(fcntl, "F_SEAL_WRITE", 0x8)
SEALS_NEEDED = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW


class InvalidBody(Exception):
    """A received body's file breaks PROTOCOL.md 14.1: the message is dropped."""


def threshold_from_env():
    """$IPCBUS_MEMFD_THRESHOLD as libipcbus reads it: decimal bytes, 0
    never; unset or not a number, the default."""
    s = os.environ.get("IPCBUS_MEMFD_THRESHOLD", "")
    if not s.isdigit():
        return THRESHOLD_DEFAULT
    return int(s)


def available():
    return hasattr(os, "memfd_create")


def make_sealed(parts):
    """A new memfd (close-on-exec) holding the concatenated byte strings of
    parts, sealed against writing, shrinking, growing and more seals.
    Returns the descriptor; OSError when the system cannot make one."""
    fd = os.memfd_create("ipcbus-body", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        offset = 0
        for part in parts:
            view = memoryview(part)
            while view:
                n = os.pwrite(fd, view, offset)
                offset += n
                view = view[n:]
        fcntl.fcntl(fd, F_ADD_SEALS, SEALS_NEEDED | F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _pread_all(fd, size):
    """The whole file with pread from offset 0 (never read(2): the file
    offset is shared with every holder of the file, 14.3)."""
    chunks = []
    got = 0
    while got < size:
        chunk = os.pread(fd, min(size - got, 16 * 1024 * 1024), got)
        if not chunk:
            raise InvalidBody("the file ends at %d of %d bytes" % (got, size))
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_body(fd, body_size):
    """Read a received body's file (the caller closes fd): check the seals
    and the size, read it whole with pread from offset 0, check the NUL
    after the text and parse the text. Returns (body dict, binary area
    bytes); InvalidBody when the file breaks 14.1."""
    try:
        seals = fcntl.fcntl(fd, F_GET_SEALS)
    except OSError as e:
        raise InvalidBody("not a sealed memfd: %s" % e)
    if seals & SEALS_NEEDED != SEALS_NEEDED:
        raise InvalidBody("the file lacks seals (has 0x%x)" % seals)
    size = os.fstat(fd).st_size
    if size < body_size + 1 or size > _wire.BODY_MAX:
        raise InvalidBody("the file has %d bytes for a body of %d" % (size, body_size))
    data = _pread_all(fd, size)
    if data[body_size] != 0:
        raise InvalidBody("no NUL after the body's text")
    try:
        body = _wire.json_loads(data[:body_size])
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidBody("the body is not JSON: %s" % e)
    if not isinstance(body, dict):
        raise InvalidBody("the body is not a JSON object")
    # the broker never reads such a body (14.2): section 2 is checked here
    fault = _wire.text_fault(body)
    if fault:
        raise InvalidBody("the body breaks section 2: %s" % fault)
    return body, data[body_size + 1:]


def is_bytes_ref(value):
    """Whether value is a reference {"$bytes":[OFFSET,LENGTH]} (14.5)."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ref = value.get("$bytes")
    return (isinstance(ref, list) and len(ref) == 2 and
            all(type(x) is int and x >= 0 for x in ref))


def bytes_value(value, binary=None):
    """The bytes a received ``bytes`` value holds: a base64 string, or a
    reference into `binary`, the binary area of a body that came in a
    memfd (None: it came in its frame). ValueError when it is neither, or
    lies beyond the area."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("not base64")
    if is_bytes_ref(value):
        offset, length = value["$bytes"]
        if binary is None:
            raise ValueError("a $bytes reference in a body that came in its frame")
        if offset + length > len(binary):
            raise ValueError("bytes %d+%d beyond the binary area (%d bytes)" % (offset, length, len(binary)))
        return binary[offset:offset + length]
    raise ValueError("neither base64 nor a $bytes reference")
