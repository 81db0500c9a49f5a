"""Python bindings for virevent, the libvirt events API, through ctypes.

Standard library only. The shared library is found, in this order, at the path
in the environment variable ``VIREVENT_LIB``, by ``ctypes.util.find_library(
"virevent")``, or as ``libvirevent.so.0``.

    import virevent

    with virevent.Connection() as conn:            # the embedded test:///default
        conn.add_handler("domain-*", print)         # fn(xml: str)
        with conn.lookup_domain("test") as dom:
            dom.suspend()                           # emits domain-state-transition
        conn.deliver()                              # runs the handler: returns 1

Events are XML strings in virevent's canonical one-line form. Three ways to
receive them, freely mixed on one connection:

- handlers run by ``Connection.deliver()`` in the calling thread; wait for work
  with ``Connection.fileno()`` in ``selectors`` or ``asyncio``
  (``loop.add_reader(conn.fileno(), conn.deliver)``);
- handlers run on the library's own thread: ``Connection.start_event_thread()``;
- ``Connection.stream()``: an iterator over event lines read from a descriptor,
  no callbacks.

Every failing call raises ``VireventError`` with libvirt's error code
(``VIR_ERR_*`` below) and the library's message.

For checks at the C level, ``lib`` is the ``ctypes.CDLL`` with every function's
prototype declared (raw: it returns -1 or None, and raises nothing), with
``EventHandler``, ``FreeCallback``, ``FilterPtr``, ``c_filter()`` and
``last_error()`` to go with it.
"""

import atexit
import ctypes
import ctypes.util
import itertools
import os
import selectors
import threading
import warnings
import weakref
from ctypes import POINTER, c_char_p, c_int, c_uint, c_void_p

INSTALL_LIBDIR = None  # "PREFIX/lib" once installed by make -C examples-c install
__all__ = [
    "VireventError", "Connection", "Domain", "EventStream",
    "VIR_EVENT_STREAM_NONBLOCK", "ERROR_NAMES", "LIBRARY", "lib",
    "EventHandler", "FreeCallback", "FilterPtr", "c_filter", "last_error",
]

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
    """The CDLL and the name it was loaded by."""
    path = os.environ.get("VIREVENT_LIB")
    if path:
        candidates = [path]
    else:
        candidates = [name for name in (ctypes.util.find_library("virevent"), "libvirevent.so.0")
                      if name]
    errors = []
    for name in candidates:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            errors.append(f"{name}: {e}")
    where = "VIREVENT_LIB" if path else "VIREVENT_LIB is not set, and"
    raise ImportError(f"virevent: cannot load the library ({where} tried "
                      f"{'; '.join(errors)}); set VIREVENT_LIB to the path of libvirevent.so")


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


def _encode(value, what):
    """str (UTF-8) or bytes as bytes, refusing NUL (C would cut the string there)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if b"\0" in value:
        raise VireventError(VIR_ERR_INVALID_ARG, f"{what} contains a NUL character")
    return bytes(value)


def c_filter(filter):
    """The C filter vector for `filter`: None (every event, a NULL vector), one
    entry (str or bytes), or a list or tuple of entries, each a type pattern
    ("domain-*") or an XPath expression. The array keeps its strings alive."""
    if filter is None:
        return None
    if isinstance(filter, (str, bytes)):
        filter = [filter]
    elif not isinstance(filter, (list, tuple)):
        raise TypeError(f"filter must be None, str or a list or tuple of str, "
                        f"not {type(filter).__name__}")
    entries = [_encode(entry, f"filter[{i}]") for i, entry in enumerate(filter)]
    return (c_char_p * (len(entries) + 1))(*entries, None)


class _Errors:
    """The exceptions raised by one connection's handlers, waiting to be re-raised."""

    def __init__(self):
        self._lock = threading.Lock()
        self._first = None
        self._dropped = 0

    def record(self, exc):
        with self._lock:
            if self._first is None:
                self._first = exc
            else:
                self._dropped += 1

    def take(self):
        """The first exception recorded since the last take (or None), with a note
        counting the ones recorded after it."""
        with self._lock:
            exc, dropped = self._first, self._dropped
            self._first, self._dropped = None, 0
        if exc is not None and dropped and hasattr(exc, "add_note"):
            exc.add_note(f"virevent: {dropped} more handler exception(s) in the same "
                         f"delivery were dropped")
        return exc


