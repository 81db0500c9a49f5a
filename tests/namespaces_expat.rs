//! Runs tests/namespaces/expat.py: emitted events with namespace declarations
//! and prefixes, well-formed and not, through the libvirevent.so that this
//! `cargo test` built and through expat (Python's xml.etree.ElementTree, with
//! namespace processing), which must agree on each (standard library only).
//! Skipped, with a note, where python3 is missing.

mod common;

#[test]
fn namespaces_agree_with_expat() {
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed (the reference side of this test is its expat)");
        return;
    }
    common::run_python("tests/namespaces/expat.py", &[], "the namespace test needs it");
}
