//! Every event a libvirt daemon sends, as one table: the object it is about,
//! its event ID (what registering names), the procedure it arrives on, the
//! type of the XML event it becomes, and the small function that decodes its
//! body into that event (docs/events.md has each one's elements). Adding a
//! kind is one row and one function here, its test below, and its entry in
//! docs/events.md and docs/events.rng.

use std::borrow::Cow;

use super::protocol::{uuid_text, WireDomain};
use super::inventory::{Inventory, Objects};
use crate::domain::domain_event;
use crate::event::{Builder, Draft, Tag};
use crate::rpc::xdr::{DecodeError, Decoder};
use crate::tag;
use crate::words::{self, Words};

/// What an event is about. Each object registers its events with its own
/// procedure (and deregisters with the next one): docs/protocol.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Object {
    Domain,
    Network,
    StoragePool,
    NodeDevice,
    Secret,
}

impl Object {
    /// The procedures that register and deregister this object's events.
    pub(crate) fn procedures(self) -> (i32, i32) {
        match self {
            Object::Domain => (316, 317),
            Object::Network => (313, 314),
            Object::StoragePool => (368, 369),
            Object::NodeDevice => (374, 375),
            Object::Secret => (380, 381),
        }
    }
}

type Decoded<T> = Result<T, DecodeError>;

/// One kind of event.
pub(crate) struct Kind {
    pub(crate) object: Object,
    /// The object's event ID, what registering names.
    pub(crate) event_id: i32,
    /// The procedure its events arrive on.
    pub(crate) procedure: i32,
    /// The XML event's `type`.
    pub(crate) type_name: &'static str,
    /// Decodes the body after its callback ID into the event.
    decode: fn(&mut Input<'_>) -> Decoded<Draft>,
}

impl Kind {
    /// The event the rest of one of this kind's bodies becomes (`body` is past
    /// the callback ID). Bytes after the layout's end are left alone: libvirt
    /// never changes a message's layout, so they can only be padding.
    pub(crate) fn event(&'static self, body: Decoder<'_>, inventory: &mut Inventory) -> Decoded<Draft> {
        (self.decode)(&mut Input { d: body, kind: self, inventory })
    }
}

const fn kind(object: Object, event_id: i32, procedure: i32, type_name: &'static str, decode: fn(&mut Input<'_>) -> Decoded<Draft>) -> Kind {
    Kind { object, event_id, procedure, type_name, decode }
}

use Object::{Domain, Network, NodeDevice, Secret, StoragePool};

/// Every kind this library knows. The lifecycle of domains comes first: its
/// registration is the one that must succeed.
pub(crate) static KINDS: [Kind; 36] = [
    kind(Domain, 0, 318, "domain-state-transition", lifecycle),
    kind(Domain, 1, 319, "domain-reboot", bare),
    kind(Domain, 2, 320, "domain-rtc-change", rtc_change),
    kind(Domain, 3, 321, "domain-watchdog", watchdog),
    kind(Domain, 4, 322, "domain-io-error", io_error),
    kind(Domain, 5, 323, "domain-graphics", graphics),
    kind(Domain, 6, 324, "domain-io-error-reason", io_error_reason),
    kind(Domain, 7, 325, "domain-control-error", bare),
    kind(Domain, 8, 326, "domain-block-job", block_job),
    kind(Domain, 9, 327, "domain-disk-change", disk_change),
    kind(Domain, 10, 328, "domain-tray-change", tray_change),
    kind(Domain, 11, 329, "domain-pm-wakeup", power_management),
    kind(Domain, 12, 330, "domain-pm-suspend", power_management),
    kind(Domain, 13, 331, "domain-balloon-change", balloon_change),
    kind(Domain, 14, 332, "domain-pm-suspend-disk", power_management),
    kind(Domain, 15, 333, "domain-device-removed", device),
    kind(Domain, 16, 339, "domain-block-job-2", block_job_2),
    kind(Domain, 17, 346, "domain-tunable", tunable),
    kind(Domain, 18, 348, "domain-agent-lifecycle", agent_lifecycle),
    kind(Domain, 19, 354, "domain-device-added", device),
    kind(Domain, 20, 359, "domain-migration-iteration", migration_iteration),
    kind(Domain, 21, 363, "domain-job-completed", job_completed),
    kind(Domain, 22, 367, "domain-device-removal-failed", device),
    kind(Domain, 23, 379, "domain-metadata-change", metadata_change),
    kind(Domain, 24, 385, "domain-block-threshold", block_threshold),
    kind(Domain, 25, 423, "domain-memory-failure", memory_failure),
    kind(Domain, 26, 438, "domain-memory-device-size-change", memory_device_size_change),
    kind(Domain, 27, 453, "domain-nic-mac-change", nic_mac_change),
    kind(Network, 0, 315, "network-lifecycle", network_lifecycle),
    kind(Network, 1, 446, "network-metadata-change", network_metadata_change),
    kind(StoragePool, 0, 370, "storage-pool-lifecycle", pool_lifecycle),
    kind(StoragePool, 1, 373, "storage-pool-refresh", pool_refresh),
    kind(NodeDevice, 0, 376, "node-device-lifecycle", node_device_lifecycle),
    kind(NodeDevice, 1, 377, "node-device-update", node_device_update),
    kind(Secret, 0, 382, "secret-lifecycle", secret_lifecycle),
    kind(Secret, 1, 383, "secret-value-changed", secret_value_changed),
];

