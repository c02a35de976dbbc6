# SPDX-License-Identifier: MIT
"""The package and the C tree talking to each other, with the notes example
(examples/notes): a Python implementation of org.example.Notes (this file,
run as a program) used by the C notes-client and by ipcctl; the C
notes-service used from Python; and, command by command, ipcctl's output
(its stdout, stderr and exit status) against the C service and against the
Python one compared: the same answers, errors and texts, as libipcbus gives.

    python3 test_interop.py    # the Python notes service on $IPCBUS_ADDRESS
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
NOTES_DIR = REPO / "examples" / "notes"
if str(PYTHON_DIR) not in sys.path:  # run as a program
    sys.path.insert(0, str(PYTHON_DIR))

import ipcbus  # noqa: E402
from ipcbus import errors, iface, service  # noqa: E402

NAME = "org.example.Notes"
PATH = "/org/example/Notes"


# ---- the Python notes service (notes-service.c, in Python) ----------------------------------


class Notes(service.Object):
    """Short notes kept in memory: org.example.Notes as examples/notes/notes-service.c serves it."""

    interfaces = [NAME]

    def __init__(self):
        super().__init__()
        self.texts = []

    @property
    def Count(self):
        return len(self.texts)

    def changed(self, id):
        self.emit_signal(NAME, "Changed", {"id": id})
        self.emit_properties_changed(NAME, "Count")

    def Add(self, text):
        self.texts.append(text)
        self.changed(len(self.texts))
        return {"id": len(self.texts)}

    def List(self):
        return {"notes": [{"id": i + 1, "text": t} for i, t in enumerate(self.texts)]}

    def Get(self, id):
        if not 1 <= id <= len(self.texts):
            raise errors.CallError("org.example.Notes.Error.NotFound", "no note with id %d" % id)
        return {"text": self.texts[id - 1]}

    def Clear(self):
        self.texts = []
        self.changed(0)


def serve_notes():
    bus = ipcbus.connect_starter()
    bus.export_object_manager("/")
    bus.export(PATH, Notes())
    bus.request_name(NAME)
    bus.run_forever()


# ---- running the services -----------------------------------------------------------------------


def service_env(ipcbusd):
    env = ipcbusd.env
    env["IPCBUS_INTERFACE_PATH"] = str(NOTES_DIR)
    env["PYTHONPATH"] = str(PYTHON_DIR)
    env.pop("IPCBUS_STARTER_ADDRESS", None)
    return env


class Running:
    """A service process that owns NAME until stop()."""

    def __init__(self, argv, ipcbusd, bus, tmp_path):
        self.log_path = tmp_path / ("service-%d.log" % time.monotonic_ns())
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, env=service_env(ipcbusd), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.bus = bus
        self.stopped = False
        if not self.wait_owner(True):
            self.stop()
            pytest.fail("%s did not take %s; its output:\n%s" % (argv, NAME, self.log_path.read_text()))

    def wait_owner(self, owned, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.bus.get_name_owner(NAME) is not None) == owned:
                return True
            if owned and self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        assert self.wait_owner(False), "%s still has an owner" % NAME


@pytest.fixture
def run_service(ipcbusd, bus, tmp_path, c_program):
    """run_service("c" | "python"): the C notes-service or this file's, owning NAME until stopped."""
    started = []

    def start(kind):
        if kind == "c":
            argv = [c_program("notes-service")]
        else:
            argv = [sys.executable, str(Path(__file__).resolve())]
        s = Running(argv, ipcbusd, bus, tmp_path)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def notes_client(ipcbusd, c_program):
    program = c_program("notes-client")

    def run(*args):
        return subprocess.run([program, *args], env=service_env(ipcbusd), capture_output=True, text=True,
                              timeout=30)

    return run


# ---- notes-client against the Python service ----------------------------------------------------


