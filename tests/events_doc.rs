//! docs/events.md against the code: every type the kinds table
//! (src/driver/remote/kinds.rs) produces, and the library's own, has its
//! section or row there; and every example line in it is an event exactly as
//! the library writes it (its own canonical form, of a type it names).

use std::path::Path;

mod common;

use common::schema::{table_types, OWN_TYPES};

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn every_type_produced_is_documented() {
    let doc = read("docs/events.md");
    for kind in table_types().iter().map(String::as_str).chain(OWN_TYPES) {
        assert!(doc.contains(&format!("`{kind}`")) || doc.contains(&format!("## {kind} ")), "docs/events.md lacks {kind}");
    }
}

#[test]
fn every_example_is_a_canonical_event() {
    let doc = read("docs/events.md");
    let types = table_types();
    let mut examples = 0;
    for block in doc.split("```xml\n").skip(1) {
        for line in block.split("```").next().unwrap().lines() {
            // The library gives the seq: parse without it, seal with it.
            let (head, rest) = line.split_once(" seq=\"").unwrap();
            let (seq, rest) = rest.split_once('"').unwrap();
            let draft = virevent::event::parse(&format!("{head}{rest}")).unwrap_or_else(|e| panic!("{line}: {}", e.message));
            let event = draft.seal(seq.parse().unwrap());
            assert_eq!(event.xml(), line, "not canonical");
            assert!(
                types.iter().any(|t| t == event.kind()) || OWN_TYPES.contains(&event.kind()),
                "{} is not a type the library makes",
                event.kind()
            );
            examples += 1;
        }
    }
    assert!(examples >= 5, "{examples} examples");
}