/// The daemon's connection-close callback: registered with 360 (without a
/// callback ID of its own), its event arrives on 362 as `{int reason}`.
pub(crate) const CLOSE_CALLBACK_REGISTER: i32 = 360;
pub(crate) const CLOSE_CALLBACK_UNREGISTER: i32 = 361;
pub(crate) const CONNECTION_CLOSED: i32 = 362;

/// REMOTE_DOMAIN_EVENT_GRAPHICS_IDENTITY_MAX.
const GRAPHICS_IDENTITY_MAX: usize = 20;
/// REMOTE_DOMAIN_EVENT_TUNABLE_MAX.
const TUNABLE_MAX: usize = 2048;
/// REMOTE_DOMAIN_JOB_STATS_MAX.
const JOB_STATS_MAX: usize = 64;

/// A body being decoded into its kind's event.
struct Input<'a> {
    d: Decoder<'a>,
    kind: &'static Kind,
    inventory: &'a mut Inventory,
}

impl Input<'_> {
    /// The event's builder with the domain the body names next.
    fn domain(&mut self) -> Decoded<Builder> {
        let dom = WireDomain::decode(&mut self.d)?;
        Ok(domain_event(self.kind.type_name, dom.id, &dom.name, dom.uuid_text().as_str()))
    }

    /// A `remote_nonnull_network` or `remote_nonnull_storage_pool`: its name
    /// and UUID as `NAME` and `UUID` elements.
    fn named(&mut self, name: Tag, uuid: Tag) -> Decoded<Builder> {
        let mut b = Builder::new(self.kind.type_name);
        b.text(name, &self.d.text()?);
        b.known(uuid, &[uuid_text(&self.d.fixed()?).as_str()]);
        Ok(b)
    }

    fn node_device(&mut self) -> Decoded<Builder> {
        let mut b = Builder::new(self.kind.type_name);
        b.text(tag!("node-device-name"), &self.d.text()?);
        Ok(b)
    }

    fn secret(&mut self) -> Decoded<Builder> {
        let mut b = Builder::new(self.kind.type_name);
        b.known(tag!("secret-uuid"), &[uuid_text(&self.d.fixed()?).as_str()]);
        let usage = self.d.i32()?;
        b.known(tag!("secret-usage-type"), &[&word(&words::SECRET_USAGE, usage)]);
        b.text(tag!("secret-usage-id"), &self.d.text()?);
        Ok(b)
    }

    /// An `int` of enum `words` as its word.
    fn word(&mut self, b: &mut Builder, tag: Tag, words: &Words) -> Decoded<()> {
        b.known(tag, &[&word(words, self.d.i32()?)]);
        Ok(())
    }

    /// A `string`.
    fn text(&mut self, b: &mut Builder, tag: Tag) -> Decoded<()> {
        b.text(tag, &self.d.text()?);
        Ok(())
    }

    /// A `remote_string` (an optional string): no element when absent.
    fn optional_text(&mut self, b: &mut Builder, tag: Tag) -> Decoded<()> {
        if let Some(text) = self.d.optional(Decoder::text)? {
            b.text(tag, &text);
        }
        Ok(())
    }

    /// An object's lifecycle `{int event; int detail}`: `<lifecycle>` and `<detail>`.
    fn lifecycle(&mut self, mut b: Builder, words: &Words) -> Decoded<Draft> {
        self.word(&mut b, tag!("lifecycle"), words)?;
        b.number(tag!("detail"), i64::from(self.d.i32()?));
        Ok(b.finish())
    }

    /// `remote_typed_param params<max>`: one `<param>` each.
    fn params(&mut self, b: &mut Builder, max: usize) -> Decoded<()> {
        for _ in 0..self.d.count(max)? {
            let name = self.d.text()?;
            let type_number = self.d.i32()?;
            let value: Cow<'_, str> = match type_number {
                1 => self.d.i32()?.to_string().into(),
                2 => self.d.u32()?.to_string().into(),
                3 => self.d.i64()?.to_string().into(),
                4 => self.d.u64()?.to_string().into(),
                5 => self.d.f64()?.to_string().into(),
                6 => self.d.i32()?.to_string().into(),
                7 => self.d.text()?,
                other => return Err(DecodeError(format!("typed parameter '{name}' of unknown type {other}"))),
            };
            b.param(&name, words::TYPED_PARAM[type_number as usize - 1], &value);
        }
        Ok(())
    }
}

