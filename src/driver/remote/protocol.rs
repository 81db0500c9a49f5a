//! The procedures an events client calls and the bodies of their replies:
//! authentication, opening, listing domains and their states, registering
//! (docs/protocol.md; the events themselves are in [`super::kinds`]).

use crate::rpc::xdr::{DecodeError, Decoder, Encoder};

/// REMOTE program procedures.
pub(crate) mod proc {
    pub(crate) const CONNECT_OPEN: i32 = 1;
    pub(crate) const CONNECT_CLOSE: i32 = 2;
    pub(crate) const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    pub(crate) const AUTH_LIST: i32 = 66;
    #[cfg(virevent_sasl)]
    pub(crate) const AUTH_SASL_INIT: i32 = 67;
    #[cfg(virevent_sasl)]
    pub(crate) const AUTH_SASL_START: i32 = 68;
    #[cfg(virevent_sasl)]
    pub(crate) const AUTH_SASL_STEP: i32 = 69;
    pub(crate) const AUTH_POLKIT: i32 = 70;
    pub(crate) const DOMAIN_GET_STATE: i32 = 212;
    pub(crate) const CONNECT_LIST_ALL_DOMAINS: i32 = 273;
    pub(crate) const CONNECT_LIST_ALL_STORAGE_POOLS: i32 = 281;
    pub(crate) const CONNECT_LIST_ALL_NETWORKS: i32 = 283;
}

/// Authentication types of AUTH_LIST.
pub(crate) const AUTH_NONE: i32 = 0;
pub(crate) const AUTH_SASL: i32 = 1;
pub(crate) const AUTH_POLKIT_TYPE: i32 = 2;

/// VIR_DRV_FEATURE_PROGRAM_KEEPALIVE, asked with CONNECT_SUPPORTS_FEATURE.
pub(crate) const FEATURE_PROGRAM_KEEPALIVE: i32 = 10;

/// CONNECT_OPEN's read-only flag: all an events client needs.
pub(crate) const CONNECT_READ_ONLY: u32 = 1;

/// The listings' flag for active objects only (VIR_CONNECT_LIST_NETWORKS_ACTIVE,
/// VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE).
pub(crate) const LIST_ACTIVE: u32 = 2;

/// REMOTE_DOMAIN_LIST_MAX of `remote_protocol.x`.
const DOMAIN_LIST_MAX: usize = 16384;
/// REMOTE_NETWORK_LIST_MAX and REMOTE_STORAGE_POOL_LIST_MAX (both 16384).
const NAMED_LIST_MAX: usize = 16384;

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
    /// Reads one.
    pub fn decode(d: &mut Decoder<'_>) -> Result<WireDomain, DecodeError> {
        Ok(WireDomain { name: d.string()?, uuid: d.fixed()?, id: d.i32()? })
    }

    /// Appends this domain as a `remote_nonnull_domain`.
    pub fn encode(&self, e: &mut Encoder) {
        e.string(&self.name).bytes(&self.uuid).i32(self.id);
    }

    /// The UUID in its usual hyphenated form.
    pub fn uuid_text(&self) -> UuidText {
        uuid_text(&self.uuid)
    }
}

/// A raw UUID in its usual hyphenated form.
pub fn uuid_text(uuid: &[u8; 16]) -> UuidText {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    /// Where each byte's two digits go: after 0, 1, 2, 3 or 4 hyphens.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut text = [b'-'; 36];
    for (byte, at) in uuid.iter().zip(AT) {
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 15)];
    }
    UuidText(text)
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

/// Decodes the reply of CONNECT_LIST_ALL_NETWORKS or
/// CONNECT_LIST_ALL_STORAGE_POOLS: `remote_nonnull_network` and
/// `remote_nonnull_storage_pool` are both `{name, uuid}` (a count follows).
pub fn decode_named_list(body: &[u8]) -> Result<Vec<(String, [u8; 16])>, DecodeError> {
    Decoder::new(body).array(NAMED_LIST_MAX, |d| Ok((d.string()?, d.fixed()?)))
}

/// Decodes DOMAIN_GET_STATE's reply: the `virDomainState` (its reason follows).
pub fn decode_state(body: &[u8]) -> Result<i32, DecodeError> {
    Decoder::new(body).i32()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::packet::tests::hex;

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

    #[test]
    fn lists_networks_and_pools_by_name_and_uuid() {
        let body = hex("00000001 00000007 64656661756c7400 6695eb01f6a4830479aa97f2502e193f 00000001");
        let list = decode_named_list(&body).unwrap();
        assert_eq!(list, [("default".to_string(), [0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04, 0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f])]);
        assert!(decode_named_list(&hex("00004001")).is_err());
    }
}
