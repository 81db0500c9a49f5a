//! libvirt's keepalive, client side, as a clock-driven state with no I/O:
//! anything heard from the daemon resets it; after `interval` of silence a
//! PING is due, and another after each further `interval`; once `count` PINGs
//! went unanswered for an `interval` more, the daemon is dead (so a daemon
//! that stops answering is given up about `interval * (count + 1)` after it
//! was last heard, as libvirt's own client does). The link sends the PINGs,
//! and the connection's timer wakes a delivery round at [`Keepalive::deadline`].

use std::time::{Duration, Instant};

/// What libvirt's client uses when the program sets nothing.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_COUNT: u32 = 5;

/// The countdown of one link.
#[derive(Clone, Debug)]
pub struct Keepalive {
    interval: Duration,
    count: u32,
    last_heard: Instant,
    /// PINGs sent since the daemon was last heard.
    unanswered: u32,
}

/// What is due now.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    Nothing,
    Ping,
    /// `count` PINGs went unanswered: the daemon is given up.
    Dead,
}

impl Keepalive {
    /// A countdown that starts now; `interval` must not be zero.
    pub fn new(interval: Duration, count: u32, now: Instant) -> Keepalive {
        Keepalive { interval, count, last_heard: now, unanswered: 0 }
    }

    /// The daemon sent something (a PONG, a PING, an event, a reply).
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.unanswered = 0;
    }

    /// When something is next due.
    pub fn deadline(&self) -> Instant {
        self.last_heard + self.interval * (self.unanswered + 1)
    }

    /// What is due at `now`; a PING reported due is counted as sent.
    pub fn due(&mut self, now: Instant) -> Due {
        if now < self.deadline() {
            return Due::Nothing;
        }
        if self.unanswered >= self.count {
            return Due::Dead;
        }
        self.unanswered += 1;
        Due::Ping
    }

    /// How long the daemon was silent at `now`, for the error message.
    pub fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_heard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pings_after_each_silent_interval_then_gives_up() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(S, 2, t0);
        assert_eq!(k.deadline(), t0 + S);
        assert_eq!(k.due(t0 + S / 2), Due::Nothing);
        assert_eq!(k.due(t0 + S), Due::Ping);
        assert_eq!(k.deadline(), t0 + 2 * S);
        assert_eq!(k.due(t0 + S + S / 2), Due::Nothing);
        assert_eq!(k.due(t0 + 2 * S), Due::Ping);
        assert_eq!(k.due(t0 + 3 * S - S / 10), Due::Nothing);
        assert_eq!(k.due(t0 + 3 * S), Due::Dead);
        assert_eq!(k.silent_for(t0 + 3 * S), 3 * S);
    }

    #[test]
    fn anything_heard_starts_it_over() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(S, 1, t0);
        assert_eq!(k.due(t0 + S), Due::Ping);
        k.heard(t0 + S + S / 2);
        assert_eq!(k.deadline(), t0 + 2 * S + S / 2);
        assert_eq!(k.due(t0 + 2 * S), Due::Nothing);
        assert_eq!(k.due(t0 + 2 * S + S / 2), Due::Ping);
        assert_eq!(k.due(t0 + 3 * S + S / 2), Due::Dead);
    }

    #[test]
    fn count_zero_gives_up_after_one_silent_interval() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(S, 0, t0);
        assert_eq!(k.due(t0 + S), Due::Dead);
    }
}
