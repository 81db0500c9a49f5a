//! The optional event thread, and the one owner of its state: one library
//! thread per connection that sleeps in poll(2) on the connection's work set
//! (see [`EventFd`](crate::event_fd)) and runs a delivery round each time it is
//! ready. No timer of its own, no busy waiting: a round that leaves nothing to
//! do leaves the work set unreadable.

use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::notify::Notifier;
use crate::thread_mark;

/// A connection's event thread, if one runs.
pub(crate) struct ThreadSlot {
    state: Mutex<State>,
}

/// Where the thread is in its life. `Stopping` keeps a start (say, from a
/// handler the stopping thread is still running) from racing the join.
enum State {
    Idle,
    Running(EventThread),
    Stopping,
}

/// A running event thread and the means to stop it.
struct EventThread {
    stop: Notifier,
    handle: JoinHandle<()>,
    /// The thread's [`thread_mark`], once it has started.
    mark: Arc<AtomicUsize>,
}

impl ThreadSlot {
    /// A slot with no thread.
    pub(crate) fn new() -> ThreadSlot {
        ThreadSlot { state: Mutex::new(State::Idle) }
    }

    /// Starts the thread: it waits on `work` and calls `round` whenever `work`
    /// polls readable. `handing_over(true)` runs first and `handing_over(false)`
    /// once the thread has stopped: it tells deliveries who delivers.
    pub(crate) fn start(
        &self,
        work: RawFd,
        round: impl Fn() + Send + 'static,
        handing_over: &dyn Fn(bool),
    ) -> Result<()> {
        let mut state = self.state.lock();
        match *state {
            State::Idle => {}
            State::Running(_) => {
                return Err(Error::new(ErrorCode::OperationInvalid, "the event thread is already running"))
            }
            State::Stopping => {
                return Err(Error::new(ErrorCode::OperationInvalid, "the event thread is being stopped"))
            }
        }
        let stop = Notifier::new()?;
        let stop_fd = stop.fd();
        let mark = Arc::new(AtomicUsize::new(0));
        let thread_mark = mark.clone();
        handing_over(true);
        let handle = thread::Builder::new()
            .name("virevent-events".into())
            .spawn(move || {
                thread_mark.store(thread_mark::current(), Ordering::Release);
                run(work, stop_fd, &round);
            })
            .map_err(|e| {
                handing_over(false);
                Error::new(ErrorCode::SystemError, format!("cannot start the event thread: {e}"))
            })?;
        *state = State::Running(EventThread { stop, handle, mark });
        Ok(())
    }

    /// Whether the calling thread is the event thread.
    pub(crate) fn is_current(&self) -> bool {
        match &*self.state.lock() {
            State::Running(thread) => thread.mark.load(Ordering::Acquire) == thread_mark::current(),
            _ => false,
        }
    }

    /// Stops the thread and waits for it to end (with no lock held while it
    /// finishes its handler), then calls `handing_over(false)`; returns whether
    /// a thread ran. The caller must not be the thread.
    pub(crate) fn join(&self, handing_over: &dyn Fn(bool)) -> bool {
        let running = {
            let mut state = self.state.lock();
            match std::mem::replace(&mut *state, State::Stopping) {
                State::Running(running) => running,
                other => {
                    *state = other;
                    return false;
                }
            }
        };
        let EventThread { mut stop, handle, .. } = running;
        stop.set(true);
        let _ = handle.join();
        handing_over(false);
        *self.state.lock() = State::Idle;
        true
    }

    /// The descriptor it owns, for a forked child to close its copy. Reads
    /// the state without its lock, which a parent thread may have held at the
    /// fork and which nobody in the child will release.
    pub(crate) fn descriptors_after_fork(&self, out: &mut Vec<RawFd>) {
        // SAFETY: in a forked child only the calling thread exists; the state
        // is as it was at the fork, and is only read.
        if let State::Running(thread) = unsafe { &*self.state.data_ptr() } {
            out.push(thread.stop.fd());
        }
    }
}

fn run(work: RawFd, stop: RawFd, round: &dyn Fn()) {
    let mut fds = [
        libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: work, events: libc::POLLIN, revents: 0 },
    ];
    loop {
        // SAFETY: `fds` holds two pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue; // EINTR; poll has no other transient failure worth more
        }
        if fds[0].revents != 0 {
            return;
        }
        // A panicking Rust handler must not end the thread (C handlers cannot).
        let _ = catch_unwind(AssertUnwindSafe(round));
    }
}
