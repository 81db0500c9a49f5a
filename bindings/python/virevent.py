"""Python bindings for virevent, the libvirt events API, through ctypes.

Standard library only. Install the package with ``pip install bindings/python``
(it works offline: the build needs nothing but pip), or put the folder on
``sys.path``.

    import virevent

    with virevent.Connection() as conn:            # the embedded test:///default
        conn.add_handler("domain-*", print)         # fn(xml: str)
        with conn.lookup_domain("test") as dom:
            dom.suspend()                           # emits domain-state-transition
        conn.deliver()                              # runs the handler: returns 1

Events are XML strings in virevent's canonical one-line form.

The library
-----------
Importing loads the shared library from the first of these that is given:

1. ``VIREVENT_LIB``, the environment variable: a path. When it is set it is the
   only place tried: a wrong path is an error, not a fallback.
2. ``ctypes.util.find_library("virevent")``: the dynamic loader's cache (a
   library installed where ``ldconfig`` looks), ``LD_LIBRARY_PATH``.
3. ``INSTALL_LIBDIR`` joined with ``libvirevent.so.0``: the library folder
   recorded at install time. ``INSTALL_LIBDIR = None`` below is rewritten by
   ``make install`` in the installed copy of this module to
   ``INSTALL_LIBDIR = "/the/prefix/lib"``.

When none loads, the import raises ImportError naming all three. ``LIBRARY`` is
what it was loaded by; ``__version__`` is the library's version.

Connection(uri=None): a connection (the embedded test driver, or a daemon's URI)
    add_handler(filter, fn)        register fn(xml) for the events filter matches; its id
    remove_handler(handler_id)     unregister a handler: never called again
    emit(xml)                      emit an event (str or bytes); its seq
    deliver()                      run the handlers of the queued events here; the calls made
    fileno()                       the poll descriptor: readable while deliver() has work
    events(filter=None)            an asyncio iterator of events: async for xml in ...
    stream(filter=None, timeout=None)  an EventStream of event lines, no callbacks
    start_event_thread()           run handlers on the library's own thread from now on
    stop_event_thread()            stop and join that thread; deliver() delivers again
    set_queue_limit(max_events)    how many events each queue holds (then events-lost)
    lookup_domain(name)            the test driver's Domain of that name
    close()                        close: handlers removed, streams ended (idempotent)
    closed                         True once closed
Domain: a test driver domain, from lookup_domain (each change emits one event)
    create()                       shutoff -> running
    suspend()                      running -> paused
    resume()                       paused -> running
    shutdown()                     running -> shutoff
    destroy()                      running or paused -> shutoff, at once
    free()                         free the handle (idempotent)
EventStream: from stream(), iterating yields each event line (str) until close
    readline()                     the next line as bytes, b"" at end of file
    buffered()                     whether a line is ready without reading
    fileno()                       the descriptor, for select
    close()                        close the descriptor: unsubscribe (idempotent)
Connection, Domain and EventStream are context managers that close or free.
Module: VireventError(code, message); the VIR_ERR_* codes and ERROR_NAMES;
last_error(), lib (the raw CDLL), c_filter(), EventHandler, FreeCallback,
FilterPtr for checks at the C level (raw: -1 or None, no exceptions).

Four ways to receive events, freely mixed on one connection:

- handlers run by ``deliver()`` in the calling thread; wait for work with
  ``fileno()`` in ``selectors`` or ``asyncio``;
- ``async for xml in conn.events(filter)``: the same, for asyncio (below);
- handlers run on the library's own thread: ``start_event_thread()``;
- ``stream()``: an iterator over event lines read from a descriptor.

Errors
------
A failing call raises ``VireventError`` with libvirt's error code (``code``, a
``VIR_ERR_*`` below) and the library's ``message``. An argument of the wrong
type raises TypeError naming the method and the argument, as Python's own
functions do: ``emit() argument 'xml' must be str or bytes, not int``. What the
binding refuses itself follows the same pattern, as a VireventError:
``emit(): the connection is closed`` (VIR_ERR_INVALID_CONN), ``suspend(): the
handle of domain 'test' is freed`` and ``emit() argument 'xml' contains a NUL
character`` (VIR_ERR_INVALID_ARG).

Handler exceptions
------------------
An exception raised by a handler never reaches the library. The first one is
kept (further ones, until it is raised, are dropped and counted in a note on
it) and raised, with its original traceback, by the next of these calls made
from Python on that connection, in whatever thread makes it:

- ``deliver()``: for handlers that deliver() runs, that very call, once every
  handler of the delivery has run (its events are consumed all the same);
  for a handler on the event thread, the next deliver() (which returns 0 while
  the thread runs: a cheap check);
- ``stop_event_thread()``, once the thread is joined;
- an ``events()`` iteration, at its next delivery (it calls deliver()).

``close()`` raises none: what is still kept then goes to
``threading.excepthook`` (by default printed to stderr as "Exception in thread
Dummy-N", the event thread), so that it is never lost silently.

asyncio
-------
``async for xml in conn.events(filter):`` yields the events that `filter`
matches (as for add_handler), in seq order, emitted from its first step on:
that step registers a handler. No thread: whenever it has yielded every event
it holds it calls ``deliver()``, and if that brought none it waits with
``loop.add_reader(conn.fileno(), ...)``, for the time of the wait only. So a
slow consumer leaves events in the library's queue, where set_queue_limit() and
its events-lost notice apply. While the event thread runs, events come from
the thread's handler calls (handed to the loop thread-safely) instead.

It ends (StopAsyncIteration), after yielding the events it already holds:

- when the connection is closed, by close() from the loop's thread;
- when the connection is lost: deliver() fails with VIR_ERR_NO_CONNECT or
  VIR_ERR_RPC, which a remote connection does once its ``connection-closed``
  event has been delivered (a filter that names connection-closed sees it,
  with its reason).

Any other error of deliver(), a handler's exception included (the deliveries it
makes run every handler of the connection), is raised by the ``async for``,
and ends it. When it ends, when the loop body leaves it (break, return, an
exception: the iterator is dropped), when its task is cancelled, and when
``asyncio.run()`` finishes (which cancels the task), it removes its handler,
and its reader if one is set, at once. ``aclose()`` does the same explicitly
(``contextlib.aclosing``). One connection may have several iterations.
"""

