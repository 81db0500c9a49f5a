//! Fork safety, as sd-bus does it: a connection belongs to the process that
//! opened it. A forked child holds copies of its memory and descriptors, but
//! not its threads, and its locks may be copies of locks a parent thread held
//! at the fork: using the connection there would deadlock, lose events (no
//! event thread), write into the parent's streams or talk over the parent's
//! daemon link. So every call on it in another process fails at once, and
//! closing it there only closes the child's copies of its descriptors.
//!
//! Which process runs is told by a fork counter that a `pthread_atfork`
//! child handler raises: one atomic load per call, where `getpid` would be a
//! system call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use crate::error::{Error, ErrorCode, Result};

/// How many forks this process is away from the first process that used the
/// library: 0 there, 1 in its children, and so on.
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn in_child_after_fork() {
    // Async-signal-safe: one atomic addition.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The process an object was made in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin {
    pid: u32,
    generation: u64,
}

impl Origin {
    /// The calling process.
    pub(crate) fn here() -> Origin {
        static REGISTER: Once = Once::new();
        // glibc ties the handler to this library (its `__dso_handle`), and
        // forgets it if the library is unloaded.
        // SAFETY: the handler is an extern "C" fn that lives as long as the library.
        REGISTER.call_once(|| unsafe {
            libc::pthread_atfork(None, None, Some(in_child_after_fork));
        });
        Origin { pid: std::process::id(), generation: GENERATION.load(Ordering::Relaxed) }
    }

    /// Whether the calling process is this one.
    pub(crate) fn is_here(&self) -> bool {
        GENERATION.load(Ordering::Relaxed) == self.generation
    }

    /// Fails with [`ErrorCode::OperationInvalid`] in any other process.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_here() {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::OperationInvalid,
            format!(
                "connection opened by process {}, used in process {}: a connection belongs to the process \
                 that opened it (open a new one after fork)",
                self.pid,
                std::process::id()
            ),
        ))
    }
}

/// Closes a forked child's copies of `fds`, which belong to the parent's
/// connection; the parent's own descriptors stay open.
pub(crate) fn close_copies(fds: &[libc::c_int]) {
    for &fd in fds {
        // SAFETY: the child's copy of a descriptor the library owns, closed
        // once; nothing in the child uses it afterwards.
        unsafe { libc::close(fd) };
    }
}
