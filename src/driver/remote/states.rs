//! A daemon's domain events as the XML events of docs/api.md section 6. Lifecycle
//! events become `domain-state-transition`, whose `old-state` comes from the
//! connection's own record of each domain's state: listed at connect time,
//! then kept from the events themselves. Unknown numbers read `unknown-N`.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::protocol::{DaemonEvent, WireDomain};
use crate::domain::{domain_event, transition, DomainState};
use crate::event::{Builder, Draft};
use crate::tag;

/// `virDomainEventType` names, each with its detail names, in libvirt's order.
const LIFECYCLE: [(&str, &[&str]); 9] = [
    ("defined", &["added", "updated", "renamed", "from-snapshot"]),
    ("undefined", &["removed", "renamed"]),
    ("started", &["booted", "migrated", "restored", "from-snapshot", "wakeup"]),
    (
        "suspended",
        &["paused", "migrated", "ioerror", "watchdog", "restored", "from-snapshot", "api-error", "postcopy", "postcopy-failed"],
    ),
    ("resumed", &["unpaused", "migrated", "from-snapshot", "postcopy", "postcopy-failed"]),
    ("stopped", &["shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from-snapshot"]),
    ("shutdown", &["finished", "guest", "host"]),
    ("pmsuspended", &["memory", "disk"]),
    ("crashed", &["panicked", "crashloaded"]),
];

const WATCHDOG_ACTIONS: [&str; 7] = ["none", "pause", "reset", "poweroff", "shutdown", "debug", "inject-nmi"];
const IO_ERROR_ACTIONS: [&str; 3] = ["none", "pause", "report"];
const METADATA_TYPES: [&str; 3] = ["description", "title", "element"];

/// The name numbered `n` in `names`, or `unknown-N`.
fn name_of(names: &[&'static str], n: i32) -> Cow<'static, str> {
    match usize::try_from(n).ok().and_then(|i| names.get(i)) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("unknown-{n}")),
    }
}

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

/// The connection's record of each domain's state, by UUID (which a rename keeps).
#[derive(Default)]
pub struct DomainStates {
    states: HashMap<[u8; 16], DomainState, BuildHasherDefault<UuidHasher>>,
}

impl DomainStates {
    /// Records what the daemon reported for a domain.
    pub fn learn(&mut self, uuid: [u8; 16], state: DomainState) {
        self.states.insert(uuid, state);
    }

    /// The event `event` becomes, recording the state a lifecycle event leaves
    /// its domain in.
    pub fn event(&mut self, event: &DaemonEvent) -> Draft {
        match event {
            DaemonEvent::Lifecycle { domain, event, detail } => self.lifecycle(domain, *event, *detail),
            DaemonEvent::Reboot { domain } => builder("domain-reboot", domain).finish(),
            DaemonEvent::RtcChange { domain, offset } => {
                let mut b = builder("domain-rtc-change", domain);
                b.number(tag!("offset"), *offset);
                b.finish()
            }
            DaemonEvent::Watchdog { domain, action } => {
                let mut b = builder("domain-watchdog", domain);
                b.known(tag!("action"), &[&name_of(&WATCHDOG_ACTIONS, *action)]);
                b.finish()
            }
            DaemonEvent::IoError { domain, src_path, dev_alias, action } => {
                let mut b = builder("domain-io-error", domain);
                b.text(tag!("src-path"), src_path).text(tag!("dev-alias"), dev_alias);
                b.known(tag!("action"), &[&name_of(&IO_ERROR_ACTIONS, *action)]);
                b.finish()
            }
            DaemonEvent::MetadataChange { domain, kind, nsuri } => {
                let mut b = builder("domain-metadata-change", domain);
                b.known(tag!("type"), &[&name_of(&METADATA_TYPES, *kind)]);
                if let Some(nsuri) = nsuri {
                    b.text(tag!("nsuri"), nsuri);
                }
                b.finish()
            }
        }
    }

    fn lifecycle(&mut self, domain: &WireDomain, event: i32, detail: i32) -> Draft {
        // One lookup reads and then updates the record.
        let record = self.states.entry(domain.uuid);
        let recorded = match &record {
            Entry::Occupied(state) => *state.get(),
            Entry::Vacant(_) => DomainState::NoState,
        };
        let new = new_state(recorded, domain.id, event);
        // A domain undefined while inactive is gone: forget it.
        match record {
            Entry::Occupied(state) if event == 1 && !new.is_active() => drop(state.remove()),
            Entry::Vacant(_) if event == 1 && !new.is_active() => {}
            record => *record.or_insert(new) = new,
        }
        // A state change the record already shows was in the states listed at
        // connect time, which the daemon may answer before sending the events
        // of changes it includes: the state before it is unknown.
        let changes_state = (2..=8).contains(&event);
        let old = if changes_state && recorded == new { DomainState::NoState } else { recorded };
        let unknown;
        let detail_name;
        let reason: [&str; 3] = match usize::try_from(event).ok().and_then(|i| LIFECYCLE.get(i)) {
            Some((name, details)) => {
                detail_name = name_of(details, detail);
                [name, "-", &detail_name]
            }
            None => {
                unknown = format!("unknown-{event}-unknown-{detail}");
                [&unknown, "", ""]
            }
        };
        transition(domain.id, &domain.name, domain.uuid_text().as_str(), old, new, &reason)
    }
}

