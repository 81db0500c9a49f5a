//! An epoll set: descriptors watched together, level-triggered, so that one
//! descriptor (the set's own) polls readable while any of them is ready. Every
//! method takes `&self`: the kernel serialises changes to the set.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::Result;
use crate::notify::system_error;

/// What a watched descriptor is waited for. Errors and hang-ups are always
/// reported, whatever the interest: `Interest::NONE` waits for those alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest(u32);

impl Interest {
    /// Only errors and hang-ups.
    pub(crate) const NONE: Interest = Interest(0);
    /// Input, or end of file.
    pub(crate) const READ: Interest = Interest(libc::EPOLLIN as u32);
    /// Room for output.
    pub(crate) const WRITE: Interest = Interest(libc::EPOLLOUT as u32);
    /// Input, and room for output.
    pub(crate) const READ_WRITE: Interest = Interest((libc::EPOLLIN | libc::EPOLLOUT) as u32);
}

/// An epoll descriptor (close-on-exec).
pub(crate) struct PollSet {
    epoll: OwnedFd,
}

impl PollSet {
    /// An empty set.
    pub(crate) fn new() -> Result<PollSet> {
        // SAFETY: plain system call.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(system_error("epoll_create1"));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(PollSet { epoll: unsafe { OwnedFd::from_raw_fd(raw) } })
    }

    /// The set's descriptor: readable while a watched descriptor is ready.
    pub(crate) fn fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Starts watching `fd`.
    pub(crate) fn add(&self, fd: RawFd, interest: Interest) -> Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, interest)
    }

    /// Changes what `fd`, already watched, is waited for. It cannot fail on a
    /// watched descriptor, so a failure (a bug) is ignored.
    pub(crate) fn modify(&self, fd: RawFd, interest: Interest) {
        let _ = self.control(libc::EPOLL_CTL_MOD, fd, interest);
    }

    /// Stops watching `fd`: call it before closing `fd`, since the kernel
    /// forgets a descriptor only when every copy of it is closed (a forked
    /// child may hold one).
    pub(crate) fn remove(&self, fd: RawFd) {
        let _ = self.control(libc::EPOLL_CTL_DEL, fd, Interest::NONE);
    }

    fn control(&self, op: libc::c_int, fd: RawFd, interest: Interest) -> Result<()> {
        let mut event = libc::epoll_event { events: interest.0, u64: fd as u64 };
        // SAFETY: a valid epoll descriptor and event.
        if unsafe { libc::epoll_ctl(self.fd(), op, fd, &mut event) } < 0 {
            return Err(system_error("epoll_ctl"));
        }
        Ok(())
    }
}
