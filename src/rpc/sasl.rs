//! A SASL client session through the system's Cyrus SASL library (libsasl2,
//! the library libvirt's own client uses), bound here by hand: the dozen
//! functions an authenticating client needs are all it takes, and no
//! maintained `-sys` crate links the system's library without building its
//! own copy. No mechanism is written here: libsasl2 and its plugins do them.
//!
//! Credentials are gathered the way libvirt gathers them: the callbacks
//! handed to libsasl2 have no function, so that `start` and `step` return
//! `SASL_INTERACT` with the list of what the mechanism needs, which the
//! caller answers all at once (see [`crate::credentials`]).

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::ptr;
use std::sync::OnceLock;

use crate::credentials::{CredentialType, Question, Secret};

const SASL_OK: c_int = 0;
const SASL_CONTINUE: c_int = 1;
const SASL_INTERACT: c_int = 2;

const SASL_SSF: c_int = 1;
const SASL_MAXOUTBUF: c_int = 2;
const SASL_SSF_EXTERNAL: c_int = 100;
const SASL_SEC_PROPS: c_int = 101;

const SASL_SEC_NOPLAINTEXT: c_uint = 0x0001;
const SASL_SEC_NOANONYMOUS: c_uint = 0x0010;

/// The callback ids a client can be asked to answer, with libvirt's
/// credential type for each (libvirt's own mapping).
const CALLBACKS: [(c_ulong, CredentialType); 8] = [
    (0x4001, CredentialType::Username),
    (0x4002, CredentialType::Authname),
    (0x4003, CredentialType::Language),
    (0x4007, CredentialType::Cnonce),
    (0x4004, CredentialType::Passphrase),
    (0x4005, CredentialType::EchoPrompt),
    (0x4006, CredentialType::NoEchoPrompt),
    (0x4008, CredentialType::Realm),
];

#[repr(C)]
struct Callback {
    id: c_ulong,
    proc_: Option<unsafe extern "C" fn() -> c_int>,
    context: *mut c_void,
}

#[repr(C)]
struct Interact {
    id: c_ulong,
    challenge: *const c_char,
    prompt: *const c_char,
    defresult: *const c_char,
    result: *const c_void,
    len: c_uint,
}

#[repr(C)]
struct SecurityProperties {
    min_ssf: c_uint,
    max_ssf: c_uint,
    maxbufsize: c_uint,
    security_flags: c_uint,
    property_names: *const *const c_char,
    property_values: *const *const c_char,
}

enum RawConn {}

// libsasl2's own functions, not part of virevent's header (cbindgen reads
// the doc comment).
#[allow(unused_doc_comments)]
/// cbindgen:ignore
#[link(name = "sasl2")]
extern "C" {
    fn sasl_client_init(callbacks: *const Callback) -> c_int;
    fn sasl_client_new(
        service: *const c_char,
        server: *const c_char,
        local: *const c_char,
        remote: *const c_char,
        callbacks: *const Callback,
        flags: c_uint,
        conn: *mut *mut RawConn,
    ) -> c_int;
    fn sasl_client_start(
        conn: *mut RawConn,
        mechlist: *const c_char,
        interact: *mut *mut Interact,
        out: *mut *const c_char,
        out_len: *mut c_uint,
        mech: *mut *const c_char,
    ) -> c_int;
    fn sasl_client_step(
        conn: *mut RawConn,
        input: *const c_char,
        input_len: c_uint,
        interact: *mut *mut Interact,
        out: *mut *const c_char,
        out_len: *mut c_uint,
    ) -> c_int;
    fn sasl_setprop(conn: *mut RawConn, property: c_int, value: *const c_void) -> c_int;
    fn sasl_getprop(conn: *mut RawConn, property: c_int, value: *mut *const c_void) -> c_int;
    fn sasl_encode(conn: *mut RawConn, input: *const c_char, len: c_uint, out: *mut *const c_char, out_len: *mut c_uint) -> c_int;
    fn sasl_decode(conn: *mut RawConn, input: *const c_char, len: c_uint, out: *mut *const c_char, out_len: *mut c_uint) -> c_int;
    fn sasl_dispose(conn: *mut *mut RawConn);
    fn sasl_errdetail(conn: *mut RawConn) -> *const c_char;
    fn sasl_errstring(code: c_int, langs: *const c_char, out_lang: *mut *const c_char) -> *const c_char;
}