/// The word for `n` in `words`, or `unknown-N`.
pub(crate) fn word(words: &Words, n: i32) -> Cow<'static, str> {
    match words.event_word(n) {
        Some(word) => Cow::Borrowed(word),
        None => Cow::Owned(format!("unknown-{n}")),
    }
}

fn lifecycle(i: &mut Input<'_>) -> Decoded<Draft> {
    let dom = WireDomain::decode(&mut i.d)?;
    let (event, detail) = (i.d.i32()?, i.d.i32()?);
    Ok(i.inventory.domains.lifecycle(&dom, event, detail))
}

/// A domain and nothing else (reboot, control-error).
fn bare(i: &mut Input<'_>) -> Decoded<Draft> {
    Ok(i.domain()?.finish())
}

fn rtc_change(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    b.number(tag!("offset"), i.d.i64()?);
    Ok(b.finish())
}

fn watchdog(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.word(&mut b, tag!("action"), &words::WATCHDOG_ACTION)?;
    Ok(b.finish())
}

/// `{srcPath; devAlias; action}`, what both I/O error kinds start with.
fn io_error_fields(i: &mut Input<'_>) -> Decoded<Builder> {
    let mut b = i.domain()?;
    i.text(&mut b, tag!("src-path"))?;
    i.text(&mut b, tag!("dev-alias"))?;
    i.word(&mut b, tag!("action"), &words::IO_ERROR_ACTION)?;
    Ok(b)
}

fn io_error(i: &mut Input<'_>) -> Decoded<Draft> {
    Ok(io_error_fields(i)?.finish())
}

fn io_error_reason(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = io_error_fields(i)?;
    i.text(&mut b, tag!("reason"))?;
    Ok(b.finish())
}

fn graphics(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.word(&mut b, tag!("phase"), &words::GRAPHICS_PHASE)?;
    for end in [tag!("local"), tag!("remote")] {
        b.open(end);
        i.word(&mut b, tag!("family"), &words::GRAPHICS_FAMILY)?;
        i.text(&mut b, tag!("node"))?;
        i.text(&mut b, tag!("service"))?;
        b.close(end);
    }
    i.text(&mut b, tag!("auth-scheme"))?;
    b.open(tag!("subject"));
    for _ in 0..i.d.count(GRAPHICS_IDENTITY_MAX)? {
        b.open(tag!("identity"));
        i.text(&mut b, tag!("type"))?;
        i.text(&mut b, tag!("name"))?;
        b.close(tag!("identity"));
    }
    b.close(tag!("subject"));
    Ok(b.finish())
}

fn block_job(i: &mut Input<'_>) -> Decoded<Draft> {
    block_job_of(i, tag!("path"))
}

fn block_job_2(i: &mut Input<'_>) -> Decoded<Draft> {
    block_job_of(i, tag!("dst"))
}

