//! Event streams: a pipe the caller reads lines of XML from, fed without
//! callbacks. The library writes behind a [`Shield`], so a reader that closes
//! its end never raises SIGPIPE in the host program; it only ends the stream.
//!
//! The pipe's write end is watched in the connection's work set (see
//! [`EventFd`](crate::event_fd)): for room while lines wait for it, so that a
//! poll loop or the event thread writes them as soon as the reader makes room,
//! and always for the hang-up of a reader that closed its end.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use crate::error::Result;
use crate::event::{Draft, Event};
use crate::filter::Filter;
use crate::notify::system_error;
use crate::poll_set::{Interest, PollSet};
use crate::queue::Queue;
use crate::sigpipe::Shield;

/// One stream: its filter, the pipe's write end, and the events the reader has
/// not taken yet.
pub struct Stream {
    filter: Filter,
    pipe: OwnedFd,
    queue: Queue,
    /// Bytes of the oldest queued line already written.
    written: usize,
    /// The set the pipe is watched in, and whether it is watched for room.
    work: Arc<PollSet>,
    waiting_for_room: bool,
    /// Lines are copied here to go out in one write(2): a writev of a line
    /// and its newline costs the kernel much more.
    buffer: Vec<u8>,
}

/// An emitted event on its way to the streams. It is sealed into an
/// [`Event`] (an allocation) only when something must keep it or look into
/// it: a handler, a stream's queue, an XPath filter; a stream that takes it at
/// once is written the sealed text straight from the draft.
pub struct Outgoing {
    /// Emptied once sealed.
    draft: Draft,
    event: Option<Event>,
    seq: u64,
}

impl Outgoing {
    /// The event `draft` becomes with `seq`.
    pub fn new(draft: Draft, seq: u64) -> Outgoing {
        Outgoing { draft, event: None, seq }
    }

    /// The event's type.
    pub fn kind(&self) -> &str {
        self.event.as_ref().map_or_else(|| self.draft.kind(), Event::kind)
    }

    /// The sealed event, made on first need.
    pub fn event(&mut self) -> &Event {
        let Outgoing { draft, event, seq } = self;
        event.get_or_insert_with(|| draft.seal_out(*seq))
    }

    /// The sealed event, for the handler queue.
    pub fn into_event(self) -> Event {
        let Outgoing { mut draft, event, seq } = self;
        event.unwrap_or_else(|| draft.seal_out(seq))
    }

    /// The event's line as the draft holds it, until the event is sealed.
    fn draft_line(&mut self) -> Option<&[u8]> {
        let Outgoing { draft, event, seq } = self;
        event.is_none().then(|| draft.line(*seq))
    }
}

/// Whether a stream can still be written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The reader is there (it may be behind).
    Open,
    /// The reader closed its end: the stream is over.
    Gone,
}