def test_notes_client_against_python_service(ipcbusd, c_program, run_service, notes_client):
    run_service("python")
    watch = subprocess.Popen([c_program("notes-client"), "watch"], env=service_env(ipcbusd),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watch.stdout.readline() == "watching %s\n" % NAME

        def ok(*args):
            r = notes_client(*args)
            assert (r.returncode, r.stderr) == (0, ""), r
            return r.stdout

        assert ok("count") == "0\n"
        assert ok("add", "buy milk") == "1\n"
        assert ok("add", "walk the dog") == "2\n"
        assert ok("list") == "1\tbuy milk\n2\twalk the dog\n"
        assert ok("get", "2") == "walk the dog\n"
        assert ok("count") == "2\n"
        r = notes_client("get", "9")
        assert (r.returncode, r.stdout, r.stderr) == (
            1, "", "notes-client: org.example.Notes.Error.NotFound: no note with id 9\n")
        assert ok("clear") == ""
        assert ok("add", "again") == "1\n"
        assert ok("list") == "1\tagain\n"
        expected = ["changed 1", "count 1", "changed 2", "count 2", "changed 0", "count 0", "changed 1", "count 1"]
        seen = [watch.stdout.readline().rstrip("\n") for _ in expected]
        assert seen == expected
    finally:
        watch.terminate()
        watch.wait(10)
        watch.stdout.close()
        watch.stderr.close()


# ---- ipcctl against both services: the same output ----------------------------------------------

NOTES_I = NAME
PROPS = "org.ipcbus.Properties"

# (arguments of ipcctl), in order: each sees the state the ones before left.
IPCCTL_SESSION = [
    ["--json", "introspect", NAME, PATH],
    ["introspect", NAME, PATH],
    ["--json", "introspect", NAME, "/"],
    ["--json", "introspect", NAME, "/org"],
    ["introspect", NAME, "/org/example"],
    ["tree", NAME],
    ["--json", "tree", NAME],
    ["get-property", NAME, PATH, NOTES_I, "Count"],
    ["--json", "call", NAME, PATH, NOTES_I, "Add", '{"text": "first"}'],
    ["--json", "call", NAME, PATH, NOTES_I, "Add", '{"text": "second", "tags": ["ignored"]}'],
    ["--json", "call", NAME, PATH, NOTES_I, "List"],
    ["--json", "call", NAME, PATH, NOTES_I, "Get", '{"id": "2"}'],
    ["--json", "get-property", NAME, PATH, NOTES_I, "Count"],
    ["--json", "call", NAME, PATH, PROPS, "GetAll", '{"interface": "org.example.Notes"}'],
    ["--json", "call", NAME, "/", "org.ipcbus.ObjectManager", "GetManagedObjects"],
    ["introspect", NAME, PATH],
    # errors: the service's, and what the library answers for it
    ["call", NAME, PATH, NOTES_I, "Get", '{"id": 9}'],
    ["--no-check", "call", NAME, PATH, NOTES_I, "Add", '{"text": 5}'],
    ["--no-check", "call", NAME, PATH, NOTES_I, "Add"],
    ["--no-check", "call", NAME, PATH, NOTES_I, "Get", '{"id": -1}'],
    ["--no-check", "call", NAME, PATH, NOTES_I, "Get", '{"id": "x"}'],
    ["--no-check", "call", NAME, PATH, NOTES_I, "Get", '{"id": 1.5}'],
    ["--no-check", "call", NAME, PATH, NOTES_I, "Nope"],
    ["--no-check", "call", NAME, PATH, "-", "Nope"],
    ["--no-check", "call", NAME, PATH, "org.example.Other", "Nope"],
    ["--no-check", "call", NAME, "/nope", NOTES_I, "List"],
    ["--no-check", "call", NAME, "/org", NOTES_I, "List"],
    ["--no-check", "call", NAME, "/", NOTES_I, "List"],
    ["call", NAME, "/org", PROPS, "GetAll", '{"interface": "org.example.Notes"}'],
    ["call", NAME, "/nope", "org.ipcbus.Introspectable", "Introspect"],
    ["call", NAME, PATH, PROPS, "Get", '{"interface": "org.example.Notes", "name": "Nope"}'],
    ["call", NAME, PATH, PROPS, "Get", '{"interface": "org.example.Other", "name": "Count"}'],
    ["--no-check", "call", NAME, PATH, PROPS, "Get", '{"interface": "org.example.Notes"}'],
    ["--no-check", "call", NAME, PATH, PROPS, "Set", '{"interface": "org.example.Notes", "name": "Count", "value": 3}'],
    ["--no-check", "set-property", NAME, PATH, NOTES_I, "Count", "3"],
    ["--no-check", "call", NAME, PATH, PROPS, "Nope"],
    ["--no-check", "call", NAME, PATH, "org.ipcbus.ObjectManager", "GetManagedObjects"],
    ["--no-check", "call", NAME, PATH, "org.ipcbus.Introspectable", "Nope"],
    ["call", NAME, "/anywhere/at/all", "org.ipcbus.Peer", "Ping"],
    ["call", NAME, "/anywhere", "-", "Ping"],
    ["--no-check", "call", NAME, PATH, "org.ipcbus.Peer", "Pong"],
    ["call", NAME, PATH, NOTES_I, "Clear"],
    ["--json", "call", NAME, PATH, NOTES_I, "List"],
    ["get-property", NAME, PATH, NOTES_I, "Count"],
]


def run_session(ipcctl):
    out = []
    for args in IPCCTL_SESSION:
        r = ipcctl(*args, env={"IPCBUS_INTERFACE_PATH": str(NOTES_DIR)})
        out.append((args, r.returncode, r.stdout, r.stderr))
    return out


def test_ipcctl_sees_the_same_service(run_service, ipcctl):
    c = run_service("c")
    from_c = run_session(ipcctl)
    c.stop()
    run_service("python")
    from_python = run_session(ipcctl)
    # the session means something: answers and errors both, and nothing failed for another reason
    assert any(rc == 0 for _, rc, _, _ in from_c) and any(rc == 1 for _, rc, _, _ in from_c)
    assert all(rc in (0, 1) for _, rc, _, _ in from_c), from_c
    diffs = []
    for (args, *want), (_, *got) in zip(from_c, from_python):
        if got != want:
            diffs.append("ipcctl %s\n  C:      %r\n  Python: %r" % (" ".join(args), want, got))
    assert not diffs, "\n".join(diffs)


def test_ipcctl_texts_of_the_python_service(run_service, ipcctl):
    """What the comparison above compares, spelled out for a few commands."""
    run_service("python")

    def run(*args):
        r = ipcctl(*args, env={"IPCBUS_INTERFACE_PATH": str(NOTES_DIR)})
        return r.returncode, r.stdout, r.stderr

    assert run("--json", "call", NAME, PATH, NAME, "Add", '{"text": "a"}') == (0, '{"id":1}\n', "")
    assert run("--no-check", "call", NAME, PATH, NAME, "Add", '{"text": 5}') == (
        1, "", "org.ipcbus.Error.InvalidArgs: argument 'text': expected string, got integer\n")
    assert run("get-property", NAME, PATH, NAME, "Count") == (0, "1\n", "")
    assert run("tree", NAME) == (0, "└─/org\n  └─/org/example\n    └─/org/example/Notes\n", "")
    rc, out, err = run("introspect", NAME, PATH)
    assert rc == 0 and err == ""
    rows = [line.split()[:2] for line in out.splitlines()]
    assert ["org.example.Notes", "interface"] in rows and [".Add", "method"] in rows
    assert [".Count", "property"] in rows and [".Changed", "signal"] in rows


# ---- the checks of ipcbus.iface and of libipcbus, side by side ----------------------------------


def test_value_checks_agree_with_libipcbus(ipcctl, tmp_path):
    """Every value case of test_iface, checked by libipcbus (ipcctl checks a
    call against the installed description before sending it) and by
    ipcbus.iface: the same verdict, in the same words."""
    from test_iface import COMPOSITE_CASES, SCALAR_CASES

    cases = [(t, v) for t, v, _, _ in SCALAR_CASES] + [(t, v) for t, v, *_ in COMPOSITE_CASES]
    text = '{"interface":"t.T","methods":{%s}}' % ",".join(
        '"M%d":{"in":{"x":%s}}' % (k, t) for k, (t, _) in enumerate(cases))
    (tmp_path / "t.T.json").write_text(text)
    desc = iface.parse(text)
    refused = 0
    for k, (_, value) in enumerate(cases):
        member = "M%d" % k
        body = '{"x":%s}' % value
        r = ipcctl("call", "org.example.Nobody", "/x", "t.T", member, body,
                   env={"IPCBUS_INTERFACE_PATH": str(tmp_path)})
        try:
            desc.check("call", member, body)
        except iface.CheckError as e:
            refused += 1
            assert (r.returncode, r.stderr) == (1, "ipcctl: method %s: %s (--no-check sends anyway)\n" % (member, e))
        else:
            # it was sent: to nobody
            assert r.returncode == 1 and r.stderr.startswith("org.ipcbus.Error.ServiceUnknown: "), (body, r.stderr)
    assert 0 < refused < len(cases)


def test_description_refusals_agree_with_libipcbus(ipcctl, tmp_path, monkeypatch):
    """Every broken description of test_iface (but JSON syntax, which json-c
    words its own way), loaded by libipcbus (ipcctl) and by ipcbus.iface."""
    from test_iface import PARSE_CASES

    n = 0
    for k, (text, error) in enumerate(PARSE_CASES):
        if error is None or error.startswith("not a JSON text"):
            continue
        d = tmp_path / str(k)
        d.mkdir()
        (d / "t.T.json").write_text(text)
        monkeypatch.setenv("IPCBUS_INTERFACE_PATH", str(d))
        with pytest.raises(iface.DescriptionError) as e:
            iface.load("t.T")
        r = ipcctl("call", "org.example.Nobody", "/x", "t.T", "M", env={"IPCBUS_INTERFACE_PATH": str(d)})
        assert (r.returncode, r.stderr) == (
            1, "ipcctl: the description of t.T: %s (--no-check sends anyway)\n" % e.value), text
        n += 1
    assert n > 20


# ---- Python against the C notes-service ---------------------------------------------------------


def test_python_client_against_c_service(run_service, bus, bus2):
    run_service("c")
    changed, props = [], []
    bus2.subscribe({"sender": NAME, "path": PATH, "interface": NAME, "member": "Changed"}, changed.append)
    bus2.subscribe({"sender": NAME, "path": PATH, "interface": PROPS, "member": "PropertiesChanged"}, props.append)

    assert bus.call(NAME, PATH, NAME, "Add", {"text": "from python"}) == {"id": 1}
    assert bus.call(NAME, PATH, NAME, "Add", {"text": "again"}) == {"id": 2}
    assert bus.call(NAME, PATH, NAME, "List") == {"notes": [{"id": 1, "text": "from python"},
                                                            {"id": 2, "text": "again"}]}
    assert bus.call(NAME, PATH, NAME, "Get", {"id": 2}) == {"text": "again"}
    assert bus.call(NAME, PATH, PROPS, "Get", {"interface": NAME, "name": "Count"}) == {"value": 2}
    with pytest.raises(errors.CallError) as e:
        bus.call(NAME, PATH, NAME, "Get", {"id": 9})
    assert (e.value.name, e.value.message) == ("org.example.Notes.Error.NotFound", "no note with id 9")
    with pytest.raises(errors.InvalidArgs) as e:
        bus.call(NAME, PATH, NAME, "Add", {"text": 5})
    assert e.value.message == "argument 'text': expected string, got integer"
    with pytest.raises(errors.InvalidArgs) as e:
        bus.call(NAME, PATH, NAME, "Get", {"id": "x"})
    assert e.value.message == "argument 'id': expected uint, got string (not a decimal integer)"
    with pytest.raises(errors.UnknownMethod):
        bus.call(NAME, PATH, NAME, "Nope")

    deadline = time.monotonic() + 10
    while (len(changed) < 2 or len(props) < 2) and time.monotonic() < deadline:
        bus2.process(0.05)
    assert [m.body for m in changed] == [{"id": 1}, {"id": 2}]
    assert [m.body for m in props] == [{"interface": NAME, "changed": {"Count": n}, "invalidated": []}
                                       for n in (1, 2)]

    # the description the C service introspects is this package's, to the byte of its canonical text
    notes = iface.parse((NOTES_DIR / "org.example.Notes.json").read_text())
    r = bus.call(NAME, PATH, "org.ipcbus.Introspectable", "Introspect")
    assert [d["interface"] for d in r["interfaces"]] == [NAME, iface.INTROSPECTABLE, iface.PROPERTIES, iface.PEER]
    assert iface.canonical_json(r["interfaces"][0]) == notes.json
    for d in r["interfaces"][1:]:
        assert iface.canonical_json(d) == iface.standard(d["interface"]).json
    # what the C service answers, the Python one checks the same way
    with pytest.raises(iface.CheckError, match="^argument 'text': expected string, got integer$"):
        notes.check("call", "Add", {"text": 5})


if __name__ == "__main__":
    serve_notes()
