//! The socket to a libvirt daemon: non-blocking reads of whatever has arrived,
//! split into whole packets; writes that never block outside a call (what the
//! socket cannot take at once waits in an outbox, sent as it takes it);
//! synchronous calls, for opening and closing only, that wait in poll for
//! their reply until one deadline; keepalive PINGs answered on the way. Writes
//! use MSG_NOSIGNAL: a dead daemon is an error, never a SIGPIPE in the host.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::RemoteError;
use super::keepalive::{Due, Keepalive};
use super::tcp;
use super::socket::{self, Socket};
use super::ssh::{self, Ssh};
use super::tls::{self, Tls};
use super::packet::{self, Framer, Kind, Packet, KEEPALIVE_PING, KEEPALIVE_PONG, PROGRAM_KEEPALIVE, PROGRAM_REMOTE};
use crate::error::{Error, ErrorCode};

/// The least room offered to each read of the socket.
pub(super) const READ_ROOM: usize = 65536;

/// How long the daemon may take: to accept the connection and answer every
/// call of the open sequence, all together; and to take any of our bytes
/// while output waits for it.
pub const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection ended, for the `connection-closed` event's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The daemon closed the socket.
    Eof,
    /// A read or write failed, or the daemon sent what cannot be decoded.
    Error,
    /// The daemon did not answer, or took nothing we sent, in time.
    TimedOut,
    /// The daemon said its own connection to the hypervisor closed, for the
    /// reason given (`virConnectCloseReason`'s word).
    Reported(&'static str),
    /// The daemon answered none of our keepalive PINGs.
    Keepalive,
}

impl Ending {
    /// The `reason` text.
    pub fn reason(self) -> &'static str {
        match self {
            Ending::Eof => "eof",
            Ending::Error | Ending::TimedOut => "error",
            Ending::Reported(reason) => reason,
            Ending::Keepalive => "keepalive",
        }
    }
}

/// The connection is gone: how, and the error later calls report.
#[derive(Clone, Debug)]
pub struct Loss {
    /// How it ended.
    pub ending: Ending,
    /// `VIR_ERR_NO_CONNECT` after end of file, `VIR_ERR_RPC` otherwise.
    pub error: Error,
}

/// Why a call did not return a body.
#[derive(Debug)]
pub enum CallError {
    /// The daemon answered with an error.
    Daemon(RemoteError),
    /// The connection is gone.
    Lost(Loss),
    /// A call made without waiting (a reconnection's, [`Link::start_call`])
    /// whose reply has not come yet.
    Pending,
}

/// How a daemon is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Its Unix socket on this host.
    Unix(PathBuf),
    /// TCP, to a host name or an IPv4 or IPv6 literal.
    Tcp { host: String, port: u16 },
    /// TLS over TCP; the daemon's certificate is checked against `host`.
    Tls { host: String, port: u16, options: tls::Options },
    /// The system's ssh to `host`, running libvirt's remote command.
    Ssh { host: String, options: ssh::Options },
}

#[cfg(virevent_sasl)]
use super::sasl::Layer as SaslLayer;

/// A build without SASL has no security layer: a type with no value, so
/// that the link reads and writes the same way in both builds.
#[cfg(not(virevent_sasl))]
enum SaslLayer {}

#[cfg(not(virevent_sasl))]
impl SaslLayer {
    fn recv(&mut self, _fd: RawFd) -> io::Result<&[u8]> {
        match *self {}
    }
    fn send(&mut self, _fd: RawFd, _bytes: &[u8]) -> io::Result<usize> {
        match *self {}
    }
    fn output_waits(&self) -> bool {
        match *self {}
    }
}

/// A connected socket, what has been read from it and what waits to be sent.
pub struct Link {
    socket: OwnedFd,
    /// The TLS session on the socket, for a `+tls` endpoint.
    tls: Option<Tls>,
    /// The SASL security layer, once authentication on plain TCP set one up.
    sasl: Option<SaslLayer>,
    /// The ssh child whose standard input and output the socket is, for a
    /// `+ssh` endpoint; ended and reaped when the link goes.
    ssh: Option<Ssh>,
    path: String,
    framer: Framer,
    next_serial: u32,
    /// When the calls of the current sequence (open, or close) give up.
    deadline: Instant,
    /// Bytes waiting for the socket to take them, from `sent` on.
    outbox: Vec<u8>,
    sent: usize,
    /// When the daemon last took some of the outbox, while it has bytes.
    last_taken: Option<Instant>,
    /// Our keepalive countdown, once the daemon offers keepalive and while
    /// the program wants it.
    keepalive: Option<Keepalive>,
}