/// libsasl2's client side, initialised once per process (its plugins are
/// loaded then); the error message if that failed.
fn init() -> Result<(), String> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        // SAFETY: no callbacks; called once, under the OnceLock.
        let code = unsafe { sasl_client_init(ptr::null()) };
        if code == SASL_OK {
            Ok(())
        } else {
            Err(format!("the SASL library failed to start: {}", error_string(code)))
        }
    })
    .clone()
}

fn error_string(code: c_int) -> String {
    // SAFETY: sasl_errstring returns a static string for any code.
    let text = unsafe { sasl_errstring(code, ptr::null(), ptr::null_mut()) };
    if text.is_null() {
        return format!("SASL error {code}");
    }
    // SAFETY: a NUL-terminated static string.
    unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
}

/// Where the session's channel stands, which decides what SASL must give.
pub enum Channel {
    /// Plain TCP: a mechanism with a security layer of at least 56 bits, and
    /// no plaintext or anonymous mechanism, as libvirt's client requires.
    Plain,
    /// TLS, with its cipher's key size in bits as the external strength; no
    /// security layer.
    Tls { key_bits: u32 },
    /// A Unix socket or ssh: secure already; no security layer.
    Secure,
}

/// What a step of the exchange came to.
pub enum Outcome {
    /// Bytes for the daemon (`None`: no data, which SASL tells from empty),
    /// and whether the client side is complete.
    Send { data: Option<Vec<u8>>, complete: bool },
    /// The mechanism needs these answered, then the same call again.
    Ask(Vec<Question>),
}

/// One client's SASL session with one daemon.
pub struct Session {
    conn: *mut RawConn,
    /// The callback list, which libsasl2 keeps pointing at.
    _callbacks: Box<[Callback]>,
    /// The last interaction libsasl2 asked, and our answers to it (kept
    /// until the next call, which reads them; wiped when replaced).
    interact: *mut Interact,
    answers: Vec<Secret>,
    /// The mechanism list and the mechanism chosen, kept for libsasl2's pointers.
    mechlist: Option<CString>,
}

// SAFETY: the session is used by one thread at a time (the link's owner, under
// its lock); libsasl2 connections are not tied to a thread.
unsafe impl Send for Session {}

impl Session {
    /// A session for the `libvirt` service at `server` (the URI's host),
    /// with the addresses as `IP;PORT` where the channel has them, asking
    /// only for the credential types in `answerable`.
    pub fn new(
        server: &str,
        local: Option<&str>,
        remote: Option<&str>,
        channel: &Channel,
        answerable: &[CredentialType],
    ) -> Result<Session, String> {
        init()?;
        let mut callbacks: Vec<Callback> = CALLBACKS
            .iter()
            .filter(|(_, kind)| answerable.contains(kind))
            .map(|&(id, _)| Callback { id, proc_: None, context: ptr::null_mut() })
            .collect();
        callbacks.push(Callback { id: 0, proc_: None, context: ptr::null_mut() });
        let callbacks = callbacks.into_boxed_slice();
        let cstring = |s: &str| CString::new(s).map_err(|_| format!("'{s}' holds a NUL byte"));
        let (server, local, remote) = (cstring(server)?, local.map(cstring).transpose()?, remote.map(cstring).transpose()?);
        let mut conn = ptr::null_mut();
        // SAFETY: valid strings and callback list; libsasl2 copies the
        // strings and keeps the list, which the session owns.
        let code = unsafe {
            sasl_client_new(
                c"libvirt".as_ptr(),
                server.as_ptr(),
                local.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
                remote.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
                callbacks.as_ptr(),
                0,
                &mut conn,
            )
        };
        if code != SASL_OK {
            return Err(format!("the SASL library could not start a session: {}", error_string(code)));
        }
        let session =
            Session { conn, _callbacks: callbacks, interact: ptr::null_mut(), answers: Vec::new(), mechlist: None };
        session.set_properties(channel)?;
        Ok(session)
    }