/// `{DISK; type; status}`: block-job names the disk by its path, block-job-2
/// by its target (`vda`).
fn block_job_of(i: &mut Input<'_>, disk: Tag) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.text(&mut b, disk)?;
    i.word(&mut b, tag!("type"), &words::BLOCK_JOB_TYPE)?;
    i.word(&mut b, tag!("status"), &words::BLOCK_JOB_STATUS)?;
    Ok(b.finish())
}

fn disk_change(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.optional_text(&mut b, tag!("old-src-path"))?;
    i.optional_text(&mut b, tag!("new-src-path"))?;
    i.text(&mut b, tag!("dev-alias"))?;
    i.word(&mut b, tag!("reason"), &words::DISK_CHANGE_REASON)?;
    Ok(b.finish())
}

fn tray_change(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.text(&mut b, tag!("dev-alias"))?;
    i.word(&mut b, tag!("reason"), &words::TRAY_CHANGE_REASON)?;
    Ok(b.finish())
}

/// pm-wakeup, pm-suspend, pm-suspend-disk: `{int reason}` before the domain
/// (libvirt defines no reasons yet: the number as it is).
fn power_management(i: &mut Input<'_>) -> Decoded<Draft> {
    let reason = i.d.i32()?;
    let mut b = i.domain()?;
    b.number(tag!("reason"), i64::from(reason));
    Ok(b.finish())
}

fn balloon_change(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    b.unsigned(tag!("actual"), i.d.u64()?);
    Ok(b.finish())
}

/// device-added, device-removed, device-removal-failed.
fn device(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.text(&mut b, tag!("dev-alias"))?;
    Ok(b.finish())
}

fn tunable(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.params(&mut b, TUNABLE_MAX)?;
    Ok(b.finish())
}

fn agent_lifecycle(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.word(&mut b, tag!("state"), &words::AGENT_STATE)?;
    i.word(&mut b, tag!("reason"), &words::AGENT_REASON)?;
    Ok(b.finish())
}

fn migration_iteration(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    b.number(tag!("iteration"), i64::from(i.d.i32()?));
    Ok(b.finish())
}

fn job_completed(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.params(&mut b, JOB_STATS_MAX)?;
    Ok(b.finish())
}

fn metadata_change(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.word(&mut b, tag!("type"), &words::METADATA_TYPE)?;
    i.optional_text(&mut b, tag!("nsuri"))?;
    Ok(b.finish())
}

fn block_threshold(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.text(&mut b, tag!("dev"))?;
    i.optional_text(&mut b, tag!("path"))?;
    b.unsigned(tag!("threshold"), i.d.u64()?);
    b.unsigned(tag!("excess"), i.d.u64()?);
    Ok(b.finish())
}

fn memory_failure(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.word(&mut b, tag!("recipient"), &words::MEMORY_FAILURE_RECIPIENT)?;
    i.word(&mut b, tag!("action"), &words::MEMORY_FAILURE_ACTION)?;
    let flags = i.d.u32()?;
    b.number(tag!("action-required"), i64::from(flags & 1));
    b.number(tag!("recursive"), i64::from(flags >> 1 & 1));
    Ok(b.finish())
}

fn memory_device_size_change(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.text(&mut b, tag!("alias"))?;
    b.unsigned(tag!("size"), i.d.u64()?);
    Ok(b.finish())
}

fn nic_mac_change(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.domain()?;
    i.text(&mut b, tag!("alias"))?;
    i.text(&mut b, tag!("old-mac"))?;
    i.text(&mut b, tag!("new-mac"))?;
    Ok(b.finish())
}

fn network_lifecycle(i: &mut Input<'_>) -> Decoded<Draft> {
    recorded_lifecycle(i, (tag!("network-name"), tag!("network-uuid")), &words::NETWORK_LIFECYCLE, |inventory| &mut inventory.networks)
}

/// A network's or storage pool's lifecycle, which also keeps the record of
/// them that `objects` picks (see [`Objects::lifecycle`]).
fn recorded_lifecycle(i: &mut Input<'_>, (name, uuid): (Tag, Tag), words: &Words, objects: fn(&mut Inventory) -> &mut Objects) -> Decoded<Draft> {
    let mut ahead = i.d.clone();
    let (object_name, object_uuid, event) = (ahead.text()?, ahead.fixed()?, ahead.i32()?);
    objects(i.inventory).lifecycle(&object_name, object_uuid, event);
    let b = i.named(name, uuid)?;
    i.lifecycle(b, words)
}