impl Stream {
    /// A new stream, watched in `work`, and the end the caller reads
    /// (close-on-exec; non-blocking when `nonblocking`).
    pub fn open(filter: Filter, limit: usize, nonblocking: bool, work: &Arc<PollSet>) -> Result<(Stream, OwnedFd)> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(system_error("pipe2"));
        }
        // SAFETY: fresh descriptors owned by nobody else.
        let (theirs, ours) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_nonblocking(&ours)?;
        if nonblocking {
            set_nonblocking(&theirs)?;
        }
        work.add(ours.as_raw_fd(), Interest::NONE)?;
        let stream = Stream {
            filter,
            pipe: ours,
            queue: Queue::new(limit),
            written: 0,
            work: work.clone(),
            waiting_for_room: false,
            buffer: Vec::new(),
        };
        Ok((stream, theirs))
    }

    /// The pipe's write end.
    pub fn fd(&self) -> RawFd {
        self.pipe.as_raw_fd()
    }

    /// Whether the stream takes the event (looking into it only when its
    /// filter has XPath entries that its type does not settle).
    pub fn wants(&self, out: &mut Outgoing) -> bool {
        match self.filter.decides_by_type(out.kind()) {
            Some(wanted) => wanted,
            None => self.filter.matches(out.event()),
        }
    }

    /// Writes the event at once when nothing waits before it; else (or when
    /// the reader has no room) queues it, or counts it lost if the queue is
    /// still full once what waited is written.
    pub fn offer(&mut self, out: &mut Outgoing, shield: &mut Shield) -> Status {
        if self.has_backlog() {
            if self.flush(shield) == Status::Gone {
                return Status::Gone;
            }
            if self.has_backlog() {
                self.queue.push(out.event().clone());
                return Status::Open;
            }
        }
        let (line, sent) = match out.draft_line() {
            Some(line) if line.len() <= libc::PIPE_BUF => (line.len(), write(&self.pipe, &[iovec(line)], shield)),
            _ => {
                let xml = out.event().xml().as_bytes();
                if xml.len() < libc::PIPE_BUF {
                    self.buffer.clear();
                    self.buffer.extend_from_slice(xml);
                    self.buffer.push(b'\n');
                    (xml.len() + 1, write(&self.pipe, &[iovec(&self.buffer)], shield))
                } else {
                    (xml.len() + 1, write(&self.pipe, &[iovec(xml), iovec(b"\n")], shield))
                }
            }
        };
        match sent {
            Some(sent) if sent == line => return Status::Open,
            Some(sent) => self.written = sent,
            None => return Status::Gone,
        }
        self.queue.push(out.event().clone());
        self.sync_interest();
        Status::Open
    }

    /// Whether events wait for the reader to make room.
    pub fn has_backlog(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Ends the stream, giving its reader until `deadline` to make room for
    /// the lines still waiting (a closing connection's last ones, its
    /// `connection-closed` among them); what is left then is dropped, and the
    /// reader sees end of file.
    pub fn finish(mut self, deadline: Instant) {
        let mut shield = Shield::new();
        while self.has_backlog() && self.flush(&mut shield) == Status::Open && self.has_backlog() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let mut fd = self.pollfd();
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: one pollfd; woken by room, a hang-up or the deadline.
            unsafe { libc::poll(&mut fd, 1, ms) };
        }
    }

    /// What to poll the library's end for: room, when events wait for it; else
    /// only the hang-up that says the reader closed its end.
    fn pollfd(&self) -> libc::pollfd {
        let events = if self.has_backlog() { libc::POLLOUT } else { 0 };
        libc::pollfd { fd: self.fd(), events, revents: 0 }
    }

    /// Changes the queue's limit.
    pub fn set_limit(&mut self, limit: usize) {
        self.queue.set_limit(limit);
    }

    /// Writes queued lines, many per system call, until they are all written or
    /// the reader has no room. Never blocks. Each write is whole lines of at
    /// most `PIPE_BUF` bytes in all, which the pipe takes all at once or not at
    /// all: only a line longer than that can be cut by a full pipe, and end the
    /// stream cut if the connection closes before the reader takes its rest.
    pub fn flush(&mut self, shield: &mut Shield) -> Status {
        let status = loop {
            let Some(oldest) = self.queue.iter().next() else { break Status::Open };
            let xml = oldest.xml().as_bytes();
            let sent = if self.written > 0 || xml.len() >= libc::PIPE_BUF {
                // A long line, or the rest of one, goes on its own.
                match xml.get(self.written..) {
                    Some(rest) if !rest.is_empty() => write(&self.pipe, &[iovec(rest), iovec(b"\n")], shield),
                    _ => write(&self.pipe, &[iovec(b"\n")], shield),
                }
            } else {
                self.buffer.clear();
                for event in self.queue.iter() {
                    let xml = event.xml().as_bytes();
                    if self.buffer.len() + xml.len() + 1 > libc::PIPE_BUF {
                        break;
                    }
                    self.buffer.extend_from_slice(xml);
                    self.buffer.push(b'\n');
                }
                write(&self.pipe, &[iovec(&self.buffer)], shield)
            };
            match sent {
                Some(0) => break Status::Open,
                Some(sent) => self.advance(sent),
                None => break Status::Gone,
            }
        };
        self.sync_interest();
        status
    }

    /// Watches the pipe for room exactly while lines wait for it.
    fn sync_interest(&mut self) {
        let waiting = self.has_backlog();
        if waiting != self.waiting_for_room {
            self.waiting_for_room = waiting;
            self.work.modify(self.fd(), if waiting { Interest::WRITE } else { Interest::NONE });
        }
    }

    /// Drops the lines that `sent` more bytes completed.
    fn advance(&mut self, sent: usize) {
        let mut left = self.written + sent;
        loop {
            let Some(line) = self.queue.iter().next().map(|e| e.xml().len() + 1) else { break };
            if left < line {
                break;
            }
            left -= line;
            self.queue.pop_front();
        }
        self.written = left;
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.work.remove(self.fd());
    }
}

/// One write of `parts` (one buffer, or a line and its newline) to `pipe`:
/// the bytes written (0 when the reader has no room), or `None` when the
/// reader is gone.
fn write(pipe: &OwnedFd, parts: &[libc::iovec], shield: &mut Shield) -> Option<usize> {
    shield.raise();
    loop {
        // SAFETY: `parts` are iovecs over buffers that stay alive and unchanged
        // during the call.
        let sent = unsafe {
            match parts {
                [one] => libc::write(pipe.as_raw_fd(), one.iov_base, one.iov_len),
                _ => libc::writev(pipe.as_raw_fd(), parts.as_ptr(), parts.len() as libc::c_int),
            }
        };
        if sent >= 0 {
            return Some(sent as usize);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Some(0),
            Some(libc::EPIPE) => {
                shield.broken_pipe();
                return None;
            }
            _ => return None,
        }
    }
}

/// Drops the streams whose readers closed their ends: one poll(2) for all.
pub fn reap(streams: &mut Vec<Stream>) {
    if streams.is_empty() {
        return;
    }
    let mut fds: Vec<libc::pollfd> = streams.iter().map(Stream::pollfd).collect();
    // SAFETY: `fds` holds `fds.len()` pollfds; a zero timeout never blocks.
    if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) } <= 0 {
        return;
    }
    let mut hung_up = fds.iter().map(|p| p.revents & (libc::POLLHUP | libc::POLLERR) != 0);
    streams.retain(|_| !hung_up.next().unwrap_or(false));
}

/// An iovec over `bytes`, which writev only reads.
fn iovec(bytes: &[u8]) -> libc::iovec {
    libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() }
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    // SAFETY: fcntl on a valid descriptor.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(system_error("fcntl(O_NONBLOCK)"));
    }
    Ok(())
}
