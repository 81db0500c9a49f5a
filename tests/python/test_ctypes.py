#!/usr/bin/env python3
"""The C ABI from Python through ctypes (API.md sections 2-8, virevent.h).

Standard library only. The library is loaded from the full path in the
environment variable VIREVENT_LIB; tests/python.rs sets it to the
libvirevent.so that `cargo test` has just built.

    VIREVENT_LIB=target/debug/deps/libvirevent.so python3 tests/python/test_ctypes.py -v
"""

import ctypes
import os
import selectors
import signal
import sys
import unittest
import xml.etree.ElementTree as ET
from ctypes import POINTER, c_char_p, c_int, c_uint, c_void_p

VIR_ERR_OK = 0
VIR_ERR_NO_CONNECT = 5
VIR_ERR_INVALID_ARG = 8
VIR_ERR_XML_ERROR = 27

# typedef void (*virEventHandler)(virConnectPtr conn, const char *eventXML, void *arg);
EventHandler = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_void_p)
# typedef void (*virFreeCallback)(void *arg);
FreeCallback = ctypes.CFUNCTYPE(None, c_void_p)

FilterPtr = POINTER(c_char_p)


def load_library():
    path = os.environ.get("VIREVENT_LIB")
    if not path:
        sys.exit("VIREVENT_LIB is not set: give the full path to libvirevent.so "
                 "(cargo test --test python sets it)")
    if not os.path.isfile(path):
        sys.exit(f"VIREVENT_LIB={path!r}: no such file")
    lib = ctypes.CDLL(path)

    def declare(name, restype, *argtypes):
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = list(argtypes)

    declare("virConnectOpen", c_void_p, c_char_p)
    declare("virConnectClose", c_int, c_void_p)
    declare("virConnectAddEventHandler", c_int, c_void_p, FilterPtr, EventHandler, c_void_p)
    declare("virConnectAddEventHandlerFull", c_int,
            c_void_p, FilterPtr, EventHandler, c_void_p, FreeCallback, c_uint)
    declare("virConnectRemoveEventHandler", c_int, c_void_p, c_int)
    declare("virConnectEmitEvent", c_int, c_void_p, c_char_p)
    declare("virDeliverEvents", c_int, c_void_p)
    declare("virConnectGetEventFD", c_int, c_void_p)
    declare("virConnectOpenEventStream", c_int, c_void_p, FilterPtr, c_uint)
    declare("virDomainLookupByName", c_void_p, c_void_p, c_char_p)
    declare("virDomainSuspend", c_int, c_void_p)
    declare("virDomainResume", c_int, c_void_p)
    declare("virDomainFree", c_int, c_void_p)
    declare("virGetLastErrorCode", c_int)
    declare("virGetLastErrorMessage", c_char_p)
    declare("virResetLastError", None)
    return lib


lib = load_library()


def make_filter(*patterns):
    """A NULL-terminated const char *const * vector."""
    return (c_char_p * (len(patterns) + 1))(*[p.encode() for p in patterns], None)


def last_error():
    message = lib.virGetLastErrorMessage()
    return lib.virGetLastErrorCode(), (message.decode() if message is not None else None)


class LineReader:
    """Reads an event stream line by line with a manual buffer, waiting at most
    `timeout` seconds for each line, so that a missing line or a missing end of
    file fails the test instead of hanging it."""

    def __init__(self, fd, timeout=10.0):
        self.fd = fd
        self.timeout = timeout
        self.buffer = b""
        self.eof = False
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_READ)

    def readline(self):
        """The next line with its b"\\n", or b"" at end of file."""
        while b"\n" not in self.buffer and not self.eof:
            if not self.selector.select(timeout=self.timeout):
                raise AssertionError(
                    f"no line or end of file within {self.timeout} s (buffered {self.buffer!r})")
            chunk = os.read(self.fd, 65536)
            if chunk:
                self.buffer += chunk
            else:
                self.eof = True
        if b"\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition(b"\n")
            return line + b"\n"
        line, self.buffer = self.buffer, b""
        return line

    def close(self):
        if self.fd is not None:
            self.selector.close()
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Recorder:
    """A handler that copies each eventXML it is given (valid only during the call)."""

    def __init__(self):
        self.events = []
        self.callback = EventHandler(self._call)  # keep a reference while registered

    def _call(self, conn, event_xml, arg):
        self.events.append(event_xml)


