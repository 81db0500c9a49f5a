#!/usr/bin/env python3
"""The Python module bindings/python/virevent.py: every method and every error.

Standard library only. The module loads the library named by VIREVENT_LIB;
tests/python.rs sets it to the libvirevent.so that `cargo test` has just built.

    VIREVENT_LIB=target/debug/deps/libvirevent.so python3 tests/python/test_bindings.py -v
"""

import asyncio
import functools
import gc
import os
import re
import selectors
import subprocess
import sys
import threading
import traceback
import unittest
import weakref
import xml.etree.ElementTree as ET

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)
BINDINGS = os.path.join(ROOT, "bindings", "python")
sys.path.insert(0, BINDINGS)
import virevent  # noqa: E402
from virevent import Connection, VireventError  # noqa: E402

TIMEOUT = 10.0  # seconds any wait may take before the test fails

# With VIREVENT_SEEN_LOG set (tests/python.rs sets it), the events that
# Base.collect's handlers receive are logged as tests/c/seen_log.h logs them,
# "R PID CONN XML", each event emitted through Connection.emit as
# "E PID CONN SEQ" and each Base connection as "O PID CONN -" (CONN is the
# Connection's id()): tests/python.rs validates every event the library made
# against docs/events.rng.
SEEN_LOG = os.environ.get("VIREVENT_SEEN_LOG")


def seen_log(kind, conn, text):
    if SEEN_LOG:
        with open(SEEN_LOG, "ab") as log:
            log.write(b"%s %d 0x%x %s\n" % (kind, os.getpid(), id(conn), text))


if SEEN_LOG:
    _emit = Connection.emit

    @functools.wraps(_emit)
    def _logged_emit(self, xml):
        seq = _emit(self, xml)
        seen_log(b"E", self, b"%d" % seq)
        return seq

    Connection.emit = _logged_emit


class Base(unittest.TestCase):
    def setUp(self):
        self.conn = Connection()
        seen_log(b"O", self.conn, b"-")

    def tearDown(self):
        self.conn.close()

    def assertError(self, code, function, *args, contains=None):
        """`function(*args)` raises VireventError with `code`; returns it."""
        with self.assertRaises(VireventError) as caught:
            function(*args)
        error = caught.exception
        self.assertEqual(error.code, code, str(error))
        self.assertTrue(error.message, "an error without a message")
        if contains is not None:
            self.assertIn(contains, error.message)
        return error

    def collect(self, filter=None):
        """A list that a new handler with `filter` appends each event to, and its id."""
        events = []
        conn = self.conn

        def handler(xml):
            seen_log(b"R", conn, xml.encode())
            events.append(xml)

        return events, conn.add_handler(filter, handler)

    def types(self, events):
        return [ET.fromstring(xml).get("type") for xml in events]


class Module(unittest.TestCase):
    def test_library_and_constants(self):
        if os.environ.get("VIREVENT_LIB"):
            self.assertEqual(virevent.LIBRARY, os.environ["VIREVENT_LIB"])
        expected = {"VIR_ERR_OK": 0, "VIR_ERR_INTERNAL_ERROR": 1, "VIR_ERR_NO_MEMORY": 2,
                    "VIR_ERR_NO_SUPPORT": 3, "VIR_ERR_NO_CONNECT": 5,
                    "VIR_ERR_INVALID_CONN": 6, "VIR_ERR_INVALID_ARG": 8,
                    "VIR_ERR_OPERATION_FAILED": 9, "VIR_ERR_XML_ERROR": 27,
                    "VIR_ERR_SYSTEM_ERROR": 38, "VIR_ERR_RPC": 39, "VIR_ERR_NO_DOMAIN": 42,
                    "VIR_ERR_AUTH_FAILED": 45, "VIR_ERR_OPERATION_INVALID": 55}
        for name, value in expected.items():
            self.assertEqual(getattr(virevent, name), value, name)
            self.assertEqual(virevent.ERROR_NAMES[value], name)
            self.assertIn(name, virevent.__all__)
        self.assertEqual(virevent.VIR_EVENT_STREAM_NONBLOCK, 1)
        for item in [virevent, Connection, VireventError, virevent.Domain, virevent.EventStream]:
            self.assertTrue(item.__doc__, item)
        for cls in (Connection, virevent.Domain, virevent.EventStream):
            for name, member in vars(cls).items():
                if callable(member) and not name.startswith("_"):
                    self.assertTrue(member.__doc__, f"{cls.__name__}.{name} has no docstring")

    def test_error_constants_are_the_headers(self):
        with open(os.path.join(ROOT, "include", "virevent.h"), encoding="utf-8") as f:
            header = f.read()
        enum = re.search(r"typedef enum \{(.*?)\} virErrorNumber;", header, re.S)
        self.assertIsNotNone(enum, "no virErrorNumber enum in include/virevent.h")
        codes = {name: int(value) for name, value in
                 re.findall(r"^\s*(VIR_ERR_\w+) = (\d+),", enum.group(1), re.M)}
        self.assertEqual(len(codes), 14, codes)
        module = {name: value for name, value in vars(virevent).items()
                  if name.startswith("VIR_ERR_")}
        self.assertEqual(module, codes)
        self.assertEqual(virevent.ERROR_NAMES, {value: name for name, value in codes.items()})

    def test_docstring_lists_every_public_method(self):
        doc = virevent.__doc__
        for cls in (Connection, virevent.Domain, virevent.EventStream):
            for name, member in vars(cls).items():
                if not name.startswith("_") and (callable(member) or isinstance(member, property)):
                    self.assertRegex(doc, rf"\n    {name}\b", f"{cls.__name__}.{name}")
        for name in ("VIREVENT_LIB", "find_library", "INSTALL_LIBDIR", "threading.excepthook",
                     "StopAsyncIteration"):
            self.assertIn(name, doc)

    def test_version(self):
        self.assertRegex(virevent.__version__, r"^\d+\.\d+\.\d+$")

    def test_error_shows_code_and_message(self):
        error = VireventError(8, "filter[0] is empty")
        self.assertEqual((error.code, error.message), (8, "filter[0] is empty"))
        self.assertIn("filter[0] is empty", str(error))
        self.assertIn("VIR_ERR_INVALID_ARG", str(error))
        self.assertIn("8", str(error))
        self.assertIsInstance(error, Exception)


