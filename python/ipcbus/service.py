# SPDX-License-Identifier: MIT
"""Exported objects: Python objects served on the bus from interface descriptions.

An object is an instance of a subclass of :class:`Object` that names its
interfaces (descriptions, PROTOCOL.md 13) and has, for each described
method, a Python method of the same name, and for each property an
attribute of the same name (a plain attribute, or a Python ``property``
with a getter and, for a writable one, a setter)::

    from ipcbus import service

    class Notes(service.Object):
        interfaces = ["org.example.Notes"]     # loaded by name (ipcbus.iface.load), or Interface objects

        def __init__(self):
            super().__init__()
            self.texts = []

        def Add(self, text):                   # the call's arguments, by name, checked already
            self.texts.append(text)
            self.emit_signal("org.example.Notes", "Changed", {"id": len(self.texts)})
            self.emit_properties_changed("org.example.Notes", "Count")
            return {"id": len(self.texts)}     # the results, checked before they are sent

        @property
        def Count(self):
            return len(self.texts)

    service.export(bus, "/org/example/Notes", Notes())   # or bus.export("/org/example/Notes", ...)
    service.export_object_manager(bus, "/")             # or bus.export_object_manager("/")
    bus.request_name("org.example.Notes")
    bus.run_forever()

What the library answers, as libipcbus answers it for its exported objects
(``libclient/object.c``, ``introspect.c``, ``properties.c``, ``manager.c``):

- a call of a described method is checked against the method's ``in``
  before the handler runs; one that breaks it is answered
  ``org.ipcbus.Error.InvalidArgs`` naming the argument, and the handler never
  sees it. Members the description does not name are ignored (13.3).
- the handler gets the described arguments as keyword arguments in their
  Python form (``Args.decode``: integers sent as strings are ``int``,
  ``bytes`` are ``bytes``, an ``fd`` is the descriptor, an absent optional
  argument is None). It returns a dict of results (None: no results); they
  are encoded (``Args.encode``) and checked, strictly, against ``out``; a
  reply that breaks it is not sent, and the caller gets
  ``org.ipcbus.Error.Failed`` "the reply was refused: ...". A method with
  ``"unchecked": true`` gets the body's members as they came and returns
  what it likes.
- a handler that raises :class:`ipcbus.CallError` (or a subclass) is
  answered with its error name and message; any other exception with
  ``org.ipcbus.Error.Failed`` and the exception's text. A call with
  ``no_reply`` gets no answer either way.
- a handler may be ``async def`` on the asyncio bus (``ipcbus.aio``): it
  runs as a task and is answered when it finishes. :func:`current_message`
  gives the call being handled (its sender, its descriptors) in a handler.
- descriptors a call carries belong to it: they are closed once its handler
  has returned (or its task finished); ``current_message().take_fds()``
  or ``os.dup`` keeps them.
- ``org.ipcbus.Introspectable.Introspect`` at an exported path (the
  object's interfaces in the order exported, then Introspectable,
  Properties, Peer, and ObjectManager where a manager is; the children) and
  at every path above one (Introspectable and Peer; the children);
  ``org.ipcbus.Properties`` Get, GetAll and Set (a value set is checked
  against the property's type); ``org.ipcbus.ObjectManager.GetManagedObjects``
  at a manager's path; ``org.ipcbus.Peer.Ping``; and UnknownObject,
  UnknownInterface, UnknownMethod, UnknownProperty, PropertyReadOnly and
  AccessDenied with libipcbus's messages.
- signals sent with :meth:`Object.emit_signal` are checked strictly against
  the description before they are sent (ValueError, nothing sent);
  :meth:`Object.emit_properties_changed` sends PropertiesChanged with the
  current values of the properties whose ``changes`` is ``emit`` and the
  names of the others; :meth:`Object.set_property` sets a property and
  announces it. A Set from the bus runs the setter and announces nothing
  (as libipcbus): a setter that wants it calls emit_properties_changed.
- an object manager announces objects exported and unexported below it
  (InterfacesAdded, InterfacesRemoved), one signal per object with all its
  interfaces.

The functions take either connection, ``ipcbus.Bus`` or
``ipcbus.aio.Bus``. The dispatcher is one handler added with
``bus.add_handler`` per connection, the first time something is exported
on it. It answers every call to a path it serves (or that lies above one
it serves) and ``org.ipcbus.Peer`` on any path; calls to other paths are
left to the handlers added after it, and then to the connection, which
answers UnknownObject as libipcbus does. Export, unexport and emit on the
thread that runs the connection (a handler, or before ``run_forever``).
"""

