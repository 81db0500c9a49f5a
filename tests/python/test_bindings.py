#!/usr/bin/env python3
"""The Python module bindings/python/virevent.py: every method and every error.

Standard library only. The module loads the library named by VIREVENT_LIB;
tests/python.rs sets it to the libvirevent.so that `cargo test` has just built.

    VIREVENT_LIB=target/debug/deps/libvirevent.so python3 tests/python/test_bindings.py -v
"""

import asyncio
import gc
import os
import selectors
import subprocess
import sys
import threading
import traceback
import unittest
import weakref
import xml.etree.ElementTree as ET

BINDINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        os.pardir, os.pardir, "bindings", "python")
sys.path.insert(0, BINDINGS)
import virevent  # noqa: E402
from virevent import Connection, VireventError  # noqa: E402

TIMEOUT = 10.0  # seconds any wait may take before the test fails


class Base(unittest.TestCase):
    def setUp(self):
        self.conn = Connection()

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
        return events, self.conn.add_handler(filter, events.append)

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
        uri = "bogus+ssh://nowhere/system"
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
            "stream": (), "lookup_domain": ("test",),
        }
        for name, args in calls.items():
            with self.subTest(method=name):
                with self.assertRaises(VireventError) as caught:
                    getattr(conn, name)(*args)
                self.assertEqual(caught.exception.code, virevent.VIR_ERR_INVALID_CONN)
                self.assertIn("closed", caught.exception.message)

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
        conn = Connection()
        conn.add_handler(None, lambda xml: 1 / 0)
        conn.start_event_thread()
        done = threading.Event()
        conn.add_handler(None, lambda xml: done.set())
        conn.emit('<event type="t"/>')
        self.assertTrue(done.wait(TIMEOUT))
        conn.close()  # no ZeroDivisionError


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

    def test_handle_outlives_its_connection(self):
        dom = self.conn.lookup_domain("test")
        self.conn.close()
        self.assertError(virevent.VIR_ERR_INVALID_CONN, dom.suspend)
        dom.free()


if __name__ == "__main__":
    unittest.main()
