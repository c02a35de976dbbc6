# SPDX-License-Identifier: MIT
"""ipcbus.iface: descriptions parse as libipcbus parses them (the same
refusals, in the same words), values are checked with libipcbus's rules and
sentences (the cases of tests/check_client_iface.c), types print in their
short form, Python values encode and decode, and descriptions load from the
directories in order. No bus needed."""

import json
import os
import pathlib

import pytest

from ipcbus import iface

REPO = pathlib.Path(__file__).resolve().parents[2]

NOTES = """{
  "interface": "org.example.Notes",
  "doc": "Short notes kept in memory, see https://example.org/notes.",
  "x-vendor": {"anything": [1, 2]},
  "methods": {
    "Add":  {"in": {"text": "string"}, "out": {"id": "uint"}},
    "List": {"out": {"notes": {"array": {"struct": {"id": "uint", "text": "string"}}}}},
    "Get":  {"in": {"id": "uint"}, "out": {"text": "string"}, "deprecated": true},
    "Clear": {"no_reply": true, "x-since": 2},
    "Old": {"unchecked": true}
  },
  "signals": {"Changed": {"args": {"id": "uint"}}},
  "properties": {"Count": {"type": "uint", "access": "read"},
                 "Theme": {"type": {"optional": "string"}, "access": "readwrite", "changes": "invalidate"}}
}
"""


def one_arg(type_json):
    """A description with one method M whose argument x has the type (JSON text)."""
    return '{"interface":"t.T","methods":{"M":{"in":{"x":%s}}}}' % type_json


def type_of(type_json):
    return iface.parse(one_arg(type_json)).methods["M"].in_args["x"]


# ---- parsing ----------------------------------------------------------------------------


def test_parse_notes():
    i = iface.parse(NOTES)
    assert i.name == "org.example.Notes"
    assert list(i.methods) == ["Add", "List", "Get", "Clear", "Old"]
    add = i.methods["Add"]
    assert add.in_args.names == ["text"]
    assert add.in_args["text"].kind == "string"
    assert str(add.out_args["id"]) == "uint"
    assert i.methods["List"].in_args.names == []
    assert str(i.methods["List"].out_args["notes"]) == "array<struct{id: uint, text: string}>"
    assert i.methods["Get"].deprecated and not add.deprecated
    assert i.methods["Clear"].no_reply
    assert i.methods["Old"].unchecked
    assert "Nope" not in i.methods
    assert i.signals["Changed"].args.names == ["id"]
    assert "Add" not in i.signals
    count, theme = i.properties["Count"], i.properties["Theme"]
    assert (count.access, count.changes, count.readable, count.writable) == ("read", "emit", True, False)
    assert (theme.access, theme.changes, theme.readable, theme.writable) == ("readwrite", "invalidate", True, True)
    assert str(theme.type) == "optional<string>"
    assert i.doc == "Short notes kept in memory, see https://example.org/notes."
    # canonical text: plain, "/" not escaped, everything kept (x- keys and doc too)
    assert '"doc":"Short notes kept in memory, see https://example.org/notes."' in i.json
    assert '"x-vendor":{"anything":[1,2]}' in i.json
    assert "\n" not in i.json and ": " not in i.json
    assert iface.parse(i.json).json == i.json
    assert iface.parse(json.loads(NOTES)).json == i.json  # an object already parsed
    assert iface.parse(NOTES.encode()).json == i.json


def test_canonical_text_keeps_order_and_characters():
    i = iface.parse('{"x-b": "caf\u00e9 \\u00e9 \\n / \\"q\\"", "interface": "t.T", "doc": "a\\/b"}')
    assert i.json == '{"x-b":"caf\u00e9 \u00e9 \\n / \\"q\\"","interface":"t.T","doc":"a/b"}'


