//! What a connection knows of the daemon's objects: every domain's state
//! (always: the old state of each `domain-state-transition` comes from it),
//! and, while reconnection is on, which networks and storage pools exist and
//! which are active. Kept across a reconnection, it is what the listing taken
//! after it is compared with: [`resync`] turns each difference into the
//! event that reports it (docs/events.md, "Reconnection").

use std::collections::HashMap;

use super::protocol::uuid_text;
#[cfg(test)]
use super::protocol::WireDomain;
use super::states::DomainStates;
use crate::domain::{transition, DomainState};
use crate::event::{Builder, Draft, Tag};
use crate::tag;

/// The lifecycle numbers networks and storage pools share
/// (`virNetworkEventLifecycleType`, `virStoragePoolEventLifecycleType`).
const DEFINED: i32 = 0;
const UNDEFINED: i32 = 1;
const STARTED: i32 = 2;
const STOPPED: i32 = 3;

/// The `<reason>` of every event a resync makes (domains' appearing and
/// vanishing say `defined-resync` and `undefined-resync`, after the
/// EVENT-DETAIL form of their lifecycle reasons).
const RESYNC: &str = "resync";

/// The daemon's objects as this connection knows them.
#[derive(Default)]
pub struct Inventory {
    pub domains: DomainStates,
    pub networks: Objects,
    pub pools: Objects,
}

/// Networks or storage pools by UUID: name, and whether active. Kept only
/// once listed (reconnection on); their lifecycle events keep it after that.
#[derive(Default)]
pub struct Objects {
    listed: bool,
    by_uuid: HashMap<[u8; 16], (String, bool)>,
}

impl Objects {
    /// A record of what a listing found: each object's name, UUID and
    /// whether it is active.
    pub fn listed(objects: impl IntoIterator<Item = (String, [u8; 16], bool)>) -> Objects {
        Objects { listed: true, by_uuid: objects.into_iter().map(|(name, uuid, active)| (uuid, (name, active))).collect() }
    }

    /// Whether a listing made this record.
    pub fn is_listed(&self) -> bool {
        self.listed
    }

    /// Keeps the record after a lifecycle event (`event` is a
    /// [`DEFINED`]..[`STOPPED`] number; pools' `created` and `deleted` are
    /// about their storage, not their existence). A transient object that
    /// stops is kept as inactive: the next listing shows it gone.
    pub fn lifecycle(&mut self, name: &str, uuid: [u8; 16], event: i32) {
        if !self.listed {
            return;
        }
        match event {
            DEFINED => drop(self.by_uuid.entry(uuid).or_insert_with(|| (name.to_string(), false))),
            UNDEFINED => drop(self.by_uuid.remove(&uuid)),
            STARTED | STOPPED => self.by_uuid.entry(uuid).or_insert_with(|| (name.to_string(), false)).1 = event == STARTED,
            _ => {}
        }
    }
}

/// The events that report how `now` differs from `before`, in a fixed order
/// (domains, then networks, then storage pools; each by name): a
/// `domain-state-transition` with reason `resync` for each domain whose
/// state changed (or that was restarted: same state, another id),
/// `defined-resync` for each that appeared (from `nostate`) and
/// `undefined-resync` for each that vanished (to `shutoff`); for networks and
/// pools that appeared, vanished, started or stopped, their lifecycle event
/// (`defined` then `started`; `stopped` then `undefined`) with `<reason>resync</reason>`.
pub fn resync(before: &Inventory, now: &Inventory) -> Vec<Draft> {
    let mut domains: Vec<(&str, Draft)> = Vec::new();
    for (uuid, name, id, state) in now.domains.domains() {
        let uuid_text = uuid_text(uuid);
        match before.domains.get(uuid) {
            None => domains.push((name, transition(id, name, uuid_text.as_str(), DomainState::NoState, state, &["defined-", RESYNC]))),
            Some((old_id, old)) if old != state || (state.is_active() && old_id != id) => {
                domains.push((name, transition(id, name, uuid_text.as_str(), old, state, &[RESYNC])));
            }
            Some(_) => {}
        }
    }
    for (uuid, name, _, state) in before.domains.domains() {
        if now.domains.get(uuid).is_none() {
            let uuid_text = uuid_text(uuid);
            domains.push((name, transition(-1, name, uuid_text.as_str(), state, DomainState::Shutoff, &["undefined-", RESYNC])));
        }
    }
    // Stable: a domain's events keep their order.
    domains.sort_by(|a, b| a.0.cmp(b.0));
    let mut events: Vec<Draft> = domains.into_iter().map(|(_, draft)| draft).collect();
    let network = ("network-lifecycle", tag!("network-name"), tag!("network-uuid"));
    let pool = ("storage-pool-lifecycle", tag!("pool-name"), tag!("pool-uuid"));
    for ((kind, name_tag, uuid_tag), before, now) in [(network, &before.networks, &now.networks), (pool, &before.pools, &now.pools)] {
        if !before.listed || !now.listed {
            continue;
        }
        let mut changes: Vec<(&str, &[u8; 16], &'static [&'static str])> = Vec::new();
        for (uuid, (name, active)) in &now.by_uuid {
            let steps: &'static [&'static str] = match (before.by_uuid.get(uuid).map(|(_, was)| *was), *active) {
                (None, false) => &["defined"],
                (None, true) => &["defined", "started"],
                (Some(false), true) => &["started"],
                (Some(true), false) => &["stopped"],
                (Some(_), _) => &[],
            };
            changes.push((name, uuid, steps));
        }
        for (uuid, (name, active)) in &before.by_uuid {
            if !now.by_uuid.contains_key(uuid) {
                changes.push((name, uuid, if *active { &["stopped", "undefined"] } else { &["undefined"] }));
            }
        }
        changes.sort_by(|a, b| a.0.cmp(b.0));
        for (name, uuid, steps) in changes {
            events.extend(steps.iter().map(|step| object_lifecycle(kind, (name_tag, name), (uuid_tag, uuid), step)));
        }
    }
    events
}

