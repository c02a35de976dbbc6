"""python -m ipcbus: call, emit, introspect, monitor."""

import json
import signal
import subprocess
import sys
import time

from conftest import PYTHON_DIR


def run(ipcbusd, *args, timeout=30):
    env = ipcbusd.env
    env["PYTHONPATH"] = str(PYTHON_DIR)
    return subprocess.run([sys.executable, "-m", "ipcbus", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_call_json(ipcbusd, bus):
    r = run(ipcbusd, "--json", "call", "org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetNameOwner",
            '{"name": "%s"}' % bus.unique_name)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"owner": bus.unique_name}


def test_call_error_and_usage(ipcbusd):
    r = run(ipcbusd, "call", "org.example.Nobody", "/", "-", "Ping")
    assert r.returncode == 1
    assert r.stderr.startswith("org.ipcbus.Error.ServiceUnknown: ")
    r = run(ipcbusd, "call", "org.example.Nobody", "relative", "-", "Ping")
    assert r.returncode == 2 and "path" in r.stderr
    r = run(ipcbusd, "call", "org.ipcbus.Bus", "/", "-", "Ping", "[1]")
    assert r.returncode == 2


def test_introspect_the_driver(ipcbusd):
    r = run(ipcbusd, "--json", "introspect", "org.ipcbus.Bus", "/org/ipcbus/Bus")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["path"] == "/org/ipcbus/Bus"
    assert "org.ipcbus.Bus" in [i["interface"] for i in out["interfaces"]]


def test_emit(ipcbusd, bus):
    got = []
    bus.subscribe({"interface": "org.example.Cli"}, got.append)
    r = run(ipcbusd, "emit", "/c", "org.example.Cli", "Said", '{"w": "hi"}')
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        bus.process(0.05)
    assert [(m.path, m.body) for m in got] == [("/c", {"w": "hi"})]


def test_monitor(ipcbusd, bus):
    env = ipcbusd.env
    env["PYTHONPATH"] = str(PYTHON_DIR)
    p = subprocess.Popen([sys.executable, "-m", "ipcbus", "--json", "monitor", "interface=org.example.Mon"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the monitor may not be in place yet: emit until it prints
            bus.emit("/m", "org.example.Mon", "Seen", {"k": 1})
            import select
            if select.select([p.stdout], [], [], 0.2)[0]:
                line = p.stdout.readline()
                break
        assert line, p.stderr.read() if p.poll() is not None else "no output"
        out = json.loads(line)
        assert out["header"]["member"] == "Seen" and out["body"] == {"k": 1}
        assert out["header"]["sender"] == bus.unique_name
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
    assert rc == 0, p.stderr.read()
