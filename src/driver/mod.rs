//! Event sources behind a connection, chosen by its URI, and what the
//! connection asks of each.

use std::os::fd::RawFd;
use std::time::Duration;

use crate::error::{Error, ErrorCode, Result};

pub mod remote;
pub mod test;

/// Where a connection's events come from besides `virConnectEmitEvent`: a
/// libvirt daemon, or the embedded test driver (which emits as its domain
/// calls are made, and so has nothing to do here).
///
/// A source watches its descriptors in the connection's work set (see
/// [`EventFd`](crate::event_fd)) itself, so that a delivery round runs when
/// they are ready.
pub trait Source: Send + Sync {
    /// Does, without blocking, what its descriptors are ready for: reads what
    /// arrived and emits its events, writes what waits to be sent, handles an
    /// expired timer. Runs at the start of every delivery round.
    fn pump(&self);

    /// Fails, once the source is gone, with why.
    fn check(&self) -> Result<()>;

    /// Ends the source as the connection closes (a daemon is told goodbye,
    /// within a bounded wait).
    fn close(&self);

    /// The descriptors it owns, for a forked child to close its copies: read
    /// without taking any lock, which a parent thread may have held at the fork.
    fn descriptors_after_fork(&self, out: &mut Vec<RawFd>);

    /// The event types the source could not arrange to send, each with why
    /// (a daemon older than the kind refuses its registration).
    fn refused_event_types(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Keepalive: a PING after each `interval` of silence, the peer given up
    /// after `count` unanswered ones (a zero interval turns it off); returns
    /// whether the peer offers keepalive at all. A source with no peer has
    /// none to keep alive.
    fn set_keepalive(&self, _interval: Duration, _count: u32) -> Result<bool> {
        Err(Error::new(ErrorCode::NoSupport, "keepalive needs a connection to a libvirt daemon; this one is embedded"))
    }

    /// Reconnection after a lost link, with `backoff` between attempts
    /// (`None` turns it off). A source with no link has none to lose.
    fn set_reconnect(&self, _backoff: Option<remote::Backoff>) -> Result<()> {
        Err(Error::new(ErrorCode::NoSupport, "reconnection needs a connection to a libvirt daemon; this one is embedded"))
    }
}
