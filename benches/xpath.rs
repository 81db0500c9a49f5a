//! Per-event cost of XPath filters: building the event's tree and evaluating
//! the expression, for the four expressions of the XPath issue against the core
//! issue's event; beside it, lxml (libxml2) doing the same (parse the event,
//! evaluate a compiled XPath) in the same run, when python3 has lxml.
//! `cargo bench --bench xpath`

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use virevent::event::parse;
use virevent::xpath::{Tree, XPath};

const EVENT: &str = r#"<event type="domain-state-transition" timestamp="1221756307.123456"><domain-id>3</domain-id><domain-name>vm1</domain-name><old-state>running</old-state><new-state>paused</new-state><reason>suspended-paused</reason></event>"#;

const EXPRESSIONS: [&str; 4] = [
    "/event[new-state='crashed']",
    "//domain-name = 'vm1'",
    "/event[@type='domain-state-transition' and domain-id > 2]",
    "count(/event/*) > 3",
];

const ROUNDS: u32 = 1_000_000;

const LXML: &str = r#"
import sys, time
from lxml import etree
xml, rounds = sys.argv[1].encode(), int(sys.argv[2])
for expr in sys.argv[3:]:
    xpath = etree.XPath('boolean(' + expr + ')')
    start = time.perf_counter()
    for _ in range(rounds):
        xpath(etree.fromstring(xml))
    print((time.perf_counter() - start) / rounds * 1e9)
"#;

fn main() {
    let xml = parse(EVENT).expect("the event").seal(1).xml().to_string();
    let lxml = lxml_ns(&xml);
    println!("{:<60} {:>12} {:>12} {:>8}", "expression (tree building included)", "virevent", "lxml", "ratio");
    for (i, expr) in EXPRESSIONS.iter().enumerate() {
        let xpath = XPath::compile(expr).expect("compiles");
        let start = Instant::now();
        for _ in 0..ROUNDS {
            black_box(xpath.matches(&Tree::build(black_box(&xml))));
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(ROUNDS);
        match lxml.as_ref().and_then(|l| l.get(i)) {
            Some(l) => println!("{expr:<60} {ns:>9.0} ns {l:>9.0} ns {:>7.1}x", l / ns),
            None => println!("{expr:<60} {ns:>9.0} ns {:>12} {:>8}", "(no lxml)", "-"),
        }
    }
}

/// lxml's ns per event for each expression, if python3 and lxml are there.
fn lxml_ns(xml: &str) -> Option<Vec<f64>> {
    let rounds = (ROUNDS / 10).to_string();
    let output = Command::new("python3").args(["-c", LXML, xml, &rounds]).args(EXPRESSIONS).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let times: Vec<f64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    (output.status.success() && times.len() == EXPRESSIONS.len()).then_some(times)
}