class Base(unittest.TestCase):
    def setUp(self):
        self.conn = None

    def tearDown(self):
        if self.conn:
            self.assertEqual(lib.virConnectClose(self.conn), 0)
            self.conn = None

    def open(self, uri=None):
        conn = lib.virConnectOpen(uri)
        self.assertIsNotNone(conn, f"virConnectOpen({uri!r}) failed: {last_error()}")
        return conn

    def emit(self, xml):
        seq = lib.virConnectEmitEvent(self.conn, xml)
        self.assertGreater(seq, 0, f"emit {xml!r}: {last_error()}")
        return seq


class Connections(Base):
    def test_open_default_and_empty(self):
        for uri in (None, b"", b"test:///default", b"test:///empty"):
            with self.subTest(uri=uri):
                conn = lib.virConnectOpen(uri)
                self.assertIsNotNone(conn, last_error())
                self.assertEqual(last_error(), (VIR_ERR_OK, "no error"))
                self.assertEqual(lib.virConnectClose(conn), 0)

    def test_default_has_domain_test_and_empty_has_none(self):
        conn = self.open(None)
        dom = lib.virDomainLookupByName(conn, b"test")
        self.assertIsNotNone(dom, last_error())
        self.assertEqual(lib.virDomainFree(dom), 0)
        self.assertEqual(lib.virConnectClose(conn), 0)

        conn = self.open(b"test:///empty")
        self.assertIsNone(lib.virDomainLookupByName(conn, b"test"))
        self.assertEqual(lib.virConnectClose(conn), 0)

    def test_unknown_uri(self):
        uri = "bogus+ssh://nowhere/system"
        self.assertIsNone(lib.virConnectOpen(uri.encode()))
        code, message = last_error()
        self.assertEqual(code, VIR_ERR_NO_CONNECT)
        self.assertIn(uri, message)
        # The error stays until the next call; reset forgets it.
        self.assertEqual(lib.virGetLastErrorCode(), VIR_ERR_NO_CONNECT)
        lib.virResetLastError()
        self.assertEqual(last_error(), (VIR_ERR_OK, "no error"))


