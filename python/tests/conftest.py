"""Fixtures every test of the package uses: a real ipcbusd on a temporary
socket, connected clients (sync and asyncio), the C tools and examples of
the build tree. The build tree is $IPCBUS_BUILD_DIR, else <repo>/build; a
missing binary is a failure, never a skip.

Coroutine tests (``async def test_...``) run on the event loop of the
``event_loop`` fixture, which the ``abus`` fixture uses too, with a time
limit of 60 s."""

import asyncio
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
sys.path.insert(0, str(PYTHON_DIR))

import ipcbus  # noqa: E402  (the package of this tree, not an installed one)

# The tests say where their bus is and what threshold they use; the caller's environment must not.
for _var in ("IPCBUS_ADDRESS", "IPCBUS_SYSTEM_ADDRESS", "IPCBUS_STARTER_ADDRESS", "IPCBUS_STARTER_BUS_TYPE",
             "IPCBUS_MEMFD_THRESHOLD"):
    os.environ.pop(_var, None)

TEST_CONFIG = {"type": "session", "standard_service_dirs": False, "service_dirs": [],
               "policy": [{"allow": "monitor", "user": "@self"}]}
ASYNC_TEST_LIMIT = 60


def build_dir():
    return Path(os.environ.get("IPCBUS_BUILD_DIR") or REPO / "build").resolve()


def build_program(relpath):
    """The path of a program of the build tree; fails the test when it is not there."""
    path = build_dir() / relpath
    if not (path.is_file() and os.access(str(path), os.X_OK)):
        pytest.fail("%s is missing: build the tree first (./scripts/build.sh build && make -C build), "
                    "or set IPCBUS_BUILD_DIR" % path, pytrace=False)
    return str(path)


class Broker:
    """An ipcbusd on a socket in a private temporary directory."""

    def __init__(self, config=None, socket_path=None, extra_args=()):
        self.program = build_program("daemon/ipcbusd")
        self.dir = tempfile.mkdtemp(prefix="ipcbus-py-")
        self.socket_path = socket_path or os.path.join(self.dir, "bus")
        self.address = "unix:path=" + self.socket_path
        self.log_path = os.path.join(self.dir, "log")
        self.config_path = os.path.join(self.dir, "config.json")
        with open(self.config_path, "w") as f:
            json.dump(config or TEST_CONFIG, f)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.program, "--config", self.config_path, "--address", self.address, "--print-address", "-v",
             *extra_args],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True)
        self.expect_exit = False
        line = self._read_line(10.0)
        if line != self.address:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("ipcbusd printed %r, expected %r; its log:\n%s" % (line, self.address, self.log_tail()),
                        pytrace=False)

    def _read_line(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ok = sel.select(timeout)
        sel.close()
        return self.proc.stdout.readline().strip() if ok else None

    @property
    def pid(self):
        return self.proc.pid

    @property
    def env(self):
        """The environment of a client of this bus."""
        env = dict(os.environ)
        env["IPCBUS_ADDRESS"] = self.address
        return env

    def log_tail(self, n=4000):
        try:
            with open(self.log_path) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def kill(self):
        """Kill it now (SIGKILL): the test expects the bus to go away."""
        self.expect_exit = True
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM and wait; fails when it died during the test or exits badly."""
        if self.proc.poll() is not None and not self.expect_exit:
            rc = self.proc.returncode
            self._cleanup()
            pytest.fail("ipcbusd died during the test (status %s); its log:\n%s" % (rc, self.log_tail()),
                        pytrace=False)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._cleanup()
                pytest.fail("ipcbusd did not exit within 10 s of SIGTERM", pytrace=False)
            if self.proc.returncode != 0 and not self.expect_exit:
                rc = self.proc.returncode
                self._cleanup()
                pytest.fail("ipcbusd after SIGTERM: status %s; its log:\n%s" % (rc, self.log_tail()), pytrace=False)
        self._cleanup()

    def _cleanup(self):
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def ipcbusd():
    """A real broker on a temporary socket (.address, .env, .pid, .kill(), .log_tail()), stopped after the test."""
    broker = Broker()
    yield broker
    broker.stop()


@pytest.fixture
def start_broker():
    """start_broker(config=None, socket_path=None): more brokers, stopped after the test."""
    started = []

    def start(config=None, socket_path=None):
        b = Broker(config, socket_path)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def connect(ipcbusd):
    """connect(**kw): another client of the test's broker, closed after the test."""
    opened = []

    def make(**kw):
        bus = ipcbus.connect(ipcbusd.address, **kw)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        bus.close(0)


@pytest.fixture
def bus(connect):
    return connect()


@pytest.fixture
def bus2(connect):
    return connect()


@pytest.fixture
def event_loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def aconnect(ipcbusd, event_loop):
    """await aconnect(**kw): an asyncio client of the test's broker, closed after the test."""
    opened = []

    async def make(**kw):
        bus = await ipcbus.aio.connect(ipcbusd.address, **kw)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        bus.close()


@pytest.fixture
def abus(aconnect, event_loop):
    return event_loop.run_until_complete(aconnect())


@pytest.fixture
def ipcctl(ipcbusd):
    """ipcctl(*args, env=None, timeout=30): run build/tools/ipcctl against the test's broker."""
    program = build_program("tools/ipcctl")

    def run(*args, env=None, timeout=30, input=None):
        e = ipcbusd.env
        e.update(env or {})
        return subprocess.run([program, *args], env=e, capture_output=True, text=True, timeout=timeout,
                              input=input)

    return run


_PROGRAMS = {
    "ipcbusd": "daemon/ipcbusd",
    "ipcctl": "tools/ipcctl",
    "ipc-monitor": "tools/ipc-monitor",
    "notes-service": "examples/notes/notes-service",
    "notes-client": "examples/notes/notes-client",
}


@pytest.fixture
def c_program():
    """c_program(name): the path of a C program of the build tree (ipcctl, notes-service, notes-client, ...)."""

    def find(name):
        return build_program(_PROGRAMS.get(name, name))

    return find


@pytest.fixture
def serve(connect):
    """serve(bus): run bus.run_forever() in a thread until the test ends
    (the service side of a test whose client calls synchronously)."""
    import threading

    running = []

    def start(bus):
        t = threading.Thread(target=bus.run_forever, daemon=True)
        t.start()
        running.append((bus, t))
        return t

    yield start
    for bus, t in running:
        bus.stop()
        t.join(10)
        assert not t.is_alive(), "a served bus did not stop"


def pytest_collection_modifyitems(items):
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "obj", None)) and "event_loop" not in item.fixturenames:
            item.fixturenames.append("event_loop")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    loop = pyfuncitem.funcargs["event_loop"]
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    loop.run_until_complete(asyncio.wait_for(fn(**kwargs), ASYNC_TEST_LIMIT))
    return True


def wait_until(predicate, timeout=10.0, step=0.01):
    """Poll predicate until it is true (True) or timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