class Connections(unittest.TestCase):
    def test_open_default_and_empty(self):
        for uri in (None, "", "test:///default", "test:///empty"):
            with self.subTest(uri=uri):
                conn = Connection(uri)
                self.assertFalse(conn.closed)
                self.assertIn("open", repr(conn))
                conn.close()
                self.assertTrue(conn.closed)

    def test_default_has_domain_test_and_empty_has_none(self):
        with Connection() as conn:
            conn.lookup_domain("test").free()
        with Connection("test:///empty") as conn:
            with self.assertRaises(VireventError) as caught:
                conn.lookup_domain("test")
            self.assertEqual(caught.exception.code, virevent.VIR_ERR_NO_DOMAIN)

    def test_bad_uri(self):
        uri = "bogus+ext://nowhere/system"
        with self.assertRaises(VireventError) as caught:
            Connection(uri)
        self.assertEqual(caught.exception.code, virevent.VIR_ERR_NO_CONNECT)
        self.assertIn(uri, caught.exception.message)
        self.assertIn(uri, str(caught.exception))
        with self.assertRaises(VireventError) as caught:
            Connection("test:///default\0x")
        self.assertEqual(caught.exception.code, virevent.VIR_ERR_INVALID_ARG)

    def test_context_manager_closes(self):
        with Connection() as conn:
            self.assertFalse(conn.closed)
        self.assertTrue(conn.closed)
        self.assertIn("closed", repr(conn))
        conn.close()  # idempotent
        with self.assertRaises(RuntimeError):
            with Connection() as conn:
                raise RuntimeError("leaving the block")
        self.assertTrue(conn.closed)

    def test_methods_after_close_raise(self):
        conn = Connection()
        hid = conn.add_handler(None, lambda xml: None)
        conn.close()
        calls = {
            "add_handler": (None, print), "remove_handler": (hid,),
            "emit": ('<event type="t"/>',), "deliver": (), "fileno": (),
            "set_queue_limit": (10,), "start_event_thread": (), "stop_event_thread": (),
            "stream": (), "lookup_domain": ("test",), "events": (),
        }
        for name, args in calls.items():
            with self.subTest(method=name):
                with self.assertRaises(VireventError) as caught:
                    getattr(conn, name)(*args)
                self.assertEqual(caught.exception.code, virevent.VIR_ERR_INVALID_CONN)
                self.assertIn("closed", caught.exception.message)
                self.assertEqual(caught.exception.message, f"{name}(): the connection is closed")

    def test_close_drops_handlers(self):
        conn = Connection()
        fn = Recorder()
        ref = weakref.ref(fn)
        conn.add_handler("a", fn)
        conn.add_handler(["b", "c"], fn)
        del fn
        gc.collect()
        self.assertIsNotNone(ref(), "the handler died while registered")
        conn.close()
        gc.collect()
        self.assertIsNone(ref(), "the handler outlived close()")

    def test_close_from_a_handler_is_refused(self):
        with Connection() as conn:
            conn.add_handler(None, lambda xml: conn.close())
            conn.emit('<event type="t"/>')
            # Raised in the handler, re-raised by the deliver() that ran it.
            with self.assertRaises(VireventError) as caught:
                conn.deliver()
            self.assertEqual(caught.exception.code, virevent.VIR_ERR_OPERATION_INVALID)
            self.assertFalse(conn.closed)
            self.assertEqual(conn.emit('<event type="t"/>'), 2)

    def test_collected_connection_closes(self):
        conn = Connection()
        stream = conn.stream(timeout=TIMEOUT)
        conn.emit('<event type="t"/>')
        with self.assertWarns(ResourceWarning):
            del conn
            gc.collect()
        self.assertEqual(self.types(list(stream)), ["t"], "no end of file: not closed")
        stream.close()

    def test_exit_with_the_event_thread_running(self):
        # Closed at exit, before the interpreter goes: no handler runs in a
        # finalizing interpreter, and the process exits cleanly.
        script = (f"import sys; sys.path.insert(0, {BINDINGS!r}); import virevent\n"
                  "conn = virevent.Connection()\n"
                  "conn.add_handler(None, lambda xml: print('handled', flush=True))\n"
                  "conn.start_event_thread()\n"
                  "for i in range(1000): conn.emit('<event type=\"t\"/>')\n")
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")

    types = Base.types


class Recorder:
    """A handler object (weakly referenceable, unlike a bound list.append)."""

    def __init__(self):
        self.events = []

    def __call__(self, xml):
        self.events.append(xml)


