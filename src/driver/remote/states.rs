//! The connection's record of each domain's state, and the
//! `domain-state-transition` events a daemon's lifecycle events become: the
//! new state follows from the event, the old one from the record (listed at
//! connect time, then kept from the events). docs/events.md writes the rules
//! down with the orderings real daemons send.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::kinds::word;
use super::protocol::WireDomain;
use crate::domain::{transition, DomainState};
use crate::event::Draft;
use crate::words;

/// libvirt's `virDomainEventType` numbers this module reasons about.
const DEFINED: i32 = 0;
const UNDEFINED: i32 = 1;
const STARTED: i32 = 2;
const RESUMED: i32 = 4;
const STOPPED: i32 = 5;

/// Hashes UUID keys by folding their two halves: UUIDs are random already, so
/// nothing is gained by mixing every byte (SipHash or FNV cost more than the
/// rest of the lookup).
#[derive(Default)]
pub struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

/// What the connection knows of one domain.
#[derive(Clone)]
struct Record {
    state: DomainState,
    /// Its name and id, as last reported: what a resync after a reconnection
    /// names a domain that vanished with.
    name: String,
    id: i32,
    /// The inactive state a start left, when a `resumed-*` event came before
    /// the start's own `started-*` (libvirt resumes a new QEMU process's CPUs
    /// before it reports the start): the `started-*` event's old state.
    starting_from: Option<DomainState>,
    /// Whether the last event was a `started-*`: a `resumed-*` right after
    /// one completes a start from a saved image or a snapshot.
    just_started: bool,
}

/// Whether a domain in `state` is one a start takes it out of: shut off,
/// crashed (kept by `on_crash=preserve`), suspended by the guest (woken by
/// `started-wakeup`), or not known at all (a domain created without a definition).
fn starts_from(state: DomainState) -> bool {
    matches!(state, DomainState::Shutoff | DomainState::Crashed | DomainState::PmSuspended | DomainState::NoState)
}

/// The connection's record of each domain's state, by UUID (which a rename keeps).
#[derive(Default)]
pub struct DomainStates {
    states: HashMap<[u8; 16], Record, BuildHasherDefault<UuidHasher>>,
}

impl DomainStates {
    /// Records what the daemon reported for a domain.
    pub fn learn(&mut self, domain: &WireDomain, state: DomainState) {
        let record = Record { state, name: domain.name.clone(), id: domain.id, starting_from: None, just_started: false };
        self.states.insert(domain.uuid, record);
    }

    /// Every domain recorded: its UUID, name, id and state.
    pub fn domains(&self) -> impl Iterator<Item = (&[u8; 16], &str, i32, DomainState)> {
        self.states.iter().map(|(uuid, r)| (uuid, r.name.as_str(), r.id, r.state))
    }

    /// The recorded id and state of the domain `uuid`.
    pub fn get(&self, uuid: &[u8; 16]) -> Option<(i32, DomainState)> {
        self.states.get(uuid).map(|r| (r.id, r.state))
    }

    /// Whether the record already shows what lifecycle `event` does to
    /// `domain` (a change of state to the one recorded): true for an event
    /// that came before a listing that includes it.
    pub fn already_shows(&self, domain: &WireDomain, event: i32) -> bool {
        (STARTED..=8).contains(&event) && self.states.get(&domain.uuid).is_some_and(|r| new_state(r.state, domain.id, event) == r.state)
    }

    /// The `domain-state-transition` event of a lifecycle event, recording
    /// the state it leaves its domain in.
    pub fn lifecycle(&mut self, domain: &WireDomain, event: i32, detail: i32) -> Draft {
        // One lookup reads and then updates the record.
        let entry = self.states.entry(domain.uuid);
        let (recorded, recorded_from, recorded_just_started) = match &entry {
            Entry::Occupied(record) => (record.get().state, record.get().starting_from, record.get().just_started),
            Entry::Vacant(_) => (DomainState::NoState, None, false),
        };
        let new = new_state(recorded, domain.id, event);
        let (old, starting_from) = match event {
            // The start's own event: from the state the domain was started
            // from, even when the start's resume came first. A start the
            // record already shows (listed after it) has no known old state.
            STARTED => match recorded_from {
                Some(from) => (from, None),
                None if starts_from(recorded) => (recorded, None),
                None => (DomainState::NoState, None),
            },
            // The resume of a start (libvirt's QEMU driver sends it before
            // `started-*`): remember what the start began from.
            RESUMED if starts_from(recorded) => (recorded, Some(recorded)),
            RESUMED if recorded_just_started => (recorded, None),
            // Any other change the record already shows was in the states
            // listed at connect time (the daemon may answer the listing
            // before it sends the events of changes the answer includes): the
            // state before it is unknown.
            3..=8 if recorded == new => (DomainState::NoState, None),
            STOPPED => (recorded, None),
            _ => (recorded, recorded_from),
        };
        // A domain undefined while inactive is gone: forget it.
        let just_started = event == STARTED;
        match entry {
            Entry::Occupied(record) if event == UNDEFINED && !new.is_active() => drop(record.remove()),
            Entry::Vacant(_) if event == UNDEFINED && !new.is_active() => {}
            Entry::Occupied(mut record) => {
                let record = record.get_mut();
                (record.state, record.id, record.starting_from, record.just_started) = (new, domain.id, starting_from, just_started);
            }
            Entry::Vacant(slot) => {
                slot.insert(Record { state: new, name: domain.name.clone(), id: domain.id, starting_from, just_started });
            }
        }
        let event_word = word(&words::DOMAIN_EVENT, event);
        let detail_word = match usize::try_from(event).ok().and_then(|i| words::DOMAIN_EVENT_DETAIL.get(i)) {
            Some(details) => word(details, detail),
            None => format!("unknown-{detail}").into(),
        };
        transition(domain.id, &domain.name, domain.uuid_text().as_str(), old, new, &[&event_word, "-", &detail_word])
    }
}

