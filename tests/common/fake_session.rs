//! A whole remote connection fed untrusted daemon bytes: a fake daemon on a
//! Unix socket answers the library's real open sequence (AUTH_LIST none,
//! CONNECT_OPEN, keepalive offered, every registration accepted with its
//! event ID as callback ID, one running domain `test`), then sends `data` as
//! they are and ends the connection. The library's side is a
//! [`Connection`] with a handler, delivered until `connection-closed`: the
//! link, keepalive, dispatch, the state record, the hub and the canonical
//! form all see the bytes. Used by the fuzz target `session` and by
//! tests/daemon_fuzz_seeds.rs, which replays its seeds and findings.
//!
//! [`run_resync`] fuzzes a reconnection instead: the fake daemon ends the
//! first connection once reconnection is on, and answers the second one's
//! listings (domains, their states, networks, pools) with the bytes under
//! test, then sends the rest of them as events (fuzz target `resync`).
//!
//! [`run_sasl`] fuzzes authentication instead: the fake daemon wants SASL
//! (AUTH_LIST [1]), offers PLAIN, and answers AUTH_SASL_START and every
//! AUTH_SASL_STEP with the bytes under test as the reply's body; the open
//! must fail cleanly or succeed, within its bounds (fuzz target `sasl`).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use virevent::{Connection, Filter};

const PROGRAM_REMOTE: u32 = 0x2000_8086;
const REPLY: u32 = 1;
const CALL: u32 = 0;
const AUTH_LIST: u32 = 66;
const AUTH_SASL_INIT: u32 = 67;
const AUTH_SASL_START: u32 = 68;
const AUTH_SASL_STEP: u32 = 69;
const CONNECT_SUPPORTS_FEATURE: u32 = 60;
const DOMAIN_GET_STATE: u32 = 212;
const CONNECT_LIST_ALL_DOMAINS: u32 = 273;
const CONNECT_LIST_ALL_STORAGE_POOLS: u32 = 281;
const CONNECT_LIST_ALL_NETWORKS: u32 = 283;
/// Each object's event registration, whose reply is the callback ID.
const REGISTRATIONS: [u32; 5] = [316, 313, 368, 374, 380];

/// The domain the fake daemon lists: the test driver's `test`.
const NAME: &str = "test";
const UUID: [u8; 16] = [0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04, 0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f];

/// How long one run may take before it is a hang.
const LIMIT: Duration = Duration::from_secs(10);

/// A reply packet to the call of `procedure` with `serial`.
fn reply(procedure: u32, serial: u32, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(28 + body.len());
    for word in [28 + body.len() as u32, PROGRAM_REMOTE, 1, procedure, REPLY, serial, 0] {
        p.extend_from_slice(&word.to_be_bytes());
    }
    p.extend_from_slice(body);
    p
}

/// What the fake daemon answers to the call `procedure` with `body`; with
/// `sasl`, it wants SASL and answers its exchange with those bytes.
fn answer(procedure: u32, body: &[u8], sasl: Option<&[u8]>) -> Vec<u8> {
    let word = |n: u32| n.to_be_bytes().to_vec();
    match procedure {
        AUTH_LIST => [word(1), word(u32::from(sasl.is_some()))].concat(),
        AUTH_SASL_INIT => [word(5), b"PLAIN\0\0\0".to_vec()].concat(),
        AUTH_SASL_START | AUTH_SASL_STEP => sasl.unwrap_or_default().to_vec(),
        CONNECT_SUPPORTS_FEATURE => word(1),
        p if REGISTRATIONS.contains(&p) => body.get(..4).map_or_else(|| word(0), <[u8]>::to_vec),
        CONNECT_LIST_ALL_DOMAINS => {
            let mut b = [word(1), word(NAME.len() as u32), NAME.as_bytes().to_vec()].concat();
            b.resize(b.len().next_multiple_of(4), 0);
            b.extend_from_slice(&UUID);
            b.extend([word(1), word(1)].concat());
            b
        }
        DOMAIN_GET_STATE => [word(1), word(1)].concat(),
        // No network, no pool.
        CONNECT_LIST_ALL_NETWORKS | CONNECT_LIST_ALL_STORAGE_POOLS => [word(0), word(0)].concat(),
        _ => Vec::new(),
    }
}

/// The fake daemon on `listener`'s first connection: answers every call
/// (with `sasl`, wanting SASL and answering its exchange with those bytes);
/// with `after_states`, once the open's last call is answered and the
/// receiver says go, sends its bytes and ends the connection.
fn serve(
    listener: UnixListener,
    sasl: Option<Vec<u8>>,
    mut after_states: Option<(std::sync::mpsc::Receiver<()>, Vec<u8>)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        answer_calls(stream, |stream, procedure, body| {
            let _ = stream.write_all(&answer(procedure, body, sasl.as_deref()));
            if procedure == DOMAIN_GET_STATE {
                if let Some((_, data)) = after_states.take().filter(|(ready, _)| ready.recv().is_ok()) {
                    // The open is done: the bytes under test, then the end.
                    let _ = stream.write_all(&data);
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                }
            }
        });
    })
}