PARSE_CASES = [
    ("", "not a JSON text: unexpected end of text"),
    ("[]", "a description is a JSON object"),
    ("{}", 'missing key "interface"'),
    ('{"interface":"nodots"}', "interface: expected an interface name (section 5 of PROTOCOL.md)"),
    ('{"interface":5}', "interface: expected an interface name (section 5 of PROTOCOL.md)"),
    ('{"interface":"t.T","colour":1}', "colour: unknown key"),
    ('{"interface":"t.T","deprecated":"yes"}', "deprecated: expected true or false"),
    ('{"interface":"t.T","doc":5}', "doc: expected a string"),
    ('{"interface":"t.T","methods":[]}', "methods: expected an object of named members"),
    ('{"interface":"t.T","methods":{"1Add":{}}}', "methods.1Add: not a valid member name (section 5 of PROTOCOL.md)"),
    ('{"interface":"t.T","methods":{"Add":5}}', "methods.Add: expected an object"),
    ('{"interface":"t.T","methods":{"Add":{"inn":{}}}}', "methods.Add.inn: unknown key"),
    ('{"interface":"t.T","methods":{"Add":{"in":{"text":"strin"}}}}', "methods.Add.in.text: unknown type 'strin'"),
    ('{"interface":"t.T","methods":{"Add":{"in":["string"]}}}', "methods.Add.in: expected an object of named types"),
    ('{"interface":"t.T","methods":{"Add":{"no_reply":1}}}', "methods.Add.no_reply: expected true or false"),
    (
        '{"interface":"t.T","methods":{"Add":{"unchecked":true,"in":{}}}}',
        'methods.Add: an unchecked method describes no "in" or "out"',
    ),
    (one_arg('"uint"'), None),
    (
        '{"interface":"t.T","methods":{"M":{"in":{"1x":"uint"}}}}',
        "methods.M.in.1x: not a valid name ([A-Za-z_][A-Za-z0-9_]*, at most 255 bytes)",
    ),
    (one_arg("5"), 'methods.M.in.x: a type is a name ("uint") or an object ({"array": "uint"})'),
    (one_arg("{}"), "methods.M.in.x: a type object has one key of array, map, optional, struct"),
    (
        one_arg('{"array":"uint","map":"uint"}'),
        "methods.M.in.x: a type object has one key of array, map, optional, struct, not two",
    ),
    (one_arg('{"arrray":"uint"}'), "methods.M.in.x: unknown type 'arrray'"),
    (one_arg('{"array":{"struct":{"id":"uitn"}}}'), "methods.M.in.x.array.struct.id: unknown type 'uitn'"),
    (one_arg('{"struct":["uint"]}'), "methods.M.in.x.struct: expected an object of named types"),
    (one_arg('{"map":"int","doc":3}'), "methods.M.in.x.doc: expected a string"),
    # every key of a type object is looked at before its inner type
    (one_arg('{"array":"uitn","zz":1}'), "methods.M.in.x: unknown type 'zz'"),
    (one_arg('"%s"' % ("u" * 100)), "methods.M.in.x: unknown type '%s'" % ("u" * 64)),
    ('{"interface":"t.T","signals":{"Changed":{"arg":{}}}}', "signals.Changed.arg: unknown key"),
    (
        '{"interface":"t.T","signals":{"Changed":{"args":{"id":"unit"}}}}',
        "signals.Changed.args.id: unknown type 'unit'",
    ),
    ('{"interface":"t.T","properties":{"P":{"access":"read"}}}', 'properties.P: missing key "type"'),
    ('{"interface":"t.T","properties":{"P":{"type":"uint"}}}', 'properties.P: missing key "access"'),
    ('{"interface":"t.T","properties":{"P":{"type":"uint","access":""}}}', 'properties.P: missing key "access"'),
    (
        '{"interface":"t.T","properties":{"P":{"type":"uint","access":"rw"}}}',
        'properties.P.access: expected "read", "write" or "readwrite"',
    ),
    (
        '{"interface":"t.T","properties":{"P":{"type":"uint","access":"read","changes":"never"}}}',
        'properties.P.changes: expected "emit", "invalidate", "const" or "none"',
    ),
    (
        '{"interface":"t.T","properties":{"P":{"type":"uint","access":"read","kind":1}}}',
        "properties.P.kind: unknown key",
    ),
    # extensions are ignored everywhere
    (
        '{"interface":"t.T","x-a":1,"methods":{"x-b":1,"M":{"x-c":1,"in":{"x-d":1,'
        '"v":{"array":"uint","x-e":1,"doc":"d"}}}},'
        '"properties":{"P":{"type":"uint","access":"write","x-f":[]}}}',
        None,
    ),
    ("{} x", "not a JSON text: text after the JSON value"),
    ("[" * 65 + "]" * 65, "not a JSON text: nesting too deep"),
]


