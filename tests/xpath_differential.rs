//! Runs tests/xpath/differential.py: every XPath filter of tests/xpath/generate.py
//! (hand-written and generated) against every event there, through the
//! libvirevent.so that this `cargo test` built and through libxml2 (Python's
//! lxml), requiring the same boolean for each pair.

mod common;

#[test]
fn xpath_matches_libxml2() {
    common::run_python("tests/xpath/differential.py", &[], "XPath against libxml2", &[common::tools::LXML]);
}