class Handlers(Base):
    def test_filters_none_str_list_tuple_xpath(self):
        everything, _ = self.collect(None)
        one, _ = self.collect("t-one")
        pattern, _ = self.collect("t-*")
        listed, _ = self.collect(["t-one", "other"])
        tupled, _ = self.collect(("t-two",))
        xpath, _ = self.collect(["/event[n > 1]"])
        mixed, _ = self.collect(["t-one", "/event[@type='t-two' and n = 5]"])
        self.conn.emit('<event type="t-one"><n>1</n></event>')
        self.conn.emit('<event type="t-two"><n>2</n></event>')
        self.conn.emit('<event type="other"/>')
        self.assertEqual(self.conn.deliver(), 3 + 1 + 2 + 2 + 1 + 1 + 1)
        self.assertEqual(self.types(everything), ["t-one", "t-two", "other"])
        self.assertEqual(self.types(one), ["t-one"])
        self.assertEqual(self.types(pattern), ["t-one", "t-two"])
        self.assertEqual(self.types(listed), ["t-one", "other"])
        self.assertEqual(self.types(tupled), ["t-two"])
        self.assertEqual(self.types(xpath), ["t-two"])
        self.assertEqual(self.types(mixed), ["t-one"])

    def test_handler_gets_the_xml_as_str(self):
        events, hid = self.collect()
        self.assertGreaterEqual(hid, 0)
        seq = self.conn.emit('<event type="py" timestamp="1221756307.123456">'
                             '<a x="1">line1\nline2 caf\u00e9</a></event>')
        self.assertEqual(seq, 1)
        self.assertEqual(events, [], "delivered before deliver()")
        self.assertEqual(self.conn.deliver(), 1)
        self.assertEqual(len(events), 1)
        xml = events[0]
        self.assertIsInstance(xml, str)
        self.assertNotIn("\n", xml)
        self.assertTrue(xml.startswith('<event type="py" timestamp="1221756307.123456" seq="1"'),
                        xml)
        self.assertIn("line1&#10;line2 caf\u00e9", xml)
        self.assertEqual(self.conn.deliver(), 0)

    def test_ids_are_unique(self):
        ids = [self.conn.add_handler(None, print) for _ in range(5)]
        self.assertEqual(len(set(ids)), 5)
        self.assertTrue(all(isinstance(i, int) and i >= 0 for i in ids))

    def test_bad_filters(self):
        for bad in ([], (), [""], "", ["t", ""], ["/event["], "count(", ["ok", "/event[@x ="]):
            with self.subTest(filter=bad):
                self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.add_handler, bad, print)
        error = self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.add_handler,
                                 ["t", "/event["], print)
        self.assertIn("filter[1]", error.message)
        self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.add_handler, ["a\0b"], print)
        for bad in (42, {"t"}, ["t", 3]):
            with self.subTest(filter=bad):
                with self.assertRaises(TypeError):
                    self.conn.add_handler(bad, print)
        with self.assertRaises(TypeError):
            self.conn.add_handler(None, "not callable")
        self.assertEqual(virevent._handlers, {}, "a refused handler stays registered")
        self.conn.emit('<event type="t"/>')
        self.assertEqual(self.conn.deliver(), 0, "a refused filter registered a handler")

    def test_remove_handler(self):
        fn = Recorder()
        ref = weakref.ref(fn)
        hid = self.conn.add_handler(None, fn)
        self.conn.emit('<event type="t1"/>')
        self.assertEqual(self.conn.deliver(), 1)
        self.conn.remove_handler(hid)
        self.conn.emit('<event type="t2"/>')
        self.assertEqual(self.conn.deliver(), 0)
        self.assertEqual(self.types(fn.events), ["t1"])
        del fn
        gc.collect()
        self.assertIsNone(ref(), "the handler outlived its removal")
        error = self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.remove_handler, hid)
        self.assertIn(str(hid), error.message)
        self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.remove_handler, 12345)

    def test_handler_removes_itself_and_emits(self):
        events = []

        def once(xml):
            events.append(xml)
            self.conn.remove_handler(hid)
            self.conn.emit('<event type="from-handler"/>')

        hid = self.conn.add_handler("t", once)
        later, _ = self.collect("from-handler")
        self.conn.emit('<event type="t"/>')
        self.conn.emit('<event type="t"/>')
        self.assertEqual(self.conn.deliver(), 1)
        self.assertEqual(self.conn.deliver(), 1)
        self.assertEqual(len(events), 1)
        self.assertEqual(self.types(later), ["from-handler"])


class Emit(Base):
    def test_seqs(self):
        self.assertEqual([self.conn.emit('<event type="t"/>') for _ in range(3)], [1, 2, 3])
        self.assertEqual(self.conn.emit(b'<event type="bytes"/>'), 4)

    def test_bad_xml(self):
        for xml in ('<event type="t">', "not xml at all", '<event type="t"></evnt>',
                    "<other type='t'/>", b'<event type="t">\xff</event>'):
            with self.subTest(xml=xml):
                self.assertError(virevent.VIR_ERR_XML_ERROR, self.conn.emit, xml)
        self.assertEqual(self.conn.emit('<event type="t"/>'), 1, "a refused event was queued")

    def test_bad_attributes(self):
        for xml, word in (('<event/>', "type"), ('<event type=""/>', "type"),
                          ('<event type="t" seq="3"/>', "seq"),
                          ('<event type="t" timestamp="yesterday"/>', "timestamp")):
            with self.subTest(xml=xml):
                self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.emit, xml, contains=word)
        self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.emit, '<event type="t"/>\0')
        with self.assertRaises(TypeError):
            self.conn.emit(42)