@pytest.mark.parametrize("text,error", PARSE_CASES)
def test_parse_refusals(text, error):
    if error is None:
        assert isinstance(iface.parse(text), iface.Interface)
        return
    with pytest.raises(iface.DescriptionError) as e:
        iface.parse(text)
    assert str(e.value) == error


def test_parse_depth_limit_allows_64():
    deep = '{"interface":"t.T","x-deep":' + "[" * 63 + "]" * 63 + "}"
    assert iface.parse(deep).name == "t.T"
    with pytest.raises(iface.DescriptionError, match="nesting too deep"):
        iface.parse('{"interface":"t.T","x-deep":' + "[" * 64 + "]" * 64 + "}")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_parse_refuses_what_json_has_not(value):
    with pytest.raises(iface.DescriptionError, match="^not a JSON text: "):
        iface.parse('{"interface":"t.T","x-n":%s}' % value)


def test_parse_bad_utf8():
    with pytest.raises(iface.DescriptionError, match="^not a JSON text: "):
        iface.parse(b'{"interface":"t.T","doc":"\xff"}')


def test_description_error_is_a_value_error():
    assert issubclass(iface.DescriptionError, ValueError)
    assert issubclass(iface.CheckError, ValueError)


# ---- the shipped descriptions ------------------------------------------------------------


def test_shipped_files_parse_and_load(monkeypatch):
    d = REPO / "interfaces"
    monkeypatch.setenv("IPCBUS_INTERFACE_PATH", str(d))
    files = sorted(d.glob("*.json"))
    assert len(files) == 5
    for path in files:
        i = iface.parse(path.read_text())
        assert path.name == i.name + ".json"
        assert iface.load(i.name).json == i.json


def test_standard_interfaces_match_the_files():
    for name in (iface.INTROSPECTABLE, iface.PROPERTIES, iface.OBJECT_MANAGER, iface.PEER):
        text = (REPO / "interfaces" / (name + ".json")).read_text()
        assert iface.standard(name).json == iface.parse(text).json
        assert iface.standard(name) is iface.standard(name)
    with pytest.raises(KeyError):
        iface.standard("org.ipcbus.Bus")


def test_notes_example_parses():
    i = iface.parse((REPO / "examples" / "notes" / "org.example.Notes.json").read_text())
    assert sorted(i.methods) == ["Add", "Clear", "Get", "List"]
    assert i.properties["Count"].changes == "emit"


# ---- checking values --------------------------------------------------------------------


