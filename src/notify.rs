//! An eventfd that is readable exactly while its owner says there is work: the
//! connection's descriptor for poll loops, and the event thread's wake-up.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, ErrorCode, Result};

/// A level-triggered flag as a descriptor.
pub struct Notifier {
    fd: OwnedFd,
    raised: bool,
}

impl Notifier {
    /// A new, lowered notifier (close-on-exec, non-blocking).
    pub fn new() -> Result<Notifier> {
        // SAFETY: plain system call.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(system_error("eventfd"));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(Notifier { fd: unsafe { OwnedFd::from_raw_fd(fd) }, raised: false })
    }

    /// Makes the descriptor readable or not; a system call only on a change.
    pub fn set(&mut self, raised: bool) {
        if raised == self.raised {
            return;
        }
        self.raised = raised;
        let mut value: u64 = 1;
        // Neither call can block or fail on a valid eventfd: the counter is 0
        // or 1, and reading a readable one succeeds.
        // SAFETY: an 8-byte buffer, as eventfd requires.
        unsafe {
            if raised {
                libc::write(self.fd.as_raw_fd(), (&value as *const u64).cast(), 8);
            } else {
                libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8);
            }
        }
    }

    /// The descriptor, owned by the notifier.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A `VIR_ERR_SYSTEM_ERROR` for the failed call `what`, with errno's words.
pub fn system_error(what: &str) -> Error {
    Error::new(ErrorCode::SystemError, format!("{what} failed: {}", io::Error::last_os_error()))
}