import contextvars
import inspect
import weakref

from . import errors
from . import iface as _iface
from ._wire import is_object_path as _is_path

__all__ = [
    "Object",
    "ObjectManager",
    "export",
    "unexport",
    "export_object_manager",
    "current_message",
    "ERROR_FAILED",
    "ERROR_INVALID_ARGS",
    "ERROR_UNKNOWN_OBJECT",
    "ERROR_UNKNOWN_INTERFACE",
    "ERROR_UNKNOWN_METHOD",
    "ERROR_UNKNOWN_PROPERTY",
    "ERROR_PROPERTY_READ_ONLY",
    "ERROR_ACCESS_DENIED",
]

ERROR_FAILED = "org.ipcbus.Error.Failed"
ERROR_INVALID_ARGS = "org.ipcbus.Error.InvalidArgs"
ERROR_UNKNOWN_OBJECT = "org.ipcbus.Error.UnknownObject"
ERROR_UNKNOWN_INTERFACE = "org.ipcbus.Error.UnknownInterface"
ERROR_UNKNOWN_METHOD = "org.ipcbus.Error.UnknownMethod"
ERROR_UNKNOWN_PROPERTY = "org.ipcbus.Error.UnknownProperty"
ERROR_PROPERTY_READ_ONLY = "org.ipcbus.Error.PropertyReadOnly"
ERROR_ACCESS_DENIED = "org.ipcbus.Error.AccessDenied"

# The sentence of a failed check is cut to this many bytes, as libipcbus's (OBJECT_ERR_MAX).
ERR_MAX = 512

# The standard interfaces, in the order Introspect lists them.
_STD_ORDER = (_iface.INTROSPECTABLE, _iface.PROPERTIES, _iface.PEER, _iface.OBJECT_MANAGER)

_current = contextvars.ContextVar("ipcbus_service_current_message", default=None)


def current_message():
    """The call whose handler (method, getter, setter) is running, or None."""
    return _current.get()


def _is_aio(bus):
    """Is bus the asyncio one (ipcbus.aio.Bus), which runs async handlers?"""
    from . import aio

    return isinstance(bus, aio.Bus)


# ---- objects --------------------------------------------------------------------------------


