//! Runs the Python tests against the libvirevent.so that this `cargo test` built:
//! tests/python/test_ctypes.py, the C ABI driven from Python through ctypes, and
//! tests/python/test_bindings.py, the Python module bindings/python/virevent.py.

mod common;

#[test]
fn ctypes() {
    common::run_python("tests/python/test_ctypes.py", &["-v"], "the C API through ctypes", &[]);
}

#[test]
fn bindings() {
    common::run_python("tests/python/test_bindings.py", &["-v"], "the Python bindings", &[]);
}