/// The state a lifecycle event leaves a domain in. Defining and undefining
/// change no state: the domain keeps the one it had (running if it has an id
/// and none was known, shut off otherwise). An unknown event leaves the state
/// unknown.
fn new_state(old: DomainState, id: i32, event: i32) -> DomainState {
    match event {
        DEFINED | UNDEFINED if old != DomainState::NoState => old,
        DEFINED | UNDEFINED if id >= 0 => DomainState::Running,
        DEFINED | UNDEFINED => DomainState::Shutoff,
        STARTED | RESUMED => DomainState::Running,
        3 => DomainState::Paused,
        STOPPED => DomainState::Shutoff,
        6 => DomainState::Shutdown,
        7 => DomainState::PmSuspended,
        8 => DomainState::Crashed,
        _ => DomainState::NoState,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_domain(id: i32) -> WireDomain {
        let mut uuid = [0; 16];
        uuid.copy_from_slice(&[0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04, 0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f]);
        WireDomain { name: "test".into(), uuid, id }
    }

    /// The event's XML with its timestamp and seq left out.
    fn xml(draft: Draft) -> String {
        let event = draft.seal(1);
        let (head, rest) = event.xml().split_once(" timestamp=\"").unwrap();
        let (_, rest) = rest.split_once(" seq=\"1\"").unwrap();
        format!("{head}{rest}")
    }

    fn lifecycle(states: &mut DomainStates, id: i32, event: i32, detail: i32) -> String {
        xml(states.lifecycle(&test_domain(id), event, detail))
    }

    /// `OLD -> NEW (REASON)` of each event of a sequence of `(id, event, detail)`.
    fn run(states: &mut DomainStates, events: &[(i32, i32, i32)]) -> Vec<String> {
        let field = |xml: &str, name: &str| {
            let (_, rest) = xml.split_once(&format!("<{name}>")).unwrap();
            rest.split_once('<').unwrap().0.to_string()
        };
        events
            .iter()
            .map(|&(id, event, detail)| {
                let xml = lifecycle(states, id, event, detail);
                format!("{} -> {} ({})", field(&xml, "old-state"), field(&xml, "new-state"), field(&xml, "reason"))
            })
            .collect()
    }

    #[test]
    fn old_state_comes_from_the_record_and_events_keep_it() {
        let mut states = DomainStates::default();
        states.learn(&test_domain(1), DomainState::Running);
        assert_eq!(
            lifecycle(&mut states, 1, 3, 0),
            "<event type=\"domain-state-transition\"><domain-id>1</domain-id><domain-name>test</domain-name>\
             <domain-uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</domain-uuid><old-state>running</old-state>\
             <new-state>paused</new-state><reason>suspended-paused</reason></event>"
        );
        assert_eq!(
            run(&mut states, &[(1, 4, 0), (-1, 5, 1), (2, 2, 0), (2, 3, 5)]),
            [
                "paused -> running (resumed-unpaused)",
                "running -> shutoff (stopped-destroyed)",
                "shutoff -> running (started-booted)",
                "running -> paused (suspended-from-snapshot)",
            ]
        );
    }

    /// The orderings libvirt 9.0's QEMU driver sends (docs/events.md), each
    /// from a domain listed as shut off or running.
    #[test]
    fn real_orderings_give_the_state_each_change_came_from() {
        let from = |state, events: &[(i32, i32, i32)]| {
            let mut states = DomainStates::default();
            states.learn(&test_domain(1), state);
            run(&mut states, events)
        };
        // virsh start: the new process's CPUs are resumed before the start is told.
        assert_eq!(
            from(DomainState::Shutoff, &[(1, 4, 0), (1, 2, 0)]),
            ["shutoff -> running (resumed-unpaused)", "shutoff -> running (started-booted)"]
        );
        // virsh start --paused.
        assert_eq!(
            from(DomainState::Shutoff, &[(1, 2, 0), (1, 3, 0)]),
            ["shutoff -> running (started-booted)", "running -> paused (suspended-paused)"]
        );
        // managedsave, then start: the restore is told, then its resume.
        assert_eq!(
            from(DomainState::Running, &[(1, 3, 0), (-1, 5, 4), (2, 2, 2), (2, 4, 0)]),
            [
                "running -> paused (suspended-paused)",
                "paused -> shutoff (stopped-saved)",
                "shutoff -> running (started-restored)",
                "running -> running (resumed-unpaused)",
            ]
        );
        // The same with the resume first.
        assert_eq!(
            from(DomainState::Shutoff, &[(2, 4, 0), (2, 2, 2)]),
            ["shutoff -> running (resumed-unpaused)", "shutoff -> running (started-restored)"]
        );
        // destroy; guest power-off; a panic with on_crash=destroy and =preserve.
        assert_eq!(from(DomainState::Running, &[(-1, 5, 1)]), ["running -> shutoff (stopped-destroyed)"]);
        assert_eq!(
            from(DomainState::Running, &[(1, 6, 1), (-1, 5, 0)]),
            ["running -> shutdown (shutdown-guest)", "shutdown -> shutoff (stopped-shutdown)"]
        );
        assert_eq!(
            from(DomainState::Running, &[(1, 8, 0), (-1, 5, 2)]),
            ["running -> crashed (crashed-panicked)", "crashed -> shutoff (stopped-crashed)"]
        );
        assert_eq!(
            from(DomainState::Running, &[(1, 8, 0), (1, 4, 0), (1, 2, 0)]),
            ["running -> crashed (crashed-panicked)", "crashed -> running (resumed-unpaused)", "crashed -> running (started-booted)"]
        );
        // S3, then dompmwakeup.
        assert_eq!(
            from(DomainState::Running, &[(1, 7, 0), (1, 2, 4)]),
            ["running -> pmsuspended (pmsuspended-memory)", "pmsuspended -> running (started-wakeup)"]
        );
        // Changes that came before the listing: what they came from is not
        // known; a reconnection's replay leaves them out.
        let mut states = DomainStates::default();
        states.learn(&test_domain(1), DomainState::Running);
        assert!(states.already_shows(&test_domain(1), 2) && states.already_shows(&test_domain(1), 4));
        assert!(!states.already_shows(&test_domain(1), 3) && !states.already_shows(&test_domain(1), 0));
        let unknown = WireDomain { uuid: [7; 16], ..test_domain(7) };
        assert!(!states.already_shows(&unknown, 2));
        assert_eq!(from(DomainState::Running, &[(1, 2, 0)]), ["nostate -> running (started-booted)"]);
        assert_eq!(from(DomainState::Paused, &[(1, 3, 0), (1, 4, 0)]), ["nostate -> paused (suspended-paused)", "paused -> running (resumed-unpaused)"]);
        assert_eq!(from(DomainState::Running, &[(1, 4, 0)]), ["nostate -> running (resumed-unpaused)"]);
        // A domain created without a definition.
        let mut states = DomainStates::default();
        assert_eq!(
            run(&mut states, &[(3, 4, 0), (3, 2, 0), (-1, 5, 1)]),
            ["nostate -> running (resumed-unpaused)", "nostate -> running (started-booted)", "running -> shutoff (stopped-destroyed)"]
        );
    }

    #[test]
    fn defining_and_undefining_keep_the_state_and_undefining_forgets() {
        let mut states = DomainStates::default();
        assert_eq!(
            run(&mut states, &[(-1, 0, 0), (-1, 1, 0), (-1, 0, 0), (1, 2, 0), (1, 0, 1), (1, 1, 0), (-1, 5, 1)]),
            [
                "nostate -> shutoff (defined-added)",
                "shutoff -> shutoff (undefined-removed)",
                "nostate -> shutoff (defined-added)",
                "shutoff -> running (started-booted)",
                "running -> running (defined-updated)",
                "running -> running (undefined-removed)",
                "running -> shutoff (stopped-destroyed)",
            ]
        );
    }

    #[test]
    fn unknown_numbers_are_named_never_refused() {
        let mut states = DomainStates::default();
        states.learn(&test_domain(1), DomainState::Running);
        assert_eq!(
            run(&mut states, &[(1, 3, 42), (1, 9, 1), (1, -1, -1)]),
            [
                "running -> paused (suspended-unknown-42)",
                "paused -> nostate (unknown-9-unknown-1)",
                "nostate -> nostate (unknown--1-unknown--1)",
            ]
        );
        assert_eq!(DomainState::from_number(12).name(), "unknown-12");
    }
}