class Object:
    """An object to export: subclass it, list its ``interfaces`` (names
    loaded with :func:`ipcbus.iface.load`, or :class:`ipcbus.iface.Interface`
    objects, or description texts), write a method per described method and
    an attribute per property. An instance is exported at one path on one
    connection at a time."""

    interfaces = ()

    def __init__(self, interfaces=None):
        if interfaces is None:
            interfaces = type(self).interfaces
        self._interfaces = []
        for i in interfaces:
            if isinstance(i, _iface.Interface):
                self._interfaces.append(i)
            elif isinstance(i, str) and i.lstrip().startswith("{"):
                self._interfaces.append(_iface.parse(i))
            else:
                self._interfaces.append(_iface.load(i))
        names = [i.name for i in self._interfaces]
        for name in names:
            if names.count(name) > 1:
                raise ValueError("interface %s: listed twice" % name)
            if name in _STD_ORDER:
                raise ValueError("interface %s: answered by the library, not exported" % name)
        self._server = None
        self._path = None

    # -- what it is

    @property
    def exported_interfaces(self):
        """The object's descriptions, in the order it lists them."""
        return list(self._interfaces)

    @property
    def path(self):
        """Where the object is exported, or None."""
        return self._path

    @property
    def bus(self):
        """The connection the object is exported on, or None."""
        return self._server.bus if self._server else None

    def interface(self, name):
        """The object's description named `name`; KeyError when it has none."""
        for i in self._interfaces:
            if i.name == name:
                return i
        raise KeyError("interface %s: not an interface of this object" % name)

    # -- what it sends

    def emit_signal(self, interface, member, body=None, destination=None):
        """Emit a described signal from the object's path: the body (a dict
        of Python values, encoded as Args.encode does) is checked strictly
        against the description first (ValueError naming the member, nothing
        sent). Returns what bus.emit returns."""
        bus, path = self._exported()
        i = self.interface(interface)
        sig = i.signals.get(member)
        if sig is None:
            raise ValueError("interface %s has no signal '%s'" % (interface, member))
        fds = []
        wire = sig.args.encode(body, fds, raw_bytes=True)
        try:
            sig.args.check(wire, strict=True, n_fds=len(fds))
        except _iface.CheckError as e:
            raise ValueError("signal %s: %s" % (member, e)) from None
        kwargs = {}
        if destination is not None:
            kwargs["destination"] = destination
        if fds:
            kwargs["fds"] = fds
        return bus.emit(path, interface, member, wire, **kwargs)

    def emit_properties_changed(self, interface, *names):
        """Emit org.ipcbus.Properties.PropertiesChanged for the named
        properties of `interface`: the current values of those whose
        ``changes`` is ``emit``, the names of the others. ValueError for a
        name that is not a property of the interface or is ``const``."""
        bus, path = self._exported()
        i = self.interface(interface)
        for name in names:
            p = i.properties.get(name)
            if p is None:
                raise ValueError("property '%s': not in interface %s" % (name, interface))
            if p.changes == "const":
                raise ValueError("property '%s': constant, it does not change" % name)
        changed, invalidated = {}, []
        for name in names:
            p = i.properties[name]
            if p.changes == "emit":
                changed[name] = self._get_value(i, p)
            else:
                invalidated.append(name)
        body = {"interface": interface, "changed": changed, "invalidated": invalidated}
        return bus.emit(path, _iface.PROPERTIES, "PropertiesChanged", body)

    def set_property(self, interface, name, value, emit_changed=True):
        """Set a property of the object (through its attribute or Python
        property) after checking the value against its type (ValueError),
        and announce it with PropertiesChanged unless emit_changed is false
        or the property's ``changes`` is ``const`` or ``none``."""
        i = self.interface(interface)
        p = i.properties.get(name)
        if p is None:
            raise ValueError("property '%s': not in interface %s" % (name, interface))
        p.type.check(p.type.encode(value), name, strict=True)
        setattr(self, name, value)
        if emit_changed and self._path is not None and p.changes in ("emit", "invalidate"):
            self.emit_properties_changed(interface, name)

    # -- inside

    def _exported(self):
        if self._server is None:
            raise RuntimeError("the object is not exported")
        return self._server.bus, self._path

    def _get_value(self, i, p):
        """A property's current value in its wire form, checked against its type."""
        value = getattr(self, p.name)
        wire = p.type.encode(value, raw_bytes=True)
        try:
            # a property's value travels without descriptors: an fd-typed one cannot be read
            p.type.check(wire, p.name, strict=True, n_fds=0)
        except _iface.CheckError as e:
            raise ValueError("property %s of %s: %s" % (p.name, i.name, e)) from None
        return wire

    def _properties(self, i):
        """{name: value} of every readable property of i."""
        return {p.name: self._get_value(i, p) for p in i.properties.values() if p.readable}

    def _check_complete(self):
        """Every described method has a handler, every readable property an
        attribute, every writable one a way to set it: refused at export,
        naming what is missing, as libipcbus refuses an incomplete vtable."""
        missing = object()
        for i in self._interfaces:
            for m in i.methods.values():
                if not callable(getattr(self, m.name, None)):
                    raise ValueError("no handler for method '%s' of %s" % (m.name, i.name))
            for p in i.properties.values():
                attr = inspect.getattr_static(self, p.name, missing)  # a getter is not run here
                if p.readable and attr is missing:
                    raise ValueError("no getter for property '%s' of %s" % (p.name, i.name))
                if p.writable and isinstance(attr, property) and attr.fset is None:
                    raise ValueError("no setter for property '%s' of %s" % (p.name, i.name))


