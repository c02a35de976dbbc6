"""Match rules (PROTOCOL.md section 8): parsed from a dict or the string
form, checked as the broker checks them, written as the JSON object AddMatch
takes, and tested against a message locally, the way the broker does."""

from . import _wire

__all__ = ["Rule"]

_KEYS = {
    "type": None,
    "sender": "bus name",
    "interface": "interface name",
    "member": "member name",
    "path": "object path",
    "path_namespace": "object path",
    "destination": "bus name",
}
ARGS_MAX = 16


class Rule:
    """A checked match rule. ``Rule(spec)`` takes a dict (the JSON form) or
    a string ("type=signal,interface=org.x.I,arg.key='value'"); ValueError
    names what is wrong. With ``default_type``, a rule without "type" gets
    it (subscriptions imply "signal", as libipcbus does)."""

    __slots__ = ("fields", "args")

    def __init__(self, spec, default_type=None):
        if isinstance(spec, Rule):
            self.fields, self.args = dict(spec.fields), dict(spec.args)
        elif isinstance(spec, str):
            self.fields, self.args = {}, {}
            for key, value in _split(spec):
                if key.startswith("arg."):
                    self._add_arg(key[4:], value)
                else:
                    self._set(key, value)
        elif isinstance(spec, dict):
            self.fields, self.args = {}, {}
            for key, value in spec.items():
                if key == "args":
                    if not isinstance(value, dict):
                        raise ValueError("match rule: 'args' must be an object of strings")
                    for k, v in value.items():
                        self._add_arg(k, v)
                else:
                    self._set(key, value)
        else:
            raise TypeError("match rule: a dict or a string expected, got %s" % type(spec).__name__)
        if default_type and "type" not in self.fields:
            self.fields["type"] = default_type
        if "path" in self.fields and "path_namespace" in self.fields:
            raise ValueError("match rule: 'path' and 'path_namespace' exclude each other")

    def _set(self, key, value):
        if key not in _KEYS:
            raise ValueError("match rule: unknown key %r" % key)
        if key in self.fields:
            raise ValueError("match rule: key %r given twice" % key)
        if not isinstance(value, str):
            raise ValueError("match rule: %r must be a string" % key)
        if key == "type":
            if value not in _wire.TYPES:
                raise ValueError("match rule: type %r is not one of %s" % (value, ", ".join(_wire.TYPES)))
        else:
            _wire.check_name("match rule: %s" % key, _KEYS[key], value)
        self.fields[key] = value

    def _add_arg(self, key, value):
        if not isinstance(key, str) or not key:
            raise ValueError("match rule: an argument needs a name")
        if key in self.args:
            raise ValueError("match rule: argument %r given twice" % key)
        if not isinstance(value, str):
            raise ValueError("match rule: argument %r must be a string" % key)
        if len(self.args) >= ARGS_MAX:
            raise ValueError("match rule: more than %d arguments" % ARGS_MAX)
        self.args[key] = value

    def to_json(self):
        """The rule object for AddMatch and RemoveMatch, keys in a fixed order."""
        out = {key: self.fields[key] for key in _KEYS if key in self.fields}
        if self.args:
            out["args"] = {k: self.args[k] for k in sorted(self.args)}
        return out

    def __str__(self):
        parts = ["%s=%s" % (k, _quote(v)) for k, v in self.to_json().items() if k != "args"]
        parts += ["arg.%s=%s" % (k, _quote(v)) for k, v in sorted(self.args.items())]
        return ",".join(parts)

    def __repr__(self):
        return "Rule(%r)" % str(self)

    def __eq__(self, other):
        return isinstance(other, Rule) and self.to_json() == other.to_json()

    def __hash__(self):
        return hash(str(self))

    @property
    def sender(self):
        return self.fields.get("sender")

    def matches(self, msg, owner_of=None):
        """Whether msg matches. A well-known sender is compared with its
        owner as owner_of(name) says (None: unknown, no match). A rule with
        args never matches a body that came in a memfd (section 14.2)."""
        f = self.fields
        if "type" in f and f["type"] != msg.type:
            return False
        for key in ("interface", "member", "path", "destination"):
            if key in f and f[key] != getattr(msg, key):
                return False
        ns = f.get("path_namespace")
        if ns is not None and (msg.path is None or not _wire.path_in_namespace(msg.path, ns)):
            return False
        sender = f.get("sender")
        if sender is not None and sender != msg.sender:
            if msg.sender is None or sender.startswith(":"):
                return False
            if owner_of is None or owner_of(sender) != msg.sender:
                return False
        if self.args:
            if msg.body_in_memfd or not isinstance(msg.body, dict):
                return False
            for k, v in self.args.items():
                if msg.body.get(k) != v:
                    return False
        return True


def _quote(v):
    return "'%s'" % v if ("," in v or "=" in v) else v


def _split(s):
    """The key=value pairs of the string form; values optionally in single quotes."""
    pairs = []
    i, n = 0, len(s)
    while i < n:
        eq = s.find("=", i)
        if eq < 0:
            raise ValueError("match rule %r: %r has no '='" % (s, s[i:]))
        key = s[i:eq]
        j = eq + 1
        if j < n and s[j] == "'":
            end = s.find("'", j + 1)
            if end < 0:
                raise ValueError("match rule %r: unterminated quote" % s)
            value = s[j + 1:end]
            nxt = end + 1
            if nxt < n and s[nxt] != ",":
                raise ValueError("match rule %r: ',' expected after a quoted value" % s)
        else:
            end = s.find(",", j)
            if end < 0:
                end = n
            value = s[j:end]
            nxt = end
        pairs.append((key, value))
        i = nxt + 1 if nxt < n else n
    return pairs