class Handlers(Base):
    def test_domain_transitions_reach_a_python_handler(self):
        self.conn = self.open(None)
        rec = Recorder()
        flt = (c_char_p * 2)(b"domain-state-transition", None)
        hid = lib.virConnectAddEventHandler(self.conn, flt, rec.callback, None)
        self.assertGreaterEqual(hid, 0, last_error())
        del flt  # the filter is copied: the caller may free it on return

        dom = lib.virDomainLookupByName(self.conn, b"test")
        self.assertIsNotNone(dom, last_error())
        self.assertEqual(lib.virDomainSuspend(dom), 0, last_error())
        self.assertEqual(lib.virDomainResume(dom), 0, last_error())
        self.assertEqual(lib.virDomainFree(dom), 0)
        self.assertEqual(rec.events, [], "nothing is delivered before virDeliverEvents")

        self.assertEqual(lib.virDeliverEvents(self.conn), 2, last_error())
        self.assertEqual(len(rec.events), 2, rec.events)
        expected = [("1", "running", "paused", "suspended-paused"),
                    ("2", "paused", "running", "resumed-unpaused")]
        for xml, (seq, old, new, reason) in zip(rec.events, expected):
            with self.subTest(seq=seq):
                self.assertIsInstance(xml, bytes)
                self.assertNotIn(b"\n", xml)
                self.assertTrue(xml.startswith(
                    b'<event type="domain-state-transition" timestamp="'), xml)
                root = ET.fromstring(xml)
                self.assertEqual(root.tag, "event")
                self.assertEqual(root.get("type"), "domain-state-transition")
                self.assertEqual(root.get("seq"), seq)
                secs, _, micros = root.get("timestamp").partition(".")
                self.assertTrue(secs.isdigit() and micros.isdigit(), root.get("timestamp"))
                self.assertEqual(root.findtext("domain-id"), "1")
                self.assertEqual(root.findtext("domain-name"), "test")
                self.assertEqual(root.findtext("old-state"), old)
                self.assertEqual(root.findtext("new-state"), new)
                self.assertEqual(root.findtext("reason"), reason)
        self.assertEqual(lib.virDeliverEvents(self.conn), 0)
        self.assertEqual(lib.virConnectRemoveEventHandler(self.conn, hid), 0)

    def test_non_matching_type_is_not_delivered(self):
        self.conn = self.open(None)
        rec = Recorder()
        everything = Recorder()
        flt = (c_char_p * 2)(b"domain-state-transition", None)
        self.assertGreaterEqual(lib.virConnectAddEventHandler(self.conn, flt, rec.callback, None), 0)
        self.assertGreaterEqual(
            lib.virConnectAddEventHandler(self.conn, None, everything.callback, None), 0)
        self.emit(b'<event type="python-test"><n>1</n></event>')
        self.assertEqual(lib.virDeliverEvents(self.conn), 1)
        self.assertEqual(rec.events, [])
        self.assertEqual(len(everything.events), 1)
        self.assertIn(b'type="python-test"', everything.events[0])

    def test_freecb_runs_once_at_removal(self):
        self.conn = self.open(None)
        rec = Recorder()
        freed = []
        freecb = FreeCallback(lambda arg: freed.append(arg))
        cookie = 0x1234
        hid = lib.virConnectAddEventHandlerFull(
            self.conn, make_filter("py-*"), rec.callback, cookie, freecb, 0)
        self.assertGreaterEqual(hid, 0, last_error())
        self.emit(b'<event type="py-one"/>')
        self.assertEqual(lib.virDeliverEvents(self.conn), 1)
        self.assertEqual(len(rec.events), 1)
        self.assertEqual(freed, [], "freecb before removal")

        self.assertEqual(lib.virConnectRemoveEventHandler(self.conn, hid), 0, last_error())
        self.assertEqual(freed, [cookie])
        # Removed: never called again, freed once only, even at close.
        self.emit(b'<event type="py-two"/>')
        self.assertEqual(lib.virDeliverEvents(self.conn), 0)
        self.assertEqual(len(rec.events), 1)
        self.assertEqual(lib.virConnectRemoveEventHandler(self.conn, hid), -1)
        self.assertEqual(lib.virGetLastErrorCode(), VIR_ERR_INVALID_ARG)
        self.assertEqual(lib.virConnectClose(self.conn), 0)
        self.conn = None
        self.assertEqual(freed, [cookie])

    def test_bad_xml(self):
        self.conn = self.open(None)
        for xml in (b'<event type="t">', b"not xml at all", b'<event type="t"></evnt>'):
            with self.subTest(xml=xml):
                self.assertEqual(lib.virConnectEmitEvent(self.conn, xml), -1)
                self.assertEqual(lib.virGetLastErrorCode(), VIR_ERR_XML_ERROR, last_error())
        # Nothing was queued: the next event gets seq 1.
        self.assertEqual(self.emit(b'<event type="t"/>'), 1)


class EventFD(Base):
    def test_selector_sees_pending_work(self):
        self.conn = self.open(None)
        rec = Recorder()
        self.assertGreaterEqual(lib.virConnectAddEventHandler(self.conn, None, rec.callback, None), 0)
        fd = lib.virConnectGetEventFD(self.conn)
        self.assertGreaterEqual(fd, 0, last_error())
        self.assertEqual(lib.virConnectGetEventFD(self.conn), fd, "the same descriptor each time")

        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            self.assertEqual(sel.select(timeout=0), [], "readable with nothing queued")
            self.emit(b'<event type="fd-test"/>')
            ready = sel.select(timeout=0)
            self.assertEqual([(key.fd, mask) for key, mask in ready], [(fd, selectors.EVENT_READ)])
            # Level-triggered: still readable until delivery.
            self.assertEqual(len(sel.select(timeout=0)), 1)
            self.assertEqual(lib.virDeliverEvents(self.conn), 1)
            self.assertEqual(sel.select(timeout=0), [], "readable after virDeliverEvents")
            self.assertEqual(len(rec.events), 1)
            sel.unregister(fd)