class ObjectManager:
    """An object manager exported at a path (:func:`export_object_manager`); ``remove()`` stops it."""

    def __init__(self, server, path):
        self._server = server
        self.path = path

    def remove(self):
        if self._server is not None:
            self._server.managers.remove(self.path)
            self._server = None


# ---- export -----------------------------------------------------------------------------------


def export(bus, path, obj):
    """Serve obj at path on bus. ValueError for an invalid path, an
    incomplete object (a described method without handler, a property
    without attribute), or an interface already exported at path. Object
    managers at or above path announce it. Returns obj."""
    return _server_of(bus).export(path, obj)


def unexport(bus, path, obj=None):
    """Stop serving obj (or every object) at path; managers above announce it."""
    _server_of(bus).unexport(path, obj)


def export_object_manager(bus, path):
    """Serve org.ipcbus.ObjectManager at path (GetManagedObjects, and
    InterfacesAdded / InterfacesRemoved for the objects exported and
    unexported at or below it from now on). Returns an ObjectManager whose
    remove() stops it; ValueError when path already has one."""
    return _server_of(bus).add_manager(path)


def check_signal(bus, path, interface, member, body, n_fds=0):
    """Check a signal about to be sent on bus as libipcbus checks one
    (object_check_outgoing): when its interface is a standard one, or one of
    an object exported at path, and describes the signal, the body (its wire
    form) must fit strictly: ValueError naming the signal and the field,
    nothing sent. Signals nobody here describes pass."""
    described = None
    if interface in (_iface.INTROSPECTABLE, _iface.PROPERTIES, _iface.OBJECT_MANAGER, _iface.PEER):
        described = _iface.standard(interface)
    else:
        try:
            server = _servers.get(bus)
        except TypeError:
            server = getattr(bus, "_ipcbus_service", None)
        for obj in (server.objects.get(path, ()) if server is not None else ()):
            for i in obj._interfaces:
                if i.name == interface:
                    described = i
    sig = described.signals.get(member) if described is not None else None
    if sig is None:
        return
    try:
        sig.args.check(body or {}, strict=True, n_fds=n_fds)
    except _iface.CheckError as e:
        raise ValueError("signal %s: %s" % (member, e)) from None


_servers = weakref.WeakKeyDictionary()


def _server_of(bus):
    try:
        server = _servers.get(bus)
    except TypeError:  # a connection that cannot be weakly referenced
        server = getattr(bus, "_ipcbus_service", None)
    if server is None:
        server = _Server(bus)
        try:
            _servers[bus] = server
        except TypeError:
            bus._ipcbus_service = server
    return server


def _is_below(path, above):
    """Is path strictly below `above` ("/a/b" below "/a" and "/")?"""
    if above == "/":
        return path != "/"
    return path.startswith(above + "/")


def _cut(text):
    return _iface._cut(text, ERR_MAX)


