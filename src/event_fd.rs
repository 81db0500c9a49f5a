//! The connection's event descriptor, which `virConnectGetEventFD` returns: it
//! polls readable exactly while a delivery round has something to do.
//!
//! It is two epoll sets. The *work* set holds everything a round acts on: the
//! handler queue's notifier, every event stream's pipe (waited for room while
//! lines wait for it; a reader's hang-up is always reported) and the event
//! source's own descriptors (a daemon's socket, its timer). The event thread
//! waits on the work set. What callers poll is the *outer* set: the work set,
//! plus, once the source is gone, a descriptor of the source's kept readable
//! for good (a daemon connection's expired timer), so that a poll loop calls
//! `virDeliverEvents` once more and learns it from its error, while the event
//! thread, which does not wait on it, sleeps.

use std::os::fd::RawFd;
use std::sync::Arc;

use crate::error::Result;
use crate::notify::Notifier;
use crate::poll_set::{Interest, PollSet};

/// The two sets and the queue's flag.
pub(crate) struct EventFd {
    outer: PollSet,
    work: Arc<PollSet>,
    /// Raised while the handler queue has events a delivery can take now.
    queued: Notifier,
}

impl EventFd {
    /// A new event descriptor with nothing to do.
    pub(crate) fn new() -> Result<EventFd> {
        let (outer, work) = (PollSet::new()?, PollSet::new()?);
        let queued = Notifier::new()?;
        work.add(queued.fd(), Interest::READ)?;
        outer.add(work.fd(), Interest::READ)?;
        Ok(EventFd { outer, work: Arc::new(work), queued })
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

    /// Says, for good, that the event source is gone: `readable`, a
    /// descriptor of the source's that stays readable from now on (and is not
    /// in the work set, where it would wake the event thread for nothing),
    /// joins the outer set. One flag of its own per connection would cost a
    /// descriptor on every one of a fleet's connections.
    pub(crate) fn set_gone(&mut self, readable: RawFd) -> Result<()> {
        self.outer.add(readable, Interest::READ)
    }

    /// The descriptors it owns, for a forked child to close its copies.
    pub(crate) fn descriptors(&self, out: &mut Vec<RawFd>) {
        out.extend([self.outer.fd(), self.work.fd(), self.queued.fd()]);
    }
}
