//! A daemon's domain events as the XML events of API.md section 6. Lifecycle
//! events become `domain-state-transition`, whose `old-state` comes from the
//! connection's own record of each domain's state: listed at connect time,
//! then kept from the events themselves. Unknown numbers read `unknown-N`.

use std::collections::HashMap;
use std::fmt::Write;

use super::protocol::{DaemonEvent, WireDomain};
use crate::domain::{push_element, state_transition_xml, DomainIdentity, DomainState};

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
fn name_of(names: &[&str], n: i32) -> String {
    match usize::try_from(n).ok().and_then(|i| names.get(i)) {
        Some(name) => (*name).to_string(),
        None => format!("unknown-{n}"),
    }
}

/// The connection's record of each domain's state, by UUID (which a rename keeps).
#[derive(Default)]
pub struct DomainStates {
    states: HashMap<[u8; 16], DomainState>,
}

impl DomainStates {
    /// Records what the daemon reported for a domain.
    pub fn learn(&mut self, uuid: [u8; 16], state: DomainState) {
        self.states.insert(uuid, state);
    }

    /// The XML of `event` (without timestamp and seq), recording the state a
    /// lifecycle event leaves its domain in.
    pub fn event_xml(&mut self, event: &DaemonEvent) -> String {
        match event {
            DaemonEvent::Lifecycle { domain, event, detail } => self.lifecycle_xml(domain, *event, *detail),
            DaemonEvent::Reboot { domain } => domain_event("domain-reboot", domain, |_| {}),
            DaemonEvent::RtcChange { domain, offset } => domain_event("domain-rtc-change", domain, |xml| {
                let _ = write!(xml, "<offset>{offset}</offset>");
            }),
            DaemonEvent::Watchdog { domain, action } => domain_event("domain-watchdog", domain, |xml| {
                push_element(xml, "action", &name_of(&WATCHDOG_ACTIONS, *action));
            }),
            DaemonEvent::IoError { domain, src_path, dev_alias, action } => domain_event("domain-io-error", domain, |xml| {
                push_element(xml, "src-path", src_path);
                push_element(xml, "dev-alias", dev_alias);
                push_element(xml, "action", &name_of(&IO_ERROR_ACTIONS, *action));
            }),
            DaemonEvent::MetadataChange { domain, kind, nsuri } => domain_event("domain-metadata-change", domain, |xml| {
                push_element(xml, "type", &name_of(&METADATA_TYPES, *kind));
                if let Some(nsuri) = nsuri {
                    push_element(xml, "nsuri", nsuri);
                }
            }),
        }
    }

    fn lifecycle_xml(&mut self, domain: &WireDomain, event: i32, detail: i32) -> String {
        let old = self.states.get(&domain.uuid).copied().unwrap_or(DomainState::NoState);
        let new = new_state(old, domain.id, event);
        let reason = match usize::try_from(event).ok().and_then(|i| LIFECYCLE.get(i)) {
            Some((name, details)) => format!("{name}-{}", name_of(details, detail)),
            None => format!("unknown-{event}-unknown-{detail}"),
        };
        // A domain undefined while inactive is gone: forget it.
        if event == 1 && !new.is_active() {
            self.states.remove(&domain.uuid);
        } else {
            self.states.insert(domain.uuid, new);
        }
        let identity = DomainIdentity { id: domain.id, name: domain.name.clone(), uuid: domain.uuid_text() };
        state_transition_xml(&identity, old, new, &reason)
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

/// `<event type="KIND">` with the domain's id, name and uuid, then what `fields` adds.
fn domain_event(kind: &str, domain: &WireDomain, fields: impl FnOnce(&mut String)) -> String {
    let mut xml = String::with_capacity(256);
    let _ = write!(xml, r#"<event type="{kind}"><domain-id>{}</domain-id>"#, domain.id);
    push_element(&mut xml, "domain-name", &domain.name);
    push_element(&mut xml, "domain-uuid", &domain.uuid_text());
    fields(&mut xml);
    xml.push_str("</event>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_domain(id: i32) -> WireDomain {
        let mut uuid = [0; 16];
        uuid.copy_from_slice(&[0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04, 0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f]);
        WireDomain { name: "test".into(), uuid, id }
    }

    fn lifecycle(states: &mut DomainStates, id: i32, event: i32, detail: i32) -> String {
        states.event_xml(&DaemonEvent::Lifecycle { domain: test_domain(id), event, detail })
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
        let w = states.event_xml(&DaemonEvent::Watchdog { domain: test_domain(1), action: 77 });
        assert!(w.contains("<action>unknown-77</action>"), "{w}");
        assert_eq!(DomainState::from_number(12).name(), "unknown-12");
    }

    #[test]
    fn other_events_carry_their_fields() {
        let mut states = DomainStates::default();
        let io = DaemonEvent::IoError { domain: test_domain(1), src_path: "/a<b".into(), dev_alias: "vda".into(), action: 1 };
        assert!(states.event_xml(&io).ends_with("<src-path>/a&lt;b</src-path><dev-alias>vda</dev-alias><action>pause</action></event>"));
        let rtc = DaemonEvent::RtcChange { domain: test_domain(1), offset: -3600 };
        assert!(states.event_xml(&rtc).starts_with("<event type=\"domain-rtc-change\"><domain-id>1</domain-id>"));
        let meta = DaemonEvent::MetadataChange { domain: test_domain(1), kind: 2, nsuri: Some("http://example.org/x".into()) };
        assert!(states.event_xml(&meta).ends_with("<type>element</type><nsuri>http://example.org/x</nsuri></event>"));
        let meta = DaemonEvent::MetadataChange { domain: test_domain(1), kind: 0, nsuri: None };
        assert!(states.event_xml(&meta).ends_with("</domain-uuid><type>description</type></event>"));
        let reboot = states.event_xml(&DaemonEvent::Reboot { domain: test_domain(1) });
        assert!(reboot.starts_with("<event type=\"domain-reboot\">") && reboot.ends_with("</domain-uuid></event>"));
    }
}
