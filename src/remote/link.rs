//! The socket to a libvirt daemon: non-blocking reads of whatever has arrived,
//! split into whole packets; synchronous calls that wait (in poll, with a
//! deadline) for their reply while handing on whatever else arrives meanwhile;
//! keepalive PINGs answered on the way. Writes use MSG_NOSIGNAL: a dead daemon
//! is an error, never a SIGPIPE in the host program.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::packet::{self, Framer, Kind, Packet, PROGRAM_KEEPALIVE, PROGRAM_REMOTE};
use super::protocol::{RemoteError, KEEPALIVE_PING, KEEPALIVE_PONG};
use crate::error::{Error, ErrorCode};

/// The least room offered to each read of the socket.
const READ_ROOM: usize = 65536;

/// How long a call waits for its reply before the connection is given up,
/// unless [`Link::set_timeout`] says otherwise.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection ended, for the `connection-closed` event's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The daemon closed the socket.
    Eof,
    /// A read or write failed, or the daemon sent what cannot be decoded.
    Error,
}

impl Ending {
    /// The `reason` text.
    pub fn reason(self) -> &'static str {
        match self {
            Ending::Eof => "eof",
            Ending::Error => "error",
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
}

/// A connected socket and what has been read from it.
pub struct Link {
    socket: OwnedFd,
    path: String,
    framer: Framer,
    next_serial: u32,
    timeout: Duration,
}

impl Link {
    /// Connects to the daemon's socket at `path`.
    pub fn connect(path: &Path) -> Result<Link, Error> {
        let shown = path.display().to_string();
        let stream = UnixStream::connect(path).map_err(|e| {
            Error::new(ErrorCode::NoConnect, format!("cannot connect to the libvirt daemon's socket '{shown}': {e}"))
        })?;
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::new(ErrorCode::SystemError, format!("cannot make socket '{shown}' non-blocking: {e}")))?;
        Ok(Link { socket: stream.into(), path: shown, framer: Framer::new(), next_serial: 0, timeout: CALL_TIMEOUT })
    }

    /// Sets how long a call waits for its reply (and a write for room).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The socket, owned by the link.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The socket's path, for messages.
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
            // SAFETY: recv writes at most `room` bytes at `buffer`.
            let n = self.framer.fill(READ_ROOM, |buffer, room| unsafe {
                libc::recv(fd, buffer.cast(), room, libc::MSG_DONTWAIT)
            });
            match n {
                0 => return Err(self.eof()),
                // A short read took all there was: a further recv would only
                // say so (the descriptor stays readable if more comes).
                n if n > 0 && (n as usize) < READ_ROOM => break,
                n if n > 0 => total += n as usize,
                _ => match io::Error::last_os_error() {
                    e if e.kind() == io::ErrorKind::WouldBlock => break,
                    e if e.kind() == io::ErrorKind::Interrupted => {}
                    e => return Err(self.failure(format!("reading from it failed: {e}"))),
                },
            }
        }
        Ok(())
    }

    /// The next whole packet read, other than keepalive traffic (a PING is
    /// answered with a PONG here).
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
            if header.procedure == KEEPALIVE_PING {
                self.send(&packet::keepalive(KEEPALIVE_PONG), Instant::now() + self.timeout)?;
            }
        }
    }

    /// Calls `procedure` with `body` and waits for the reply; every other
    /// packet that arrives meanwhile goes to `other`, in order.
    pub fn call(&mut self, procedure: i32, body: &[u8], mut other: impl FnMut(Packet<'_>)) -> Result<Vec<u8>, CallError> {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        let deadline = Instant::now() + self.timeout;
        self.send(&packet::call(procedure, serial, body), deadline).map_err(CallError::Lost)?;
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
            self.wait(libc::POLLIN, deadline).map_err(CallError::Lost)?;
            self.read_available(usize::MAX).map_err(CallError::Lost)?;
        }
    }

    /// Writes all of `bytes`, waiting for room until `deadline`.
    fn send(&mut self, mut bytes: &[u8], deadline: Instant) -> Result<(), Loss> {
        while !bytes.is_empty() {
            // SAFETY: writes from a buffer of the length given.
            let n = unsafe { libc::send(self.fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
            if n >= 0 {
                bytes = &bytes[n as usize..];
                continue;
            }
            match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::WouldBlock => self.wait(libc::POLLOUT, deadline)?,
                e if e.kind() == io::ErrorKind::Interrupted => {}
                e => return Err(self.failure(format!("writing to it failed: {e}"))),
            }
        }
        Ok(())
    }

    /// Waits until the socket is ready for `events`, or fails at `deadline`.
    fn wait(&self, events: libc::c_short, deadline: Instant) -> Result<(), Loss> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.failure(format!("no reply within {} seconds", self.timeout.as_secs())));
            }
            let mut fd = libc::pollfd { fd: self.fd(), events, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: one pollfd.
            if unsafe { libc::poll(&mut fd, 1, ms) } > 0 {
                return Ok(()); // ready, or hung up: the read or write says which
            }
        }
    }

    /// Stops both directions: the daemon sees end of file, and the socket polls
    /// readable (at end of file) from now on.
    pub fn shut_down(&self) {
        // SAFETY: plain system call on our own socket.
        unsafe { libc::shutdown(self.fd(), libc::SHUT_RDWR) };
    }

    fn eof(&self) -> Loss {
        let what = if self.framer.has_partial() { "in the middle of a packet" } else { "end of file" };
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
