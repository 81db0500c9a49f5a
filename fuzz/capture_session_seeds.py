#!/usr/bin/env python3
"""Captures the `session` fuzz target's seeds from a real libvirtd.

Starts a private libvirtd (test driver) in a temporary folder, puts a proxy
socket between it and virevent-watch, drives the daemon with virsh through
lifecycle, metadata, reboot, network and storage pool actions, and records
what the daemon sends after the open. Callback IDs are rewritten to the event
ID of their registration, which is what the fake daemon of
tests/common/fake_session.rs answers. Writes fuzz/corpus/session/real-PROC
(the first event message of each procedure) and real-all (every message in
order).

    python3 fuzz/capture_session_seeds.py   (needs libvirtd, virsh, a built
                                              target/debug/virevent-watch)
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REMOTE = 0x20008086
REGISTRATIONS = {316, 313, 368, 374, 380}
LAST_OPEN_CALL = 212  # DOMAIN_GET_STATE


def packets(buffer):
    """Whole packets at the start of `buffer`, and what is left."""
    out = []
    while len(buffer) >= 4:
        (length,) = struct.unpack(">I", buffer[:4])
        if len(buffer) < length:
            break
        out.append(buffer[:length])
        buffer = buffer[length:]
    return out, buffer


class Capture:
    def __init__(self):
        self.lock = threading.Lock()
        self.event_id = {}  # serial of a registration call -> its event ID
        self.callback = {}  # callback ID -> event ID
        self.opened = False
        self.messages = []

    def client(self, packet):
        _, prog, _, proc, kind, serial, _ = struct.unpack(">7I", packet[:28])
        with self.lock:
            if prog == REMOTE and kind == 0 and proc in REGISTRATIONS:
                self.event_id[serial] = struct.unpack(">i", packet[28:32])[0]

    def daemon(self, packet):
        _, prog, _, proc, kind, serial, _ = struct.unpack(">7I", packet[:28])
        with self.lock:
            if prog == REMOTE and kind == 1 and serial in self.event_id:
                self.callback[struct.unpack(">i", packet[28:32])[0]] = self.event_id.pop(serial)
            if prog == REMOTE and kind == 1 and proc == LAST_OPEN_CALL:
                self.opened = True
            if self.opened and prog == REMOTE and kind == 2:
                body = packet[28:]
                if len(body) >= 4:
                    (cb,) = struct.unpack(">i", body[:4])
                    body = struct.pack(">i", self.callback.get(cb, cb)) + body[4:]
                self.messages.append((proc, packet[:28] + body))


def pump(source, sink, record):
    buffer = b""
    while True:
        data = source.recv(65536)
        if not data:
            sink.close()
            return
        sink.sendall(data)
        whole, buffer = packets(buffer + data)
        for packet in whole:
            record(packet)


def main():
    folder = tempfile.mkdtemp(prefix="virevent-capture-")
    daemon_sock, proxy_sock = os.path.join(folder, "libvirt-sock"), os.path.join(folder, "proxy")
    os.mkdir(os.path.join(folder, "drivers"))
    conf = os.path.join(folder, "libvirtd.conf")
    with open(conf, "w") as f:
        f.write(f'unix_sock_dir = "{folder}"\nunix_sock_rw_perms = "0770"\n'
                'auth_unix_rw = "none"\nauth_unix_ro = "none"\n')
    env = dict(os.environ, LIBVIRT_DRIVER_DIR=os.path.join(folder, "drivers"))
    libvirtd = subprocess.Popen(["libvirtd", "--config", conf, "--pid-file", os.path.join(folder, "pid")],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watcher = None
    try:
        for _ in range(200):
            if os.path.exists(daemon_sock):
                break
            time.sleep(0.05)
        time.sleep(0.2)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(proxy_sock)
        listener.listen(1)
        capture = Capture()

        def serve():
            client, _ = listener.accept()
            daemon = socket.socket(socket.AF_UNIX)
            daemon.connect(daemon_sock)
            threading.Thread(target=pump, args=(client, daemon, capture.client), daemon=True).start()
            pump(daemon, client, capture.daemon)

        threading.Thread(target=serve, daemon=True).start()
        watcher = subprocess.Popen([os.path.join(ROOT, "target/debug/virevent-watch"), "--uri",
                                    f"test+unix:///default?socket={proxy_sock}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if capture.opened:
                break
            time.sleep(0.05)
        test2 = os.path.join(folder, "test2.xml")
        with open(test2, "w") as f:
            f.write("<domain type='test'><name>test2</name><memory>8192</memory>"
                    "<os><type>hvm</type></os></domain>\n")
        uri = f"test+unix:///default?socket={daemon_sock}"
        for args in [["suspend", "test"], ["resume", "test"], ["reboot", "test"],
                     ["desc", "test", "--live", "hello"],
                     ["metadata", "test", "http://example.org/x", "--key", "x", "--set", "<a/>", "--live"],
                     ["destroy", "test"], ["start", "test"], ["shutdown", "test"], ["start", "test"],
                     ["define", test2], ["undefine", "test2"],
                     ["net-destroy", "default"], ["net-start", "default"],
                     ["pool-refresh", "default-pool"], ["pool-destroy", "default-pool"],
                     ["pool-start", "default-pool"]]:
            subprocess.run(["virsh", "-q", "-c", uri] + args, check=True, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        corpus = os.path.join(ROOT, "fuzz", "corpus", "session")
        seen = set()
        with capture.lock:
            messages = list(capture.messages)
        for proc, packet in messages:
            if proc not in seen:
                seen.add(proc)
                with open(os.path.join(corpus, f"real-{proc}"), "wb") as f:
                    f.write(packet)
        with open(os.path.join(corpus, "real-all"), "wb") as f:
            f.write(b"".join(packet for _, packet in messages))
        print(f"{len(messages)} messages, procedures {sorted(seen)}")
    finally:
        if watcher:
            watcher.terminate()
            watcher.wait()
        libvirtd.terminate()
        libvirtd.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
