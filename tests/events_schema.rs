//! docs/events.rng against the code: every type the library can produce (the
//! kinds table's, its own, the embedded test driver's) is a type the schema
//! defines, and no other; the events the library makes of a daemon's bytes (one
//! packet of each body layout: the fuzz seeds), of the test driver's domain
//! operations and of a full queue are valid; and the schema refuses what the
//! library never writes, so that the validation of every test's events
//! (tests/common/schema.rs) can fail.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use virevent::{Connection, Filter};

mod common;

use common::root;
use common::schema::{self, library_types, xmllint};

fn rng() -> String {
    std::fs::read_to_string(root().join("docs/events.rng")).unwrap()
}

/// The body of `<define name="NAME">`, up to its `</define>`.
fn define<'a>(rng: &'a str, name: &str) -> Option<&'a str> {
    let (_, rest) = rng.split_once(&format!("<define name=\"{name}\">"))?;
    Some(rest.split_once("</define>")?.0)
}

/// The types the schema defines: each `ref` of the define `event`, a define
/// of its own whose root `<event>` has that `type`.
fn schema_types() -> BTreeSet<String> {
    let rng = rng();
    let event = define(&rng, "event").expect("a define named event");
    let mut types = BTreeSet::new();
    for part in event.split("<ref name=\"").skip(1) {
        let name = part.split('"').next().unwrap();
        let body = define(&rng, name).unwrap_or_else(|| panic!("docs/events.rng refs {name} and defines no {name}"));
        let fixed = format!("<attribute name=\"type\"><value type=\"string\">{name}</value></attribute>");
        assert!(
            body.trim_start().starts_with("<element name=\"event\">") && body.contains(&fixed),
            "docs/events.rng: {name} is not an <event> of type {name}"
        );
        assert!(types.insert(name.to_string()), "docs/events.rng refs {name} twice");
    }
    types
}

#[test]
fn every_type_the_library_produces_is_defined_and_no_other() {
    let defined = schema_types();
    let produced: BTreeSet<String> = library_types().into_iter().collect();
    let missing: Vec<&String> = produced.difference(&defined).collect();
    assert!(missing.is_empty(), "docs/events.rng lacks {missing:?}");
    let extra: Vec<&String> = defined.difference(&produced).collect();
    assert!(extra.is_empty(), "docs/events.rng defines {extra:?}, which the library does not produce");
    // The embedded test driver's events are of one of them.
    assert!(defined.contains("domain-state-transition"));
}

/// What the fuzz seeds (fuzz/corpus/daemon/seed-*: one packet of each body
/// layout) become.
fn seed_events() -> Vec<String> {
    let dir = root().join("fuzz/corpus/daemon");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    seeds.sort();
    seeds.iter().flat_map(|seed| virevent::daemon_bytes_events(&std::fs::read(seed).unwrap())).collect()
}

/// The events of the test driver's domain operations, and an `events-lost`.
fn embedded_events() -> Vec<String> {
    let conn = Connection::open(None).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    conn.add_handler(Filter::All, move |e| sink.lock().unwrap().push(e.xml().to_string())).unwrap();
    let dom = conn.lookup_domain("test").unwrap();
    dom.suspend().unwrap();
    dom.resume().unwrap();
    dom.destroy().unwrap();
    dom.create().unwrap();
    dom.shutdown().unwrap();
    dom.create().unwrap();
    conn.deliver().unwrap();
    // A queue of one: the second and third are dropped, and a notice follows.
    conn.set_queue_limit(1).unwrap();
    for _ in 0..3 {
        dom.suspend().unwrap();
        dom.resume().unwrap();
    }
    conn.deliver().unwrap();
    conn.deliver().unwrap();
    conn.close().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().any(|l| l.starts_with("<event type=\"events-lost\"")), "{seen:?}");
    seen
}

