//! Runs the Python tests against the libvirevent.so that this `cargo test` built:
//! tests/python/test_ctypes.py, the C ABI driven from Python through ctypes,
//! tests/python/test_bindings.py, the Python module bindings/python/virevent.py,
//! and tests/python/test_package.py, the package `pip install bindings/python`
//! installs into a fresh venv. And the package's version is the crate's. The
//! events the handlers of the ctypes and bindings tests receive are validated
//! against docs/events.rng.

mod common;

#[test]
fn ctypes() {
    run_validated("tests/python/test_ctypes.py", "the C API through ctypes", "python-ctypes.seen");
}

#[test]
fn bindings() {
    run_validated("tests/python/test_bindings.py", "the Python bindings", "python-bindings.seen");
}

/// Runs `script` with VIREVENT_SEEN_LOG naming `log`: every event its handlers
/// receive from the library must be valid against docs/events.rng (the script
/// logs them as tests/c/seen_log.h does).
fn run_validated(script: &str, what: &str, log: &str) {
    let seen = common::library_dir().join(log);
    let _ = std::fs::remove_file(&seen);
    if common::run_python_with(script, &["-v"], what, &[], &[("VIREVENT_SEEN_LOG", &seen)]) {
        if let Some(checked) = common::schema::validate_log(what, &seen) {
            println!("{what}: {} events valid against docs/events.rng, {} its own", checked.validated, checked.own);
        }
    }
    let _ = std::fs::remove_file(&seen);
}

/// Needs python3 with venv and pip, and nothing from a package index: the
/// build backend is the package's own, standard library only.
#[test]
fn package() {
    common::run_python("tests/python/test_package.py", &["-v"], "the Python package (pip install)", &[
        common::tools::VENV,
    ]);
}

/// The first `KEY = "VALUE"` line of `text` (after `section`, when given).
fn quoted<'a>(text: &'a str, section: Option<&str>, key: &str) -> Option<&'a str> {
    let text = match section {
        Some(section) => text.split_once(&format!("\n{section}\n"))?.1,
        None => text,
    };
    let prefix = format!("{key} = \"");
    text.lines().find_map(|line| line.strip_prefix(prefix.as_str())?.strip_suffix('"'))
}

#[test]
fn package_version_is_the_crate_version() {
    let read = |path: &str| std::fs::read_to_string(common::root().join(path)).unwrap();
    let crate_version = env!("CARGO_PKG_VERSION");
    let pyproject = read("bindings/python/pyproject.toml");
    assert_eq!(quoted(&pyproject, Some("[project]"), "version"), Some(crate_version), "bindings/python/pyproject.toml");
    let module = read("bindings/python/virevent.py");
    assert_eq!(quoted(&module, None, "__version__"), Some(crate_version), "bindings/python/virevent.py");
    // The line `make install` rewrites, exactly once.
    assert_eq!(module.lines().filter(|line| *line == "INSTALL_LIBDIR = None").count(), 1, "virevent.py's INSTALL_LIBDIR line");
}
