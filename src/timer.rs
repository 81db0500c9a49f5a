//! A timer as a descriptor (timerfd): readable once it expires, so that a
//! deadline wakes a poll loop or the event thread like any other work, with
//! no thread and no sleeping inside a call.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::error::Result;
use crate::notify::system_error;

/// A one-shot monotonic timer (close-on-exec, non-blocking).
pub(crate) struct Timer {
    fd: OwnedFd,
    armed: bool,
}

impl Timer {
    /// A disarmed timer.
    pub(crate) fn new() -> Result<Timer> {
        // SAFETY: plain system call.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) };
        if raw < 0 {
            return Err(system_error("timerfd_create"));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(Timer { fd: unsafe { OwnedFd::from_raw_fd(raw) }, armed: false })
    }

    /// The descriptor: readable once the timer has expired, until it is set again.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes it expire `after` from now (at least a nanosecond: zero would
    /// disarm it); an earlier expiry is forgotten.
    pub(crate) fn arm(&mut self, after: Duration) {
        let after = after.max(Duration::from_nanos(1));
        self.set(libc::timespec { tv_sec: after.as_secs() as libc::time_t, tv_nsec: after.subsec_nanos() as _ });
        self.armed = true;
    }

    /// Makes it never expire; an expiry not yet seen is forgotten.
    pub(crate) fn disarm(&mut self) {
        if self.armed {
            self.set(libc::timespec { tv_sec: 0, tv_nsec: 0 });
            self.armed = false;
        }
    }

    fn set(&self, value: libc::timespec) {
        let spec = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: value };
        // SAFETY: a valid timerfd and itimerspec. It cannot fail with these
        // arguments; setting it also clears an expiry not yet read.
        unsafe { libc::timerfd_settime(self.fd(), 0, &spec, std::ptr::null_mut()) };
    }
}