SCALAR_CASES = [
    ('"bool"', "true", 0, None),
    ('"bool"', "1", 0, "argument 'x': expected bool, got integer"),
    ('"bool"', "null", 0, "argument 'x': expected bool, got null"),
    ('"int"', "-5", 0, None),
    ('"int"', "9007199254740993", 0, None),
    ('"int"', '"9223372036854775807"', 0, None),
    ('"int"', '"-9223372036854775808"', 0, None),
    ('"int"', '"-0"', 0, None),
    ('"int"', '"9223372036854775808"', 0, "argument 'x': out of range for int"),
    ('"int"', '"-9223372036854775809"', 0, "argument 'x': out of range for int"),
    ('"int"', "9223372036854775808", 0, "argument 'x': out of range for int"),
    ('"int"', "3.0", 0, "argument 'x': expected int, got number"),
    ('"int"', '"12a"', 0, "argument 'x': expected int, got string (not a decimal integer)"),
    ('"int"', '""', 0, "argument 'x': expected int, got string (not a decimal integer)"),
    ('"int"', '"-"', 0, "argument 'x': expected int, got string (not a decimal integer)"),
    ('"int"', '"+1"', 0, "argument 'x': expected int, got string (not a decimal integer)"),
    ('"int"', '" 1"', 0, "argument 'x': expected int, got string (not a decimal integer)"),
    ('"int"', "true", 0, "argument 'x': expected int, got boolean"),
    # libipcbus stops at 64 bits before it sees what follows
    ('"int"', '"99999999999999999999x"', 0, "argument 'x': out of range for int"),
    ('"uint"', "0", 0, None),
    ('"uint"', "18446744073709551615", 0, None),
    ('"uint"', '"18446744073709551615"', 0, None),
    ('"uint"', '"-0"', 0, None),
    ('"uint"', '"18446744073709551616"', 0, "argument 'x': out of range for uint"),
    ('"uint"', "18446744073709551616", 0, "argument 'x': expected uint, got number"),
    ('"uint"', "-1", 0, "argument 'x': out of range for uint"),
    ('"uint"', '"-1"', 0, "argument 'x': out of range for uint"),
    ('"uint"', "1.5", 0, "argument 'x': expected uint, got number"),
    ('"uint"', "{}", 0, "argument 'x': expected uint, got object"),
    ('"double"', "1.5", 0, None),
    ('"double"', "2", 0, None),
    ('"double"', "1e300", 0, None),
    ('"double"', '"1.5"', 0, "argument 'x': expected double, got string"),
    ('"double"', "false", 0, "argument 'x': expected double, got boolean"),
    ('"string"', '"a"', 0, None),
    ('"string"', "null", 0, "argument 'x': expected string, got null"),
    ('"string"', "[]", 0, "argument 'x': expected string, got array"),
    ('"bytes"', '"aGVsbG8="', 0, None),
    ('"bytes"', '"aGk="', 0, None),
    ('"bytes"', '""', 0, None),
    ('"bytes"', '"+/+/"', 0, None),
    ('"bytes"', '"aGVsbG8"', 0, "argument 'x': expected bytes, got string (not base64)"),
    ('"bytes"', '"aGV*bG8="', 0, "argument 'x': expected bytes, got string (not base64)"),
    ('"bytes"', '"a==="', 0, "argument 'x': expected bytes, got string (not base64)"),
    ('"bytes"', '"aG-_"', 0, "argument 'x': expected bytes, got string (not base64)"),
    ('"bytes"', '"===="', 0, "argument 'x': expected bytes, got string (not base64)"),
    ('"bytes"', "5", 0, "argument 'x': expected bytes, got integer"),
    ('"fd"', "0", 1, None),
    ('"fd"', "2", 3, None),
    ('"fd"', "1", 1, "argument 'x': descriptor index 1 is out of range (the message carries 1)"),
    ('"fd"', "-1", 1, "argument 'x': descriptor index -1 is out of range (the message carries 1)"),
    ('"fd"', "0", 0, "argument 'x': descriptor index 0 is out of range (the message carries 0)"),
    ('"fd"', '"0"', 1, "argument 'x': expected fd, got string"),
    ('"fd"', "true", 1, "argument 'x': expected fd, got boolean"),
    ('"any"', "null", 0, None),
    ('"any"', '{"a":[1,"b"]}', 0, None),
]


@pytest.mark.parametrize("type_json,value,n_fds,error", SCALAR_CASES)
def test_check_scalars(type_json, value, n_fds, error):
    t = type_of(type_json)
    v = json.loads(value)
    if error is None:
        t.check(v, "x", n_fds=n_fds)
        return
    with pytest.raises(iface.CheckError) as e:
        t.check(v, "x", n_fds=n_fds)
    assert str(e.value) == error


BYTES_REF_CASES = [
    ('{"$bytes":[2,8]}', 10, None),
    ('{"$bytes":[10,0]}', 10, None),
    ('{"$bytes":[0,0]}', 0, None),
    ('{"$bytes":[4,8]}', 10, "argument 'x': bytes 4+8 beyond the binary area (10 bytes)"),
    ('{"$bytes":[11,0]}', 10, "argument 'x': bytes 11+0 beyond the binary area (10 bytes)"),
    ('{"$bytes":[0,0]}', None, "argument 'x': expected bytes, got a $bytes reference in a body that came in its frame"),
    ('{"$bytes":[0]}', 10, "argument 'x': expected bytes, got object (not {\"$bytes\":[offset,length]})"),
    ('{"$bytes":[0,1],"more":1}', 10, "argument 'x': expected bytes, got object (not {\"$bytes\":[offset,length]})"),
    ('{"$bytes":[-1,1]}', 10, "argument 'x': expected bytes, got object (not {\"$bytes\":[offset,length]})"),
    ('{"$bytes":[true,1]}', 10, "argument 'x': expected bytes, got object (not {\"$bytes\":[offset,length]})"),
    ("{}", 10, "argument 'x': expected bytes, got object (not {\"$bytes\":[offset,length]})"),
    ('"aGk="', 10, None),
]


@pytest.mark.parametrize("value,binary_len,error", BYTES_REF_CASES)
def test_check_bytes_refs(value, binary_len, error):
    t = type_of('"bytes"')
    v = json.loads(value)
    if error is None:
        t.check(v, "x", binary_len=binary_len)
        return
    with pytest.raises(iface.CheckError) as e:
        t.check(v, "x", binary_len=binary_len)
    assert str(e.value) == error