impl Link {
    /// Connects to the daemon at `endpoint`, giving up at `deadline` (a
    /// daemon whose listen backlog is full never accepts us). Calls then give
    /// up at `deadline` too, until [`Link::set_deadline`].
    pub fn connect(endpoint: &Endpoint, deadline: Instant) -> Result<Link, Error> {
        let tcp = |host: &str, port: u16| {
            let shown = tcp::shown(host, port);
            let socket = tcp::connect(host, port, deadline).map_err(|why| {
                Error::new(ErrorCode::NoConnect, format!("cannot connect to the libvirt daemon at '{shown}': {why}"))
            })?;
            Ok::<_, Error>((socket, shown))
        };
        let (socket, shown, tls, ssh) = match endpoint {
            Endpoint::Unix(path) => (connect_unix(path, deadline)?, path.display().to_string(), None, None),
            Endpoint::Tcp { host, port } => {
                let (socket, shown) = tcp(host, *port)?;
                (socket, shown, None, None)
            }
            Endpoint::Tls { host, port, options } => {
                let (socket, shown) = tcp(host, *port)?;
                let tls = Tls::start(socket.as_raw_fd(), host, &shown, options, deadline)?;
                (socket, shown, Some(tls), None)
            }
            Endpoint::Ssh { host, options } => {
                let user = options.user.as_ref().map_or(String::new(), |u| format!("{u}@"));
                let port = options.port.map_or(String::new(), |p| format!(":{p}"));
                let shown = format!("ssh://{user}{host}{port}");
                let (socket, ssh) = Ssh::spawn(host, options).map_err(|e| {
                    Error::new(ErrorCode::NoConnect, format!("cannot connect to the libvirt daemon at '{shown}': {e}"))
                })?;
                (socket, shown, None, Some(ssh))
            }
        };
        Ok(Link {
            socket,
            tls,
            sasl: None,
            ssh,
            path: shown,
            framer: Framer::new(),
            next_serial: 0,
            deadline,
            outbox: Vec::new(),
            sent: 0,
            last_taken: None,
            keepalive: None,
        })
    }

    /// Sets when the calls from now on give up.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// The socket, owned by the link.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The daemon's socket path, or host and port, for messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reads, without blocking, what has arrived (up to `budget` bytes); whole
    /// packets then come from [`Link::next_packet`]. Ends in a [`Loss`] at end
    /// of file, once the packets read before it have been taken.
    pub fn read_available(&mut self, budget: usize) -> Result<(), Loss> {
        let fd = self.fd();
        let mut total = 0;
        while total < budget {
            // What TLS or the SASL layer unwrapped, or `None` on a plain socket.
            let unwrapped = match (&mut self.tls, &mut self.sasl) {
                (_, Some(layer)) => Some(layer.recv(fd)),
                (Some(tls), None) => Some(tls.recv(fd)),
                (None, None) => None,
            };
            let n = match unwrapped {
                Some(plain) => plain.map(|plain| {
                    // SAFETY: the room fill offers holds at least `plain.len()` bytes.
                    self.framer.fill(plain.len(), |buffer, _| unsafe {
                        buffer.copy_from_nonoverlapping(plain.as_ptr(), plain.len());
                        plain.len() as isize
                    });
                    plain.len()
                }),
                // SAFETY: recv writes at most `room` bytes at `buffer`.
                None => match self.framer.fill(READ_ROOM, |buffer, room| unsafe {
                    libc::recv(fd, buffer.cast(), room, libc::MSG_DONTWAIT)
                }) {
                    n if n >= 0 => Ok(n as usize),
                    _ => Err(io::Error::last_os_error()),
                },
            };
            if let (Ok(1..), Some(keepalive)) = (&n, &mut self.keepalive) {
                keepalive.heard(Instant::now());
            }
            match n {
                Ok(0) => return Err(self.eof()),
                // A short read took all there was: a further read would only
                // say so (the descriptor stays readable if more comes).
                Ok(n) if n < READ_ROOM => break,
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ssh ended with our bytes unread: its end as much as an end of file.
                Err(e) if self.ssh.is_some() && e.kind() == io::ErrorKind::ConnectionReset => return Err(self.eof()),
                Err(e) => return Err(self.failure(format!("reading from it failed: {e}"))),
            }
        }
        Ok(())
    }

