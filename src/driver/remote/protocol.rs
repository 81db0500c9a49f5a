//! The procedures an events client uses and the bodies it decodes: errors,
//! domains, and the domain events it registers for (docs/protocol.md sections
//! 3 to 6, and libvirt's `remote_protocol.x` for listing domains and states).

use crate::rpc::xdr::{DecodeError, Decoder, Encoder};

/// REMOTE program procedures.
pub(crate) mod proc {
    pub(crate) const CONNECT_OPEN: i32 = 1;
    pub(crate) const CONNECT_CLOSE: i32 = 2;
    pub(crate) const AUTH_LIST: i32 = 66;
    pub(crate) const AUTH_POLKIT: i32 = 70;
    pub(crate) const DOMAIN_GET_STATE: i32 = 212;
    pub(crate) const CONNECT_LIST_ALL_DOMAINS: i32 = 273;
    pub(crate) const EVENT_REGISTER_ANY: i32 = 316;
    pub(crate) const EVENT_DEREGISTER_ANY: i32 = 317;
}

/// Authentication types of AUTH_LIST.
pub(crate) const AUTH_NONE: i32 = 0;
pub(crate) const AUTH_SASL: i32 = 1;
pub(crate) const AUTH_POLKIT_TYPE: i32 = 2;

/// CONNECT_OPEN's read-only flag: all an events client needs.
pub(crate) const CONNECT_READ_ONLY: u32 = 1;

/// REMOTE_DOMAIN_LIST_MAX of `remote_protocol.x`.
const DOMAIN_LIST_MAX: usize = 16384;

/// The domain event ids registered, each with the procedure its events arrive on.
pub(crate) const EVENTS: [(i32, i32); 6] = [
    (0, 318),  // LIFECYCLE
    (1, 319),  // REBOOT
    (2, 320),  // RTC_CHANGE
    (3, 321),  // WATCHDOG
    (4, 322),  // IO_ERROR
    (23, 379), // METADATA_CHANGE
];

/// A `remote_nonnull_domain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireDomain {
    /// The domain's name.
    pub name: String,
    /// Its UUID, raw.
    pub uuid: [u8; 16],
    /// Its id, -1 when inactive.
    pub id: i32,
}

impl WireDomain {
    fn decode(d: &mut Decoder<'_>) -> Result<WireDomain, DecodeError> {
        Ok(WireDomain { name: d.string()?, uuid: d.fixed()?, id: d.i32()? })
    }

    /// Appends this domain as a `remote_nonnull_domain`.
    pub fn encode(&self, e: &mut Encoder) {
        e.string(&self.name).bytes(&self.uuid).i32(self.id);
    }

    /// The UUID in its usual hyphenated form.
    pub fn uuid_text(&self) -> UuidText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        /// Where each byte's two digits go: after 0, 1, 2, 3 or 4 hyphens.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        let mut text = [b'-'; 36];
        for (byte, at) in self.uuid.iter().zip(AT) {
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 15)];
        }
        UuidText(text)
    }
}

/// A UUID's 36 characters, kept on the stack.
pub struct UuidText([u8; 36]);

impl UuidText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: hex digits and hyphens, all ASCII.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

/// Decodes CONNECT_LIST_ALL_DOMAINS' reply: the domains (its count follows).
pub fn decode_domain_list(body: &[u8]) -> Result<Vec<WireDomain>, DecodeError> {
    Decoder::new(body).array(DOMAIN_LIST_MAX, WireDomain::decode)
}

/// Decodes DOMAIN_GET_STATE's reply: the `virDomainState` (its reason follows).
pub fn decode_state(body: &[u8]) -> Result<i32, DecodeError> {
    Decoder::new(body).i32()
}

/// A domain event as the daemon sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonEvent {
    /// LIFECYCLE: `virDomainEventType` and its detail.
    Lifecycle { domain: WireDomain, event: i32, detail: i32 },
    /// REBOOT.
    Reboot { domain: WireDomain },
    /// RTC_CHANGE: the guest clock's offset from the host's, in seconds.
    RtcChange { domain: WireDomain, offset: i64 },
    /// WATCHDOG: the action taken.
    Watchdog { domain: WireDomain, action: i32 },
    /// IO_ERROR: the disk's source and alias, and the action taken.
    IoError { domain: WireDomain, src_path: String, dev_alias: String, action: i32 },
    /// METADATA_CHANGE: which metadata (0 description, 1 title, 2 element) and
    /// the element's namespace.
    MetadataChange { domain: WireDomain, kind: i32, nsuri: Option<String> },
}