import atexit
import collections
import ctypes
import ctypes.util
import itertools
import numbers
import operator
import os
import selectors
import threading
import warnings
import weakref
from ctypes import POINTER, c_char_p, c_int, c_uint, c_void_p

__all__ = [
    "VireventError", "Connection", "Domain", "EventStream",
    "VIR_EVENT_STREAM_NONBLOCK", "ERROR_NAMES", "LIBRARY", "lib",
    "EventHandler", "FreeCallback", "FilterPtr", "c_filter", "last_error",
]

#: The library's version (Cargo.toml's; pyproject.toml's too).
__version__ = "0.1.0"

#: The folder holding libvirevent.so.0, recorded at install time: ``make install``
#: rewrites this line of the installed copy. Keep it exactly as it is.
INSTALL_LIBDIR = None

# virErrorNumber: libvirt's values; they never change.
VIR_ERR_OK = 0
VIR_ERR_INTERNAL_ERROR = 1
VIR_ERR_NO_MEMORY = 2
VIR_ERR_NO_SUPPORT = 3
VIR_ERR_NO_CONNECT = 5
VIR_ERR_INVALID_CONN = 6
VIR_ERR_INVALID_ARG = 8
VIR_ERR_OPERATION_FAILED = 9
VIR_ERR_XML_ERROR = 27
VIR_ERR_SYSTEM_ERROR = 38
VIR_ERR_RPC = 39
VIR_ERR_NO_DOMAIN = 42
VIR_ERR_AUTH_FAILED = 45
VIR_ERR_OPERATION_INVALID = 55

