//! The vocabulary of domain events, shared by the drivers: libvirt's domain
//! states and the `domain-state-transition` event of docs/api.md section 6.

use std::borrow::Cow;

use crate::event::{Builder, Draft};
use crate::tag;

/// A domain's state, as libvirt's `virDomainState` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainState {
    /// No state known.
    NoState,
    /// Running.
    Running,
    /// Blocked on a resource.
    Blocked,
    /// Paused by the user.
    Paused,
    /// Being shut down.
    Shutdown,
    /// Shut off.
    Shutoff,
    /// Crashed.
    Crashed,
    /// Suspended by guest power management.
    PmSuspended,
    /// A state number this library does not know (from a newer daemon).
    Unknown(i32),
}

impl DomainState {
    /// The state numbered `n` by libvirt's `virDomainState`.
    pub fn from_number(n: i32) -> DomainState {
        const KNOWN: [DomainState; 8] = [
            DomainState::NoState,
            DomainState::Running,
            DomainState::Blocked,
            DomainState::Paused,
            DomainState::Shutdown,
            DomainState::Shutoff,
            DomainState::Crashed,
            DomainState::PmSuspended,
        ];
        usize::try_from(n).ok().and_then(|i| KNOWN.get(i)).copied().unwrap_or(DomainState::Unknown(n))
    }

    /// The name used in events (`running`, `paused`, ..., `unknown-N`).
    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            DomainState::NoState => "nostate",
            DomainState::Running => "running",
            DomainState::Blocked => "blocked",
            DomainState::Paused => "paused",
            DomainState::Shutdown => "shutdown",
            DomainState::Shutoff => "shutoff",
            DomainState::Crashed => "crashed",
            DomainState::PmSuspended => "pmsuspended",
            DomainState::Unknown(n) => return Cow::Owned(format!("unknown-{n}")),
        })
    }

    /// Whether a domain in this state is active (has an id).
    pub fn is_active(self) -> bool {
        !matches!(self, DomainState::Shutoff | DomainState::NoState)
    }
}

/// The identity of a domain as events carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainIdentity {
    /// The hypervisor's id, -1 when inactive.
    pub id: i32,
    /// The domain's name.
    pub name: String,
    /// The domain's uuid, in its usual hyphenated form.
    pub uuid: String,
}

/// A domain event's builder with the identity every domain event starts with:
/// `domain-id`, `domain-name`, `domain-uuid`.
pub fn domain_event(kind: &str, id: i32, name: &str, uuid: &str) -> Builder {
    let mut event = Builder::new(kind);
    event.number(tag!("domain-id"), i64::from(id)).text(tag!("domain-name"), name).known(tag!("domain-uuid"), &[uuid]);
    event
}

/// A `domain-state-transition` event (docs/api.md section 6).
pub fn state_transition(domain: &DomainIdentity, old: DomainState, new: DomainState, reason: &str) -> Draft {
    transition(domain.id, &domain.name, &domain.uuid, old, new, &[reason])
}

/// [`state_transition`] from the identity's parts, as a daemon's events carry
/// them, with the reason given in parts to join.
pub fn transition(id: i32, name: &str, uuid: &str, old: DomainState, new: DomainState, reason: &[&str]) -> Draft {
    let mut event = domain_event("domain-state-transition", id, name, uuid);
    event.known(tag!("old-state"), &[&old.name()]).known(tag!("new-state"), &[&new.name()]);
    event.known(tag!("reason"), reason);
    event.finish()
}