class HandlerExceptions(Base):
    def test_first_exception_is_raised_by_deliver(self):
        after, _ = self.collect()

        def bad(xml):
            raise ValueError(f"handler failed on {ET.fromstring(xml).get('seq')}")

        self.conn.add_handler("bad", bad)
        self.conn.emit('<event type="bad"/>')
        self.conn.emit('<event type="bad"/>')
        try:
            self.conn.deliver()
        except ValueError as e:
            error, frames = e, [frame.name for frame in traceback.extract_tb(e.__traceback__)]
        else:
            self.fail("deliver() did not raise the handler's exception")
        self.assertIn("handler failed on 1", str(error))
        self.assertIn("bad", frames, "the handler's traceback is lost")
        if hasattr(error, "__notes__"):
            self.assertIn("1 more", error.__notes__[0])
        # Every handler ran, every event was consumed.
        self.assertEqual(len(after), 2)
        self.assertEqual(self.conn.deliver(), 0, "raised twice")
        # The connection goes on.
        self.conn.emit('<event type="good"/>')
        self.assertEqual(self.conn.deliver(), 1)
        self.assertEqual(len(after), 3)

    def test_close_discards_a_pending_exception(self):
        # close() raises nothing: what is still kept goes to threading.excepthook.
        reported = []
        old_hook, threading.excepthook = threading.excepthook, reported.append
        try:
            conn = Connection()
            conn.add_handler("t", lambda xml: 1 / 0)
            conn.start_event_thread()
            done = threading.Event()
            conn.add_handler("done", lambda xml: done.set())
            conn.emit('<event type="t"/>')
            conn.emit('<event type="done"/>')  # delivered after t: its exception is kept
            self.assertTrue(done.wait(TIMEOUT))
            conn.close()  # no ZeroDivisionError
        finally:
            threading.excepthook = old_hook
        self.assertEqual([type(args.exc_value) for args in reported], [ZeroDivisionError])
        args = reported[0]
        self.assertIs(args.exc_type, ZeroDivisionError)
        self.assertIn("<lambda>", [frame.name for frame in traceback.extract_tb(args.exc_traceback)])
        # The thread it was raised on: the event thread, not this one.
        self.assertIsInstance(args.thread, threading.Thread)
        self.assertIsNot(args.thread, threading.current_thread())

    def test_close_with_nothing_kept_reports_nothing(self):
        reported = []
        old_hook, threading.excepthook = threading.excepthook, reported.append
        try:
            conn = Connection()
            conn.add_handler(None, lambda xml: 1 / 0)
            conn.emit('<event type="t"/>')
            with self.assertRaises(ZeroDivisionError):
                conn.deliver()
            conn.close()
        finally:
            threading.excepthook = old_hook
        self.assertEqual(reported, [])


class EventFD(Base):
    def test_selectors(self):
        events, _ = self.collect()
        fd = self.conn.fileno()
        self.assertGreaterEqual(fd, 0)
        self.assertEqual(self.conn.fileno(), fd)
        with selectors.DefaultSelector() as selector:
            selector.register(self.conn, selectors.EVENT_READ)  # fileno() is used
            self.assertEqual(selector.select(0), [], "readable with nothing queued")
            self.conn.emit('<event type="fd"/>')
            ready = selector.select(0)
            self.assertEqual([(key.fd, mask) for key, mask in ready], [(fd, selectors.EVENT_READ)])
            self.assertEqual(len(selector.select(0)), 1, "not level-triggered")
            self.assertEqual(self.conn.deliver(), 1)
            self.assertEqual(selector.select(0), [], "readable after deliver()")
        self.assertEqual(len(events), 1)

    def test_asyncio_add_reader(self):
        conn = self.conn

        async def wait_for_one_event():
            loop = asyncio.get_running_loop()
            got = loop.create_future()
            conn.add_handler("async-*", lambda xml: got.done() or got.set_result(xml))
            loop.add_reader(conn.fileno(), conn.deliver)
            try:
                loop.call_later(0.01, conn.emit, '<event type="async-test"/>')
                return await asyncio.wait_for(got, TIMEOUT)
            finally:
                loop.remove_reader(conn.fileno())

        xml = asyncio.run(wait_for_one_event())
        self.assertTrue(xml.startswith('<event type="async-test" '), xml)