/// The example lines of docs/events.md and docs/api.md that are whole events.
fn doc_examples() -> Vec<String> {
    ["docs/events.md", "docs/api.md"]
        .iter()
        .flat_map(|doc| {
            let text = std::fs::read_to_string(root().join(doc)).unwrap();
            text.lines()
                .filter(|l| l.starts_with("<event ") && l.ends_with("</event>") || l.ends_with("\"/>") && l.starts_with("<event "))
                .filter(|l| !l.contains("timestamp=\"...\""))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_librarys_own_events_are_valid() {
    let seeds = seed_events();
    let types: BTreeSet<&str> = seeds.iter().filter_map(|l| schema::type_of(l)).collect();
    assert!(types.len() >= 10, "{types:?}");
    let embedded = embedded_events();
    let examples = doc_examples();
    assert!(examples.len() >= 5, "{examples:?}");
    for (what, lines) in [("the fuzz seeds' events", seeds), ("the test driver's events", embedded), ("the docs' examples", examples)]
    {
        schema::validate(&format!("events_schema: {what}"), &lines);
    }
}

const UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// `<event type="TYPE" ...>` of domain `test` with `rest` after its identity.
fn domain_event(type_name: &str, rest: &str) -> String {
    format!(
        "<event type=\"{type_name}\" timestamp=\"1764017966.281000\" seq=\"7\"><domain-id>1</domain-id>\
         <domain-name>test</domain-name><domain-uuid>{UUID}</domain-uuid>{rest}</event>"
    )
}

/// Events as the library writes them for the numbers it does not know and the
/// optional fields (src/driver/remote/kinds.rs's tests), which the seeds lack.
fn valid_cases() -> Vec<String> {
    vec![
        domain_event("domain-state-transition", "<old-state>unknown-12</old-state><new-state>nostate</new-state><reason>unknown-9-unknown--1</reason>"),
        domain_event("domain-state-transition", "<old-state>running</old-state><new-state>paused</new-state><reason>suspended-unknown-9</reason>"),
        domain_event("domain-state-transition", "<old-state>running</old-state><new-state>running</new-state><reason>defined-updated</reason>"),
        domain_event("domain-agent-lifecycle", "<state>unknown-9</state><reason>domain-started</reason>"),
        domain_event("domain-state-transition", "<old-state>paused</old-state><new-state>running</new-state><reason>resync</reason>"),
        domain_event("domain-state-transition", "<old-state>nostate</old-state><new-state>paused</new-state><reason>defined-resync</reason>"),
        domain_event("domain-state-transition", "<old-state>running</old-state><new-state>shutoff</new-state><reason>undefined-resync</reason>"),
        format!(
            "<event type=\"storage-pool-lifecycle\" timestamp=\"1764017966.281000\" seq=\"3\"><pool-name>p</pool-name>\
             <pool-uuid>{UUID}</pool-uuid><lifecycle>started</lifecycle><detail>0</detail><reason>resync</reason></event>"
        ),
        domain_event(
            "domain-graphics",
            "<phase>disconnect</phase><local><family>unix</family><node>/s</node><service></service></local>\
             <remote><family>unknown-7</family><node></node><service></service></remote><auth-scheme>none</auth-scheme><subject></subject>",
        ),
        domain_event("domain-disk-change", "<dev-alias>ide0</dev-alias><reason>unknown-2</reason>"),
        domain_event("domain-job-completed", ""),
        domain_event(
            "domain-tunable",
            "<param name=\"a\" type=\"int\">-1</param><param name=\"b\" type=\"double\">0.25</param>\
             <param name=\"c\" type=\"double\">-inf</param><param name=\"d\" type=\"boolean\">1</param><param name=\"e\" type=\"string\"></param>",
        ),
        format!(
            "<event type=\"network-lifecycle\" timestamp=\"1764017966.281000\" seq=\"3\"><network-name>default</network-name>\
             <network-uuid>{UUID}</network-uuid><lifecycle>unknown-4</lifecycle><detail>1</detail></event>"
        ),
        "<event type=\"connection-closed\" timestamp=\"1764017966.281000\" seq=\"9\"><reason>keepalive</reason></event>".into(),
        "<event type=\"events-lost\" timestamp=\"1764017966.281000\" seq=\"0\" count=\"2\" first-seq=\"8\" last-seq=\"9\"/>".into(),
        "<event type=\"connection-lost\" timestamp=\"1764017966.281000\" seq=\"9\"><reason>eof</reason><message></message></event>".into(),
        "<event type=\"connection-restored\" timestamp=\"1764017966.281000\" seq=\"10\"><outage-start>1764017966.281000</outage-start>\
         <outage-end>1764017967.281000</outage-end><attempts>1</attempts><may-have-missed/></event>".into(),
        // virevent-watch with several --uri names each event's connection last.
        domain_event("domain-reboot", "").replace(" seq=\"7\"", " seq=\"7\" uri=\"test+unix:///default?socket=/a&amp;b\""),
        "<event type=\"events-lost\" timestamp=\"1764017966.281000\" seq=\"0\" count=\"2\" first-seq=\"8\" last-seq=\"9\" uri=\"test:///default\"/>".into(),
    ]
}

/// Events the library never writes, one fault each.
fn invalid_cases() -> Vec<(&'static str, String)> {
    let transition = |old: &str, new: &str, reason: &str| {
        domain_event("domain-state-transition", &format!("<old-state>{old}</old-state><new-state>{new}</new-state><reason>{reason}</reason>"))
    };
    vec![
        ("an unknown type", domain_event("domain-rebooted", "")),
        ("a program's own type", "<event type=\"t\" timestamp=\"1764017966.281000\" seq=\"7\"/>".into()),
        ("an element too many", domain_event("domain-reboot", "<x/>")),
        ("a wrong element", domain_event("domain-tray-change", "<dev-alias>a</dev-alias><reasons>open</reasons>")),
        ("an element missing", domain_event("domain-tray-change", "<reason>open</reason>")),
        ("elements out of order", domain_event("domain-tray-change", "<reason>open</reason><dev-alias>a</dev-alias>")),
        ("a bad enum word", domain_event("domain-tray-change", "<dev-alias>a</dev-alias><reason>opened</reason>")),
        ("a bad unknown number", domain_event("domain-watchdog", "<action>unknown-x</action>")),
        ("a word with spaces", domain_event("domain-watchdog", "<action> pause</action>")),
        ("a bad state", transition("running", "frozen", "suspended-paused")),
        ("a reason another state's", transition("running", "running", "suspended-paused")),
        ("a bad reason", transition("running", "paused", "suspended-pausd")),
        ("a number with a plus", domain_event("domain-rtc-change", "<offset>+5</offset>")),
        ("a negative unsigned", domain_event("domain-balloon-change", "<actual>-1</actual>")),
        ("a param of a bad type", domain_event("domain-tunable", "<param name=\"a\" type=\"float\">1</param>")),
        ("a param whose value is not its type", domain_event("domain-tunable", "<param name=\"a\" type=\"uint\">-1</param>")),
        ("a flag of 2", domain_event("domain-memory-failure", "<recipient>guest</recipient><action>reset</action><action-required>2</action-required><recursive>0</recursive>")),
        ("an upper-case uuid", domain_event("domain-reboot", "").replace(UUID, &UUID.to_uppercase())),
        ("a timestamp without micros", domain_event("domain-reboot", "").replace("1764017966.281000", "1764017966")),
        ("seq 0 on an event", domain_event("domain-reboot", "").replace("seq=\"7\"", "seq=\"0\"")),
        ("no seq", domain_event("domain-reboot", "").replace(" seq=\"7\"", "")),
        ("a uri on a child", domain_event("domain-reboot", "").replace("<domain-id>", "<domain-id uri=\"x\">")),
        ("an attribute too many", domain_event("domain-reboot", "").replace(" seq=\"7\"", " seq=\"7\" a=\"1\"")),
        ("a bad close reason", "<event type=\"connection-closed\" timestamp=\"1764017966.281000\" seq=\"9\"><reason>unknown-4</reason></event>".into()),
        ("a resync reason on another event", domain_event("domain-reboot", "<reason>resync</reason>")),
        ("a resync of no state", transition("running", "frozen", "resync")),
        ("attempts 0", "<event type=\"connection-restored\" timestamp=\"1764017966.281000\" seq=\"10\"><outage-start>1764017966.281000</outage-start>\
         <outage-end>1764017967.281000</outage-end><attempts>0</attempts><may-have-missed/></event>".into()),
        ("connection-lost without its message", "<event type=\"connection-lost\" timestamp=\"1764017966.281000\" seq=\"9\"><reason>eof</reason></event>".into()),
        ("events-lost with children", "<event type=\"events-lost\" timestamp=\"1764017966.281000\" seq=\"0\" count=\"2\" first-seq=\"8\" last-seq=\"9\"><x/></event>".into()),
        ("events-lost with a seq", "<event type=\"events-lost\" timestamp=\"1764017966.281000\" seq=\"3\" count=\"2\" first-seq=\"8\" last-seq=\"9\"/>".into()),
    ]
}

#[test]
fn the_schema_takes_what_the_library_writes_and_refuses_the_rest() {
    let valid = valid_cases();
    if schema::validate("events_schema: numbers the library does not know", &valid).is_none() {
        return;
    }
    for (fault, xml) in invalid_cases() {
        let failure = xmllint(&[&xml]).err().unwrap_or_else(|| panic!("docs/events.rng takes {fault}: {xml}"));
        assert_eq!(failure.lines, [0], "{fault}: {}", failure.messages);
        let _ = std::fs::remove_dir_all(&failure.dir);
    }
    // A bad event among good ones fails the batch, and is the line named.
    let mut lines: Vec<&str> = valid.iter().map(String::as_str).collect();
    let bad = domain_event("domain-reboot", "<x/>");
    lines.insert(3, &bad);
    let failure = xmllint(&lines).expect_err("a batch with a bad event");
    assert_eq!(failure.lines, [3], "{}", failure.messages);
    let _ = std::fs::remove_dir_all(&failure.dir);
}