    fn set_properties(&self, channel: &Channel) -> Result<(), String> {
        if let Channel::Tls { key_bits } = channel {
            let ssf: c_uint = *key_bits;
            // SAFETY: SASL_SSF_EXTERNAL takes a sasl_ssf_t (unsigned), copied.
            let code = unsafe { sasl_setprop(self.conn, SASL_SSF_EXTERNAL, (&ssf as *const c_uint).cast()) };
            if code != SASL_OK {
                return Err(self.error("cannot set the external strength", code));
            }
        }
        let plain = matches!(channel, Channel::Plain);
        let properties = SecurityProperties {
            min_ssf: if plain { 56 } else { 0 },
            max_ssf: if plain { 100_000 } else { 0 },
            maxbufsize: 100_000,
            security_flags: if plain { SASL_SEC_NOANONYMOUS | SASL_SEC_NOPLAINTEXT } else { 0 },
            property_names: ptr::null(),
            property_values: ptr::null(),
        };
        // SAFETY: SASL_SEC_PROPS takes a sasl_security_properties_t, copied.
        let code = unsafe { sasl_setprop(self.conn, SASL_SEC_PROPS, (&properties as *const SecurityProperties).cast()) };
        if code != SASL_OK {
            return Err(self.error("cannot set the security properties", code));
        }
        Ok(())
    }

    /// libsasl2's words for the last failure, with `what` failed.
    fn error(&self, what: &str, code: c_int) -> String {
        // SAFETY: the connection is valid; the detail is a NUL-terminated
        // string it owns.
        let detail = unsafe { sasl_errdetail(self.conn) };
        let detail = if detail.is_null() {
            error_string(code)
        } else {
            unsafe { CStr::from_ptr(detail) }.to_string_lossy().into_owned()
        };
        format!("{what}: {detail}")
    }

    /// Starts the exchange with one of `mechlist` (the daemon's list, or
    /// the one mechanism wanted); returns the mechanism chosen (named only by
    /// the call that chooses it) with the outcome.
    pub fn start(&mut self, mechlist: &str) -> Result<(Option<String>, Outcome), String> {
        if self.mechlist.is_none() {
            self.mechlist = Some(CString::new(mechlist).map_err(|_| "the mechanism list holds a NUL byte".to_string())?);
        }
        let list = self.mechlist.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let (mut out, mut out_len, mut mech) = (ptr::null(), 0, ptr::null());
        // SAFETY: valid connection, list and out-pointers; the interaction
        // answered last is still alive in `self.answers`.
        let code = unsafe { sasl_client_start(self.conn, list, &mut self.interact, &mut out, &mut out_len, &mut mech) };
        let outcome = self.outcome(code, out, out_len, "the SASL exchange could not start")?;
        // SAFETY: libsasl2's NUL-terminated mechanism name, when it gives one.
        let mech = (!mech.is_null()).then(|| unsafe { CStr::from_ptr(mech) }.to_string_lossy().into_owned());
        Ok((mech, outcome))
    }

    /// The next step, with what the daemon sent (`None`: no data).
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Outcome, String> {
        let (input_ptr, input_len) = input.map_or((ptr::null(), 0), |d| (d.as_ptr().cast::<c_char>(), d.len() as c_uint));
        let (mut out, mut out_len) = (ptr::null(), 0);
        // SAFETY: as in `start`; `input` stays alive for the call.
        let code = unsafe { sasl_client_step(self.conn, input_ptr, input_len, &mut self.interact, &mut out, &mut out_len) };
        self.outcome(code, out, out_len, "the SASL exchange failed")
    }