# Handlers registered through Connection.add_handler: token -> (fn, _Errors). The
# token is the handler's C `arg`; _free_handler drops the entry when the library
# is done with it (removal, close, or a failed registration), so that the
# function lives exactly as long as the C side may call it. One pair of C
# callbacks serves every handler and lives as long as the module.
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
    next deliver() or stop_event_thread() on this connection: for handlers run
    by deliver() that is the very call that ran them, once every handler of that
    delivery has run (its events are consumed all the same). Further exceptions
    before it is re-raised are dropped (counted in a note on the first one).
    close() discards what is still kept.

    A connection left open is closed when collected (with a ResourceWarning),
    and at interpreter exit.
    """

    def __init__(self, uri=None):
        self._conn = None
        self._errors = _Errors()
        self.uri = uri
        ptr = lib.virConnectOpen(None if uri is None else _encode(uri, "uri"))
        if not ptr:
            raise _fail()
        self._conn = ptr
        _open.add(self)

    def _ptr(self):
        conn = self._conn
        if conn is None:
            raise VireventError(VIR_ERR_INVALID_CONN, "the virevent connection is closed")
        return conn

    @property
    def closed(self):
        """True once close() has succeeded."""
        return self._conn is None

    def close(self):
        """Closes the connection: stops the event thread, removes every handler,
        ends every stream (its reader sees end of file) and discards queued
        events. Idempotent. From inside one of its own handlers: VireventError
        with VIR_ERR_OPERATION_INVALID, and the connection stays open."""
        conn = self._conn
        if conn is None:
            return
        _check(lib.virConnectClose(conn))
        self._conn = None
        _open.discard(self)
        self._errors.take()

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
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        vector = c_filter(filter)
        conn = self._ptr()
        token = next(_tokens)
        _handlers[token] = (fn, self._errors)
        # On failure the library has already run _free_c(token).
        return _check(lib.virConnectAddEventHandlerFull(conn, vector, _dispatch_c, token,
                                                        _free_c, 0))

    def remove_handler(self, handler_id):
        """Unregisters a handler: never called again once this returns. An unknown
        id: VireventError with VIR_ERR_INVALID_ARG."""
        _check(lib.virConnectRemoveEventHandler(self._ptr(), handler_id))

    def emit(self, xml):
        """Emits an event: `xml` (str, or bytes taken as is) is one XML document
        whose root is ``<event type="...">``. Returns its seq (> 0). Malformed XML:
        VireventError with VIR_ERR_XML_ERROR; a missing or bad type, a bad
        timestamp or a given seq: VIR_ERR_INVALID_ARG."""
        return _check(lib.virConnectEmitEvent(self._ptr(), _encode(xml, "xml")))

    def deliver(self):
        """Runs, in this thread, the handlers for the events queued before the
        call; returns the number of handler calls (0 while another delivery or
        the event thread runs). Never blocks. Re-raises a handler's exception:
        see the class."""
        calls = _check(lib.virDeliverEvents(self._ptr()))
        self._reraise()
        return calls

    def _reraise(self):
        exc = self._errors.take()
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
        return _check(lib.virConnectGetEventFD(self._ptr()))

    def set_queue_limit(self, max_events):
        """Sets how many events each queue (handlers, each stream) holds (default
        65536). Events finding a queue full are dropped for that consumer, which
        then gets one ``events-lost`` event. 0 (or beyond an unsigned int):
        VireventError with VIR_ERR_INVALID_ARG."""
        if not 0 <= max_events <= 0xFFFFFFFF:
            raise VireventError(VIR_ERR_INVALID_ARG,
                                f"max_events {max_events} is out of range 1..4294967295")
        _check(lib.virConnectSetEventQueueLimit(self._ptr(), max_events))

    def start_event_thread(self):
        """Starts the library's event thread: handlers then run on it as events
        arrive, and deliver() returns 0. Already running: VireventError with
        VIR_ERR_OPERATION_INVALID."""
        _check(lib.virConnectStartEventThread(self._ptr()))

    def stop_event_thread(self):
        """Stops and joins the event thread; delivery goes back to deliver().
        Not running, or called from a handler on that thread: VireventError with
        VIR_ERR_OPERATION_INVALID. Re-raises a handler's exception: see the
        class."""
        _check(lib.virConnectStopEventThread(self._ptr()))
        self._reraise()

    def stream(self, filter=None, timeout=None):
        """Opens an event stream: an EventStream iterating over the lines (str, no
        newline) of the events that `filter` (as for add_handler) matches, emitted
        from now on. Reads block (at most `timeout` seconds per line when given);
        the iteration ends when the connection closes."""
        fd = _check(lib.virConnectOpenEventStream(self._ptr(), c_filter(filter), 0))
        return EventStream(fd, timeout)

    def lookup_domain(self, name):
        """The test driver's domain `name` as a Domain. None of that name:
        VireventError with VIR_ERR_NO_DOMAIN (VIR_ERR_NO_SUPPORT on a remote
        connection)."""
        ptr = lib.virDomainLookupByName(self._ptr(), _encode(name, "name"))
        if not ptr:
            raise _fail()
        return Domain(ptr, name)


class EventStream(_Resource):
    """Event lines read from a descriptor of virConnectOpenEventStream, which it
    owns: iterating yields each event's XML (str, without the newline) and stops
    at end of file (the connection closed). Reads block, at most `timeout`
    seconds per line when it is not None (then TimeoutError).

    A context manager; close() closes the descriptor, which unsubscribes.
    fileno() is the descriptor, for select; lines already read into the
    stream's buffer do not make it readable (see buffered())."""

    def __init__(self, fd, timeout=None):
        self._fd = fd
        self.timeout = timeout
        self._buffer = b""
        self._eof = False

    def fileno(self):
        """The descriptor (ValueError once closed)."""
        if self._fd is None:
            raise ValueError("the event stream is closed")
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

    def _call(self, function):
        if self._dom is None:
            raise VireventError(VIR_ERR_INVALID_ARG, f"the handle of domain {self.name!r} "
                                "is freed")
        _check(function(self._dom))

    def create(self):
        """Starts a shut-off domain (shutoff -> running)."""
        self._call(lib.virDomainCreate)

    def suspend(self):
        """Pauses a running domain (running -> paused)."""
        self._call(lib.virDomainSuspend)

    def resume(self):
        """Resumes a paused domain (paused -> running)."""
        self._call(lib.virDomainResume)

    def shutdown(self):
        """Shuts down a running domain (running -> shutoff)."""
        self._call(lib.virDomainShutdown)

    def destroy(self):
        """Stops an active (running or paused) domain at once (-> shutoff)."""
        self._call(lib.virDomainDestroy)

    def free(self):
        """Frees the handle (the domain itself is untouched). Idempotent."""
        dom, self._dom = self._dom, None
        if dom is not None:
            _check(lib.virDomainFree(dom))

    _release = free

    def __repr__(self):
        return f"<virevent.Domain {self.name!r}{' freed' if self._dom is None else ''}>"