/// The state a lifecycle event leaves a domain in. Defining and undefining
/// change no state: the domain keeps the one it had (running if it has an id
/// and none was known, shut off otherwise). An unknown event leaves the state
/// unknown.
fn new_state(old: DomainState, id: i32, event: i32) -> DomainState {
    match event {
        0 | 1 if old != DomainState::NoState => old,
        0 | 1 if id >= 0 => DomainState::Running,
        0 | 1 => DomainState::Shutoff,
        2 | 4 => DomainState::Running,
        3 => DomainState::Paused,
        5 => DomainState::Shutoff,
        6 => DomainState::Shutdown,
        7 => DomainState::PmSuspended,
        8 => DomainState::Crashed,
        _ => DomainState::NoState,
    }
}

/// A builder of a `kind` event with the domain's id, name and uuid.
fn builder(kind: &str, domain: &WireDomain) -> Builder {
    domain_event(kind, domain.id, &domain.name, domain.uuid_text().as_str())
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
        xml(states.event(&DaemonEvent::Lifecycle { domain: test_domain(id), event, detail }))
    }

    #[test]
    fn old_state_comes_from_the_record_and_events_keep_it() {
        let mut states = DomainStates::default();
        states.learn(test_domain(1).uuid, DomainState::Running);
        assert_eq!(
            lifecycle(&mut states, 1, 3, 0),
            "<event type=\"domain-state-transition\"><domain-id>1</domain-id><domain-name>test</domain-name>\
             <domain-uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</domain-uuid><old-state>running</old-state>\
             <new-state>paused</new-state><reason>suspended-paused</reason></event>"
        );
        assert!(lifecycle(&mut states, 1, 4, 0).contains("<old-state>paused</old-state><new-state>running</new-state><reason>resumed-unpaused</reason>"));
        assert!(lifecycle(&mut states, -1, 5, 1).contains("<domain-id>-1</domain-id>"));
        assert!(lifecycle(&mut states, 2, 2, 0).contains("<old-state>shutoff</old-state><new-state>running</new-state><reason>started-booted</reason>"));
        assert!(lifecycle(&mut states, 2, 3, 5).contains("<reason>suspended-from-snapshot</reason>"));
    }

    #[test]
    fn a_change_the_listed_state_already_shows_has_no_old_state() {
        let mut states = DomainStates::default();
        // Listed as paused, then the event of that very suspension arrives.
        states.learn(test_domain(1).uuid, DomainState::Paused);
        assert!(lifecycle(&mut states, 1, 3, 0).contains("<old-state>nostate</old-state><new-state>paused</new-state>"));
        assert!(lifecycle(&mut states, 1, 4, 0).contains("<old-state>paused</old-state><new-state>running</new-state>"));
        // Defining changes no state: old and new stay equal.
        assert!(lifecycle(&mut states, 1, 0, 1).contains("<old-state>running</old-state><new-state>running</new-state>"));
    }

    #[test]
    fn defining_and_undefining_keep_the_state_and_undefining_forgets() {
        let mut states = DomainStates::default();
        assert!(lifecycle(&mut states, -1, 0, 0).contains("<old-state>nostate</old-state><new-state>shutoff</new-state><reason>defined-added</reason>"));
        assert!(lifecycle(&mut states, -1, 1, 0).contains("<old-state>shutoff</old-state><new-state>shutoff</new-state><reason>undefined-removed</reason>"));
        assert!(lifecycle(&mut states, -1, 0, 0).contains("<old-state>nostate</old-state>"));
    }

    #[test]
    fn unknown_numbers_are_named_never_refused() {
        let mut states = DomainStates::default();
        assert!(lifecycle(&mut states, 1, 3, 42).contains("<new-state>paused</new-state><reason>suspended-unknown-42</reason>"));
        assert!(lifecycle(&mut states, 1, 9, 1).contains("<old-state>paused</old-state><new-state>nostate</new-state><reason>unknown-9-unknown-1</reason>"));
        assert!(lifecycle(&mut states, 1, -1, -1).contains("<reason>unknown--1-unknown--1</reason>"));
        let w = xml(states.event(&DaemonEvent::Watchdog { domain: test_domain(1), action: 77 }));
        assert!(w.contains("<action>unknown-77</action>"), "{w}");
        assert_eq!(DomainState::from_number(12).name(), "unknown-12");
    }

    #[test]
    fn other_events_carry_their_fields() {
        let mut states = DomainStates::default();
        let io = DaemonEvent::IoError { domain: test_domain(1), src_path: "/a<b".into(), dev_alias: "vda".into(), action: 1 };
        assert!(xml(states.event(&io)).ends_with("<src-path>/a&lt;b</src-path><dev-alias>vda</dev-alias><action>pause</action></event>"));
        let rtc = DaemonEvent::RtcChange { domain: test_domain(1), offset: -3600 };
        assert!(xml(states.event(&rtc)).starts_with("<event type=\"domain-rtc-change\"><domain-id>1</domain-id>"));
        let meta = DaemonEvent::MetadataChange { domain: test_domain(1), kind: 2, nsuri: Some("http://example.org/x".into()) };
        assert!(xml(states.event(&meta)).ends_with("<type>element</type><nsuri>http://example.org/x</nsuri></event>"));
        let meta = DaemonEvent::MetadataChange { domain: test_domain(1), kind: 0, nsuri: None };
        assert!(xml(states.event(&meta)).ends_with("</domain-uuid><type>description</type></event>"));
        let reboot = xml(states.event(&DaemonEvent::Reboot { domain: test_domain(1) }));
        assert!(reboot.starts_with("<event type=\"domain-reboot\">") && reboot.ends_with("</domain-uuid></event>"));
    }
}