/// Answers each whole call read from `stream` with `respond(stream,
/// procedure, body)`, which writes the reply's body (framed here) and
/// anything after it, until end of file.
fn answer_calls(mut stream: UnixStream, mut respond: impl FnMut(&mut Replies<'_>, u32, &[u8])) {
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let mut pending = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        // Whole calls in `pending`, each answered.
        while pending.len() >= 28 {
            let word = |at: usize| u32::from_be_bytes(pending[at..at + 4].try_into().unwrap());
            let len = word(0) as usize;
            if pending.len() < len {
                break;
            }
            let (procedure, kind, serial) = (word(12), word(16), word(20));
            if word(4) == PROGRAM_REMOTE && kind == CALL {
                respond(&mut Replies { stream: &mut stream, procedure, serial, replied: false }, procedure, &pending[28..len]);
            }
            pending.drain(..len.max(28));
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

/// The stream a call is answered on: its first write is the reply's body,
/// framed; later ones go as they are.
struct Replies<'a> {
    stream: &'a mut UnixStream,
    procedure: u32,
    serial: u32,
    replied: bool,
}

impl Replies<'_> {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if std::mem::replace(&mut self.replied, true) {
            return self.stream.write_all(bytes);
        }
        self.stream.write_all(&reply(self.procedure, self.serial, bytes))
    }

    fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
        self.stream.shutdown(how)
    }
}

/// What separates the parts of a [`run_resync`] input.
pub const SPLIT: &[u8] = b"SPLT";

/// One reconnection fed `data`, parts split by [`SPLIT`]: the reply bodies
/// of CONNECT_LIST_ALL_DOMAINS, of every DOMAIN_GET_STATE, of
/// CONNECT_LIST_ALL_NETWORKS (all, then active), of
/// CONNECT_LIST_ALL_STORAGE_POOLS (all, then active), then bytes sent after
/// the open (events). Returns the events the handler got. Panics on a hang,
/// on an event not its own canonical form, and when the outage is not told
/// as `connection-lost` first, then at most one `connection-restored`.
pub fn run_resync(data: &[u8]) -> Vec<String> {
    let (dir, sock, listener) = listening();
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SPLIT.len()).position(|w| w == SPLIT) {
        parts.push(rest[..at].to_vec());
        rest = &rest[at + SPLIT.len()..];
    }
    parts.push(rest.to_vec());
    parts.resize(7, Vec::new());
    let (ready, go) = std::sync::mpsc::channel::<()>();
    let daemon = std::thread::spawn(move || {
        // The first connection: the usual answers, ended once reconnection is on.
        let (first, _) = listener.accept().unwrap();
        let mut ender = first.try_clone().unwrap();
        std::thread::spawn(move || {
            answer_calls(first, |stream, procedure, body| {
                let _ = stream.write_all(&answer(procedure, body, None));
            })
        });
        if go.recv().is_ok() {
            let _ = ender.flush();
            let _ = ender.shutdown(std::net::Shutdown::Both);
        }
        // The second: the parts.
        let (second, _) = listener.accept().unwrap();
        answer_calls(second, |stream, procedure, body| {
            let active = body.ends_with(&2u32.to_be_bytes());
            let part = match procedure {
                CONNECT_LIST_ALL_DOMAINS => Some(0),
                DOMAIN_GET_STATE => Some(1),
                CONNECT_LIST_ALL_NETWORKS => Some(2 + usize::from(active)),
                CONNECT_LIST_ALL_STORAGE_POOLS => Some(4 + usize::from(active)),
                _ => None,
            };
            let _ = stream.write_all(&part.map_or_else(|| answer(procedure, body, None), |i| parts[i].clone()));
            if procedure == CONNECT_LIST_ALL_STORAGE_POOLS && active {
                let _ = stream.write_all(&parts[6]);
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
        });
    });
    let conn = Connection::open(Some(&format!("test+unix:///default?socket={}", sock.display()))).expect("the open");
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    conn.add_handler(Filter::All, move |event| sink.lock().unwrap().push(event.xml().to_string())).unwrap();
    conn.set_reconnect(Some((Duration::from_millis(1), Duration::from_millis(1)))).unwrap();
    ready.send(()).unwrap();
    let fd = conn.event_fd().unwrap();
    let start = Instant::now();
    // The daemon's side ends once the library let the second connection go
    // (a failed attempt, or end of file after the events).
    while !daemon.is_finished() {
        assert!(start.elapsed() < LIMIT, "no end in time; got {:?}", got.lock().unwrap());
        let mut pollfd = [libc_pollfd(fd)];
        poll(&mut pollfd, 10);
        let _ = conn.deliver();
    }
    let _ = conn.deliver();
    conn.close().unwrap();
    daemon.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let events = std::mem::take(&mut *got.lock().unwrap());
    let kinds: Vec<&str> = events.iter().map(|e| e.split('"').nth(1).unwrap_or("")).collect();
    assert_eq!(kinds.first(), Some(&"connection-lost"), "{events:?}");
    assert!(kinds.iter().filter(|k| **k == "connection-restored").count() <= 1, "{events:?}");
    for xml in &events {
        let unsealed = without_seq(xml);
        let again = virevent::event::parse(&unsealed).unwrap_or_else(|e| panic!("{unsealed}: {}", e.message));
        assert_eq!(without_seq(again.seal(1).xml()), unsealed, "not its own canonical form");
    }
    events
}