    /// The next whole packet read, other than keepalive traffic. A PING is
    /// answered with a PONG, unless output already waits: any packet from us
    /// tells the daemon we live, and a daemon that floods PINGs without
    /// reading must not grow the outbox.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Loss> {
        loop {
            let (header, body) = match self.framer.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.failure(format!("it sent a bad packet: {e}"))),
            };
            if header.program != PROGRAM_KEEPALIVE {
                return Ok(Some(Packet { header, body: self.framer.body(body) }));
            }
            if header.procedure == KEEPALIVE_PING && !self.output_waits() {
                self.queue(&packet::keepalive(KEEPALIVE_PONG));
                self.send_available()?;
            }
        }
    }

    /// Lets the read buffer go if no partial packet is in it (see
    /// [`Framer::release_if_empty`]).
    pub fn release_read_buffer(&mut self) {
        self.framer.release_if_empty();
    }

    /// Starts our keepalive countdown anew, or stops it (`None`).
    pub fn set_keepalive(&mut self, keepalive: Option<Keepalive>) {
        self.keepalive = keepalive;
    }

    /// Sends a keepalive PING if one is due (unless output already waits for
    /// the daemon, which the stall timeout watches); fails once the daemon
    /// has answered none of them.
    pub fn check_keepalive(&mut self, now: Instant) -> Result<(), Loss> {
        let Some(keepalive) = &mut self.keepalive else { return Ok(()) };
        let (due, silent) = (keepalive.due(now), keepalive.silent_for(now).as_secs_f64());
        match due {
            Due::Nothing => Ok(()),
            Due::Ping if self.output_waits() => Ok(()),
            Due::Ping => {
                self.queue(&packet::keepalive(KEEPALIVE_PING));
                self.send_available()
            }
            Due::Dead => {
                let mut loss = self.failure(format!(
                    "connection closed due to keepalive timeout (nothing heard from the daemon for {silent:.1} s)"
                ));
                loss.ending = Ending::Keepalive;
                Err(loss)
            }
        }
    }

    /// When the link next has something to do on its own: give up a daemon
    /// that stopped reading, or send a PING (or give the daemon up) for keepalive.
    pub fn next_deadline(&self) -> Option<Instant> {
        // Bytes TLS has decrypted but a pump's budget left: at once, since
        // the socket they came from may poll readable no more.
        if self.tls.as_ref().is_some_and(Tls::holds_input) {
            return Some(Instant::now());
        }
        let keepalive = self.keepalive.as_ref().map(Keepalive::deadline);
        match (self.stall_deadline(), keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether bytes wait for the daemon to take them.
    pub fn output_waits(&self) -> bool {
        self.sent < self.outbox.len()
            || self.tls.as_ref().is_some_and(Tls::output_waits)
            || self.sasl.as_ref().is_some_and(SaslLayer::output_waits)
    }

    /// From now on every byte goes through `session`'s security layer,
    /// which wraps at most `max` bytes at a time.
    #[cfg(virevent_sasl)]
    pub fn wrap_with(&mut self, session: super::sasl::Session, max: usize) {
        self.sasl = Some(SaslLayer::new(session, max));
    }

    /// Zeroes the outbox once all of it went: a call's body carried a secret.
    #[cfg(virevent_sasl)]
    pub fn wipe_output(&mut self) {
        if !self.output_waits() {
            let room = self.outbox.capacity();
            self.outbox.resize(room, 0);
            crate::credentials::wipe(&mut self.outbox);
            self.outbox.clear();
        }
    }

    /// What SASL must give on this link: a security layer on plain TCP;
    /// over TLS, the cipher's key size as external strength; nothing more on
    /// a Unix socket or ssh. With the local and remote addresses as SASL
    /// takes them (`IP;PORT`), on TCP.
    #[cfg(virevent_sasl)]
    pub fn sasl_peer(&self) -> (super::sasl::Channel, Option<String>, Option<String>) {
        use super::sasl::Channel;
        let fd = self.fd();
        let (local, remote) = (tcp::address_of(fd, false), tcp::address_of(fd, true));
        let channel = match &self.tls {
            Some(tls) => Channel::Tls { key_bits: tls.key_bits() },
            None if remote.is_some() => Channel::Plain,
            None => Channel::Secure,
        };
        (channel, local, remote)
    }

    /// When the daemon, if it takes nothing more, is given up for not
    /// reading: [`DAEMON_TIMEOUT`] after it last took some output. `None`
    /// while no output waits.
    pub fn stall_deadline(&self) -> Option<Instant> {
        self.last_taken.filter(|_| self.output_waits()).map(|taken| taken + DAEMON_TIMEOUT)
    }

    /// Fails once output has waited, untaken, until [`Link::stall_deadline`].
    pub fn check_stall(&self) -> Result<(), Loss> {
        match self.stall_deadline() {
            Some(deadline) if Instant::now() >= deadline => Err(Loss {
                ending: Ending::TimedOut,
                error: Error::new(
                    ErrorCode::Rpc,
                    format!(
                        "connection to the libvirt daemon at '{}' lost: the daemon stopped reading (it took \
                         nothing we sent for {} s)",
                        self.path,
                        DAEMON_TIMEOUT.as_secs()
                    ),
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Puts `bytes` behind what waits to be sent.
    fn queue(&mut self, bytes: &[u8]) {
        if !self.output_waits() {
            self.outbox.clear();
            self.sent = 0;
            self.last_taken = Some(Instant::now());
        }
        self.outbox.extend_from_slice(bytes);
    }

    /// Sends, without blocking, what the socket takes of the outbox.
    pub fn send_available(&mut self) -> Result<(), Loss> {
        while self.output_waits() {
            let (fd, rest) = (self.socket.as_raw_fd(), &self.outbox[self.sent..]);
            let sent = match (&mut self.tls, &mut self.sasl) {
                (_, Some(layer)) => layer.send(fd, rest),
                (Some(tls), None) => tls.send(fd, rest),
                (None, None) => Socket(fd).write(rest),
            };
            match sent {
                Ok(n) => {
                    self.sent += n;
                    self.last_taken = Some(Instant::now());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.ssh.is_some() && e.kind() == io::ErrorKind::BrokenPipe => return Err(self.eof()),
                Err(e) => return Err(self.failure(format!("writing to it failed: {e}"))),
            }
        }
        if !self.output_waits() {
            self.outbox.clear();
            self.sent = 0;
            self.last_taken = None;
        }
        Ok(())
    }

    /// Calls `procedure` with `body` and waits, until the deadline, for the
    /// reply; every other packet that arrives meanwhile goes to `other`, in
    /// order. Output that waited goes first.
    pub fn call(&mut self, procedure: i32, body: &[u8], mut other: impl FnMut(Packet<'_>)) -> Result<Vec<u8>, CallError> {
        let serial = self.start_call(procedure, body).map_err(CallError::Lost)?;
        loop {
            self.send_available().map_err(CallError::Lost)?;
            if !self.output_waits() {
                break;
            }
            self.wait(libc::POLLOUT).map_err(CallError::Lost)?;
        }
        loop {
            while let Some(packet) = self.next_packet().map_err(CallError::Lost)? {
                let h = packet.header;
                if h.program == PROGRAM_REMOTE && h.kind == Kind::Reply && h.serial == serial {
                    if h.status == 0 {
                        return Ok(packet.body.to_vec());
                    }
                    return match RemoteError::decode(packet.body) {
                        Ok(error) => Err(CallError::Daemon(error)),
                        Err(e) => Err(CallError::Lost(self.failure(format!("it sent a bad error reply: {e}")))),
                    };
                }
                other(packet);
            }
            self.wait(libc::POLLIN).map_err(CallError::Lost)?;
            self.read_available(usize::MAX).map_err(CallError::Lost)?;
        }
    }

    /// Sends the call of `procedure` with `body` as far as the socket takes
    /// it, without waiting; returns its serial, which its reply will carry.
    pub fn start_call(&mut self, procedure: i32, body: &[u8]) -> Result<u32, Loss> {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        self.queue(&packet::call(procedure, serial, body));
        self.send_available()?;
        Ok(serial)
    }

    /// When the calls of the current sequence give up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The loss of a sequence whose deadline passed: the daemon did not answer.
    pub fn timed_out(&self) -> Loss {
        let mut loss = self.failure("it did not answer in time (timed out)".into());
        loss.ending = Ending::TimedOut;
        loss
    }

    /// Waits until the socket is ready for `events`, or fails at the deadline.
    fn wait(&self, events: libc::c_short) -> Result<(), Loss> {
        match socket::ready_before(self.fd(), events, self.deadline) {
            Ok(true) => Ok(()),
            Ok(false) if events == libc::POLLOUT => {
                let mut loss = self.failure("it took nothing we sent in time (timed out)".into());
                loss.ending = Ending::TimedOut;
                Err(loss)
            }
            Ok(false) => Err(self.timed_out()),
            Err(e) => Err(self.failure(format!("waiting for it failed: {e}"))),
        }
    }

    /// Stops both directions: the daemon sees end of file, and the socket polls
    /// readable (at end of file) from now on.
    pub fn shut_down(&self) {
        // SAFETY: plain system call on our own socket.
        unsafe { libc::shutdown(self.fd(), libc::SHUT_RDWR) };
    }

    fn eof(&mut self) -> Loss {
        let what = if self.framer.has_partial() { "in the middle of a packet" } else { "end of file" };
        if let Some(ssh) = &mut self.ssh {
            // What ssh said is why: a refused host key, a denied login, no socket there.
            let said = ssh.said();
            let why = if said.is_empty() { format!("ssh ended ({what})") } else { format!("ssh said: {said}") };
            return Loss {
                ending: Ending::Eof,
                error: Error::new(ErrorCode::NoConnect, format!("the connection to the libvirt daemon at '{}' ended: {why}", self.path)),
            };
        }
        Loss {
            ending: Ending::Eof,
            error: Error::new(ErrorCode::NoConnect, format!("the libvirt daemon at '{}' closed the connection ({what})", self.path)),
        }
    }

    /// The loss for `what` went wrong: a failed read or write, or a packet
    /// that cannot be decoded.
    pub fn failure(&self, what: String) -> Loss {
        Loss { ending: Ending::Error, error: Error::new(ErrorCode::Rpc, format!("connection to the libvirt daemon at '{}' lost: {what}", self.path)) }
    }
}

/// A connected, non-blocking socket to the daemon's Unix socket at `path`.
fn connect_unix(path: &Path, deadline: Instant) -> Result<OwnedFd, Error> {
    let shown = path.display().to_string();
    let fail = |why: String| Error::new(ErrorCode::NoConnect, format!("cannot connect to the libvirt daemon's socket '{shown}': {why}"));
    let socket = unix_socket().map_err(|e| fail(e.to_string()))?;
    let address = unix_address(path).map_err(fail)?;
    connect_until(&socket, &address, deadline).map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut => {
            fail(format!("timed out after {} s (the daemon does not accept connections)", DAEMON_TIMEOUT.as_secs()))
        }
        _ => fail(e.to_string()),
    })?;
    Ok(socket)
}

/// A Unix stream socket (close-on-exec).
fn unix_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain system call.
    let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The `sockaddr_un` of `path`.
fn unix_address(path: &Path) -> Result<libc::sockaddr_un, String> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: sockaddr_un is plain data, valid all zero.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= address.sun_path.len() || bytes.contains(&0) {
        return Err(format!("the path is not a valid socket path (at most {} bytes, no NUL)", address.sun_path.len() - 1));
    }
    for (slot, &b) in address.sun_path.iter_mut().zip(bytes) {
        *slot = b as libc::c_char;
    }
    Ok(address)
}

/// Connects `socket` to `address`, then makes it non-blocking. A Unix socket
/// cannot be polled for a connect in progress: the connect blocks, bounded by
/// a send timeout set to what is left until `deadline` (the kernel waits that
/// long for room in a full listen backlog), and the timeout is cleared after.
fn connect_until(socket: &OwnedFd, address: &libc::sockaddr_un, deadline: Instant) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        set_send_timeout(fd, left)?;
        let size = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: a valid socket and address of the size given.
        if unsafe { libc::connect(fd, (address as *const libc::sockaddr_un).cast(), size) } == 0 {
            break;
        }
        match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => continue,
            // What a full backlog answers once the send timeout has passed.
            e if e.kind() == io::ErrorKind::WouldBlock => return Err(io::ErrorKind::TimedOut.into()),
            e => return Err(e),
        }
    }
    set_send_timeout(fd, Duration::ZERO)?;
    socket::set_nonblocking(fd)
}

/// SO_SNDTIMEO of `fd` (zero: none).
fn set_send_timeout(fd: RawFd, timeout: Duration) -> io::Result<()> {
    let value = libc::timeval { tv_sec: timeout.as_secs() as libc::time_t, tv_usec: timeout.subsec_micros() as libc::suseconds_t };
    // Rounded down to zero, it would mean "no timeout".
    let value = if value.tv_sec == 0 && value.tv_usec == 0 && !timeout.is_zero() { libc::timeval { tv_sec: 0, tv_usec: 1 } } else { value };
    let size = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: a valid socket and option value of the size given.
    if unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, (&value as *const libc::timeval).cast(), size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
