//! `--format virsh`: each event exactly as `virsh event --all --loop
//! --timestamp` (and `net-event`, `pool-event`, `nodedev-event`,
//! `secret-event`) print it, so that scripts that parse virsh switch by
//! changing the command. The words come back from the library's tables
//! (`virevent::words`), which hold both spellings of every enum.
//! virevent's own events, which virsh never prints, read in the same style:
//! `event 'connection-closed' for connection: eof`.

use super::element::Element;
use crate::words::{self, Words};

/// The event as virsh prints it: the timestamp prefix, then its text (several
/// lines for some kinds), without the last line feed.
pub fn render(xml: &str) -> Option<String> {
    let event = Element::read(xml)?;
    let mut out = super::utc_time(event.attribute("timestamp"));
    out.push_str("+0000: ");
    out.push_str(&text(&event));
    Some(out)
}

/// What virsh prints after the timestamp.
fn text(e: &Element) -> String {
    let kind = e.attribute("type");
    let dom = e.get("domain-name");
    let Some(name) = kind.strip_prefix("domain-") else { return other_objects(e, kind) };
    let head = format!("event '{name}' for domain '{dom}'");
    match name {
        // A reconnection's resync, which virsh never prints: the change found.
        "state-transition" if e.get("reason") == "resync" => {
            format!("event 'resync' for domain '{dom}': {} -> {}", e.get("old-state"), e.get("new-state"))
        }
        "state-transition" if e.get("reason").ends_with("-resync") => {
            let event = e.get("reason").trim_end_matches("-resync");
            format!("event 'lifecycle' for domain '{dom}': {} Resync", words::DOMAIN_EVENT.virsh_word(event))
        }
        "state-transition" => {
            let (event, detail) = e.get("reason").split_once('-').unwrap_or(("", ""));
            let details = words::DOMAIN_EVENT.names.iter().position(|(w, _)| *w == event);
            let detail = details.map_or("unknown", |i| words::DOMAIN_EVENT_DETAIL[i].virsh_word(detail));
            format!("event 'lifecycle' for domain '{dom}': {} {detail}", words::DOMAIN_EVENT.virsh_word(event))
        }
        "rtc-change" => format!("{head}: {}", e.get("offset")),
        "watchdog" => format!("{head}: {}", e.word("action", &words::WATCHDOG_ACTION)),
        "io-error" | "io-error-reason" => {
            let mut out = format!(
                "{head}: {} ({}) {}",
                e.get("src-path"),
                e.get("dev-alias"),
                e.word("action", &words::IO_ERROR_ACTION)
            );
            if name == "io-error-reason" {
                out.push_str(" due to ");
                out.push_str(e.get("reason"));
            }
            out
        }
        "graphics" => {
            let end = |which: &str| {
                let a = e.child(which);
                let get = |n: &str| a.map_or("", |a| a.get(n));
                format!("{which}[{} {} {}]", words::GRAPHICS_FAMILY.virsh_word(get("family")), get("node"), get("service"))
            };
            let mut out = format!(
                "{head}: {} {} {} {}",
                e.word("phase", &words::GRAPHICS_PHASE),
                end("local"),
                end("remote"),
                e.get("auth-scheme")
            );
            for identity in e.child("subject").map_or(&[][..], |s| &s.children) {
                out.push_str(&format!("\n\t{}={}", identity.get("type"), identity.get("name")));
            }
            out
        }
        "block-job" | "block-job-2" => format!(
            "{head}: {} for {} {}",
            e.word("type", &words::BLOCK_JOB_TYPE),
            if name == "block-job" { e.get("path") } else { e.get("dst") },
            e.word("status", &words::BLOCK_JOB_STATUS)
        ),
        "disk-change" => format!(
            "{head} disk {}: {} -> {}: {}",
            e.get("dev-alias"),
            e.or_null("old-src-path"),
            e.or_null("new-src-path"),
            e.word("reason", &words::DISK_CHANGE_REASON)
        ),
        "tray-change" => format!("{head} disk {}: {}", e.get("dev-alias"), e.word("reason", &words::TRAY_CHANGE_REASON)),
        "balloon-change" => format!("{head}: {}KiB", e.get("actual")),
        "device-removed" | "device-added" | "device-removal-failed" => format!("{head}: {}", e.get("dev-alias")),
        "tunable" | "job-completed" => {
            let mut out = format!("{head}:");
            for param in e.children.iter().filter(|c| c.name == "param") {
                out.push_str(&format!("\n\t{}: {}", param.attribute("name"), param_value(param)));
            }
            out
        }
        "agent-lifecycle" => format!(
            "{head}: state: '{}' reason: '{}'",
            e.word("state", &words::AGENT_STATE),
            e.word("reason", &words::AGENT_REASON)
        ),
        "migration-iteration" => format!("{head}: iteration: '{}'", e.get("iteration")),
        "metadata-change" => format!("{head}: type {}, uri {}", e.word("type", &words::METADATA_TYPE), e.or_null("nsuri")),
        "block-threshold" => format!(
            "{head}: dev: {}({}) {} {}",
            e.get("dev"),
            e.or_null("path"),
            e.get("threshold"),
            e.get("excess")
        ),
        "memory-failure" => format!(
            "{head}:\nrecipient: {}\naction: {}\nflags:\n\taction required: {}\n\trecursive: {}",
            e.word("recipient", &words::MEMORY_FAILURE_RECIPIENT),
            e.word("action", &words::MEMORY_FAILURE_ACTION),
            e.get("action-required"),
            e.get("recursive")
        ),
        "memory-device-size-change" => format!("{head}:\nalias: {}\nsize: {}", e.get("alias"), e.get("size")),
        "nic-mac-change" => {
            format!("{head}:\nalias: {}\noldMAC: {}\nnewMAC: {}", e.get("alias"), e.get("old-mac"), e.get("new-mac"))
        }
        // reboot, control-error, pm-wakeup, pm-suspend, pm-suspend-disk, and
        // any domain event a newer library adds.
        _ => head,
    }
}