NOTES_T = '{"array":{"struct":{"id":"uint","text":"string"}}}'

COMPOSITE_CASES = [
    ('{"optional":"uint"}', "null", "x", False, 0, None),
    ('{"optional":"uint"}', "5", "x", False, 0, None),
    ('{"optional":"uint"}', "true", "x", False, 0, "argument 'x': expected uint, got boolean"),
    (NOTES_T, '[{"id":1,"text":"a"},{"id":"2","text":"b"}]', "notes", False, 0, None),
    (NOTES_T, "[]", "notes", False, 0, None),
    (
        NOTES_T,
        '[{"id":1,"text":"a"},{"id":2,"text":"b"},{"id":"z","text":"c"}]',
        "notes",
        False,
        0,
        "argument 'notes[2].id': expected uint, got string (not a decimal integer)",
    ),
    (NOTES_T, '[{"id":1}]', "notes", False, 0, "argument 'notes[0].text': missing (expected string)"),
    (NOTES_T, "{}", "notes", False, 0, "argument 'notes': expected array<struct{id: uint, text: string}>, got object"),
    (NOTES_T, "[5]", "notes", False, 0, "argument 'notes[0]': expected struct{id: uint, text: string}, got integer"),
    ('{"map":"string"}', '{"theme":"dark","font":"mono"}', "settings", False, 0, None),
    ('{"map":"string"}', '{"theme":5}', "settings", False, 0,
     "argument 'settings.theme': expected string, got integer"),
    ('{"map":"string"}', "[]", "settings", False, 0, "argument 'settings': expected map<string>, got array"),
    ('{"map":{"array":"fd"}}', '{"a":[0,1]}', "fds", False, 2, None),
    (
        '{"map":{"array":"fd"}}',
        '{"a":[0,2]}',
        "fds",
        False,
        2,
        "argument 'fds.a[1]': descriptor index 2 is out of range (the message carries 2)",
    ),
    ('{"struct":{"id":"uint","note":{"optional":"string"}}}', '{"id":1}', "p", False, 0, None),
    ('{"struct":{"id":"uint","note":{"optional":"string"}}}', '{"id":1,"note":null}', "p", True, 0, None),
    ('{"struct":{"id":"uint"}}', '{"id":1,"extra":2}', "p", False, 0, None),
    ('{"struct":{"id":"uint"}}', '{"id":1,"extra":2}', "p", True, 0, "argument 'p.extra': not in the description"),
    ('{"struct":{"id":"uint"}}', '{"id":null}', "p", False, 0, "argument 'p.id': expected uint, got null"),
    ('{"array":{"struct":{"id":"uint"}}}', '[{"id":1},{"id":2,"x":0}]', "l", True, 0,
     "argument 'l[1].x': not in the description"),
    # a map's keys are its own, strict or not
    ('{"map":"uint"}', '{"any":1,"key":2}', "m", True, 0, None),
]


@pytest.mark.parametrize("type_json,value,where,strict,n_fds,error", COMPOSITE_CASES)
def test_check_composites(type_json, value, where, strict, n_fds, error):
    t = type_of(type_json)
    v = json.loads(value)
    if error is None:
        t.check(v, where, strict=strict, n_fds=n_fds)
        return
    with pytest.raises(iface.CheckError) as e:
        t.check(v, where, strict=strict, n_fds=n_fds)
    assert str(e.value) == error


def test_check_value_default_name():
    with pytest.raises(iface.CheckError, match=r"^argument 'value': expected uint, got string \(not a decimal"):
        type_of('"uint"').check("x")


def test_check_args():
    i = iface.parse(NOTES)
    add_in = i.methods["Add"].in_args
    add_in.check({"text": "hi"}, strict=True)
    # a newer caller's extra argument: ignored on receipt, refused when sending
    add_in.check({"text": "hi", "tags": []})
    with pytest.raises(iface.CheckError, match=r"^argument 'tags': not in the description$"):
        add_in.check({"text": "hi", "tags": []}, strict=True)
    with pytest.raises(iface.CheckError, match=r"^argument 'text': missing \(expected string\)$"):
        add_in.check(None)
    with pytest.raises(iface.CheckError, match=r"^the body is not a JSON object but array$"):
        add_in.check([])
    i.methods["List"].in_args.check(None, strict=True)
    i.methods["List"].out_args.check({"notes": [{"id": 1, "text": "a"}]}, strict=True)
    # the first field that does not fit, in the order written
    get_out = iface.parse(one_arg('"uint"').replace('"in"', '"out"')).methods["M"].out_args
    with pytest.raises(iface.CheckError, match="^argument 'x': missing"):
        get_out.check({"y": 1})