/// A network's or pool's lifecycle event as a resync makes it (detail 0).
fn object_lifecycle(kind: &str, (name_tag, name): (Tag, &str), (uuid_tag, uuid): (Tag, &[u8; 16]), step: &str) -> Draft {
    let mut b = Builder::new(kind);
    b.text(name_tag, name).known(uuid_tag, &[uuid_text(uuid).as_str()]);
    b.known(tag!("lifecycle"), &[step]).number(tag!("detail"), 0).known(tag!("reason"), &[RESYNC]);
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

/// The record a domain listing makes: `(domain, state number)` each.
fn listed_domains(domains: impl IntoIterator<Item = (WireDomain, i32)>) -> DomainStates {
    let mut states = DomainStates::default();
    for (domain, state) in domains {
        states.learn(&domain, DomainState::from_number(state));
    }
    states
}

    fn domain(name: &str, n: u8, id: i32) -> WireDomain {
        WireDomain { name: name.into(), uuid: [n; 16], id }
    }

    /// `TYPE NAME OLD -> NEW (REASON)` or `TYPE NAME LIFECYCLE (REASON)`.
    fn summary(drafts: Vec<Draft>) -> Vec<String> {
        let field = |xml: &str, name: &str| {
            xml.split_once(&format!("<{name}>")).map(|(_, rest)| rest.split_once('<').unwrap().0.to_string())
        };
        drafts
            .into_iter()
            .map(|draft| {
                let xml = draft.seal(1).xml().to_string();
                let reason = field(&xml, "reason").unwrap();
                match field(&xml, "domain-name") {
                    Some(name) => {
                        format!("{name} {} -> {} ({reason})", field(&xml, "old-state").unwrap(), field(&xml, "new-state").unwrap())
                    }
                    None => {
                        let name = field(&xml, "network-name").or_else(|| field(&xml, "pool-name")).unwrap();
                        format!("{name} {} ({reason})", field(&xml, "lifecycle").unwrap())
                    }
                }
            })
            .collect()
    }

    #[test]
    fn each_difference_is_one_event_and_nothing_else_is_reported() {
        let before = Inventory {
            domains: listed_domains([(domain("kept", 1, 1), 1), (domain("paused", 2, 2), 1), (domain("gone", 3, -1), 5), (domain("rebooted", 4, 4), 1)]),
            networks: Objects::listed([("net-kept".into(), [1; 16], true), ("net-stopped".into(), [2; 16], true), ("net-gone".into(), [3; 16], true)]),
            pools: Objects::listed([("pool-started".into(), [1; 16], false)]),
        };
        let now = Inventory {
            domains: listed_domains([(domain("kept", 1, 1), 1), (domain("paused", 2, 2), 3), (domain("new", 5, 7), 1), (domain("rebooted", 4, 9), 1)]),
            networks: Objects::listed([("net-kept".into(), [1; 16], true), ("net-stopped".into(), [2; 16], false), ("net-new".into(), [4; 16], false)]),
            pools: Objects::listed([("pool-started".into(), [1; 16], true)]),
        };
        assert_eq!(
            summary(resync(&before, &now)),
            [
                "gone shutoff -> shutoff (undefined-resync)",
                "new nostate -> running (defined-resync)",
                "paused running -> paused (resync)",
                "rebooted running -> running (resync)",
                "net-gone stopped (resync)",
                "net-gone undefined (resync)",
                "net-new defined (resync)",
                "net-stopped stopped (resync)",
                "pool-started started (resync)",
            ]
        );
        assert!(resync(&now, &now).is_empty());
    }

    #[test]
    fn lifecycle_events_keep_a_listed_record_and_an_unlisted_one_stays_empty() {
        let mut objects = Objects::listed([]);
        objects.lifecycle("a", [1; 16], DEFINED);
        objects.lifecycle("a", [1; 16], STARTED);
        objects.lifecycle("b", [2; 16], STARTED);
        objects.lifecycle("b", [2; 16], UNDEFINED);
        objects.lifecycle("c", [3; 16], 4);
        assert_eq!(objects.by_uuid.get(&[1; 16]), Some(&("a".to_string(), true)));
        assert_eq!(objects.by_uuid.len(), 1);
        let mut unlisted = Objects::default();
        unlisted.lifecycle("a", [1; 16], DEFINED);
        assert!(unlisted.by_uuid.is_empty());
        // Not listed on either side: nothing is said of networks or pools.
        let listed = Inventory { networks: objects, ..Inventory::default() };
        assert!(resync(&Inventory::default(), &listed).is_empty());
    }
}
