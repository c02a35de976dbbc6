#!/usr/bin/env python3
"""Write the seed corpora of the libFuzzer targets: corpus/<target>/<name>.

Run from anywhere; it writes next to itself and reads the golden frames of
tests/data and the interface descriptions of interfaces/ and examples/notes/. The input layouts are those described at the top of each
fuzz-*.c. Frames are built here independently of the C codec, as
tests/data/make-golden.py does.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
TOP = os.path.join(HERE, "..", "..")

DRIVER = '"destination":"org.ipcbus.Bus","path":"/org/ipcbus/Bus"'


def frame(header, body="", n_fds=0, magic=b"IPCB", version=1, header_len=None):
    h = header.encode("utf-8") if isinstance(header, str) else header
    b = body.encode("utf-8") if isinstance(body, str) else body
    hl = len(h) if header_len is None else header_len
    return magic + struct.pack("<BBHII", version, 0, n_fds, hl, len(b)) + h + b


def call(serial, member, body="", extra=""):
    return frame('{"type":"call","serial":%d,%s,"member":"%s"%s}' % (serial, DRIVER, member, extra), body)


def to(serial, dest, path, iface, member, body="", extra=""):
    return frame('{"type":"call","serial":%d,"destination":"%s","path":"%s","interface":"%s","member":"%s"%s}'
                 % (serial, dest, path, iface, member, extra), body)


def signal(serial, member, body="", extra=""):
    return frame('{"type":"signal","serial":%d,"path":"/org/fuzz","interface":"org.fuzz.I","member":"%s"%s}'
                 % (serial, member, extra), body)


def reply(serial, reply_serial, dest, body=""):
    return frame('{"type":"return","serial":%d,"reply_serial":%d,"destination":"%s"}' % (serial, reply_serial, dest),
                 body)


HELLO = call(1, "Hello")
DEEP_OK = '{"a":' + "[" * 62 + "1" + "]" * 62 + "}"      # 63 levels: within the limit of 64
DEEP_BAD = '{"a":' + "[" * 64 + "1" + "]" * 64 + "}"     # 65 levels: too deep

# Streams a peer may send: the frame target and the daemon target both start from these.
STREAMS = {
    "hello": HELLO,
    "call": to(2, "org.example.Echo", "/org/example/Echo", "org.example.Echo", "Echo", '{"data":"hi"}',
               ',"timeout_ms":5000'),
    "signal": signal(3, "Changed", '{"title":"hello","count":3}'),
    "signal-unicast": signal(4, "Poke", "{}", ',"destination":":1.1"'),
    "reply": reply(5, 2, ":1.1", '{"ok":true}'),
    "error": frame('{"type":"error","serial":6,"reply_serial":2,"destination":":1.1",'
                   '"error":"org.ipcbus.Error.Failed"}', '{"message":"no"}'),
    "noreply": frame('{"type":"call","serial":7,"destination":":1.1","path":"/","member":"Poke",'
                     '"no_reply":true,"no_auto_start":false}', "{}"),
    "stamped": frame('{"sender":":1.7","sender_uid":1000,"sender_pid":4242,"type":"signal","serial":9,'
                     '"path":"/a","interface":"a.b","member":"C"}'),
    "escapes": frame('{"type":"signal","serial":10,"path":"\\/a","interface":"a.b","mem\\u0062er":"C"}',
                     '{"text":"gr\\u00fc\\u00dfe \\ud83d\\ude00","n":[1,2.5e3,-0,true,false,null]}'),
    "whitespace": frame(' {\n "type" : "signal" ,\t"serial":11, "path":"/", "interface":"a.b", "member":"C" }\r\n',
                        ' { } '),
    "deep-json": signal(12, "Deep", DEEP_OK),
    "deep-json-over": signal(13, "Deep", DEEP_BAD),
    "bad-utf8": signal(14, "Text", b'{"t":"\xc3\x28 \xed\xa0\x80 \xc0\xaf"}'),
    "bad-surrogate": signal(15, "Text", '{"t":"\\ud800x"}'),
    "nul-escape": signal(16, "Text", '{"t":"a\\u0000b"}'),
    "body-not-object": signal(17, "Array", "[1,2]"),
    "header-not-object": frame('["type","call"]'),
    "no-serial": frame('{"type":"call","path":"/","member":"M"}'),
    "duplicate-field": frame('{"type":"call","serial":1,"serial":2,"path":"/","member":"M"}'),
    "unknown-type": frame('{"type":"shout","serial":18,"path":"/","member":"M"}'),
    "bad-names": frame('{"type":"call","serial":19,"destination":"1bad..name","path":"//x/","member":"9"}'),
    "fds-mismatch": frame('{"type":"signal","serial":20,"path":"/","interface":"a.b","member":"Fd"}', "{}", n_fds=1),
    "too-many-fds": frame('{"type":"signal","serial":21,"path":"/","interface":"a.b","member":"Fd"}', "", n_fds=17),
    # PROTOCOL.md 14: the body in the last descriptor; then one that also carries a body, one not the last
    "memfd-body": frame('{"type":"signal","serial":24,"path":"/","interface":"a.b","member":"Big",'
                        '"body_fd":1,"body_size":1048576}', "", n_fds=2),
    "memfd-body-bad": frame('{"type":"call","serial":25,"path":"/","member":"M","body_fd":0,"body_size":2}', "{}",
                            n_fds=2),
    "bad-magic": frame('{"type":"call","serial":22,"path":"/","member":"M"}', magic=b"DBUS"),
    "bad-version": frame('{"type":"call","serial":23,"path":"/","member":"M"}', version=2),
    "header-too-large": frame("{}", header_len=64513)[:16],
    "truncated": HELLO[:40],
    "garbage": b"GET / HTTP/1.1\r\nHost: bus\r\n\r\n",
}

FRAME_SEEDS = {}
for name in sorted(os.listdir(DATA)):
    if name.endswith(".frame"):
        with open(os.path.join(DATA, name), "rb") as f:
            FRAME_SEEDS["golden-" + name[:-len(".frame")]] = b"\x00" + f.read()
for name, stream in STREAMS.items():
    FRAME_SEEDS[name] = b"\x00" + stream
# byte 0: n chunk sizes follow (bits 0-2), client header limit (bit 3), 4 KiB bodies (bit 4)
FRAME_SEEDS["split-mid-prefix"] = bytes([2, 5, 11]) + HELLO + STREAMS["signal"]
FRAME_SEEDS["one-byte-reads"] = bytes([1, 1]) + STREAMS["call"]
FRAME_SEEDS["several-frames"] = bytes([3, 0, 7, 200]) + HELLO + STREAMS["call"] + STREAMS["reply"] + STREAMS["error"]
FRAME_SEEDS["client-limits"] = bytes([8 | 16]) + STREAMS["signal"] + frame("{}", "x" * 5000)

# Daemon: byte 0 = Hello first (1), a receiver (2), write size (bits 2-4), fds (bits 5-6), fds every write (7)
HELLO_FIRST, RECEIVER = 1, 2
WRITE_1, WRITE_3, WRITE_16 = 1 << 2, 2 << 2, 3 << 2
ONE_FD, TWO_FDS, TOO_MANY_FDS = 1 << 5, 2 << 5, 3 << 5
ME = ":1.2"  # the fuzzed connection's name when the receiver (":1.1") is there
DAEMON_SEEDS = {
    "hello": bytes([0]) + HELLO + call(2, "GetId") + call(3, "ListNames"),
    "before-hello": bytes([0]) + call(1, "ListNames"),
    "second-hello": bytes([HELLO_FIRST]) + call(2, "Hello"),
    "driver-calls": bytes([HELLO_FIRST]) + b"".join([
        call(2, "RequestName", '{"name":"org.fuzz.A","flags":4}'),
        call(3, "RequestName", '{"name":"org.fuzz.A","flags":3}'),
        call(4, "ListQueuedOwners", '{"name":"org.fuzz.A"}'),
        call(5, "GetNameOwner", '{"name":"org.fuzz.A"}'),
        call(6, "NameHasOwner", '{"name":"org.fuzz.B"}'),
        call(7, "GetConnectionCredentials", '{"name":"org.ipcbus.Bus"}'),
        call(8, "ReleaseName", '{"name":"org.fuzz.A"}'),
        call(9, "AddMatch", '{"rule":{"type":"signal","member":"Changed","args":{"title":"hello"}}}'),
        call(10, "RemoveMatch", '{"rule":{"type":"signal","member":"Changed","args":{"title":"hello"}}}'),
        call(11, "RemoveMatch", '{"rule":{}}'),
        call(12, "ListActivatableNames"),
        call(13, "Ping", "", ',"interface":"org.ipcbus.Peer"'),
        call(14, "Nope"),
        call(15, "RequestName", '{"name":":1.9"}'),
        call(16, "AddMatch", '{"rule":{"path":"/a","path_namespace":"/a"}}'),
    ]),
    "monitor": bytes([HELLO_FIRST | RECEIVER]) + call(2, "BecomeMonitor", '{"rules":[{"type":"signal"},{}]}')
    + signal(3, "AfterMonitor"),
    "route-to-receiver": bytes([HELLO_FIRST | RECEIVER]) + to(2, "org.fuzz.Target", "/t", "org.fuzz.I", "Do", "{}")
    + to(3, ":1.1", "/t", "org.fuzz.I", "Do", "{}", ',"no_reply":true') + signal(4, "Changed", '{"x":"y"}')
    + signal(5, "Poke", "{}", ',"destination":"org.fuzz.Target"'),
    "self-call-and-reply": bytes([HELLO_FIRST | RECEIVER]) + to(5, ME, "/", "org.fuzz.I", "Echo", "{}")
    + reply(6, 5, ME, '{"echo":true}') + reply(7, 5, ME),
    "unexpected-reply": bytes([HELLO_FIRST | RECEIVER]) + reply(2, 99, ":1.1") + STREAMS["error"],
    "timeout": bytes([HELLO_FIRST | RECEIVER]) + to(2, "org.fuzz.Target", "/", "org.fuzz.I", "Slow", "{}",
                                                   ',"timeout_ms":1'),
    "split-writes": bytes([WRITE_3]) + HELLO + STREAMS["signal"],
    "one-byte-writes": bytes([HELLO_FIRST | WRITE_1]) + STREAMS["call"],
    "fd-passing": bytes([HELLO_FIRST | RECEIVER | ONE_FD])
    + frame('{"type":"signal","serial":2,"destination":":1.1","path":"/","interface":"a.b","member":"Fd"}', "{}",
            n_fds=1),
    "fds-mismatch": bytes([HELLO_FIRST | TWO_FDS]) + STREAMS["signal"],
    "too-many-fds": bytes([HELLO_FIRST | TOO_MANY_FDS | WRITE_16]) + STREAMS["too-many-fds"],
    "fds-every-write": bytes([HELLO_FIRST | ONE_FD | 0x80 | WRITE_16]) + STREAMS["fds-mismatch"] * 2,
    # a body "in a memfd" that is /dev/null: refused unsealed (PROTOCOL.md 14.2), the connection kept
    "memfd-unsealed": bytes([HELLO_FIRST | RECEIVER | ONE_FD])
    + frame('{"type":"signal","serial":2,"destination":":1.1","path":"/","interface":"a.b","member":"Big",'
            '"body_fd":0,"body_size":2}', "", n_fds=1) + signal(3, "After"),
}
for name in ["bad-utf8", "deep-json", "deep-json-over", "stamped", "no-serial", "duplicate-field", "bad-names",
             "body-not-object", "header-not-object", "unknown-type", "noreply", "bad-magic", "header-too-large",
             "truncated", "garbage", "escapes", "whitespace"]:
    DAEMON_SEEDS[name] = bytes([HELLO_FIRST | RECEIVER]) + STREAMS[name]

MATCH_SEEDS = {
    "string": b"type=signal,interface=org.example.Notes,member=Changed,arg.title='hello'",
    "string-quoted": b"sender=':1.7',path='/a/b',destination=org.x.Y,arg.k='a,b'",
    "string-namespace": b"type=call,path_namespace=/org,arg.a=1,arg.b=2",
    "json": b'{"type":"signal","sender":"org.x.Y","interface":"a.b","member":"M","path":"/p","destination":":1.4",'
            b'"args":{"name":"value","t\\u00e9":"\\u00e9"}}',
    "json-namespace": b'{"path_namespace":"/","args":{"title":"hello"}}',
    "several": b"\n{}\ntype=return,destination=:1.3\n{\"type\":\"error\"}\nmember=Echo,arg.data=hello, world",
    "bad": b"type=shout,member=9\n{\"path\":\"/a\",\"path_namespace\":\"/a\"}\n{\"args\":{\"a\":1}}",
}

# Client: byte 0 bit 0 = a description (0: its text, then bodies after NUL bytes) or a body (1, descriptors in
# bits 1-2). The bodies are those a service and a client of the notes example and the standard interfaces see.
DESCRIPTION, BODY = 0, 1
FDS_2 = 2 << 1
BODIES = [
    '{"text":"hello"}',
    '{"id":7}',
    '{"id":"18446744073709551615"}',
    '{"notes":[{"id":1,"text":"a"},{"id":"2","text":"b"}]}',
    '{"interface":"org.example.Notes","name":"Count","value":3}',
    '{"properties":{"Count":3,"Theme":null}}',
    '{"id":"x"}',
    '{"id":-1,"extra":true}',
    '[1,2]',
    '{"text":',
]
CLIENT_SEEDS = {}
for path in sorted(os.listdir(os.path.join(TOP, "interfaces"))) + ["../examples/notes/org.example.Notes.json"]:
    with open(os.path.join(TOP, "interfaces", path), "rb") as f:
        text = f.read()
    name = os.path.basename(path)[:-len(".json")]
    CLIENT_SEEDS["description-" + name] = bytes([DESCRIPTION]) + text + b"\0" + "\0".join(BODIES).encode()
CLIENT_SEEDS["description-every-type"] = bytes([DESCRIPTION]) + (
    '{"interface":"org.fuzz.T","deprecated":false,"x-any":[1e999,-0,{"a":null}],"doc":"d",'
    '"methods":{"M":{"in":{"b":"bool","i":"int","u":"uint","d":"double","s":"string","y":"bytes","h":"fd",'
    '"v":"any","a":{"array":"uint"},"m":{"map":{"optional":"int"}},"st":{"struct":{"x":"int","doc":"string"},'
    '"doc":"a struct"}},"out":{}},"U":{"unchecked":true},"N":{"no_reply":true,"deprecated":true}},'
    '"signals":{"S":{"args":{"o":{"optional":{"array":{"struct":{}}}}}}},'
    '"properties":{"P":{"type":"uint","access":"read","changes":"const"},'
    '"Q":{"type":{"map":"bytes"},"access":"readwrite","changes":"invalidate"}}}\0'
    '{"b":true,"i":"-9223372036854775808","u":18446744073709551615,"d":1,"s":"","y":"YWI=","h":0,"v":null,'
    '"a":[],"m":{"k":null},"st":{"x":1,"doc":"yes"}}\0{"value":{"k":"AA=="}}\0{"o":[{}]}').encode()
CLIENT_SEEDS["description-bad"] = bytes([DESCRIPTION]) + (
    '{"interface":"org.fuzz.T","methods":{"M":{"in":{"text":"strin"}}}}').encode()
CLIENT_SEEDS["description-two-kinds"] = bytes([DESCRIPTION]) + (
    '{"interface":"a.b","properties":{"P":{"type":{"array":"int","map":"int"},"access":"read"}}}').encode()
CLIENT_SEEDS["description-not-json"] = bytes([DESCRIPTION]) + b'{"interface":"a.b",}'
# what fits the fixed description of fuzz-client.c (method All), and what almost does
ALL = ('{"b":false,"i":-5,"u":"12345678901234567890","d":2.5,"s":"s","y":"AAEC","h":1,"v":[1,{"x":"y"}],'
       '"o":null,"st":{"a":"-1","n":{"x":"YQ=="}},"arr":[{"id":1,"text":"a"},{"id":"2","text":"b","z":0}],'
       '"mp":{"k":[1,"-2"],"l":[]}}')
CLIENT_SEEDS["body-fits-all"] = bytes([BODY | FDS_2]) + ALL.encode()
CLIENT_SEEDS["body-fd-out-of-range"] = bytes([BODY]) + ALL.encode()
CLIENT_SEEDS["body-letters"] = bytes([BODY | (1 << 1)]) + (
    '{"b":true,"i":-2147483648,"x":"-9223372036854775808","u":4294967295,"t":"18446744073709551615",'
    '"d":-0.5e-3,"s":"gr\\u00fc\\u00dfe","y":"","h":0,"v":{"a":[null]},"a":{"b":true,"a":{"x":1,"v":2}}}').encode()
CLIENT_SEEDS["body-out-of-range"] = bytes([BODY]) + (
    '{"i":2147483648,"u":-1,"x":9223372036854775808,"t":18446744073709551616,"n":-9223372036854775809,'
    '"h":"0","y":"A===","d":"1"}').encode()
CLIENT_SEEDS["body-nested"] = bytes([BODY]) + (
    '{"notes":[{"id":1,"text":"a"},{"id":2},[3,[4,[5]]],null,"x"],"a":[{"id":"1"}],'
    '"deep":' + "[" * 62 + "{}" + "]" * 62 + "}").encode()
CLIENT_SEEDS["body-empty"] = bytes([BODY])
CLIENT_SEEDS["body-duplicates"] = bytes([BODY]) + b'{"a":1,"a":"x","b":1e2,"b":-0,"c":{"c":{}}}'


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        os.unlink(os.path.join(d, old))
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("fuzz-frame", FRAME_SEEDS)
    write("fuzz-daemon", DAEMON_SEEDS)
    write("fuzz-match", MATCH_SEEDS)
    write("fuzz-client", CLIENT_SEEDS)