class EventThread(Base):
    def test_start_stop(self):
        threads, done = [], threading.Event()

        def handler(xml):
            threads.append(threading.get_ident())
            if len(threads) == 2:
                done.set()

        self.conn.add_handler(None, handler)
        self.conn.start_event_thread()
        self.assertError(virevent.VIR_ERR_OPERATION_INVALID, self.conn.start_event_thread)
        self.conn.emit('<event type="t"/>')
        self.conn.emit('<event type="t"/>')
        self.assertTrue(done.wait(TIMEOUT), "the event thread ran no handler")
        self.assertNotIn(threading.get_ident(), threads)
        self.assertEqual(self.conn.deliver(), 0, "deliver() while the event thread runs")
        self.conn.stop_event_thread()
        self.assertError(virevent.VIR_ERR_OPERATION_INVALID, self.conn.stop_event_thread)
        self.conn.emit('<event type="t"/>')
        self.assertEqual(self.conn.deliver(), 1)
        self.assertEqual(threads[-1], threading.get_ident())

    def test_exception_on_the_event_thread_is_raised_by_stop(self):
        done = threading.Event()

        def bad(xml):
            done.set()
            raise KeyError("on the event thread")

        self.conn.add_handler(None, bad)
        self.conn.start_event_thread()
        self.conn.emit('<event type="t"/>')
        self.assertTrue(done.wait(TIMEOUT))
        with self.assertRaises(KeyError):
            self.conn.stop_event_thread()
        self.assertEqual(self.conn.deliver(), 0)

    def test_exception_on_the_event_thread_is_raised_by_the_next_deliver(self):
        done = threading.Event()

        def bad(xml):
            raise KeyError("on the event thread")

        self.conn.add_handler("bad", bad)
        self.conn.add_handler("done", lambda xml: done.set())
        self.conn.start_event_thread()
        self.conn.emit('<event type="bad"/>')
        self.conn.emit('<event type="bad"/>')
        self.conn.emit('<event type="done"/>')  # delivered after both: they are kept
        self.assertTrue(done.wait(TIMEOUT))
        try:
            self.conn.deliver()  # from this thread, while the event thread runs
        except KeyError as e:  # (assertRaises would drop the traceback)
            error, frames = e, [frame.name for frame in traceback.extract_tb(e.__traceback__)]
        else:
            self.fail("deliver() did not raise the event thread's exception")
        self.assertIn("bad", frames, "the handler's traceback is lost")
        if hasattr(error, "__notes__"):
            self.assertIn("1 more", error.__notes__[0])
        self.assertEqual(self.conn.deliver(), 0, "raised twice")
        self.conn.stop_event_thread()  # nothing kept any more

    def test_exception_on_the_event_thread_is_raised_in_another_thread(self):
        done = threading.Event()
        self.conn.add_handler("bad", lambda xml: {}["missing"])
        self.conn.add_handler("done", lambda xml: done.set())
        self.conn.start_event_thread()
        self.conn.emit('<event type="bad"/>')
        self.conn.emit('<event type="done"/>')
        self.assertTrue(done.wait(TIMEOUT))
        raised = []

        def other():
            try:
                self.conn.deliver()
            except KeyError as e:
                raised.append(e)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(TIMEOUT)
        self.assertEqual(len(raised), 1)
        self.conn.stop_event_thread()

    def test_stop_from_the_event_thread_is_refused(self):
        errors, done = [], threading.Event()

        def stop(xml):
            try:
                self.conn.stop_event_thread()
            except VireventError as e:
                errors.append(e.code)
            done.set()

        self.conn.add_handler(None, stop)
        self.conn.start_event_thread()
        self.conn.emit('<event type="t"/>')
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(errors, [virevent.VIR_ERR_OPERATION_INVALID])
        self.conn.stop_event_thread()


class QueueLimit(Base):
    def test_bad_limits(self):
        for limit in (0, -1, 2 ** 32):
            with self.subTest(limit=limit):
                self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.set_queue_limit, limit)

    def test_events_lost(self):
        events, _ = self.collect("q")  # events-lost reaches it whatever its filter
        self.conn.set_queue_limit(2)
        for _ in range(5):
            self.conn.emit('<event type="q"/>')
        self.assertEqual(self.conn.deliver(), 3)
        self.assertEqual(self.types(events), ["q", "q", "events-lost"])
        lost = ET.fromstring(events[2])
        self.assertEqual((lost.get("seq"), lost.get("count"), lost.get("first-seq"),
                          lost.get("last-seq")), ("0", "3", "3", "5"))


class Streams(Base):
    def test_lines(self):
        with self.conn.stream(timeout=TIMEOUT) as stream:
            self.assertGreaterEqual(stream.fileno(), 0)
            self.assertIs(iter(stream), stream)
            sent = ['<event type="s1"/>', '<event type="s2">\n<a>x\ny</a></event>']
            seqs = [self.conn.emit(xml) for xml in sent]
            lines = [next(stream) for _ in sent]
            for line, seq, kind in zip(lines, seqs, ["s1", "s2"]):
                self.assertIsInstance(line, str)
                self.assertNotIn("\n", line)
                root = ET.fromstring(line)
                self.assertEqual((root.get("type"), root.get("seq")), (kind, str(seq)))
            self.assertIn("x&#10;y", lines[1])
        with self.assertRaises(ValueError):
            stream.fileno()
        stream.close()  # idempotent

    def test_filtered(self):
        with self.conn.stream(["keep-*", "/event[@n = 2]"], timeout=TIMEOUT) as stream:
            self.conn.emit('<event type="drop"/>')
            self.conn.emit('<event type="keep-me"/>')
            self.conn.emit('<event type="drop" n="2"/>')
            self.assertEqual([ET.fromstring(next(stream)).get("seq") for _ in range(2)],
                             ["2", "3"])
        for bad in ([], ["/event["]):
            self.assertError(virevent.VIR_ERR_INVALID_ARG, self.conn.stream, bad)

    def test_ends_when_the_connection_closes(self):
        stream = self.conn.stream(timeout=TIMEOUT)
        self.conn.emit('<event type="before-close"/>')
        self.conn.emit('<event type="before-close"/>')
        self.conn.close()
        self.assertEqual(self.types(list(stream)), ["before-close", "before-close"])
        self.assertEqual(list(stream), [])
        stream.close()

    def test_blocking_read_ends_at_close(self):
        stream = self.conn.stream()  # no timeout: a blocking read in another thread
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(stream))
        reader.start()
        self.conn.emit('<event type="t"/>')
        self.conn.close()
        reader.join(TIMEOUT)
        self.assertFalse(reader.is_alive(), "the iteration did not end at close")
        self.assertEqual(self.types(lines), ["t"])
        stream.close()

    def test_timeout(self):
        with self.conn.stream(timeout=0.05) as stream:
            with self.assertRaises(TimeoutError):
                next(stream)


