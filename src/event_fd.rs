//! The connection's event descriptor, which `virConnectGetEventFD` returns: it
//! polls readable exactly while a delivery round has something to do.
//!
//! It is two epoll sets. The *work* set holds everything a round acts on: the
//! handler queue's notifier, every event stream's pipe (waited for room while
//! lines wait for it; a reader's hang-up is always reported) and the event
//! source's own descriptors (a daemon's socket, its timer). The event thread
//! waits on the work set. What callers poll is the *outer* set: the work set,
//! plus a flag raised for good once the source is gone, so that a poll loop
//! calls `virDeliverEvents` once more and learns it from its error, while the
//! event thread, which does not wait on the flag, sleeps.

use std::os::fd::RawFd;
use std::sync::Arc;

use crate::error::Result;
use crate::notify::Notifier;
use crate::poll_set::{Interest, PollSet};

/// The two sets and their two flags.
pub(crate) struct EventFd {
    outer: PollSet,
    work: Arc<PollSet>,
    /// Raised while the handler queue has events a delivery can take now.
    queued: Notifier,
    /// Raised for good once the event source is gone.
    gone: Notifier,
}

impl EventFd {
    /// A new event descriptor with nothing to do.
    pub(crate) fn new() -> Result<EventFd> {
        let (outer, work) = (PollSet::new()?, PollSet::new()?);
        let (queued, gone) = (Notifier::new()?, Notifier::new()?);
        work.add(queued.fd(), Interest::READ)?;
        outer.add(work.fd(), Interest::READ)?;
        outer.add(gone.fd(), Interest::READ)?;
        Ok(EventFd { outer, work: Arc::new(work), queued, gone })
    }

    /// What callers poll.
    pub(crate) fn fd(&self) -> RawFd {
        self.outer.fd()
    }

    /// The work set, for the event source and the streams to watch their
    /// descriptors in, and for the event thread to wait on.
    pub(crate) fn work(&self) -> &Arc<PollSet> {
        &self.work
    }

    /// Says whether the handler queue has events a delivery can take now.
    pub(crate) fn set_queued(&mut self, queued: bool) {
        self.queued.set(queued);
    }

    /// Says, for good, that the event source is gone.
    pub(crate) fn set_gone(&mut self) {
        self.gone.set(true);
    }

    /// The descriptors it owns, for a forked child to close its copies.
    pub(crate) fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.extend([self.outer.fd(), self.work.fd(), self.queued.fd(), self.gone.fd()]);
    }
}
