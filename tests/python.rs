//! Runs tests/python/test_ctypes.py, the C ABI driven from Python through
//! ctypes, against the libvirevent.so that this `cargo test` built.

mod common;

#[test]
fn ctypes() {
    common::run_python("tests/python/test_ctypes.py", &["-v"], "the ctypes test needs it");
}