class Domains(Base):
    def transitions(self, events):
        return [tuple(ET.fromstring(xml).findtext(tag) for tag in
                      ("domain-name", "old-state", "new-state", "reason")) for xml in events]

    def test_lifecycle(self):
        events, _ = self.collect("domain-state-transition")
        with self.conn.lookup_domain("test") as dom:
            self.assertEqual(dom.name, "test")
            self.assertIn("test", repr(dom))
            dom.suspend()
            dom.resume()
            dom.shutdown()
            dom.create()
            dom.destroy()
        self.assertEqual(self.conn.deliver(), 5)
        self.assertEqual(self.transitions(events), [
            ("test", "running", "paused", "suspended-paused"),
            ("test", "paused", "running", "resumed-unpaused"),
            ("test", "running", "shutoff", "stopped-shutdown"),
            ("test", "shutoff", "running", "started-booted"),
            ("test", "running", "shutoff", "stopped-destroyed"),
        ])

    def test_wrong_state(self):
        events, _ = self.collect()
        dom = self.conn.lookup_domain("test")
        for operation in (dom.create, dom.resume):
            with self.subTest(operation=operation.__name__):
                self.assertError(virevent.VIR_ERR_OPERATION_INVALID, operation)
        dom.destroy()
        for operation in (dom.suspend, dom.shutdown, dom.destroy, dom.resume):
            with self.subTest(operation=operation.__name__):
                self.assertError(virevent.VIR_ERR_OPERATION_INVALID, operation)
        dom.free()
        self.assertEqual(self.conn.deliver(), 1, "a refused transition emitted an event")

    def test_unknown_domain(self):
        self.assertError(virevent.VIR_ERR_NO_DOMAIN, self.conn.lookup_domain, "nosuch",
                         contains="nosuch")

    def test_freed_handle(self):
        dom = self.conn.lookup_domain("test")
        dom.free()
        dom.free()  # idempotent
        self.assertIn("freed", repr(dom))
        self.assertError(virevent.VIR_ERR_INVALID_ARG, dom.suspend, contains="freed")
        for name in ("create", "suspend", "resume", "shutdown", "destroy"):
            with self.subTest(method=name):
                self.assertError(virevent.VIR_ERR_INVALID_ARG, getattr(dom, name),
                                 contains=f"{name}(): the handle of domain 'test' is freed")

    def test_handle_outlives_its_connection(self):
        dom = self.conn.lookup_domain("test")
        self.conn.close()
        self.assertError(virevent.VIR_ERR_INVALID_CONN, dom.suspend)
        dom.free()


class WrongTypes(Base):
    """Every public method's arguments of the wrong type: TypeError naming the
    method and the argument (never ctypes.ArgumentError), one wording."""

    FILTER = "must be None, str, bytes, or a list or tuple of them"

    def assertTypeError(self, message, function, *args):
        with self.assertRaises(TypeError) as caught:
            function(*args)
        self.assertEqual(str(caught.exception), message)

    def test_methods_with_arguments(self):
        conn, f = self.conn, self.FILTER
        cases = [
            ("Connection() argument 'uri' must be str or bytes, not int", Connection, 5),
            (f"add_handler() argument 'filter' {f}, not int", conn.add_handler, 5, print),
            (f"add_handler() argument 'filter' {f}, not set", conn.add_handler, {"t"}, print),
            ("add_handler() argument 'filter[1]' must be str or bytes, not int",
             conn.add_handler, ["t", 3], print),
            ("add_handler() argument 'fn' must be callable, not str", conn.add_handler, None, "x"),
            ("remove_handler() argument 'handler_id' must be int, not str",
             conn.remove_handler, "1"),
            ("remove_handler() argument 'handler_id' must be int, not float",
             conn.remove_handler, 1.0),
            ("emit() argument 'xml' must be str or bytes, not int", conn.emit, 5),
            ("emit() argument 'xml' must be str or bytes, not NoneType", conn.emit, None),
            (f"events() argument 'filter' {f}, not int", conn.events, 5),
            ("events() argument 'filter[0]' must be str or bytes, not NoneType",
             conn.events, [None]),
            (f"stream() argument 'filter' {f}, not int", conn.stream, 5),
            ("stream() argument 'timeout' must be None or a number, not str",
             conn.stream, None, "1"),
            ("set_queue_limit() argument 'max_events' must be int, not str",
             conn.set_queue_limit, "10"),
            ("set_queue_limit() argument 'max_events' must be int, not float",
             conn.set_queue_limit, 10.0),
            ("lookup_domain() argument 'name' must be str or bytes, not int",
             conn.lookup_domain, 1),
            (f"c_filter() argument 'filter' {f}, not int", virevent.c_filter, 5),
            ("EventStream() argument 'fd' must be int, not str", virevent.EventStream, "3"),
            ("EventStream() argument 'timeout' must be None or a number, not str",
             virevent.EventStream, 0, "1"),
        ]
        for message, function, *args in cases:
            with self.subTest(message):
                self.assertTypeError(message, function, *args)
        self.assertEqual(virevent._handlers, {}, "a refused handler stays registered")
        self.assertEqual(self.conn.emit('<event type="t"/>'), 1, "a refused event was queued")
        os.fstat(0)  # EventStream("3"), EventStream(0, "1") closed nothing

    def test_values_out_of_range_and_nul(self):
        conn = self.conn
        cases = [
            ("remove_handler() argument 'handler_id' must be in -2147483648..2147483647, "
             "not 2147483648", conn.remove_handler, 2 ** 31),
            ("set_queue_limit() argument 'max_events' must be in 0..4294967295, not -1",
             conn.set_queue_limit, -1),
            ("emit() argument 'xml' contains a NUL character", conn.emit, '<event type="t"/>\0'),
            ("add_handler() argument 'filter[0]' contains a NUL character",
             conn.add_handler, ["a\0"], print),
            ("lookup_domain() argument 'name' contains a NUL character",
             conn.lookup_domain, "te\0st"),
            ("Connection() argument 'uri' contains a NUL character", Connection, "test:///\0"),
        ]
        for message, function, *args in cases:
            with self.subTest(message):
                error = self.assertError(virevent.VIR_ERR_INVALID_ARG, function, *args)
                self.assertEqual(error.message, message)

    def test_methods_without_arguments(self):
        # Python's own TypeError, which names the method too.
        dom = self.conn.lookup_domain("test")
        stream = self.conn.stream()
        try:
            for obj, names in ((self.conn, ["deliver", "fileno", "start_event_thread",
                                            "stop_event_thread", "close"]),
                               (dom, ["create", "suspend", "resume", "shutdown", "destroy",
                                      "free"]),
                               (stream, ["fileno", "buffered", "readline", "close"])):
                for name in names:
                    with self.subTest(method=name):
                        with self.assertRaises(TypeError) as caught:
                            getattr(obj, name)(5)
                        self.assertIn(f"{name}()", str(caught.exception))
        finally:
            dom.free()
            stream.close()
        self.assertFalse(self.conn.closed)