/// Networks, pools, node devices, secrets, and virevent's own events.
fn other_objects(e: &Element, kind: &str) -> String {
    let lifecycle = |object: &str, name: &str, words: &Words| {
        let resync = if e.get("reason") == "resync" { " (resync)" } else { "" };
        format!("event 'lifecycle' for {object} {name}: {}{resync}", e.word("lifecycle", words))
    };
    match kind {
        "network-lifecycle" => lifecycle("network", e.get("network-name"), &words::NETWORK_LIFECYCLE),
        "network-metadata-change" => format!(
            "event 'metadata-change' for network {}: type {}, uri {}",
            e.get("network-name"),
            e.word("type", &words::METADATA_TYPE),
            e.or_null("nsuri")
        ),
        "storage-pool-lifecycle" => lifecycle("storage pool", e.get("pool-name"), &words::POOL_LIFECYCLE),
        "storage-pool-refresh" => format!("event 'refresh' for storage pool {}", e.get("pool-name")),
        "node-device-lifecycle" => lifecycle("node device", e.get("node-device-name"), &words::NODE_DEVICE_LIFECYCLE),
        "node-device-update" => format!("event 'update' for node device {}", e.get("node-device-name")),
        "secret-lifecycle" => lifecycle("secret", e.get("secret-uuid"), &words::SECRET_LIFECYCLE),
        "secret-value-changed" => format!("event 'value-changed' for secret {}", e.get("secret-uuid")),
        "connection-closed" => format!("event 'connection-closed' for connection: {}", e.get("reason")),
        "connection-lost" => format!("event 'connection-lost' for connection: {}: {}", e.get("reason"), e.get("message")),
        "connection-restored" => {
            let missed: Vec<&str> = e.child("may-have-missed").map_or(&[][..], |m| &m.children).iter().map(|c| c.text.as_str()).collect();
            format!(
                "event 'connection-restored' for connection: after {} attempts; may have missed: {}",
                e.get("attempts"),
                missed.join(", ")
            )
        }
        "events-lost" => format!(
            "event 'events-lost' for connection: {} lost, seq {} to {}",
            e.attribute("count"),
            e.attribute("first-seq"),
            e.attribute("last-seq")
        ),
        // An event a program emitted: its type and its children's text.
        _ => {
            let mut out = format!("event '{kind}'");
            for child in &e.children {
                out.push_str(&format!(" {}={}", child.name, child.text));
            }
            out
        }
    }
}