def test_interface_check():
    i = iface.parse(NOTES)
    i.check("call", "Add", '{"text":"hi"}')
    i.check("call", "Add", {"text": "hi", "new": 1})
    with pytest.raises(iface.CheckError) as e:
        i.check("call", "Add", '{"text":5}')
    assert str(e.value) == "argument 'text': expected string, got integer"
    i.check("return", "Add", '{"id":"18446744073709551615"}')
    i.check("return", "Add", '{"id":18446744073709551615}')
    # beyond 64 bits is out of range, not the nearest bound
    with pytest.raises(iface.CheckError, match=r"^argument 'id': expected uint, got number$"):
        i.check("return", "Add", '{"id":18446744073709551616}')
    with pytest.raises(iface.CheckError, match=r"^argument 'id': missing \(expected uint\)$"):
        i.check("return", "Add", "{}")
    with pytest.raises(iface.CheckError, match=r"^argument 'id': missing \(expected uint\)$"):
        i.check("signal", "Changed", None)
    i.check("call", "List", None)
    i.check("call", "List", "")
    i.check("call", "Old", {"a": 1})  # an unchecked method takes anything
    with pytest.raises(KeyError, match="interface org.example.Notes has no method 'Nope'"):
        i.check("call", "Nope", None)
    with pytest.raises(KeyError, match="has no signal 'Add'"):
        i.check("signal", "Add", None)
    with pytest.raises(ValueError):
        i.check("error", "Add", None)
    with pytest.raises(iface.DescriptionError, match="^not a JSON text"):
        i.check("call", "Add", '{"text":')


TYPE_FORMATS = [
    ('"uint"', "uint"),
    ('"any"', "any"),
    ('{"map":"string"}', "map<string>"),
    ('{"optional":"bytes"}', "optional<bytes>"),
    ('{"map":{"array":"fd"}}', "map<array<fd>>"),
    ('{"struct":{}}', "struct{}"),
    ('{"array":{"struct":{"id":"uint","text":"string"}}}', "array<struct{id: uint, text: string}>"),
    (
        '{"struct":{"p":{"struct":{"x":"double","y":"double"}},"ok":"bool","n":"int"}}',
        "struct{p: struct{x: double, y: double}, ok: bool, n: int}",
    ),
]


@pytest.mark.parametrize("type_json,short", TYPE_FORMATS)
def test_type_format(type_json, short):
    assert str(type_of(type_json)) == short


def test_long_paths_are_cut_as_libipcbus_cuts_them():
    name = "k" * 600
    t = type_of('{"map":"uint"}')
    with pytest.raises(iface.CheckError) as e:
        t.check({name: "z"}, "m")
    assert str(e.value) == "argument '%s': expected uint, got string (not a decimal integer)" % ("m." + name)[:511]


# ---- Python values ----------------------------------------------------------------------


def test_encode_and_decode():
    t = type_of(
        '{"struct":{"n":"uint","i":"int","small":"int","data":"bytes","list":{"array":"uint"},'
        '"maybe":{"optional":"bytes"},"gone":{"optional":"uint"},"f":"fd"}}'
    )
    fds = []
    r, w = os.pipe()
    try:
        value = {
            "n": 2**64 - 1,
            "i": -(2**53),
            "small": 2**53 - 1,
            "data": b"\x00\xffhi",
            "list": (1, 2**60),
            "maybe": bytearray(b"x"),
            "f": os.fdopen(w, "wb", closefd=False),
            "extra": "kept",
        }
        wire = t.encode(value, fds)
        assert wire == {
            "n": "18446744073709551615",
            "i": "-9007199254740992",
            "small": 9007199254740991,
            "data": "AP9oaQ==",
            "list": [1, "1152921504606846976"],
            "maybe": "eA==",
            "f": 0,
            "extra": "kept",
        }
        assert fds == [w]
        json.dumps(wire)  # plain JSON
        t.check(wire, "v", n_fds=1)
        back = t.decode(json.loads(json.dumps(wire)), fds=[r])
        assert back["n"] == 2**64 - 1 and back["i"] == -(2**53) and back["small"] == 2**53 - 1
        assert back["data"] == b"\x00\xffhi" and back["maybe"] == b"x" and back["gone"] is None
        assert back["list"] == [1, 2**60]
        assert back["f"] == r
        assert back["extra"] == "kept"
    finally:
        os.close(r)
        os.close(w)


