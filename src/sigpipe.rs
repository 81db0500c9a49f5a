//! Writing to a pipe whose reader may have closed it, without SIGPIPE. The
//! kernel raises SIGPIPE in the writing thread, and the library owns neither
//! the host's threads nor its signal dispositions: a [`Shield`] blocks SIGPIPE
//! in the calling thread around the library's writes, takes back a SIGPIPE
//! that one of them left pending, and restores the thread's mask.

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::OnceLock;

/// The set holding SIGPIPE alone, as glibc's sigtimedwait takes it.
fn sigpipe_set() -> &'static libc::sigset_t {
    static SET: OnceLock<libc::sigset_t> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set; SIGPIPE is a valid signal.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
            set.assume_init()
        }
    })
}

/// SIGPIPE's bit in the kernel's signal set, as rt_sigprocmask(2) takes it:
/// eight bytes, where glibc's sigset_t has 128 to fill and copy, on a path
/// that every event a stream carries takes.
const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);

/// Applies `how` to SIGPIPE in the calling thread's mask; returns whether it
/// was blocked before. Only SIGPIPE changes, so glibc's own signals, which
/// pthread_sigmask guards, are untouched.
fn mask_sigpipe(how: libc::c_int) -> bool {
    let mut old: u64 = 0;
    // SAFETY: valid kernel sets of the size given; with these arguments the
    // call cannot fail.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, how, &SIGPIPE_BIT, &mut old, 8usize) };
    old & SIGPIPE_BIT != 0
}

/// SIGPIPE blocked in this thread from the first [`Shield::raise`] until the
/// shield is dropped, which costs nothing when nothing was written.
#[derive(Default)]
pub struct Shield {
    raised: Option<Raised>,
    broken_pipe: bool,
}

struct Raised {
    /// Whether SIGPIPE was blocked already (then it stays blocked).
    was_blocked: bool,
    /// Whether a SIGPIPE of somebody else's was already pending: ours then
    /// merged into it, and it must be left alone.
    pending_before: bool,
}

impl Shield {
    /// A lowered shield.
    pub fn new() -> Shield {
        Shield::default()
    }

    /// Blocks SIGPIPE, if it is not yet: call it before every write.
    pub fn raise(&mut self) {
        if self.raised.is_some() {
            return;
        }
        let was_blocked = mask_sigpipe(libc::SIG_BLOCK);
        // Only a thread that blocks SIGPIPE itself can have one pending.
        let pending_before = was_blocked && sigpipe_pending();
        self.raised = Some(Raised { was_blocked, pending_before });
    }

    /// Notes that a write failed with EPIPE, which raised SIGPIPE.
    pub fn broken_pipe(&mut self) {
        self.broken_pipe = true;
    }
}

impl Drop for Shield {
    fn drop(&mut self) {
        let Some(raised) = self.raised.take() else { return };
        if self.broken_pipe && !raised.pending_before {
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: valid set and timeout; takes the pending SIGPIPE, if any,
            // without waiting.
            unsafe { libc::sigtimedwait(sigpipe_set(), ptr::null_mut(), &zero) };
        }
        if !raised.was_blocked {
            mask_sigpipe(libc::SIG_UNBLOCK);
        }
    }
}

fn sigpipe_pending() -> bool {
    let mut pending: u64 = 0;
    // SAFETY: a kernel set of the size given, filled by the call.
    let ok = unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut pending, 8usize) } == 0;
    ok && pending & SIGPIPE_BIT != 0
}