    fn outcome(&mut self, code: c_int, out: *const c_char, out_len: c_uint, what: &str) -> Result<Outcome, String> {
        match code {
            SASL_OK | SASL_CONTINUE => {
                // SAFETY: libsasl2's output, `out_len` bytes, valid until the next call.
                let data = (!out.is_null()).then(|| unsafe { std::slice::from_raw_parts(out.cast::<u8>(), out_len as usize) }.to_vec());
                Ok(Outcome::Send { data, complete: code == SASL_OK })
            }
            SASL_INTERACT => Ok(Outcome::Ask(self.questions())),
            _ => Err(self.error(what, code)),
        }
    }

    /// The current interaction's items this client asks for, in its order,
    /// each with its credential type.
    fn known_items(&self) -> impl Iterator<Item = (*mut Interact, CredentialType)> {
        let mut at = self.interact;
        std::iter::from_fn(move || {
            // SAFETY: libsasl2's interaction list, ended by an id of 0.
            while !at.is_null() && unsafe { (*at).id } != 0 {
                let item = at;
                at = unsafe { at.add(1) };
                let id = unsafe { (*item).id };
                if let Some(&(_, kind)) = CALLBACKS.iter().find(|(known, _)| *known == id) {
                    return Some((item, kind));
                }
            }
            None
        })
    }

    /// What the current interaction asks, in its order.
    fn questions(&self) -> Vec<Question> {
        // SAFETY: NULL or NUL-terminated strings the interaction owns.
        let text = |p: *const c_char| (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned());
        self.known_items()
            .map(|(item, kind)| {
                // SAFETY: an item of the list, valid until the next call.
                let item = unsafe { &*item };
                Question { kind, prompt: text(item.prompt).unwrap_or_default(), challenge: text(item.challenge), default: text(item.defresult) }
            })
            .collect()
    }

    /// Answers the current interaction: `answers[i]` for its `i`-th
    /// question (as [`Session::questions`] listed them).
    pub fn answer(&mut self, answers: Vec<Secret>) {
        self.answers = answers;
        for ((item, _), answer) in self.known_items().zip(&self.answers) {
            // SAFETY: as in `questions`; the result points into `self.answers`,
            // which stays unchanged until the next call has read it.
            let item = unsafe { &mut *item };
            item.result = answer.as_ptr().cast();
            item.len = answer.len() as c_uint;
        }
    }

    /// The unsigned property `property` (what it is: `what`, for errors).
    fn unsigned(&self, property: c_int, what: &str) -> Result<c_uint, String> {
        let mut value: *const c_void = ptr::null();
        // SAFETY: the property gives a pointer to an unsigned the connection owns.
        let code = unsafe { sasl_getprop(self.conn, property, &mut value) };
        if code != SASL_OK || value.is_null() {
            return Err(self.error(&format!("cannot read {what}"), code));
        }
        Ok(unsafe { *value.cast::<c_uint>() })
    }

    /// The security layer's strength in bits (0: none).
    pub fn ssf(&self) -> Result<u32, String> {
        self.unsigned(SASL_SSF, "the negotiated strength")
    }

    /// The most plaintext one [`Session::encode`] takes.
    pub fn max_output(&self) -> Result<usize, String> {
        self.unsigned(SASL_MAXOUTBUF, "the security layer's buffer size").map(|max| max as usize)
    }

    /// `plain` wrapped by the security layer, appended to `out`.
    pub fn encode(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.through_layer(sasl_encode, plain, out, "the SASL security layer could not wrap our data")
    }

    /// What `wire` (bytes as they came, any part of a wrapped packet)
    /// unwraps to, appended to `out`; a partial packet waits inside libsasl2.
    pub fn decode(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.through_layer(sasl_decode, wire, out, "the daemon's data failed the SASL security layer's check")
    }