#: code -> "VIR_ERR_..." for every error code above.
ERROR_NAMES = {value: name for name, value in globals().items() if name.startswith("VIR_ERR_")}
__all__ += sorted(ERROR_NAMES.values(), key=lambda name: globals()[name])

#: The flag of virConnectOpenEventStream that makes the descriptor non-blocking.
VIR_EVENT_STREAM_NONBLOCK = 1

# typedef void (*virEventHandler)(virConnectPtr conn, const char *eventXML, void *arg);
EventHandler = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_void_p)
# typedef void (*virFreeCallback)(void *arg);
FreeCallback = ctypes.CFUNCTYPE(None, c_void_p)
#: const char *const *: a NULL-terminated filter vector (see c_filter).
FilterPtr = POINTER(c_char_p)


def _load():
    """The CDLL and what it was loaded by: VIREVENT_LIB, find_library, or
    INSTALL_LIBDIR (see the module's doc)."""
    path = os.environ.get("VIREVENT_LIB")
    if path:
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            raise ImportError(f"virevent: cannot load the library: VIREVENT_LIB={path}: {e} "
                              f"(find_library and INSTALL_LIBDIR are not tried while "
                              f"VIREVENT_LIB is set)") from None
    tried = ["VIREVENT_LIB is not set"]
    candidates = []
    found = ctypes.util.find_library("virevent")
    if found:
        candidates.append((f"ctypes.util.find_library('virevent') found {found}", found))
    else:
        tried.append("ctypes.util.find_library('virevent') found nothing")
    if INSTALL_LIBDIR:
        installed = os.path.join(INSTALL_LIBDIR, "libvirevent.so.0")
        candidates.append((f"INSTALL_LIBDIR: {installed}", installed))
    else:
        tried.append("INSTALL_LIBDIR is None (make install records the library folder there)")
    for what, name in candidates:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            tried.append(f"{what}: {e}")
    raise ImportError(f"virevent: cannot load the library: {'; '.join(tried)}. "
                      f"Set VIREVENT_LIB to the path of libvirevent.so")


def _declare(library):
    prototypes = {
        "virConnectOpen": (c_void_p, c_char_p),
        "virConnectClose": (c_int, c_void_p),
        "virConnectAddEventHandler": (c_int, c_void_p, FilterPtr, EventHandler, c_void_p),
        "virConnectAddEventHandlerFull": (c_int, c_void_p, FilterPtr, EventHandler, c_void_p,
                                          FreeCallback, c_uint),
        "virConnectRemoveEventHandler": (c_int, c_void_p, c_int),
        "virConnectEmitEvent": (c_int, c_void_p, c_char_p),
        "virDeliverEvents": (c_int, c_void_p),
        "virConnectSetEventQueueLimit": (c_int, c_void_p, c_uint),
        "virConnectGetEventFD": (c_int, c_void_p),
        "virConnectStartEventThread": (c_int, c_void_p),
        "virConnectStopEventThread": (c_int, c_void_p),
        "virConnectOpenEventStream": (c_int, c_void_p, FilterPtr, c_uint),
        "virDomainLookupByName": (c_void_p, c_void_p, c_char_p),
        "virDomainCreate": (c_int, c_void_p),
        "virDomainSuspend": (c_int, c_void_p),
        "virDomainResume": (c_int, c_void_p),
        "virDomainShutdown": (c_int, c_void_p),
        "virDomainDestroy": (c_int, c_void_p),
        "virDomainFree": (c_int, c_void_p),
        "virGetLastErrorCode": (c_int,),
        "virGetLastErrorMessage": (c_char_p,),
        "virResetLastError": (None,),
    }
    for name, (restype, *argtypes) in prototypes.items():
        function = getattr(library, name)
        function.restype = restype
        function.argtypes = argtypes
    return library


#: The raw library: every prototype declared, no error checking.
lib, LIBRARY = _load()
_declare(lib)


def last_error():
    """(code, message) of the calling thread's last virevent error; (0, "no error")
    after a call that succeeded."""
    code = lib.virGetLastErrorCode()
    message = lib.virGetLastErrorMessage()
    return code, (message.decode("utf-8", "replace") if message is not None else None)


