"""The asyncio API: ``ipcbus.aio.Bus`` over the same core as ``ipcbus.Bus``.

    bus = await ipcbus.aio.connect()
    reply = await bus.call("org.example.Notes", "/org/example/Notes", "org.example.Notes", "Count")
    async with bus.signals("interface=org.example.Notes,member=Changed") as changes:
        async for msg in changes:
            ...

Handlers (``add_handler``) and subscription callbacks may be plain
functions or return awaitables (``async def``): a handler's awaitable runs
as a task, and its result (True: taken) decides whether the call goes on to
the next handler.
"""

import asyncio
import collections
import socket
import weakref

from . import _wire, address as _address, errors
from .connection import (
    BusBase,
    DEFAULT_TIMEOUT,
    TIMEOUT_GRACE,
    Core,
    Handle,
    Subscription,
    _call_message,
    _driver_message,
    local_deadline,
    local_timeout_error,
    name_flags,
    owner_rule,
    timeout_ms,
    tracked_sender,
)
from .match import Rule
from .message import Message

__all__ = ["Bus", "SignalIterator", "connect", "connect_system", "connect_starter"]


class SignalIterator:
    """Signals matching a rule, as an async iterator. ``async with`` adds
    the rule before the block runs (so nothing sent after it is missed) and
    removes it after; plain ``async for`` adds it at the first step. The
    descriptors of the messages it gives are the consumer's. When the
    connection ends, the iteration raises ConnectionLost."""

    def __init__(self, bus, rule):
        self._bus = bus
        self._rule = Rule(rule, default_type="signal")
        self._queue = collections.deque()
        self._waiter = None
        self._sub = None
        self._closed = False

    def _on_signal(self, msg):
        # copies of the descriptors: other subscribers and handlers get the message whole too
        self._queue.append(msg.duplicate())
        self._wake()

    def _wake(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def start(self):
        if self._sub is None and not self._closed:
            self._sub = await self._bus.subscribe(self._rule, self._on_signal)
            self._bus._iterators.add(self)

    def __aiter__(self):
        return self

    async def __anext__(self):
        await self.start()
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._bus._core.check_open()
            self._waiter = self._bus._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def aclose(self):
        self._closed = True
        if self._sub is not None:
            self._sub.cancel()
        for m in self._queue:
            m.close_fds()
        self._queue.clear()
        self._wake()

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.aclose()


class Bus(BusBase):
    """An asyncio connection to a bus (made by ``await ipcbus.aio.connect()``),
    driven by the running loop. Not thread-safe: use it from its loop."""

    def __init__(self, sock, loop, memfd_threshold=None):
        self._loop = loop
        self._core = Core(sock, memfd_threshold)
        self._core.on_lost = self._on_lost
        self._core.await_hook = self._await_hook
        self._core.on_output = self._update_writer
        self._writing = False
        self._iterators = weakref.WeakSet()
        self._tasks = set()
        self._closed = loop.create_future()
        loop.add_reader(self._core.fd, self._on_readable)

    # ---- the loop's side ----

    def _on_readable(self):
        core = self._core
        try:
            for m in core.read():
                m.bus = self
                try:
                    core.dispatch(m)
                except Exception as e:  # one message's failure is not the others'
                    m.close_fds()
                    self._loop.call_exception_handler({"message": "ipcbus: dispatching %r failed" % (m,),
                                                       "exception": e})
        finally:
            self._update_writer()

    def _on_writable(self):
        self._core.write()
        self._update_writer()

    def _update_writer(self):
        want = self._core.wants_write()
        if want and not self._writing:
            self._loop.add_writer(self._core.fd, self._on_writable)
            self._writing = True
        elif not want and self._writing:
            self._loop.remove_writer(self._core.fd)
            self._writing = False

    def _on_lost(self):
        core = self._core
        self._loop.remove_reader(core.fd)
        if self._writing:
            self._loop.remove_writer(core.fd)
            self._writing = False
        for it in list(self._iterators):
            it._wake()
        if not self._closed.done():
            self._closed.set_result(None)

    def _spawn(self, coro):
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _await_hook(self, awaitable, msg, next_handler):
        """An awaitable from a callback (next_handler None) or a handler:
        run it as a task; a handler's result decides the rest of the dispatch."""
        core = self._core

        async def run():
            try:
                taken = await awaitable
            except Exception as e:
                if next_handler is None:
                    msg.close_fds()
                    self._loop.call_exception_handler({"message": "ipcbus: a subscription's callback failed",
                                                       "exception": e})
                    return
                if not core.lost:
                    core.handler_failed(msg, e)
                msg.close_fds()
            else:
                if next_handler is None:
                    msg.close_fds()  # the callback's own copies (Core._run_callback)
                    return
                if taken:
                    msg.close_fds()
                elif not core.lost:
                    core.run_handlers(msg, next_handler)
                else:
                    msg.close_fds()
            finally:
                self._update_writer()

        self._spawn(run())

    def _send(self, msg, on_reply=None):
        serial = self._core.send(msg, on_reply)
        self._update_writer()
        return serial

    async def _call(self, msg, timeout):
        core = self._core
        fut = self._loop.create_future()

        def done(result):
            if not fut.done():
                fut.set_result(result)
            elif isinstance(result, Message):  # an answer after the local timeout: nobody takes its descriptors
                result.close_fds()

        serial = self._send(msg, done)
        timer = None
        if local_deadline(timeout) is not None:
            timer = self._loop.call_later(timeout + TIMEOUT_GRACE, done, local_timeout_error(timeout))
        try:
            result = await fut
        except asyncio.CancelledError:
            # cancelled with the answer already there: its descriptors are nobody's
            if fut.done() and not fut.cancelled() and isinstance(fut.result(), Message):
                fut.result().close_fds()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            core.pending.pop(serial, None)
        return self._answer(result)

    # ---- opening and closing ----

    async def _hello(self, timeout):
        self._take_hello(await self._call(_driver_message("Hello"), timeout))

    @property
    def loop(self):
        return self._loop

    def fileno(self):
        return -1 if self._core.lost else self._core.fd

    async def flush(self, timeout=None):
        """Wait until every queued message is written."""
        async def drained():
            while self._core.wants_write():
                await asyncio.sleep(0.001)
        try:
            await asyncio.wait_for(drained(), timeout)
        except asyncio.TimeoutError:
            raise errors.Timeout("output not written within %g s" % timeout)
        self._core.check_open()

    def close(self):
        """Close now (what the socket takes at once is written first)."""
        core = self._core
        if not core.lost:
            core.write()
            core.lose("the connection is closed")

    async def aclose(self, flush_timeout=5.0):
        """Write what is queued (at most flush_timeout seconds), then close."""
        if not self._core.lost:
            try:
                await self.flush(flush_timeout)
            except (errors.Timeout, errors.ConnectionLost):
                pass
        self.close()

    async def wait_closed(self):
        """Wait until the connection ends (lost or closed)."""
        await asyncio.shield(self._closed)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    # ---- calls ----

    async def call_message(self, destination, path, interface, member, body=None, *, timeout=DEFAULT_TIMEOUT,
                           fds=(), no_auto_start=False):
        """As ipcbus.Bus.call_message; other calls and messages go on meanwhile."""
        msg = _call_message(destination, path, interface, member, body, timeout, fds, no_auto_start)
        return await self._call(msg, timeout)

    async def call(self, destination, path, interface, member, body=None, *, timeout=DEFAULT_TIMEOUT, fds=(),
                   no_auto_start=False):
        """As ipcbus.Bus.call: the return's body, or raise CallError."""
        reply = await self.call_message(destination, path, interface, member, body, timeout=timeout, fds=fds,
                                        no_auto_start=no_auto_start)
        reply.close_fds()
        return reply.body

    async def call_noreply(self, destination, path, interface, member, body=None, *, fds=(), no_auto_start=False):
        msg = Message.new_call(destination, path, interface, member, body, fds=fds, no_reply=True,
                               no_auto_start=no_auto_start)
        return self._send(msg)

    async def call_driver(self, member, body=None, *, timeout=DEFAULT_TIMEOUT):
        msg = _driver_message(member, body)
        msg.timeout_ms = timeout_ms(timeout)
        return (await self._call(msg, timeout)).body

    # ---- names ----

    async def request_name(self, name, flags=0):
        _wire.check_name("name", "well-known name", name)
        return (await self.call_driver("RequestName", {"name": name, "flags": name_flags(flags)}))["result"]

    async def release_name(self, name):
        _wire.check_name("name", "well-known name", name)
        return (await self.call_driver("ReleaseName", {"name": name}))["result"]

    async def get_name_owner(self, name):
        _wire.check_name("name", "bus name", name)
        try:
            return (await self.call_driver("GetNameOwner", {"name": name}))["owner"]
        except errors.NameHasNoOwner:
            return None

    # ---- signals and handlers ----

    async def subscribe(self, rule, callback):
        """As ipcbus.Bus.subscribe; callback may be async."""
        rule = Rule(rule, default_type="signal")
        if not callable(callback):
            raise TypeError("callback: not callable")
        core = self._core
        core.check_open()
        name = tracked_sender(rule)
        if name:
            await self._track_owner(name)
        try:
            await self.call_driver("AddMatch", {"rule": rule.to_json()})
        except BaseException:
            if name:
                core.untrack_owner(name)
            raise
        sub = Subscription(core, rule, callback)
        core.subs.append(sub)
        return sub

    async def _track_owner(self, name):
        core = self._core
        entry = core.owners.get(name)
        if entry is not None:
            entry[1] += 1
            return
        await self.call_driver("AddMatch", {"rule": owner_rule(name).to_json()})
        entry = core.owners.get(name)
        if entry is not None:  # another task tracked it meanwhile
            entry[1] += 1
            core.remove_match(owner_rule(name))
            return
        core.owners[name] = entry = [None, 1]
        try:
            entry[0] = await self.get_name_owner(name)
        except BaseException:
            core.untrack_owner(name)
            raise

    def signals(self, rule):
        """The signals matching rule, as an async iterator (see SignalIterator)."""
        return SignalIterator(self, rule)

    async def become_monitor(self, rules=()):
        body = {"rules": [Rule(r).to_json() for r in rules]}
        await self.call_driver("BecomeMonitor", body)
        self._core.monitor = True


async def connect(address=None, *, memfd_threshold=None, timeout=DEFAULT_TIMEOUT):
    """As ipcbus.connect, for the running asyncio loop."""
    loop = asyncio.get_running_loop()
    path = _address.parse(_address.session() if address is None else address)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, path)
    except BaseException:
        sock.close()
        raise
    bus = Bus(sock, loop, memfd_threshold)
    try:
        await bus._hello(timeout)
    except BaseException:
        bus.close()
        raise
    return bus


async def connect_system(**kw):
    return await connect(_address.system(), **kw)


async def connect_starter(**kw):
    return await connect(_address.starter(), **kw)