    /// `input` through sasl_encode or sasl_decode (`layer`), appended to `out`.
    fn through_layer(&mut self, layer: LayerFn, input: &[u8], out: &mut Vec<u8>, failed: &str) -> Result<(), String> {
        let (mut output, mut len) = (ptr::null(), 0);
        // SAFETY: valid input; the output is the connection's, valid until the next call.
        let code = unsafe { layer(self.conn, input.as_ptr().cast(), input.len() as c_uint, &mut output, &mut len) };
        if code != SASL_OK {
            return Err(self.error(failed, code));
        }
        if !output.is_null() {
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(output.cast::<u8>(), len as usize) });
        }
        Ok(())
    }
}

/// sasl_encode's and sasl_decode's shape.
type LayerFn = unsafe extern "C" fn(*mut RawConn, *const c_char, c_uint, *mut *const c_char, *mut c_uint) -> c_int;

impl Drop for Session {
    fn drop(&mut self) {
        // The last questions are the mechanism's to free on its next call;
        // an exchange given up (a callback that failed) has none.
        if !self.interact.is_null() {
            // SAFETY: the plugin allocated the list with libsasl2's default
            // allocator, malloc, and nothing refers to it any more.
            unsafe { libc::free(self.interact.cast()) };
        }
        // SAFETY: the connection came from sasl_client_new and is disposed once.
        unsafe { sasl_dispose(&mut self.conn) };
    }
}

/// The SASL security layer on the link's socket, once authentication
/// negotiated one: every byte to the daemon is wrapped by [`Session::encode`]
/// (at most the negotiated buffer size at a time), every byte from it
/// unwrapped by [`Session::decode`].
pub struct Layer {
    session: Session,
    /// The most plaintext one wrap takes.
    max: usize,
    /// Wrapped bytes waiting for the socket, from `wire_sent` on.
    wire: Vec<u8>,
    wire_sent: usize,
    /// Where raw bytes are read, and what they unwrap to.
    raw: Box<[u8]>,
    plain: Vec<u8>,
}

impl Layer {
    pub fn new(session: Session, max: usize) -> Layer {
        let max = max.clamp(1, 1 << 20);
        Layer { session, max, wire: Vec::new(), wire_sent: 0, raw: vec![0; super::link::READ_ROOM].into_boxed_slice(), plain: Vec::new() }
    }

    /// Reads what the socket has and unwraps it: the plaintext, which is
    /// empty only at end of file; `WouldBlock` when nothing whole came.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<&[u8]> {
        self.plain.clear();
        loop {
            let n = super::socket::Socket(fd).read(&mut self.raw)?;
            if n == 0 {
                return Ok(&[]);
            }
            self.session.decode(&self.raw[..n], &mut self.plain).map_err(io::Error::other)?;
            if !self.plain.is_empty() {
                return Ok(&self.plain);
            }
        }
    }

    /// Wraps as much of `bytes` as one wrap takes and sends what the socket
    /// takes; returns how many of `bytes` were taken (`Ok(0)` while earlier
    /// wrapped bytes are still going out); `WouldBlock` when nothing could go.
    pub fn send(&mut self, fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
        let progressed = self.flush(fd)?;
        if self.output_waits() {
            return if progressed { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        let take = bytes.len().min(self.max);
        self.wire.clear();
        self.wire_sent = 0;
        self.session.encode(&bytes[..take], &mut self.wire).map_err(io::Error::other)?;
        match self.flush(fd) {
            Ok(_) => Ok(take),
            // The wrapped bytes wait; the plaintext was taken.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(take),
            Err(e) => Err(e),
        }
    }

    /// Whether wrapped bytes wait for the socket.
    pub fn output_waits(&self) -> bool {
        self.wire_sent < self.wire.len()
    }

    /// Sends what the socket takes of the wrapped bytes; whether any went.
    fn flush(&mut self, fd: RawFd) -> io::Result<bool> {
        let mut progressed = false;
        while self.output_waits() {
            match super::socket::Socket(fd).write(&self.wire[self.wire_sent..]) {
                Ok(n) => {
                    self.wire_sent += n;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && progressed => return Ok(true),
                Err(e) => return Err(e),
            }
        }
        Ok(progressed)
    }
}
