//! The vocabulary of domain events, shared by the drivers: libvirt's domain
//! states and the `domain-state-transition` event of API.md section 6.

use std::borrow::Cow;
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

/// The XML of a `domain-state-transition` event (without `timestamp` and `seq`,
/// which emission adds).
pub fn state_transition_xml(domain: &DomainIdentity, old: DomainState, new: DomainState, reason: &str) -> String {
    let mut xml = String::with_capacity(256);
    xml.push_str(r#"<event type="domain-state-transition">"#);
    let _ = write!(xml, "<domain-id>{}</domain-id>", domain.id);
    push_element(&mut xml, "domain-name", &domain.name);
    push_element(&mut xml, "domain-uuid", &domain.uuid);
    push_element(&mut xml, "old-state", &old.name());
    push_element(&mut xml, "new-state", &new.name());
    push_element(&mut xml, "reason", reason);
    xml.push_str("</event>");
    xml
}

/// Appends `<name>text</name>` with the text escaped; characters XML cannot
/// carry at all (most controls, from a daemon's names) become U+FFFD.
pub fn push_element(xml: &mut String, name: &str, text: &str) {
    let _ = write!(xml, "<{name}>");
    for c in text.chars() {
        match c {
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '&' => xml.push_str("&amp;"),
            '\t' | '\n' | '\r' => xml.push(c),
            c if c < ' ' || matches!(c, '\u{fffe}' | '\u{ffff}') => xml.push(char::REPLACEMENT_CHARACTER),
            c => xml.push(c),
        }
    }
    let _ = write!(xml, "</{name}>");
}