fn network_metadata_change(i: &mut Input<'_>) -> Decoded<Draft> {
    let mut b = i.named(tag!("network-name"), tag!("network-uuid"))?;
    i.word(&mut b, tag!("type"), &words::METADATA_TYPE)?;
    i.optional_text(&mut b, tag!("nsuri"))?;
    Ok(b.finish())
}

fn pool_lifecycle(i: &mut Input<'_>) -> Decoded<Draft> {
    recorded_lifecycle(i, (tag!("pool-name"), tag!("pool-uuid")), &words::POOL_LIFECYCLE, |inventory| &mut inventory.pools)
}

fn pool_refresh(i: &mut Input<'_>) -> Decoded<Draft> {
    Ok(i.named(tag!("pool-name"), tag!("pool-uuid"))?.finish())
}

fn node_device_lifecycle(i: &mut Input<'_>) -> Decoded<Draft> {
    let b = i.node_device()?;
    i.lifecycle(b, &words::NODE_DEVICE_LIFECYCLE)
}

fn node_device_update(i: &mut Input<'_>) -> Decoded<Draft> {
    Ok(i.node_device()?.finish())
}

fn secret_lifecycle(i: &mut Input<'_>) -> Decoded<Draft> {
    let b = i.secret()?;
    i.lifecycle(b, &words::SECRET_LIFECYCLE)
}