/// Decodes the body of an event MESSAGE of procedure `procedure`; `None` for a
/// procedure this client did not register for (skipped, never an error).
pub fn decode_event(procedure: i32, body: &[u8]) -> Result<Option<DaemonEvent>, DecodeError> {
    let d = &mut Decoder::new(body);
    let Some(&(_, known)) = EVENTS.iter().find(|(_, p)| *p == procedure) else {
        return Ok(None);
    };
    let _callback_id = d.i32()?;
    let domain = WireDomain::decode(d)?;
    let event = match known {
        318 => DaemonEvent::Lifecycle { domain, event: d.i32()?, detail: d.i32()? },
        319 => DaemonEvent::Reboot { domain },
        320 => DaemonEvent::RtcChange { domain, offset: d.i64()? },
        321 => DaemonEvent::Watchdog { domain, action: d.i32()? },
        322 => DaemonEvent::IoError { domain, src_path: d.string()?, dev_alias: d.string()?, action: d.i32()? },
        _ => DaemonEvent::MetadataChange { domain, kind: d.i32()?, nsuri: d.optional(Decoder::string)? },
    };
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::packet::tests::hex;

    /// The body of `virsh suspend test`'s event, docs/protocol.md section 5.2.
    const SUSPEND_BODY: &str = "00000000 00000004 74657374 6695eb01f6a4830479aa97f2502e193f 00000001 00000003 00000000";

    #[test]
    fn decodes_the_suspend_event_of_the_reference() {
        let event = decode_event(318, &hex(SUSPEND_BODY)).unwrap().unwrap();
        let DaemonEvent::Lifecycle { domain, event, detail } = event else { panic!("{event:?}") };
        assert_eq!((domain.name.as_str(), domain.id, event, detail), ("test", 1, 3, 0));
        assert_eq!(domain.uuid_text().as_str(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
    }

    #[test]
    fn decodes_a_padded_name_and_an_inactive_id() {
        // "test2", just defined: DEFINED/ADDED, id -1 (section 5.2).
        let body = hex("00000000 00000005 7465737432 000000 11111111222233334444555555555555 ffffffff 00000000 00000000");
        let Some(DaemonEvent::Lifecycle { domain, event: 0, detail: 0 }) = decode_event(318, &body).unwrap() else { panic!() };
        assert_eq!((domain.name.as_str(), domain.id), ("test2", -1));
        assert_eq!(domain.uuid_text().as_str(), "11111111-2222-3333-4444-555555555555");
    }

    #[test]
    fn decodes_every_registered_layout() {
        let dom = "00000000 00000004 74657374 6695eb01f6a4830479aa97f2502e193f 00000001";
        let decode = |proc, rest: &str| decode_event(proc, &hex(&format!("{dom} {rest}"))).unwrap().unwrap();
        assert!(matches!(decode(319, ""), DaemonEvent::Reboot { .. }));
        assert!(matches!(decode(320, "ffffffff fffffffe"), DaemonEvent::RtcChange { offset: -2, .. }));
        assert!(matches!(decode(321, "00000006"), DaemonEvent::Watchdog { action: 6, .. }));
        let io = decode(322, "00000003 2f6462 00 00000004 76646131 00000001");
        let DaemonEvent::IoError { src_path, dev_alias, action: 1, .. } = io else { panic!("{io:?}") };
        assert_eq!((src_path.as_str(), dev_alias.as_str()), ("/db", "vda1"));
        assert!(matches!(decode(379, "00000000 00000000"), DaemonEvent::MetadataChange { kind: 0, nsuri: None, .. }));
        let m = decode(379, "00000002 00000001 00000003 782f79 00");
        assert!(matches!(m, DaemonEvent::MetadataChange { kind: 2, nsuri: Some(ref u), .. } if u == "x/y"), "{m:?}");
    }

    #[test]
    fn unknown_procedures_are_skipped_and_truncated_bodies_refused() {
        assert_eq!(decode_event(323, &[]), Ok(None));
        assert_eq!(decode_event(9999, &hex(SUSPEND_BODY)), Ok(None));
        let body = hex(SUSPEND_BODY);
        for cut in 0..body.len() {
            assert!(decode_event(318, &body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn lists_domains_as_remote_protocol_x_lays_them_out() {
        let body = hex("00000001 00000004 74657374 6695eb01f6a4830479aa97f2502e193f 00000001 00000001");
        let list = decode_domain_list(&body).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].name.as_str(), list[0].id), ("test", 1));
        assert!(decode_domain_list(&hex("7fffffff")).is_err());
        let mut e = Encoder::new();
        list[0].encode(&mut e);
        assert_eq!(e.into_bytes(), hex("00000004 74657374 6695eb01f6a4830479aa97f2502e193f 00000001"));
    }
}