class _Server:
    """The exported objects of one connection and the dispatcher of calls to them."""

    def __init__(self, bus):
        self._bus = weakref.ref(bus) if _weakable(bus) else (lambda b=bus: b)
        self.objects = {}  # path -> [Object], in the order exported
        self.managers = []  # paths
        self.handle = bus.add_handler(self.dispatch)

    @property
    def bus(self):
        return self._bus()

    # -- registrations

    def export(self, path, obj):
        if not _is_path(path):
            raise ValueError("path '%s': not a valid object path (PROTOCOL.md section 5)" % (path,))
        if not isinstance(obj, Object):
            raise TypeError("an exported object is an ipcbus.service.Object")
        if "_interfaces" not in vars(obj):
            raise TypeError("%s.__init__ did not call ipcbus.service.Object.__init__" % type(obj).__name__)
        if obj._server is not None:
            raise ValueError("the object is already exported at %s" % obj._path)
        obj._check_complete()
        here = self.objects.get(path, [])
        for i in obj._interfaces:
            if any(i.name in (j.name for j in o._interfaces) for o in here):
                raise ValueError("interface %s: already exported at %s" % (i.name, path))
        self.objects.setdefault(path, []).append(obj)
        obj._server, obj._path = self, path
        self.announce(obj, added=True)
        return obj

    def unexport(self, path, obj=None):
        here = self.objects.get(path, [])
        gone = [o for o in here if obj is None or o is obj]
        if obj is not None and not gone:
            raise ValueError("the object is not exported at %s" % path)
        for o in gone:
            here.remove(o)
            if not here:
                del self.objects[path]
            self.announce(o, added=False)
            o._server = o._path = None

    def add_manager(self, path):
        if not _is_path(path):
            raise ValueError("path '%s': not an object path" % (path,))
        if path in self.managers:
            raise ValueError("path '%s': already has an object manager" % path)
        self.managers.append(path)
        return ObjectManager(self, path)

    def announce(self, obj, added):
        """InterfacesAdded / InterfacesRemoved from every manager at or above obj's path, best effort."""
        for mgr in list(self.managers):
            if not (mgr == obj._path or _is_below(obj._path, mgr)):
                continue
            if added:
                body = {"path": obj._path, "interfaces": {i.name: obj._properties(i) for i in obj._interfaces}}
                member = "InterfacesAdded"
            else:
                body = {"path": obj._path, "interfaces": [i.name for i in obj._interfaces]}
                member = "InterfacesRemoved"
            try:
                self.bus.emit(mgr, _iface.OBJECT_MANAGER, member, body)
            except Exception:  # noqa: BLE001 - announcing is best effort, as in libipcbus
                pass

    # -- lookups

    def exported(self, path):
        return path in self.objects or path in self.managers

    def find(self, path, interface):
        """(object, description) of interface at path, or (None, None)."""
        for o in self.objects.get(path, []):
            for i in o._interfaces:
                if i.name == interface:
                    return o, i
        return None, None

    def children(self, path):
        """The next component of every exported path (objects and managers) below path, sorted, each once."""
        out = set()
        for p in list(self.objects) + self.managers:
            if _is_below(p, path):
                rest = p[1:] if path == "/" else p[len(path) + 1 :]
                out.add(rest.split("/", 1)[0])
        return sorted(out, key=lambda s: s.encode())

    # -- answering

    def dispatch(self, msg):
        """The connection's handler: True when the call was ours to answer
        (or, for an async method on the asyncio bus, a coroutine that
        answers it and returns True). The connection closes the call's
        descriptors once this is done."""
        if msg.type != "call":
            return False
        return _Call(self, msg).dispatch()


def _weakable(obj):
    try:
        weakref.ref(obj)
        return True
    except TypeError:
        return False