class VireventError(Exception):
    """A virevent call failed.

    ``code`` is libvirt's virErrorNumber (``VIR_ERR_INVALID_ARG``, ...), ``message``
    the library's words (or the binding's, for what it refuses before any call,
    such as a closed connection). ``str()`` shows both."""

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return f"{self.message} ({ERROR_NAMES.get(self.code, 'error')} {self.code})"


def _fail():
    """The VireventError of the last error, read right after the failing call on
    the same thread (every other call resets it)."""
    code, message = last_error()
    return VireventError(code, message)


def _check(result):
    """`result` of a call that returns -1 on failure, else raises."""
    if result == -1:
        raise _fail()
    return result


def _type_error(function, name, expected, value):
    return TypeError(f"{function}() argument '{name}' must be {expected}, "
                     f"not {type(value).__name__}")


def _encode(value, function, name):
    """str (UTF-8) or bytes as bytes, refusing NUL (C would cut the string there)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, (bytes, bytearray)):
        raise _type_error(function, name, "str or bytes", value)
    if b"\0" in value:
        raise VireventError(VIR_ERR_INVALID_ARG,
                            f"{function}() argument '{name}' contains a NUL character")
    return bytes(value)


def _int(value, function, name, low, high):
    """`value` as an int (anything with __index__), VIR_ERR_INVALID_ARG outside low..high."""
    try:
        value = operator.index(value)
    except TypeError:
        raise _type_error(function, name, "int", value) from None
    if not low <= value <= high:
        raise VireventError(VIR_ERR_INVALID_ARG, f"{function}() argument '{name}' must be "
                            f"in {low}..{high}, not {value}")
    return value


def _timeout(value, function):
    if value is not None and not isinstance(value, numbers.Real):
        raise _type_error(function, "timeout", "None or a number", value)
    return value


def _filter(filter, function):
    """The C filter vector of `filter` (see c_filter), errors naming `function`."""
    if filter is None:
        return None
    if isinstance(filter, (str, bytes)):
        filter = [filter]
    elif not isinstance(filter, (list, tuple)):
        raise _type_error(function, "filter", "None, str, bytes, or a list or tuple of them",
                          filter)
    entries = [_encode(entry, function, f"filter[{i}]") for i, entry in enumerate(filter)]
    return (c_char_p * (len(entries) + 1))(*entries, None)


def c_filter(filter):
    """The C filter vector for `filter`: None (every event, a NULL vector), one
    entry (str or bytes), or a list or tuple of entries, each a type pattern
    ("domain-*") or an XPath expression. The array keeps its strings alive."""
    return _filter(filter, "c_filter")


class _Errors:
    """The exceptions raised by one connection's handlers, waiting to be re-raised."""

    def __init__(self):
        self._lock = threading.Lock()
        self._first = None
        self._thread = None
        self._dropped = 0

    def record(self, exc):
        with self._lock:
            if self._first is None:
                self._first = exc
                self._thread = threading.current_thread()
            else:
                self._dropped += 1

    def take(self):
        """The first exception recorded since the last take (or None), with a note
        counting the ones recorded after it, and the thread it was raised on."""
        with self._lock:
            exc, thread, dropped = self._first, self._thread, self._dropped
            self._first, self._thread, self._dropped = None, None, 0
        if exc is not None and dropped and hasattr(exc, "add_note"):
            exc.add_note(f"virevent: {dropped} more handler exception(s) were dropped "
                         f"before this one was raised")
        return exc, thread


# Handlers registered through Connection.add_handler: token -> (fn, _Errors). The
# token is the handler's C `arg`; _free drops the entry when the library is done
# with it (removal, close, or a failed registration), so that the function lives
# exactly as long as the C side may call it. One pair of C callbacks serves every
# handler and lives as long as the module.
_handlers = {}
_tokens = itertools.count(1)


