//! Reconnection, when the program asks for it: the backoff between
//! attempts, what an outage keeps (when it began, how many attempts, the
//! record of objects taken before it), and the two events that frame it,
//! `connection-lost` and `connection-restored` (docs/events.md).

use std::time::{Duration, Instant, SystemTime};

use super::inventory::Inventory;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{timestamp_of, Builder, Draft};
use crate::tag;

/// The event types a resync recovers: the others carry no state to list
/// again, and a `connection-restored` names them as possibly missed.
pub const RESYNCED: [&str; 3] = ["domain-state-transition", "network-lifecycle", "storage-pool-lifecycle"];

/// How long one attempt may take, connecting and opening included. Its open
/// waits for no reply (each comes in a later delivery round); what does wait
/// is a TLS handshake, ssh's start and a SASL exchange, this long at most.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The waits between attempts: exponential from `min` to `max`, each
/// jittered (between half and all of its step, never under `min`), so that a
/// fleet of clients does not come back all at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
}

impl Backoff {
    /// Refuses a zero `min` and a `max` under `min` ([`ErrorCode::InvalidArg`]).
    pub fn new(min: Duration, max: Duration) -> Result<Backoff> {
        if min.is_zero() || max < min {
            return Err(Error::new(
                ErrorCode::InvalidArg,
                format!("reconnection delays must be 0 < min <= max (min {} ms, max {} ms)", min.as_millis(), max.as_millis()),
            ));
        }
        Ok(Backoff { min, max })
    }

    /// The wait before attempt number `attempt` (0 for the first).
    fn wait(&self, attempt: u32, random: u64) -> Duration {
        let step = self.min.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(self.max);
        let half = step / 2;
        let jitter = Duration::from_nanos(random % (half.as_nanos() as u64).max(1));
        (half + jitter).max(self.min)
    }
}

/// A link lost and not yet restored.
pub struct Outage {
    /// When the link was found gone.
    pub start: SystemTime,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next is due.
    pub due: Instant,
    /// The `<reason>` of the link's end.
    pub reason: &'static str,
    /// The record of objects when the link went, which the listing after
    /// the restoring attempt is compared with.
    pub before: Inventory,
    /// What the last attempt failed with.
    pub last_error: Error,
}

impl Outage {
    pub fn new(before: Inventory, reason: &'static str, error: Error) -> Outage {
        Outage { start: SystemTime::now(), attempts: 0, due: Instant::now(), reason, before, last_error: error }
    }

    /// The wait before the next attempt.
    pub fn next_wait(&self, backoff: &Backoff) -> Duration {
        backoff.wait(self.attempts, random())
    }

    /// `connection-restored`: the outage's start and end, the attempts made
    /// (the successful one included), and the registered event types that
    /// carry no state, whose events of the outage are gone for good.
    pub fn restored(&self, registered: &[&str]) -> Draft {
        let mut event = Builder::new("connection-restored");
        event.known(tag!("outage-start"), &[&timestamp_of(self.start)]);
        event.known(tag!("outage-end"), &[&timestamp_of(SystemTime::now())]);
        event.unsigned(tag!("attempts"), u64::from(self.attempts));
        event.open(tag!("may-have-missed"));
        for kind in registered.iter().filter(|kind| !RESYNCED.contains(kind)) {
            event.known(tag!("event-type"), &[kind]);
        }
        event.close(tag!("may-have-missed"));
        event.finish()
    }
}

/// `connection-lost`: the link's end (`eof`, `error`, `keepalive`, or a
/// reason the daemon gave) and the error that ended it.
pub fn lost(reason: &str, error: &Error) -> Draft {
    let mut event = Builder::new("connection-lost");
    event.known(tag!("reason"), &[reason]);
    event.text(tag!("message"), &error.message);
    event.finish()
}

/// A random number for the jitter, from the kernel (no seed to share
/// between processes forked from one parent).
fn random() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: writes at most 8 bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_NONBLOCK) };
    if n != 8 {
        // No entropy yet (early boot): the time's nanoseconds still differ between clients.
        return SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos().into();
    }
    u64::from_ne_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_from_min_to_max_jittered_and_never_under_min() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000)).unwrap();
        let ms = |attempt, random| backoff.wait(attempt, random).as_millis();
        assert_eq!(ms(0, 0), 100);
        assert_eq!((ms(1, 0), ms(1, 99_999_999)), (100, 199));
        assert_eq!((ms(2, 0), ms(2, 199_999_999)), (200, 399));
        assert_eq!((ms(3, 0), ms(3, u64::MAX)), (400, 400 + (u64::MAX % 400_000_000) as u128 / 1_000_000));
        assert_eq!((ms(4, 0), ms(40, 0), ms(u32::MAX, 0)), (500, 500, 500));
        assert!((0..1000).all(|n| (100..=1000).contains(&backoff.wait(n % 12, random()).as_millis())));
        let fixed = Backoff::new(Duration::from_millis(50), Duration::from_millis(50)).unwrap();
        assert_eq!(fixed.wait(9, 12345), Duration::from_millis(50));
        for (min, max) in [(0, 10), (10, 9)] {
            let e = Backoff::new(Duration::from_millis(min), Duration::from_millis(max)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArg);
            assert!(e.message.contains("0 < min <= max"), "{}", e.message);
        }
    }

    #[test]
    fn restored_names_the_outage_and_what_may_have_been_missed() {
        let outage = Outage::new(Inventory::default(), "eof", Error::new(ErrorCode::NoConnect, "gone"));
        let xml = outage.restored(&["domain-state-transition", "domain-reboot", "network-lifecycle", "domain-tray-change"]).seal(1).xml().to_string();
        let body = xml.split_once(" seq=\"1\">").unwrap().1;
        let (start, rest) = body.strip_prefix("<outage-start>").unwrap().split_once("</outage-start><outage-end>").unwrap();
        let (end, rest) = rest.split_once("</outage-end>").unwrap();
        assert!(start <= end, "{start} {end}");
        assert_eq!(
            rest,
            "<attempts>0</attempts><may-have-missed><event-type>domain-reboot</event-type>\
             <event-type>domain-tray-change</event-type></may-have-missed></event>"
        );
        let lost = lost("eof", &Error::new(ErrorCode::NoConnect, "closed <here>")).seal(2);
        assert!(lost.xml().ends_with("<reason>eof</reason><message>closed &lt;here&gt;</message></event>"), "{}", lost.xml());
    }
}