class _Call:
    """One incoming call on its way to an answer."""

    def __init__(self, server, msg):
        self.server = server
        self.msg = msg
        self.bus = server.bus

    @property
    def n_fds(self):
        return len(self.msg.fds)

    @property
    def binary_len(self):
        # a body that travelled in a memfd: the size of its binary area (14.5); None: it came in its frame
        binary = self.msg.binary
        return None if binary is None else len(binary)

    def reply(self, body, fds=()):
        self.bus.reply(self.msg, body, fds=fds)

    def error(self, name, message):
        self.bus.reply_error(self.msg, name, message)

    def not_found(self, path_known, interface_known):
        m = self.msg
        if not path_known:
            self.error(ERROR_UNKNOWN_OBJECT, "No object at path %s" % m.path)
        elif not interface_known:
            self.error(ERROR_UNKNOWN_INTERFACE, "No interface %s at path %s" % (m.interface, m.path))
        elif m.interface:
            self.error(ERROR_UNKNOWN_METHOD,
                       "No method %s in interface %s at path %s" % (m.member, m.interface, m.path))
        else:
            self.error(ERROR_UNKNOWN_METHOD, "No method %s at path %s" % (m.member, m.path))

    def failure(self, e):
        """The answer to a handler's exception: a CallError keeps its name,
        anything else is Failed "TypeName: text" (as the connection answers
        an exception in a handler of its own)."""
        if isinstance(e, errors.CallError):
            self.error(e.name, e.message)
        else:
            self.error(ERROR_FAILED, "%s: %s" % (type(e).__name__, e))

    def check_in(self, args):
        """Check the body against args; answer InvalidArgs and return False when it breaks them."""
        try:
            args.check(self.body(), strict=False, n_fds=self.n_fds, binary_len=self.binary_len)
        except _iface.CheckError as e:
            self.error(ERROR_INVALID_ARGS, _cut(str(e)))
            return False
        return True

    def body(self):
        return self.msg.body

    def decode(self, t, value):
        """A checked value (or body, t an Args) in its Python form."""
        return t.decode(value, fds=list(self.msg.fds), binary=self.msg.binary)

    # -- the walk

    def dispatch(self):
        m = self.msg
        srv = self.server
        if m.interface in _STD_ORDER:
            return self.dispatch_std()
        here = srv.objects.get(m.path, [])
        interface_known = False
        for obj in list(here):
            for i in obj._interfaces:
                if m.interface and i.name != m.interface:
                    continue
                interface_known = True
                method = i.methods.get(m.member)
                if method is not None:
                    return self.run_method(obj, i, method)
        if not m.interface and m.member == "Ping":
            self.reply({})
            return True
        path_known = bool(here) or m.path in srv.managers
        if not path_known and not srv.children(m.path):
            return False  # not ours: the handlers after us, or the connection, answer it
        self.not_found(path_known, interface_known)
        return True

    def dispatch_std(self):
        m = self.msg
        srv = self.server
        desc = _iface.standard(m.interface)
        method = desc.methods.get(m.member)
        exported = srv.exported(m.path)
        if method is None:
            self.error(ERROR_UNKNOWN_METHOD, "No method %s in interface %s" % (m.member, m.interface))
            return True
        if (m.interface == _iface.PROPERTIES and not exported) or (
            m.interface == _iface.OBJECT_MANAGER and m.path not in srv.managers
        ):
            if not exported and not srv.children(m.path):
                return False
            self.not_found(exported, False)
            return True
        if not self.check_in(method.in_args):
            return True
        if m.interface == _iface.PEER:
            self.reply({})
        elif m.interface == _iface.INTROSPECTABLE:
            return self.introspect()
        elif m.interface == _iface.OBJECT_MANAGER:
            self.managed_objects()
        elif m.member == "Get":
            self.properties_get()
        elif m.member == "GetAll":
            self.properties_get_all()
        else:
            self.properties_set()
        return True

    # -- described methods

    def run_method(self, obj, i, method):
        """Check the call, run the handler, answer: True, or a coroutine doing
        it when the handler is async (the asyncio bus runs it as a task)."""
        if not method.unchecked and not self.check_in(method.in_args):
            return True
        handler = getattr(obj, method.name)
        if method.unchecked:
            kwargs = dict(self.body())
        else:
            body = self.decode(method.in_args, self.body())
            kwargs = {f.name: body[f.name] for f in method.in_args}
        token = _current.set(self.msg)
        try:
            result = handler(**kwargs)
        except Exception as e:  # noqa: BLE001 - every failure of a handler is its caller's answer
            self.failure(e)
            return True
        finally:
            _current.reset(token)
        if not inspect.isawaitable(result):
            self.answer(method, result)
            return True
        if not _is_aio(self.bus):
            if inspect.iscoroutine(result):
                result.close()
            self.error(ERROR_FAILED, "the handler of %s is async: it needs the asyncio bus (ipcbus.aio)" % method.name)
            return True
        return self.finish(method, result)

    async def finish(self, method, awaitable):
        """An async handler's end: its answer."""
        _current.set(self.msg)  # the task's own context
        try:
            result = await awaitable
        except Exception as e:  # noqa: BLE001
            self.failure(e)
        else:
            self.answer(method, result)
        return True

    def answer(self, method, result):
        """Send the handler's results, checked against the method's out."""
        # no results is no body, as libipcbus's typed reply with no arguments
        if method.unchecked:
            self.reply(result or None)
            return
        fds = []
        wire = method.out_args.encode(result, fds, raw_bytes=True)
        try:
            method.out_args.check(wire, strict=True, n_fds=len(fds))
        except _iface.CheckError as e:
            self.error(ERROR_FAILED, _cut("the reply was refused: the reply to %s: %s" % (method.name, e)))
            return
        self.reply(wire or None, fds)

    # -- org.ipcbus.Introspectable

    def introspect(self):
        m, srv = self.msg, self.server
        children = srv.children(m.path)
        exported = srv.exported(m.path)
        if not exported and not children:
            return False  # not ours: the connection answers UnknownObject
        interfaces = []
        for obj in srv.objects.get(m.path, []):
            interfaces.extend(i.description for i in obj._interfaces)
        interfaces.append(_iface.standard(_iface.INTROSPECTABLE).description)
        if exported:
            interfaces.append(_iface.standard(_iface.PROPERTIES).description)
        interfaces.append(_iface.standard(_iface.PEER).description)
        if m.path in srv.managers:
            interfaces.append(_iface.standard(_iface.OBJECT_MANAGER).description)
        self.reply({"path": m.path, "interfaces": interfaces, "children": children})
        return True

    # -- org.ipcbus.Properties

    def lookup(self, want_name):
        """(object, description, property) the call names, or None with an error sent."""
        body = self.body()
        interface = body["interface"]
        obj, i = self.server.find(self.msg.path, interface)
        if obj is None:
            self.error(ERROR_UNKNOWN_INTERFACE, "No interface %s at path %s" % (interface, self.msg.path))
            return None
        p = None
        if want_name:
            p = i.properties.get(body["name"])
            if p is None:
                self.error(ERROR_UNKNOWN_PROPERTY, "No property %s in interface %s" % (body["name"], interface))
                return None
        return obj, i, p

    def with_getters(self, fn):
        """Run fn (which reads properties) as the call's own code: its exception is the answer."""
        token = _current.set(self.msg)
        try:
            return True, fn()
        except Exception as e:  # noqa: BLE001
            self.failure(e)
            return False, None
        finally:
            _current.reset(token)

    def properties_get(self):
        found = self.lookup(True)
        if found is None:
            return
        obj, i, p = found
        if not p.readable:
            self.error(ERROR_ACCESS_DENIED, "Property %s of %s is write-only" % (p.name, i.name))
            return
        ok, value = self.with_getters(lambda: obj._get_value(i, p))
        if ok:
            self.reply({"value": value})

    def properties_get_all(self):
        found = self.lookup(False)
        if found is None:
            return
        obj, i, _ = found
        ok, values = self.with_getters(lambda: obj._properties(i))
        if ok:
            self.reply({"properties": values})

    def properties_set(self):
        found = self.lookup(True)
        if found is None:
            return
        obj, i, p = found
        if not p.writable:
            self.error(ERROR_PROPERTY_READ_ONLY, "Property %s of %s is read-only" % (p.name, i.name))
            return
        value = self.body().get("value")
        try:
            p.type.check(value, "value", n_fds=self.n_fds, binary_len=self.binary_len)
        except _iface.CheckError as e:
            self.error(ERROR_INVALID_ARGS, _cut(str(e)))
            return
        value = self.decode(p.type, value)
        ok, _ = self.with_getters(lambda: setattr(obj, p.name, value))
        if ok:
            self.reply({})

    # -- org.ipcbus.ObjectManager

    def managed_objects(self):
        srv, manager = self.server, self.msg.path

        def listing():
            objects = {}
            for path, objs in list(srv.objects.items()):
                if path == manager or _is_below(path, manager):
                    entry = objects.setdefault(path, {})
                    for obj in objs:
                        for i in obj._interfaces:
                            entry[i.name] = obj._properties(i)
            return objects

        ok, objects = self.with_getters(listing)
        if ok:
            self.reply({"objects": objects})

