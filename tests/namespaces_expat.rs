//! Runs tests/namespaces/expat.py: emitted events with namespace declarations
//! and prefixes, well-formed and not, through the libvirevent.so that this
//! `cargo test` built and through expat (Python's xml.etree.ElementTree, with
//! namespace processing), which must agree on each (standard library only).
//! Skipped, with one line, where python3 is missing.

mod common;

#[test]
fn namespaces_agree_with_expat() {
    common::run_python("tests/namespaces/expat.py", &[], "namespaces against expat", &[]);
}
