//! The vocabulary of domain events, shared by the drivers: libvirt's domain
//! states and the `domain-state-transition` event of API.md section 6.

use std::fmt::Write;

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
}

impl DomainState {
    /// The name used in events (`running`, `paused`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DomainState::NoState => "nostate",
            DomainState::Running => "running",
            DomainState::Blocked => "blocked",
            DomainState::Paused => "paused",
            DomainState::Shutdown => "shutdown",
            DomainState::Shutoff => "shutoff",
            DomainState::Crashed => "crashed",
            DomainState::PmSuspended => "pmsuspended",
        }
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

/// The XML of a `domain-state-transition` event (without `timestamp` and `seq`,
/// which emission adds).
pub fn state_transition_xml(domain: &DomainIdentity, old: DomainState, new: DomainState, reason: &str) -> String {
    let mut xml = String::with_capacity(256);
    xml.push_str(r#"<event type="domain-state-transition">"#);
    let _ = write!(xml, "<domain-id>{}</domain-id>", domain.id);
    push_element(&mut xml, "domain-name", &domain.name);
    push_element(&mut xml, "domain-uuid", &domain.uuid);
    push_element(&mut xml, "old-state", old.name());
    push_element(&mut xml, "new-state", new.name());
    push_element(&mut xml, "reason", reason);
    xml.push_str("</event>");
    xml
}

/// Appends `<name>text</name>` with the text escaped.
pub fn push_element(xml: &mut String, name: &str, text: &str) {
    let _ = write!(xml, "<{name}>");
    for c in text.chars() {
        match c {
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '&' => xml.push_str("&amp;"),
            c => xml.push(c),
        }
    }
    let _ = write!(xml, "</{name}>");
}