class Streams(Base):
    def test_stream_lines_equal_handler_xml(self):
        self.conn = self.open(None)
        rec = Recorder()
        self.assertGreaterEqual(lib.virConnectAddEventHandler(self.conn, None, rec.callback, None), 0)
        fd = lib.virConnectOpenEventStream(self.conn, None, 0)
        self.assertGreaterEqual(fd, 0, last_error())
        stream = LineReader(fd)
        try:
            sent = [
                b'<event type="s1"/>',
                b'<?xml version="1.0"?>\n<event type="s2" timestamp="1221756307.123456">\n'
                b'  <a x="1">line1\nline2</a><!-- gone --></event>\n',
                b'<event type="s3"><![CDATA[<b>&]]></event>',
            ]
            seqs = [self.emit(xml) for xml in sent]
            self.assertEqual(seqs, [1, 2, 3])
            lines = [stream.readline() for _ in sent]
            self.assertEqual(lib.virDeliverEvents(self.conn), len(sent))
            self.assertEqual(len(rec.events), len(sent))
            for line, delivered, seq in zip(lines, rec.events, seqs):
                with self.subTest(seq=seq):
                    self.assertTrue(line.endswith(b"\n"), line)
                    self.assertEqual(line.count(b"\n"), 1, line)
                    self.assertEqual(line[:-1], delivered)
                    self.assertIn(f' seq="{seq}"'.encode(), line)
            self.assertIn(b"line1&#10;line2", lines[1])
            self.assertIn(b'timestamp="1221756307.123456"', lines[1])
        finally:
            stream.close()

        # Closed by the reader: emitting more neither fails nor kills the
        # process. Python ignores SIGPIPE by default; restore the default
        # action meanwhile so that a write raising it would end this process.
        old = signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        try:
            for i in range(3):
                self.emit(f'<event type="after-close" n="{i}"/>'.encode())
            self.assertEqual(lib.virDeliverEvents(self.conn), 3)
            self.emit(b'<event type="after-close-big">' + b"x" * 200000 + b"</event>")
            self.assertEqual(lib.virDeliverEvents(self.conn), 1)
        finally:
            signal.signal(signal.SIGPIPE, old)
        self.assertEqual(len(rec.events), len(sent) + 4)

    def test_filtered_stream(self):
        self.conn = self.open(None)
        fd = lib.virConnectOpenEventStream(self.conn, make_filter("keep-*"), 0)
        self.assertGreaterEqual(fd, 0, last_error())
        with LineReader(fd) as stream:
            self.emit(b'<event type="drop"/>')
            self.emit(b'<event type="keep-me"/>')
            line = stream.readline()
            self.assertTrue(line.startswith(b'<event type="keep-me" '), line)
            self.assertIn(b' seq="2"', line)

    def test_close_ends_stream(self):
        conn = self.open(None)
        self.conn = conn
        fd = lib.virConnectOpenEventStream(conn, None, 0)
        self.assertGreaterEqual(fd, 0, last_error())
        with LineReader(fd) as stream:
            self.emit(b'<event type="before-close"/>')
            self.emit(b'<event type="before-close"/>')
            self.assertEqual(lib.virConnectClose(conn), 0)
            self.conn = None
            # Read until end of file: the two events, then b"".
            lines = []
            while True:
                line = stream.readline()
                if line == b"":
                    break
                lines.append(line)
                self.assertLess(len(lines), 3, lines)
            self.assertEqual(len(lines), 2, lines)
            for line in lines:
                self.assertTrue(line.startswith(b'<event type="before-close" '), line)
                self.assertTrue(line.endswith(b"\n"), line)
            self.assertEqual(stream.readline(), b"")


if __name__ == "__main__":
    unittest.main()