fn secret_value_changed(i: &mut Input<'_>) -> Decoded<Draft> {
    Ok(i.secret()?.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::xdr::Encoder;

    const UUID: [u8; 16] = [0x66, 0x95, 0xeb, 0x01, 0xf6, 0xa4, 0x83, 0x04, 0x79, 0xaa, 0x97, 0xf2, 0x50, 0x2e, 0x19, 0x3f];
    const UUID_TEXT: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    /// A `remote_nonnull_domain`: "vm1", id 3.
    fn dom(e: &mut Encoder) -> &mut Encoder {
        e.string("vm1").bytes(&UUID).i32(3)
    }

    /// Ends a chain of writes (closures here return nothing).
    fn done(_: &mut Encoder) {}

    fn hyper(e: &mut Encoder, v: u64) -> &mut Encoder {
        e.u32((v >> 32) as u32).u32(v as u32)
    }

    fn kind_named(type_name: &str) -> &'static Kind {
        KINDS.iter().find(|k| k.type_name == type_name).unwrap_or_else(|| panic!("no kind {type_name}"))
    }

    /// The body `fill` writes (after the callback ID), and what `type_name`
    /// makes of it: the event's content, between its root's tags.
    fn decode(type_name: &str, fill: impl FnOnce(&mut Encoder)) -> (Vec<u8>, String) {
        let mut e = Encoder::new();
        fill(&mut e);
        let body = e.into_bytes();
        let draft = kind_named(type_name).event(Decoder::new(&body), &mut Inventory::default()).unwrap();
        let event = draft.seal(1);
        assert!(event.xml().starts_with(&format!("<event type=\"{type_name}\" timestamp=\"")), "{}", event.xml());
        let content = event.xml().split_once(" seq=\"1\">").unwrap().1.strip_suffix("</event>").unwrap().to_string();
        (body, content)
    }

    /// `fill`'s body becomes `expected` after the domain's elements, and every
    /// shorter body is refused.
    fn domain_case(type_name: &str, fill: impl FnOnce(&mut Encoder), expected: &str) {
        let (body, content) = decode(type_name, fill);
        let identity = format!("<domain-id>3</domain-id><domain-name>vm1</domain-name><domain-uuid>{UUID_TEXT}</domain-uuid>");
        let rest = content.strip_prefix(&identity).unwrap_or_else(|| panic!("{type_name}: {content}"));
        assert_eq!(rest, expected, "{type_name}");
        refuses_every_truncation(type_name, &body);
    }

    fn refuses_every_truncation(type_name: &str, body: &[u8]) {
        for cut in 0..body.len() {
            let result = kind_named(type_name).event(Decoder::new(&body[..cut]), &mut Inventory::default());
            assert!(result.is_err(), "{type_name} cut at {cut}");
        }
    }

    /// The lifecycle event (after its callbackID) of `hex`, decoded from a
    /// domain recorded `running`.
    fn lifecycle_of(hex: &str) -> String {
        let body = crate::rpc::packet::tests::hex(hex);
        let mut inventory = Inventory::default();
        inventory.domains.learn(&WireDomain { name: "test".into(), uuid: UUID, id: 1 }, crate::domain::DomainState::Running);
        let event = KINDS[0].event(Decoder::new(&body), &mut inventory).unwrap().seal(1);
        event.xml().split_once(" seq=\"1\">").unwrap().1.to_string()
    }

    /// The bodies of docs/protocol.md section 5.2, byte for byte as libvirtd
    /// 9.0 sent them: `virsh suspend test`, and a name that needs padding.
    #[test]
    fn decodes_the_reference_lifecycle_bodies() {
        assert_eq!(
            lifecycle_of("00000004 74657374 6695eb01f6a4830479aa97f2502e193f 00000001 00000003 00000000"),
            format!(
                "<domain-id>1</domain-id><domain-name>test</domain-name><domain-uuid>{UUID_TEXT}</domain-uuid>\
                 <old-state>running</old-state><new-state>paused</new-state><reason>suspended-paused</reason></event>"
            )
        );
        let defined = lifecycle_of("00000005 7465737432 000000 11111111222233334444555555555555 ffffffff 00000000 00000000");
        assert!(defined.starts_with("<domain-id>-1</domain-id><domain-name>test2</domain-name>\
            <domain-uuid>11111111-2222-3333-4444-555555555555</domain-uuid><old-state>nostate</old-state>\
            <new-state>shutoff</new-state><reason>defined-added</reason>"), "{defined}");
    }

    #[test]
    fn the_table_has_every_domain_event_id_and_no_duplicate() {
        let domain_ids: Vec<i32> = KINDS.iter().filter(|k| k.object == Object::Domain).map(|k| k.event_id).collect();
        assert_eq!(domain_ids, (0..=27).collect::<Vec<_>>());
        for object in [Object::Network, Object::StoragePool, Object::NodeDevice, Object::Secret] {
            let ids: Vec<i32> = KINDS.iter().filter(|k| k.object == object).map(|k| k.event_id).collect();
            assert_eq!(ids, [0, 1], "{object:?}");
        }
        for (n, kind) in KINDS.iter().enumerate() {
            for other in &KINDS[n + 1..] {
                assert!(kind.procedure != other.procedure && kind.type_name != other.type_name, "{}", kind.type_name);
            }
            assert!(crate::event::is_type_name(kind.type_name));
        }
    }

    #[test]
    fn domain_bodies_of_every_layout() {
        domain_case("domain-reboot", |e| done(dom(e)), "");
        domain_case("domain-control-error", |e| done(dom(e)), "");
        domain_case("domain-rtc-change", |e| done(hyper(dom(e), -3600i64 as u64)), "<offset>-3600</offset>");
        domain_case("domain-watchdog", |e| done(dom(e).i32(6)), "<action>inject-nmi</action>");
        domain_case(
            "domain-io-error",
            |e| done(dom(e).string("/var/a&b.img").string("virtio-disk0").i32(1)),
            "<src-path>/var/a&amp;b.img</src-path><dev-alias>virtio-disk0</dev-alias><action>pause</action>",
        );
        domain_case(
            "domain-io-error-reason",
            |e| done(dom(e).string("").string("ide0-1-0").i32(2).string("enospc")),
            "<src-path></src-path><dev-alias>ide0-1-0</dev-alias><action>report</action><reason>enospc</reason>",
        );
        domain_case(
            "domain-graphics",
            |e| {
                dom(e).i32(0).i32(0).string("127.0.0.1").string("5900").i32(1).string("::1").string("40000");
                e.string("vnc").u32(2).string("x509dname").string("CN=a").string("saslUsername").string("bob");
            },
            "<phase>connect</phase><local><family>ipv4</family><node>127.0.0.1</node><service>5900</service></local>\
             <remote><family>ipv6</family><node>::1</node><service>40000</service></remote><auth-scheme>vnc</auth-scheme>\
             <subject><identity><type>x509dname</type><name>CN=a</name></identity>\
             <identity><type>saslUsername</type><name>bob</name></identity></subject>",
        );
        domain_case(
            "domain-graphics",
            |e| done(dom(e).i32(2).i32(2).string("/s").string("").i32(7).string("").string("").string("none").u32(0)),
            "<phase>disconnect</phase><local><family>unix</family><node>/s</node><service></service></local>\
             <remote><family>unknown-7</family><node></node><service></service></remote><auth-scheme>none</auth-scheme><subject></subject>",
        );
        domain_case(
            "domain-block-job",
            |e| done(dom(e).string("/img/a.qcow2").i32(2).i32(3)),
            "<path>/img/a.qcow2</path><type>copy</type><status>ready</status>",
        );
        domain_case("domain-block-job-2", |e| done(dom(e).string("vda").i32(4).i32(0)), "<dst>vda</dst><type>active-commit</type><status>completed</status>");
        domain_case(
            "domain-disk-change",
            |e| done(dom(e).optional_string(Some("/old.iso")).optional_string(None).string("ide0").i32(1)),
            "<old-src-path>/old.iso</old-src-path><dev-alias>ide0</dev-alias><reason>drop-missing-on-start</reason>",
        );
        domain_case("domain-tray-change", |e| done(dom(e).string("sata0-0-0").i32(0)), "<dev-alias>sata0-0-0</dev-alias><reason>open</reason>");
        for pm in ["domain-pm-wakeup", "domain-pm-suspend", "domain-pm-suspend-disk"] {
            domain_case(pm, |e| done(dom(e.i32(0))), "<reason>0</reason>");
        }
        domain_case("domain-balloon-change", |e| done(hyper(dom(e), u64::MAX)), "<actual>18446744073709551615</actual>");
        for device in ["domain-device-removed", "domain-device-added", "domain-device-removal-failed"] {
            domain_case(device, |e| done(dom(e).string("usb-disk1")), "<dev-alias>usb-disk1</dev-alias>");
        }
        domain_case("domain-agent-lifecycle", |e| done(dom(e).i32(1).i32(2)), "<state>connected</state><reason>channel</reason>");
        domain_case("domain-agent-lifecycle", |e| done(dom(e).i32(9).i32(1)), "<state>unknown-9</state><reason>domain-started</reason>");
        domain_case("domain-migration-iteration", |e| done(dom(e).i32(2)), "<iteration>2</iteration>");
        domain_case("domain-metadata-change", |e| done(dom(e).i32(1).optional_string(None)), "<type>title</type>");
        domain_case(
            "domain-metadata-change",
            |e| done(dom(e).i32(2).optional_string(Some("http://example.org/x"))),
            "<type>element</type><nsuri>http://example.org/x</nsuri>",
        );
        domain_case(
            "domain-block-threshold",
            |e| done(hyper(hyper(dom(e).string("vda[1]").optional_string(Some("/a.img")), 1 << 30), 4096)),
            "<dev>vda[1]</dev><path>/a.img</path><threshold>1073741824</threshold><excess>4096</excess>",
        );
        domain_case(
            "domain-memory-failure",
            |e| done(dom(e).i32(1).i32(3).u32(3)),
            "<recipient>guest</recipient><action>reset</action><action-required>1</action-required><recursive>1</recursive>",
        );
        domain_case(
            "domain-memory-failure",
            |e| done(dom(e).i32(0).i32(0).u32(0)),
            "<recipient>hypervisor</recipient><action>ignore</action><action-required>0</action-required><recursive>0</recursive>",
        );
        domain_case("domain-memory-device-size-change", |e| done(hyper(dom(e).string("virtiomem0"), 524288)), "<alias>virtiomem0</alias><size>524288</size>");
        domain_case(
            "domain-nic-mac-change",
            |e| done(dom(e).string("net0").string("52:54:00:00:00:01").string("52:54:00:00:00:02")),
            "<alias>net0</alias><old-mac>52:54:00:00:00:01</old-mac><new-mac>52:54:00:00:00:02</new-mac>",
        );
    }

    #[test]
    fn typed_parameters_of_every_type() {
        let fill = |e: &mut Encoder| {
            dom(e).u32(7);
            e.string("cputune.vcpu_quota").i32(1).i32(-1);
            e.string("cputune.cpu_shares").i32(2).u32(512);
            e.string("blkdeviotune.read_bytes_sec").i32(3);
            hyper(e, -5i64 as u64);
            e.string("cputune.global_period").i32(4);
            hyper(e, 100000);
            e.string("ratio").i32(5);
            hyper(e, 0.25f64.to_bits());
            e.string("flag").i32(6).i32(1);
            e.string("blkdeviotune.group_name").i32(7).string("g<1>");
        };
        let expected = "<param name=\"cputune.vcpu_quota\" type=\"int\">-1</param>\
            <param name=\"cputune.cpu_shares\" type=\"uint\">512</param>\
            <param name=\"blkdeviotune.read_bytes_sec\" type=\"llong\">-5</param>\
            <param name=\"cputune.global_period\" type=\"ullong\">100000</param>\
            <param name=\"ratio\" type=\"double\">0.25</param>\
            <param name=\"flag\" type=\"boolean\">1</param>\
            <param name=\"blkdeviotune.group_name\" type=\"string\">g&lt;1&gt;</param>";
        domain_case("domain-tunable", fill, expected);
        domain_case("domain-job-completed", fill, expected);
        domain_case("domain-job-completed", |e| done(dom(e).u32(0)), "");
        // A type this library does not know cannot be skipped (its size is unknown).
        let mut e = Encoder::new();
        dom(&mut e).u32(1).string("x").i32(8).i32(0);
        let body = e.into_bytes();
        let err = kind_named("domain-tunable").event(Decoder::new(&body), &mut Inventory::default()).err().unwrap();
        assert!(err.0.contains("typed parameter 'x' of unknown type 8"), "{err}");
        // More parameters than the protocol allows.
        let mut e = Encoder::new();
        dom(&mut e).u32(65);
        let body = e.into_bytes();
        assert!(kind_named("domain-job-completed").event(Decoder::new(&body), &mut Inventory::default()).is_err());
    }

    #[test]
    fn other_objects_bodies() {
        let check = |type_name: &str, fill: &dyn Fn(&mut Encoder), expected: &str| {
            let (body, content) = decode(type_name, fill);
            assert_eq!(content, expected, "{type_name}");
            refuses_every_truncation(type_name, &body);
        };
        let net = format!("<network-name>default</network-name><network-uuid>{UUID_TEXT}</network-uuid>");
        check("network-lifecycle", &|e| done(e.string("default").bytes(&UUID).i32(2).i32(0)), &format!("{net}<lifecycle>started</lifecycle><detail>0</detail>"));
        check("network-lifecycle", &|e| done(e.string("default").bytes(&UUID).i32(4).i32(1)), &format!("{net}<lifecycle>unknown-4</lifecycle><detail>1</detail>"));
        check("network-metadata-change", &|e| done(e.string("default").bytes(&UUID).i32(0).optional_string(None)), &format!("{net}<type>description</type>"));
        let pool = format!("<pool-name>p</pool-name><pool-uuid>{UUID_TEXT}</pool-uuid>");
        check("storage-pool-lifecycle", &|e| done(e.string("p").bytes(&UUID).i32(5).i32(0)), &format!("{pool}<lifecycle>deleted</lifecycle><detail>0</detail>"));
        check("storage-pool-refresh", &|e| done(e.string("p").bytes(&UUID)), &pool);
        check("node-device-lifecycle", &|e| done(e.string("scsi_host7").i32(0).i32(0)), "<node-device-name>scsi_host7</node-device-name><lifecycle>created</lifecycle><detail>0</detail>");
        check("node-device-update", &|e| done(e.string("net_lo")), "<node-device-name>net_lo</node-device-name>");
        let secret = format!("<secret-uuid>{UUID_TEXT}</secret-uuid><secret-usage-type>ceph</secret-usage-type><secret-usage-id>client.admin</secret-usage-id>");
        check("secret-lifecycle", &|e| done(e.bytes(&UUID).i32(2).string("client.admin").i32(1).i32(0)), &format!("{secret}<lifecycle>undefined</lifecycle><detail>0</detail>"));
        check("secret-value-changed", &|e| done(e.bytes(&UUID).i32(2).string("client.admin")), &secret);
    }
}