def readers(loop):
    """The descriptors `loop` has readers for (asyncio's selector loop)."""
    return {key.fd for key in loop._selector.get_map().values() if key.data[0] is not None}


class AsyncEvents(Base):
    """async for xml in conn.events(filter)."""

    def run_async(self, main):
        return asyncio.run(asyncio.wait_for(main(), TIMEOUT))

    def assertCleanedUp(self, loop):
        self.assertEqual(virevent._handlers, {}, "the iteration's handler is left")
        self.assertNotIn(self.conn.fileno(), readers(loop), "the iteration's reader is left")
        self.assertEqual(len(self.conn._iterations), 0)

    def test_in_order_filtered_from_a_task(self):
        async def main():
            loop = asyncio.get_running_loop()

            async def emitter():
                for i in range(10):
                    self.conn.emit(f'<event type="{"keep" if i % 3 else "drop"}" n="{i}"/>')
                    if i % 2:
                        await asyncio.sleep(0)
                self.conn.emit('<event type="keep" n="last"/>')

            received = []
            task = asyncio.create_task(emitter())
            async for xml in self.conn.events(["keep", "/event[@n = 9]"]):
                self.assertNotIn(self.conn.fileno(), readers(loop), "a reader while not waiting")
                received.append(ET.fromstring(xml))
                if received[-1].get("n") == "last":
                    break
            # Left with break: cleaned up at once.
            self.assertCleanedUp(loop)
            await task
            return received

        received = self.run_async(main)
        self.assertEqual([e.get("n") for e in received], ["1", "2", "4", "5", "7", "8", "9", "last"])
        self.assertEqual([e.get("type") for e in received], ["keep"] * 6 + ["drop", "keep"])
        seqs = [int(e.get("seq")) for e in received]
        self.assertEqual(seqs, sorted(seqs))
        self.conn.emit('<event type="keep"/>')
        self.assertEqual(self.conn.deliver(), 0, "a handler is left")

    def test_waits_on_the_descriptor(self):
        async def main():
            loop = asyncio.get_running_loop()
            iteration = self.conn.events().__aiter__()
            step = asyncio.ensure_future(iteration.__anext__())
            await asyncio.sleep(0.01)
            self.assertFalse(step.done())
            self.assertIn(self.conn.fileno(), readers(loop), "waiting without a reader")
            self.assertEqual(len(virevent._handlers), 1)
            self.conn.emit('<event type="t"/>')
            xml = await step
            self.assertNotIn(self.conn.fileno(), readers(loop), "a reader while not waiting")
            await iteration.aclose()
            self.assertCleanedUp(loop)
            with self.assertRaises(StopAsyncIteration):
                await iteration.__anext__()
            return xml

        self.assertTrue(self.run_async(main).startswith('<event type="t" '))

    def test_cancellation_cleans_up(self):
        async def main():
            loop = asyncio.get_running_loop()
            received = []

            async def consume():
                async for xml in self.conn.events():
                    received.append(xml)

            task = asyncio.create_task(consume())
            self.conn.emit('<event type="t"/>')  # before the iteration's first step: missed
            await asyncio.sleep(0.01)
            self.conn.emit('<event type="t"/>')
            await asyncio.sleep(0.01)
            self.assertEqual(len(received), 1)
            self.assertEqual(len(virevent._handlers), 1)
            self.assertIn(self.conn.fileno(), readers(loop))
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            self.assertCleanedUp(loop)

        self.run_async(main)

    def test_an_exception_in_the_body_cleans_up(self):
        async def main():
            loop = asyncio.get_running_loop()
            loop.call_soon(self.conn.emit, '<event type="t"/>')
            with self.assertRaises(RuntimeError):
                async for _ in self.conn.events():
                    raise RuntimeError("in the loop body")
            self.assertCleanedUp(loop)

        self.run_async(main)

    def test_the_end_of_asyncio_run_cleans_up(self):
        tasks = []

        async def main():
            async def consume():
                async for _ in self.conn.events():
                    pass

            tasks.append(asyncio.create_task(consume()))
            await asyncio.sleep(0.01)
            self.assertEqual(len(virevent._handlers), 1)

        asyncio.run(main())  # cancels the task still iterating
        self.assertTrue(tasks[0].cancelled())
        self.assertEqual(virevent._handlers, {})
        self.assertEqual(len(self.conn._iterations), 0)

    def test_ends_when_the_connection_closes(self):
        async def main():
            loop = asyncio.get_running_loop()
            received, two = [], asyncio.Event()

            async def closer():
                self.conn.emit('<event type="t"/>')
                self.conn.emit('<event type="t"/>')
                await two.wait()
                self.conn.close()  # while the iteration waits on the descriptor

            fd = self.conn.fileno()
            task = asyncio.create_task(closer())
            async for xml in self.conn.events():
                received.append(xml)
                if len(received) == 2:
                    two.set()
            await task
            self.assertNotIn(fd, readers(loop))
            self.assertEqual(virevent._handlers, {})
            return received

        self.assertEqual(len(self.run_async(main)), 2)
        self.assertTrue(self.conn.closed)

    def test_ends_when_closed_from_the_loop_body(self):
        async def main():
            received = []
            asyncio.get_running_loop().call_soon(self.conn.emit, '<event type="t"/>')
            async for xml in self.conn.events():
                received.append(xml)
                self.conn.close()
            return received

        self.assertEqual(len(self.run_async(main)), 1)

    def test_ends_when_the_connection_is_lost(self):
        # What a remote connection's deliver() does once the daemon is gone and
        # its connection-closed event has been delivered.
        for code in (virevent.VIR_ERR_NO_CONNECT, virevent.VIR_ERR_RPC):
            with self.subTest(code=virevent.ERROR_NAMES[code]):
                lost = []
                real = self.conn.deliver

                def deliver():
                    calls = real()
                    if lost and not calls:
                        raise VireventError(code, "the daemon is gone")
                    return calls

                self.conn.deliver = deliver

                async def main():
                    received = []
                    loop = asyncio.get_running_loop()
                    loop.call_soon(self.conn.emit, '<event type="connection-closed"/>')
                    loop.call_soon(lost.append, True)
                    async for xml in self.conn.events():
                        received.append(xml)
                    self.assertCleanedUp(loop)
                    return received

                self.assertEqual(self.types(self.run_async(main)), ["connection-closed"])
                del self.conn.deliver

    def test_other_deliver_errors_are_raised(self):
        def deliver():
            raise VireventError(virevent.VIR_ERR_OPERATION_INVALID, "used in another process")

        async def main():
            loop = asyncio.get_running_loop()
            self.conn.deliver = deliver
            with self.assertRaises(VireventError) as caught:
                async for _ in self.conn.events():
                    pass
            self.assertEqual(caught.exception.code, virevent.VIR_ERR_OPERATION_INVALID)
            del self.conn.deliver
            self.assertCleanedUp(loop)

        self.run_async(main)

    def test_a_handler_exception_is_raised_by_the_iteration(self):
        def bad(xml):
            raise ValueError("from another handler")

        bad_id = self.conn.add_handler("bad", bad)

        async def main():
            loop = asyncio.get_running_loop()
            received = []
            loop.call_soon(self.conn.emit, '<event type="good"/>')
            loop.call_later(0.01, self.conn.emit, '<event type="bad"/>')
            try:
                async for xml in self.conn.events("good"):
                    received.append(xml)
            except ValueError as e:
                frames = [frame.name for frame in traceback.extract_tb(e.__traceback__)]
            else:
                self.fail("the iteration did not raise the handler's exception")
            self.assertIn("bad", frames, "the handler's traceback is lost")
            self.assertEqual(list(virevent._handlers), [bad_token], "the iteration's handler is left")
            return received

        bad_token = next(iter(virevent._handlers))
        self.assertEqual(self.types(self.run_async(main)), ["good"])
        self.conn.remove_handler(bad_id)

    def test_with_the_event_thread(self):
        async def main():
            async def emitter():
                for i in range(20):
                    self.conn.emit(f'<event type="t" n="{i}"/>')
                    await asyncio.sleep(0.001)

            task = asyncio.create_task(emitter())
            received = []
            async for xml in self.conn.events("t"):
                received.append(ET.fromstring(xml).get("n"))
                if len(received) == 20:
                    break
            await task
            return received

        self.conn.start_event_thread()
        self.assertEqual(self.run_async(main), [str(i) for i in range(20)])
        self.assertEqual(virevent._handlers, {})
        self.conn.stop_event_thread()

    def test_two_iterations(self):
        async def main():
            async def take(filter, count):
                out = []
                async for xml in self.conn.events(filter):
                    out.append(ET.fromstring(xml).get("type"))
                    if len(out) == count:
                        return out

            tasks = [asyncio.create_task(take("a", 2)), asyncio.create_task(take(None, 3))]
            await asyncio.sleep(0)
            for kind in ("a", "b", "a"):
                self.conn.emit(f'<event type="{kind}"/>')
            return await asyncio.gather(*tasks)

        self.assertEqual(self.run_async(main), [["a", "a"], ["a", "b", "a"]])
        self.assertEqual(virevent._handlers, {})

    def test_outside_a_running_loop(self):
        iteration = self.conn.events()
        with self.assertRaises(RuntimeError):
            iteration.__anext__().send(None)
        self.assertEqual(virevent._handlers, {})

    types = Base.types


if __name__ == "__main__":
    unittest.main()