def _dispatch(_conn, xml, token):
    # Nothing may propagate into C: ctypes would only print it.
    try:
        fn, errors = _handlers[token]
    except Exception:
        return
    try:
        fn(xml.decode("utf-8"))
    except BaseException as exc:  # noqa: B036 - KeyboardInterrupt too: re-raised by deliver()
        errors.record(exc)


def _free(token):
    try:
        _handlers.pop(token, None)
    except Exception:
        pass


_dispatch_c = EventHandler(_dispatch)
_free_c = FreeCallback(_free)

# Connections not yet closed, closed at exit (atexit runs before the interpreter
# finalizes): an event thread entering a Python handler in a finalizing
# interpreter is ended by CPython with pthread_exit, whose forced unwind through
# the library aborts the process.
_open = weakref.WeakSet()


@atexit.register
def _close_all():
    for conn in list(_open):
        try:
            conn.close()
        except Exception:
            pass


class _Resource:
    """What holds a library resource: a context manager that releases it on exit,
    and on collection (quietly: a finalizer must not raise)."""

    def _release(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._release()

    def __del__(self):
        try:
            self._release()
        except Exception:
            pass


class Connection(_Resource):
    """A virevent connection: an event hub with handlers, a queue and a driver.

    ``uri`` is None, "" or "test:///default" (the embedded test driver, with one
    running domain named "test"), "test:///empty" (no domains), or a libvirt
    daemon's URI ("qemu:///system", "test+unix:///default?socket=PATH"). A bad
    URI raises VireventError with VIR_ERR_NO_CONNECT.

    A context manager: ``with Connection() as conn:`` closes it on exit. After
    close() every method raises VireventError with VIR_ERR_INVALID_CONN.

    Threads: methods may be called from any thread and from inside handlers,
    but close() must not run while another thread is inside a method of the
    same connection (the C API's rule); handlers on the event thread are fine,
    close() stops that thread first.

    Handler exceptions: an exception raised by a handler does not reach the
    library. The first one is kept and re-raised, with its traceback, by the
    next deliver() or stop_event_thread() on this connection (or step of an
    events() iteration): for handlers run by deliver() that is the very call
    that ran them, once every handler of that delivery has run (its events are
    consumed all the same). Further exceptions before it is re-raised are
    dropped (counted in a note on the first one). close() does not raise what
    is still kept: it passes it to threading.excepthook.

    A connection left open is closed when collected (with a ResourceWarning),
    and at interpreter exit.
    """

    def __init__(self, uri=None):
        self._conn = None
        self._errors = _Errors()
        self._iterations = weakref.WeakSet()  # events() iterations under way
        self.uri = uri
        ptr = lib.virConnectOpen(None if uri is None else _encode(uri, "Connection", "uri"))
        if not ptr:
            raise _fail()
        self._conn = ptr
        _open.add(self)

    def _ptr(self, function):
        conn = self._conn
        if conn is None:
            raise VireventError(VIR_ERR_INVALID_CONN, f"{function}(): the connection is closed")
        return conn

    @property
    def closed(self):
        """True once close() has succeeded."""
        return self._conn is None

    def close(self):
        """Closes the connection: stops the event thread, removes every handler,
        ends every stream (its reader sees end of file) and every events()
        iteration, and discards queued events. Idempotent. From inside one of
        its own handlers: VireventError with VIR_ERR_OPERATION_INVALID, and the
        connection stays open. A handler exception still kept goes to
        threading.excepthook."""
        conn = self._conn
        if conn is None:
            return
        # Before the descriptor goes: the iterations' readers are removed.
        for iteration in list(self._iterations):
            iteration._closing()
        _check(lib.virConnectClose(conn))
        self._conn = None
        _open.discard(self)
        exc, thread = self._errors.take()
        if exc is not None:
            threading.excepthook(threading.ExceptHookArgs([type(exc), exc, exc.__traceback__,
                                                           thread]))

    _release = close

    def __del__(self):
        if getattr(self, "_conn", None) is not None:
            try:
                warnings.warn(f"unclosed virevent.Connection {self.uri!r}", ResourceWarning,
                              source=self)
                self.close()
            except Exception:
                pass

    def __repr__(self):
        state = "closed" if self._conn is None else "open"
        return f"<virevent.Connection {self.uri!r} {state}>"

    def add_handler(self, filter, fn):
        """Registers ``fn(xml: str)`` for the events that `filter` matches, emitted
        from now on; returns the handler's id (>= 0, never reused).

        `filter`: None (every event), one entry, or a list or tuple of entries; an
        entry is a type pattern ("domain-state-transition", "domain-*") or an
        XPath 1.0 expression ("/event[new-state='paused']"). An empty list, an
        empty entry or an XPath that does not compile: VireventError with
        VIR_ERR_INVALID_ARG naming it.

        `fn` is called by deliver() in the calling thread, or on the event thread,
        with the event's XML (one line). It is kept alive until the handler is
        removed or the connection closed. For its exceptions, see the class."""
        if not callable(fn):
            raise _type_error("add_handler", "fn", "callable", fn)
        vector = _filter(filter, "add_handler")
        conn = self._ptr("add_handler")
        token = next(_tokens)
        _handlers[token] = (fn, self._errors)
        # On failure the library has already run _free_c(token).
        return _check(lib.virConnectAddEventHandlerFull(conn, vector, _dispatch_c, token,
                                                        _free_c, 0))

    def remove_handler(self, handler_id):
        """Unregisters a handler: never called again once this returns. An unknown
        id: VireventError with VIR_ERR_INVALID_ARG."""
        handler_id = _int(handler_id, "remove_handler", "handler_id", -2 ** 31, 2 ** 31 - 1)
        _check(lib.virConnectRemoveEventHandler(self._ptr("remove_handler"), handler_id))

    def emit(self, xml):
        """Emits an event: `xml` (str, or bytes taken as is) is one XML document
        whose root is ``<event type="...">``. Returns its seq (> 0). Malformed XML:
        VireventError with VIR_ERR_XML_ERROR; a missing or bad type, a bad
        timestamp or a given seq: VIR_ERR_INVALID_ARG."""
        xml = _encode(xml, "emit", "xml")
        return _check(lib.virConnectEmitEvent(self._ptr("emit"), xml))

    def deliver(self):
        """Runs, in this thread, the handlers for the events queued before the
        call; returns the number of handler calls (0 while another delivery or
        the event thread runs). Never blocks. Re-raises a handler's exception:
        see the class."""
        calls = _check(lib.virDeliverEvents(self._ptr("deliver")))
        self._reraise()
        return calls

    def _reraise(self):
        exc, _ = self._errors.take()
        if exc is not None:
            try:
                raise exc
            finally:
                exc = None  # no reference cycle through this frame

    def fileno(self):
        """The connection's poll descriptor: readable exactly while deliver() has
        handler calls to make (level-triggered). Owned by the connection: never
        read or close it. For ``selectors`` (register it for EVENT_READ) and
        ``asyncio`` (``loop.add_reader(conn.fileno(), conn.deliver)``)."""
        return _check(lib.virConnectGetEventFD(self._ptr("fileno")))

    def events(self, filter=None):
        """An asynchronous iterator of the events `filter` (as for add_handler)
        matches: ``async for xml in conn.events(filter):``. Built on fileno()
        and deliver() in the running asyncio loop, no thread; it ends when the
        connection is closed or lost. Its handler is registered by its first
        step, which raises what add_handler would (an XPath that does not
        compile). The module's doc says when it delivers, ends, raises, and
        removes its handler and reader."""
        _filter(filter, "events")
        self._ptr("events")
        return _Events(self, filter)

    def set_queue_limit(self, max_events):
        """Sets how many events each queue (handlers, each stream) holds (default
        65536). Events finding a queue full are dropped for that consumer, which
        then gets one ``events-lost`` event. 0 (or beyond an unsigned int):
        VireventError with VIR_ERR_INVALID_ARG."""
        max_events = _int(max_events, "set_queue_limit", "max_events", 0, 2 ** 32 - 1)
        _check(lib.virConnectSetEventQueueLimit(self._ptr("set_queue_limit"), max_events))

    def start_event_thread(self):
        """Starts the library's event thread: handlers then run on it as events
        arrive, and deliver() returns 0. Already running: VireventError with
        VIR_ERR_OPERATION_INVALID."""
        _check(lib.virConnectStartEventThread(self._ptr("start_event_thread")))

    def stop_event_thread(self):
        """Stops and joins the event thread; delivery goes back to deliver().
        Not running, or called from a handler on that thread: VireventError with
        VIR_ERR_OPERATION_INVALID. Re-raises a handler's exception: see the
        class."""
        _check(lib.virConnectStopEventThread(self._ptr("stop_event_thread")))
        self._reraise()

    def stream(self, filter=None, timeout=None):
        """Opens an event stream: an EventStream iterating over the lines (str, no
        newline) of the events that `filter` (as for add_handler) matches, emitted
        from now on. Reads block (at most `timeout` seconds per line when given);
        the iteration ends when the connection closes."""
        vector = _filter(filter, "stream")
        _timeout(timeout, "stream")
        fd = _check(lib.virConnectOpenEventStream(self._ptr("stream"), vector, 0))
        return EventStream(fd, timeout)

    def lookup_domain(self, name):
        """The test driver's domain `name` as a Domain. None of that name:
        VireventError with VIR_ERR_NO_DOMAIN (VIR_ERR_NO_SUPPORT on a remote
        connection)."""
        encoded = _encode(name, "lookup_domain", "name")
        ptr = lib.virDomainLookupByName(self._ptr("lookup_domain"), encoded)
        if not ptr:
            raise _fail()
        return Domain(ptr, name)


class _Events:
    """The asynchronous iterator of Connection.events() (see the module's doc)."""

    def __init__(self, conn, filter):
        self._conn = conn
        self._filter = filter
        self._loop = None       # the running loop, from the first step on
        self._loop_thread = None
        self._queue = collections.deque()  # events delivered, not yet yielded
        self._handler = None    # the handler's id while registered
        self._waiter = None     # the future a waiting step awaits
        self._reader = None     # the descriptor while a reader is set on it
        self._done = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._done:
            raise StopAsyncIteration
        try:
            if self._loop is None:
                if self._conn.closed:
                    raise StopAsyncIteration
                self._start()
            while not self._queue:
                if self._conn.closed:
                    raise StopAsyncIteration
                try:
                    self._conn.deliver()
                except VireventError as e:
                    if e.code in (VIR_ERR_NO_CONNECT, VIR_ERR_RPC):
                        raise StopAsyncIteration from None  # the connection is lost
                    raise
                if not self._queue:
                    await self._wait()
            return self._queue.popleft()
        except BaseException:
            self._stop()
            raise

    def _start(self):
        import asyncio
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        ref = weakref.ref(self)  # the handler must not keep the iterator alive

        def handler(xml):
            iteration = ref()
            if iteration is not None:
                iteration._queue.append(xml)
                iteration._wake_threadsafe()

        self._handler = self._conn.add_handler(self._filter, handler)
        self._conn._iterations.add(self)

    async def _wait(self):
        """Until the descriptor is readable, an event arrives from another
        thread, or the connection closes."""
        self._waiter = self._loop.create_future()
        self._reader = self._conn.fileno()
        self._loop.add_reader(self._reader, self._wake)
        try:
            await self._waiter
        finally:
            self._waiter = None
            self._remove_reader()

    def _wake(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _wake_threadsafe(self):
        if threading.get_ident() == self._loop_thread:
            self._wake()
        else:
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop is closed
                pass

    def _remove_reader(self):
        if self._reader is not None:
            self._loop.remove_reader(self._reader)
            self._reader = None

    def _closing(self):
        """The connection is about to close (its descriptor with it)."""
        if threading.get_ident() == self._loop_thread:
            self._remove_reader()
        self._wake_threadsafe()

    def _stop(self):
        """Removes the handler (and the reader): the iteration is over. Idempotent."""
        if self._done:
            return
        self._done = True
        self._queue.clear()
        if self._loop is not None and threading.get_ident() == self._loop_thread:
            self._remove_reader()
        self._conn._iterations.discard(self)
        if self._handler is not None and not self._conn.closed:
            try:
                self._conn.remove_handler(self._handler)
            except VireventError:
                pass
        self._handler = None

    async def aclose(self):
        """Ends the iteration: its handler (and reader) are removed."""
        self._stop()

    def __del__(self):
        try:
            self._stop()
        except Exception:
            pass


class EventStream(_Resource):
    """Event lines read from a descriptor of virConnectOpenEventStream, which it
    owns: iterating yields each event's XML (str, without the newline) and stops
    at end of file (the connection closed). Reads block, at most `timeout`
    seconds per line when it is not None (then TimeoutError).

    A context manager; close() closes the descriptor, which unsubscribes.
    fileno() is the descriptor, for select; lines already read into the
    stream's buffer do not make it readable (see buffered())."""

    def __init__(self, fd, timeout=None):
        self._fd = None  # for __del__, if a check below raises
        fd = _int(fd, "EventStream", "fd", 0, 2 ** 31 - 1)
        self.timeout = _timeout(timeout, "EventStream")
        self._fd = fd
        self._buffer = b""
        self._eof = False

    def fileno(self):
        """The descriptor (ValueError once closed)."""
        if self._fd is None:
            raise ValueError("fileno(): the event stream is closed")
        return self._fd

    def buffered(self):
        """True when a whole line (or end of file) is ready without reading."""
        return b"\n" in self._buffer or self._eof

    def readline(self):
        """The next line as bytes, with its b"\\n"; b"" at end of file."""
        fd = self.fileno()
        while not self.buffered():
            if self.timeout is not None:
                with selectors.DefaultSelector() as selector:
                    selector.register(fd, selectors.EVENT_READ)
                    if not selector.select(self.timeout):
                        raise TimeoutError(f"no event line within {self.timeout} s")
            chunk = os.read(fd, 65536)
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        line, newline, self._buffer = self._buffer.partition(b"\n")
        return line + newline

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line.rstrip(b"\n").decode("utf-8")

    def close(self):
        """Closes the descriptor (unsubscribing). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    _release = close


class Domain(_Resource):
    """A domain of the test driver, from Connection.lookup_domain. Each state
    change emits one ``domain-state-transition`` event; from the wrong state it
    raises VireventError with VIR_ERR_OPERATION_INVALID and emits nothing. After
    its connection closed: VIR_ERR_INVALID_CONN.

    The handle is freed by free(), by leaving ``with``, or when collected."""

    def __init__(self, ptr, name):
        self._dom = ptr
        self.name = name

    def _call(self, function, method):
        if self._dom is None:
            raise VireventError(VIR_ERR_INVALID_ARG, f"{method}(): the handle of domain "
                                f"{self.name!r} is freed")
        _check(function(self._dom))

    def create(self):
        """Starts a shut-off domain (shutoff -> running)."""
        self._call(lib.virDomainCreate, "create")

    def suspend(self):
        """Pauses a running domain (running -> paused)."""
        self._call(lib.virDomainSuspend, "suspend")

    def resume(self):
        """Resumes a paused domain (paused -> running)."""
        self._call(lib.virDomainResume, "resume")

    def shutdown(self):
        """Shuts down a running domain (running -> shutoff)."""
        self._call(lib.virDomainShutdown, "shutdown")

    def destroy(self):
        """Stops an active (running or paused) domain at once (-> shutoff)."""
        self._call(lib.virDomainDestroy, "destroy")

    def free(self):
        """Frees the handle (the domain itself is untouched). Idempotent."""
        dom, self._dom = self._dom, None
        if dom is not None:
            _check(lib.virDomainFree(dom))

    _release = free

    def __repr__(self):
        return f"<virevent.Domain {self.name!r}{' freed' if self._dom is None else ''}>"