def test_encode_without_fds_keeps_indexes_and_decode_reads_bytes_refs():
    t = type_of('{"struct":{"f":"fd","b":"bytes"}}')
    assert t.encode({"f": 3, "b": b""}) == {"f": 3, "b": ""}
    assert t.decode({"f": 0, "b": {"$bytes": [2, 3]}}, binary=b"..abc..") == {"f": 0, "b": b"abc"}


def test_args_encode_decode_and_big_integers_out_of_range():
    i = iface.parse(NOTES)
    out = i.methods["Add"].out_args
    assert out.encode({"id": 2**64}) == {"id": "18446744073709551616"}
    with pytest.raises(iface.CheckError, match=r"^argument 'id': out of range for uint$"):
        out.check(out.encode({"id": 2**64}), strict=True)
    assert out.decode({"id": "7"}) == {"id": 7}
    theme = iface.parse(NOTES).properties["Theme"].type
    assert theme.decode(None) is None


# ---- loading ----------------------------------------------------------------------------


def test_load(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "org.example.Notes.json").write_text(NOTES)
    (b / "org.example.Notes.json").write_text('{"interface":"org.example.Notes","doc":"second"}')
    (b / "org.example.Other.json").write_text('{"interface":"org.example.Else"}')
    (b / "org.example.Broken.json").write_text('{"interface":"org.example.Broken","methods":{"M":{"in":5}}}')
    (b / "org.example.Nul.json").write_bytes(b'{"interface":"org.example.Nul"}\0')
    (b / "org.example.Big.json").write_text(" " * (1024 * 1024) + '{"interface":"org.example.Big"}')

    # the first directory that has it wins; empty elements and missing directories are skipped
    monkeypatch.setenv("IPCBUS_INTERFACE_PATH", "::/nonexistent:%s:%s" % (a, b))
    assert "Add" in iface.load("org.example.Notes").methods
    monkeypatch.setenv("IPCBUS_INTERFACE_PATH", "%s:%s" % (b, a))
    assert "Add" not in iface.load("org.example.Notes").methods
    assert iface.interface_dirs()[:2] == [str(b), str(a)]
    assert iface.interface_dirs()[2:] == list(iface.INSTALL_DIRS)

    with pytest.raises(iface.DescriptionError) as e:
        iface.load("org.example.Other")
    assert str(e.value) == "%s/org.example.Other.json: describes org.example.Else, not org.example.Other" % b
    with pytest.raises(iface.DescriptionError) as e:
        iface.load("org.example.Broken")
    assert str(e.value) == "%s/org.example.Broken.json: methods.M.in: expected an object of named types" % b
    with pytest.raises(iface.DescriptionError) as e:
        iface.load("org.example.Nul")
    assert str(e.value) == "%s/org.example.Nul.json: not a JSON text: a NUL byte" % b
    with pytest.raises(iface.DescriptionError) as e:
        iface.load("org.example.Big")
    assert str(e.value) == "%s/org.example.Big.json: larger than 1048576 bytes" % b
    with pytest.raises(iface.NotFound) as e:
        iface.load("org.example.Missing")
    assert str(e.value).startswith(
        "interface org.example.Missing: no org.example.Missing.json in $IPCBUS_INTERFACE_PATH or "
    )
    assert isinstance(e.value, LookupError)
    for bad in ("../etc/passwd", "nodots", None, "a." + "b" * 300):
        with pytest.raises(iface.DescriptionError, match="not a valid interface name"):
            iface.load(bad)


def test_load_unreadable_file(tmp_path, monkeypatch):
    (tmp_path / "org.example.Dir.json").mkdir()
    monkeypatch.setenv("IPCBUS_INTERFACE_PATH", str(tmp_path))
    with pytest.raises(iface.DescriptionError) as e:
        iface.load("org.example.Dir")
    assert str(e.value) == "%s/org.example.Dir.json: Is a directory" % tmp_path