/// A typed parameter's value as virsh prints it (libvirt's
/// `virTypedParameterToString`: doubles as C's `%g`, the rest as they are).
fn param_value(param: &Element) -> String {
    match (param.attribute("type"), param.text.parse::<f64>()) {
        ("double", Ok(value)) => c_g(value),
        _ => param.text.clone(),
    }
}

/// `value` as C's `printf("%g")` writes it: 6 significant digits, trailing
/// zeros dropped, exponent form below 1e-4 or from 1e6 on.
fn c_g(value: f64) -> String {
    if value.is_nan() {
        return if value.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if value.is_infinite() {
        return if value < 0.0 { "-inf" } else { "inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let scientific = format!("{value:.5e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exponent.abs());
    }
    trim(&format!("{value:.*}", (5 - exponent) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOM: &str = "<domain-id>1</domain-id><domain-name>test</domain-name>\
                       <domain-uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</domain-uuid>";

    /// The virsh text of an event of `kind` with `children` (after the
    /// domain's, when `kind` is a domain event).
    fn virsh(kind: &str, children: &str) -> String {
        let dom = if kind.starts_with("domain-") { DOM } else { "" };
        let xml = format!("<event type=\"{kind}\" timestamp=\"1764017966.281000\" seq=\"7\">{dom}{children}</event>");
        let line = render(&xml).unwrap();
        line.strip_prefix("2025-11-24 20:59:26.281+0000: ").unwrap_or_else(|| panic!("{line}")).to_string()
    }

    #[test]
    fn lifecycle_words_are_virshs() {
        let cases = [
            ("suspended-paused", "Suspended Paused"),
            ("started-from-snapshot", "Started Snapshot"),
            ("started-wakeup", "Started Event wakeup"),
            ("suspended-api-error", "Suspended API error"),
            ("suspended-ioerror", "Suspended I/O Error"),
            ("shutdown-guest", "Shutdown Finished after guest request"),
            ("resumed-postcopy-failed", "Resumed Post-copy Error"),
            ("pmsuspended-memory", "PMSuspended Memory"),
            ("suspended-unknown-42", "Suspended unknown"),
            ("unknown-9-unknown-1", "unknown unknown"),
            ("defined-resync", "Defined Resync"),
            ("undefined-resync", "Undefined Resync"),
        ];
        for (reason, words) in cases {
            let children = format!("<old-state>running</old-state><new-state>paused</new-state><reason>{reason}</reason>");
            assert_eq!(virsh("domain-state-transition", &children), format!("event 'lifecycle' for domain 'test': {words}"));
        }
        let resync = "<old-state>paused</old-state><new-state>running</new-state><reason>resync</reason>";
        assert_eq!(virsh("domain-state-transition", resync), "event 'resync' for domain 'test': paused -> running");
    }

    #[test]
    fn every_domain_kind() {
        let cases: &[(&str, &str, &str)] = &[
            ("domain-reboot", "", "event 'reboot' for domain 'test'"),
            ("domain-control-error", "", "event 'control-error' for domain 'test'"),
            ("domain-pm-suspend-disk", "<reason>0</reason>", "event 'pm-suspend-disk' for domain 'test'"),
            ("domain-rtc-change", "<offset>-1</offset>", "event 'rtc-change' for domain 'test': -1"),
            ("domain-watchdog", "<action>inject-nmi</action>", "event 'watchdog' for domain 'test': inject-nmi"),
            ("domain-watchdog", "<action>unknown-9</action>", "event 'watchdog' for domain 'test': unknown"),
            (
                "domain-io-error",
                "<src-path>/a.img</src-path><dev-alias>vda</dev-alias><action>pause</action>",
                "event 'io-error' for domain 'test': /a.img (vda) pause",
            ),
            (
                "domain-io-error-reason",
                "<src-path>/a.img</src-path><dev-alias>vda</dev-alias><action>report</action><reason>enospc</reason>",
                "event 'io-error-reason' for domain 'test': /a.img (vda) report due to enospc",
            ),
            (
                "domain-graphics",
                "<phase>connect</phase><local><family>ipv4</family><node>127.0.0.1</node><service>5900</service></local>\
                 <remote><family>ipv6</family><node>::1</node><service>4000</service></remote><auth-scheme>vnc</auth-scheme>\
                 <subject><identity><type>x509dname</type><name>CN=a</name></identity></subject>",
                "event 'graphics' for domain 'test': connect local[IPv4 127.0.0.1 5900] remote[IPv6 ::1 4000] vnc\n\tx509dname=CN=a",
            ),
            (
                "domain-block-job",
                "<path>/a.img</path><type>copy</type><status>ready</status>",
                "event 'block-job' for domain 'test': Block Copy for /a.img ready",
            ),
            (
                "domain-block-job-2",
                "<dst>vda</dst><type>active-commit</type><status>completed</status>",
                "event 'block-job-2' for domain 'test': Active Block Commit for vda completed",
            ),
            (
                "domain-disk-change",
                "<old-src-path>/old.iso</old-src-path><dev-alias>ide0</dev-alias><reason>drop-missing-on-start</reason>",
                "event 'disk-change' for domain 'test' disk ide0: /old.iso -> <null>: dropped",
            ),
            (
                "domain-tray-change",
                "<dev-alias>sata0-0-0</dev-alias><reason>open</reason>",
                "event 'tray-change' for domain 'test' disk sata0-0-0: opened",
            ),
            ("domain-balloon-change", "<actual>1024</actual>", "event 'balloon-change' for domain 'test': 1024KiB"),
            ("domain-device-added", "<dev-alias>usb-disk1</dev-alias>", "event 'device-added' for domain 'test': usb-disk1"),
            (
                "domain-tunable",
                "<param name=\"cputune.cpu_shares\" type=\"ullong\">512</param><param name=\"r\" type=\"double\">0.25</param>",
                "event 'tunable' for domain 'test':\n\tcputune.cpu_shares: 512\n\tr: 0.25",
            ),
            ("domain-job-completed", "", "event 'job-completed' for domain 'test':"),
            (
                "domain-agent-lifecycle",
                "<state>connected</state><reason>channel</reason>",
                "event 'agent-lifecycle' for domain 'test': state: 'connected' reason: 'channel event'",
            ),
            ("domain-migration-iteration", "<iteration>2</iteration>", "event 'migration-iteration' for domain 'test': iteration: '2'"),
            ("domain-metadata-change", "<type>title</type>", "event 'metadata-change' for domain 'test': type title, uri <null>"),
            (
                "domain-metadata-change",
                "<type>unknown-7</type><nsuri>http://x/</nsuri>",
                "event 'metadata-change' for domain 'test': type unsupported value, uri http://x/",
            ),
            (
                "domain-block-threshold",
                "<dev>vda</dev><threshold>1024</threshold><excess>5</excess>",
                "event 'block-threshold' for domain 'test': dev: vda(<null>) 1024 5",
            ),
            (
                "domain-memory-failure",
                "<recipient>guest</recipient><action>reset</action><action-required>1</action-required><recursive>0</recursive>",
                "event 'memory-failure' for domain 'test':\nrecipient: guest\naction: reset\nflags:\n\taction required: 1\n\trecursive: 0",
            ),
            (
                "domain-memory-device-size-change",
                "<alias>m0</alias><size>524288</size>",
                "event 'memory-device-size-change' for domain 'test':\nalias: m0\nsize: 524288",
            ),
            (
                "domain-nic-mac-change",
                "<alias>net0</alias><old-mac>a</old-mac><new-mac>b</new-mac>",
                "event 'nic-mac-change' for domain 'test':\nalias: net0\noldMAC: a\nnewMAC: b",
            ),
        ];
        for (kind, children, expected) in cases {
            assert_eq!(virsh(kind, children), *expected, "{kind}");
        }
    }

    #[test]
    fn other_objects_and_virevents_own() {
        let cases: &[(&str, &str, &str)] = &[
            ("network-lifecycle", "<network-name>default</network-name><network-uuid>u</network-uuid><lifecycle>started</lifecycle><detail>0</detail>", "event 'lifecycle' for network default: Started"),
            ("network-metadata-change", "<network-name>n</network-name><network-uuid>u</network-uuid><type>title</type>", "event 'metadata-change' for network n: type title, uri <null>"),
            ("storage-pool-lifecycle", "<pool-name>p</pool-name><pool-uuid>u</pool-uuid><lifecycle>deleted</lifecycle><detail>0</detail>", "event 'lifecycle' for storage pool p: Deleted"),
            ("storage-pool-refresh", "<pool-name>p</pool-name><pool-uuid>u</pool-uuid>", "event 'refresh' for storage pool p"),
            ("node-device-lifecycle", "<node-device-name>scsi_host7</node-device-name><lifecycle>unknown-8</lifecycle><detail>0</detail>", "event 'lifecycle' for node device scsi_host7: unknown"),
            ("node-device-update", "<node-device-name>net_lo</node-device-name>", "event 'update' for node device net_lo"),
            ("secret-lifecycle", "<secret-uuid>u1</secret-uuid><secret-usage-type>ceph</secret-usage-type><secret-usage-id>c</secret-usage-id><lifecycle>undefined</lifecycle><detail>0</detail>", "event 'lifecycle' for secret u1: Undefined"),
            ("secret-value-changed", "<secret-uuid>u1</secret-uuid><secret-usage-type>none</secret-usage-type><secret-usage-id></secret-usage-id>", "event 'value-changed' for secret u1"),
            ("connection-closed", "<reason>eof</reason>", "event 'connection-closed' for connection: eof"),
            ("connection-lost", "<reason>eof</reason><message>gone</message>", "event 'connection-lost' for connection: eof: gone"),
            (
                "connection-restored",
                "<outage-start>1.000000</outage-start><outage-end>2.000000</outage-end><attempts>3</attempts>\
                 <may-have-missed><event-type>domain-reboot</event-type><event-type>domain-rtc-change</event-type></may-have-missed>",
                "event 'connection-restored' for connection: after 3 attempts; may have missed: domain-reboot, domain-rtc-change",
            ),
            (
                "network-lifecycle",
                "<network-name>default</network-name><network-uuid>u</network-uuid><lifecycle>started</lifecycle><detail>0</detail><reason>resync</reason>",
                "event 'lifecycle' for network default: Started (resync)",
            ),
            ("probe", "<a>1</a><b>x y</b>", "event 'probe' a=1 b=x y"),
        ];
        for (kind, children, expected) in cases {
            assert_eq!(virsh(kind, children), *expected, "{kind}");
        }
        let lost = "<event type=\"events-lost\" timestamp=\"1764017966.281000\" seq=\"0\" count=\"3\" first-seq=\"4\" last-seq=\"6\"/>";
        assert_eq!(render(lost).unwrap(), "2025-11-24 20:59:26.281+0000: event 'events-lost' for connection: 3 lost, seq 4 to 6");
    }

    #[test]
    fn doubles_print_as_c_percent_g() {
        let cases = [
            (0.25, "0.25"),
            (1.0, "1"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (123456789.0, "1.23457e+08"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (999999.5, "1e+06"),
            (0.0, "0"),
        ];
        for (value, text) in cases {
            assert_eq!(c_g(value), text, "{value}");
        }
    }
}
