//! Writing to a pipe whose reader may have closed it, without SIGPIPE. The
//! kernel raises SIGPIPE in the writing thread, and the library owns neither
//! the host's threads nor its signal dispositions: a [`Shield`] blocks SIGPIPE
//! in the calling thread around the library's writes, takes back a SIGPIPE
//! that one of them left pending, and restores the thread's mask.

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::OnceLock;

/// The set holding SIGPIPE alone, made once (this runs for every event a
/// stream carries).
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

/// SIGPIPE blocked in this thread from the first [`Shield::raise`] until the
/// shield is dropped, which costs nothing when nothing was written.
#[derive(Default)]
pub struct Shield {
    raised: Option<Raised>,
    broken_pipe: bool,
}

struct Raised {
    /// The mask to restore; `None` when SIGPIPE was blocked already.
    restore: Option<libc::sigset_t>,
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
        let set = sigpipe_set();
        // SAFETY: an empty sigset_t is all zeroes, valid even if the call
        // below could fail (with these arguments it cannot).
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid sets; pthread_sigmask fills `old`.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, &mut old) };
        // SAFETY: `old` is a valid set.
        let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
        // Only a thread that blocks SIGPIPE itself can have one pending.
        let pending_before = was_blocked && sigpipe_pending();
        self.raised = Some(Raised { restore: (!was_blocked).then_some(old), pending_before });
    }

    /// Notes that a write failed with EPIPE, which raised SIGPIPE.
    pub fn broken_pipe(&mut self) {
        self.broken_pipe = true;
    }
}

impl Drop for Shield {
    fn drop(&mut self) {
        let Some(raised) = self.raised.take() else { return };
        let set = sigpipe_set();
        if self.broken_pipe && !raised.pending_before {
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: valid set and timeout; takes the pending SIGPIPE, if any,
            // without waiting.
            unsafe { libc::sigtimedwait(set, ptr::null_mut(), &zero) };
        }
        if let Some(old) = raised.restore {
            // SAFETY: `old` is the mask pthread_sigmask returned.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
        }
    }
}

fn sigpipe_pending() -> bool {
    let mut pending = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set, which is read only when it succeeded.
    unsafe { libc::sigpending(pending.as_mut_ptr()) == 0 && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1 }
}
