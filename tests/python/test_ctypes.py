#!/usr/bin/env python3
"""The C ABI from Python through ctypes (docs/api.md sections 2-8, virevent.h).

Standard library only. The library is loaded from the full path in the
environment variable VIREVENT_LIB; tests/python.rs sets it to the
libvirevent.so that `cargo test` has just built.

    VIREVENT_LIB=target/debug/deps/libvirevent.so python3 tests/python/test_ctypes.py -v
"""

import os
import selectors
import signal
import sys
import unittest
import xml.etree.ElementTree as ET
from ctypes import c_char_p

# The prototypes are bindings/python/virevent.py's: its `lib` is the raw CDLL
# (it returns -1 or NULL and raises nothing), which is what this test drives.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, os.pardir, "bindings", "python"))
from virevent import (  # noqa: E402
    VIR_ERR_INVALID_ARG, VIR_ERR_NO_CONNECT, VIR_ERR_OK, VIR_ERR_XML_ERROR,
    EventHandler, FreeCallback, last_error, lib,
)
from virevent import EventStream, c_filter  # noqa: E402

# Stream reads wait at most this long for each line, so that a missing line or a
# missing end of file fails the test instead of hanging it.
TIMEOUT = 10.0

# With VIREVENT_SEEN_LOG set (tests/python.rs sets it), each event a Recorder
# receives is logged as tests/c/seen_log.h logs them, "R PID CONN XML", each
# one Base.emit emits as "E PID CONN SEQ", and each connection Base.open opens
# as "O PID CONN -": tests/python.rs validates every event the library made
# against docs/events.rng.
SEEN_LOG = os.environ.get("VIREVENT_SEEN_LOG")


def seen_log(kind, conn, text):
    if SEEN_LOG:
        with open(SEEN_LOG, "ab") as log:
            log.write(b"%s %d 0x%x %s\n" % (kind, os.getpid(), conn or 0, text))


class Recorder:
    """A handler that copies each eventXML it is given (valid only during the call)."""

    def __init__(self):
        self.events = []
        self.callback = EventHandler(self._call)  # keep a reference while registered

    def _call(self, conn, event_xml, arg):
        seen_log(b"R", conn, event_xml)
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
        seen_log(b"O", conn, b"-")
        return conn

    def emit(self, xml):
        seq = lib.virConnectEmitEvent(self.conn, xml)
        self.assertGreater(seq, 0, f"emit {xml!r}: {last_error()}")
        seen_log(b"E", self.conn, b"%d" % seq)
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
        uri = "bogus+ext://nowhere/system"
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
            self.conn, c_filter("py-*"), rec.callback, cookie, freecb, 0)
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
        stream = EventStream(fd, TIMEOUT)
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
        fd = lib.virConnectOpenEventStream(self.conn, c_filter("keep-*"), 0)
        self.assertGreaterEqual(fd, 0, last_error())
        with EventStream(fd, TIMEOUT) as stream:
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
        with EventStream(fd, TIMEOUT) as stream:
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