/// A new folder of this process's own, and the listening socket `sock` in it.
fn listening() -> (PathBuf, PathBuf, UnixListener) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(format!("/tmp/virevent-fuzz-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let sock = dir.join("sock");
    let listener = UnixListener::bind(&sock).unwrap();
    (dir, sock, listener)
}

/// Runs one connection fed `data`; returns the events its handler got (the
/// last one `connection-closed`). Panics on a hang, or when an event is not
/// its own canonical form.
pub fn run(data: &[u8]) -> Vec<String> {
    let (dir, sock, listener) = listening();
    let data = data.to_vec();
    // The bytes go once the handler is there (events read with the open's
    // last reply are emitted before any handler could be added).
    let (ready, go) = std::sync::mpsc::channel::<()>();
    let daemon = serve(listener, None, Some((go, data)));
    let conn = Connection::open(Some(&format!("test+unix:///default?socket={}", sock.display()))).expect("the open");
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    conn.add_handler(Filter::All, move |event| sink.lock().unwrap().push(event.xml().to_string())).unwrap();
    ready.send(()).unwrap();
    let fd = conn.event_fd().unwrap();
    let start = Instant::now();
    while !got.lock().unwrap().last().is_some_and(|xml| xml.starts_with("<event type=\"connection-closed\"")) {
        assert!(start.elapsed() < LIMIT, "no connection-closed in time; got {:?}", got.lock().unwrap());
        let mut pollfd = [libc_pollfd(fd)];
        poll(&mut pollfd, 100);
        let _ = conn.deliver();
    }
    conn.close().unwrap();
    daemon.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let events = std::mem::take(&mut *got.lock().unwrap());
    for xml in &events {
        let unsealed = without_seq(xml);
        let again = virevent::event::parse(&unsealed).unwrap_or_else(|e| panic!("{unsealed}: {}", e.message));
        assert_eq!(without_seq(again.seal(1).xml()), unsealed, "not its own canonical form");
    }
    events
}

/// Opens a connection to a fake daemon that wants SASL and answers each
/// AUTH_SASL_START and AUTH_SASL_STEP with `data` as the reply's body (a
/// real body is `int complete`, `int nil`, then rpcgen's `char data<>`), the
/// credentials coming from a callback. Returns the open's error, if any.
/// Panics on a hang or a slow failure (past the open's own deadline).
pub fn run_sasl(data: &[u8]) -> Option<virevent::Error> {
    let (dir, sock, listener) = listening();
    let data = data.to_vec();
    let daemon = serve(listener, Some(data), None);
    struct Program;
    impl virevent::Authenticator for Program {
        fn types(&self) -> &[virevent::CredentialType] {
            &[virevent::CredentialType::Authname, virevent::CredentialType::Passphrase]
        }
        fn ask(&mut self, credentials: &mut [virevent::Credential]) -> bool {
            for c in credentials {
                c.result = Some(virevent::Secret::new(b"fuzz".to_vec()));
            }
            true
        }
    }
    let start = Instant::now();
    // An empty auth.conf of its own: the machine's never answers.
    std::fs::write(dir.join("auth.conf"), "").unwrap();
    let uri = format!("test+unix:///default?socket={}&authfile={}", sock.display(), dir.join("auth.conf").display());
    let opened = Connection::open_auth(Some(&uri), Some(&mut Program));
    assert!(start.elapsed() < LIMIT, "the open took {:?}", start.elapsed());
    let error = match opened {
        Ok(conn) => {
            conn.close().unwrap();
            None
        }
        Err(e) => Some(e),
    };
    daemon.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    error
}

/// `xml` without its `seq` attribute, which the library sets.
fn without_seq(xml: &str) -> String {
    match xml.find(" seq=\"") {
        Some(at) => {
            let end = at + 6 + xml[at + 6..].find('"').unwrap() + 1;
            format!("{}{}", &xml[..at], &xml[end..])
        }
        None => xml.to_string(),
    }
}

/// poll(2) without the libc crate: the fuzz package has only std.
#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

fn libc_pollfd(fd: i32) -> PollFd {
    PollFd { fd, events: 1, revents: 0 }
}

fn poll(fds: &mut [PollFd], ms: i32) {
    extern "C" {
        #[link_name = "poll"]
        fn c_poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
    }
    // SAFETY: `fds` is a valid array of pollfd-shaped structs.
    unsafe { c_poll(fds.as_mut_ptr(), fds.len() as u64, ms) };
}
