//! Every C export runs inside the one wrapper (src/ffi/boundary.rs) that resets
//! the last error and catches panics, directly or through an export or helper
//! that does; every callback the library hands to C code (not exported)
//! catches panics itself; and the header declares exactly the exports.

use std::path::Path;

/// (name, body) of each exported (`#[no_mangle]`) `extern "C" fn` in
/// src/ffi, or with `callbacks`, of each other one.
fn exports_or(callbacks: bool) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = source.as_str();
        while let Some(at) = rest.find("extern \"C\" fn ") {
            let after = &rest[at + "extern \"C\" fn ".len()..];
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let body_start = after.find(" {\n").expect("export body");
            let body_end = after[body_start..].find("\n}\n").map_or(after.len(), |e| body_start + e);
            let before = &rest[..at];
            let exported = before.ends_with("#[no_mangle]\npub unsafe ") || before.ends_with("#[no_mangle]\npub ");
            if exported != callbacks {
                found.push((name, after[body_start..body_end].to_string()));
            }
            rest = &after[body_end..];
        }
    }
    found
}

fn exports() -> Vec<(String, String)> {
    exports_or(false)
}

#[test]
fn every_callback_catches_panics() {
    let callbacks = exports_or(true);
    assert!(!callbacks.is_empty(), "virConnectAuthPtrDefault's callback");
    for (name, body) in &callbacks {
        let first = body.lines().skip(1).map(str::trim).find(|l| !l.starts_with("//")).unwrap_or_default();
        assert!(first.contains("std::panic::catch_unwind("), "{name} does not start by catching panics: {first}");
    }
}

#[test]
fn every_export_runs_inside_the_wrapper() {
    let exports = exports();
    assert!(exports.len() >= 18, "found only {} exports", exports.len());
    let names: Vec<&str> = exports.iter().map(|(n, _)| n.as_str()).collect();
    for (name, body) in &exports {
        let mut code = body.lines().skip(1).map(str::trim).filter(|l| !l.starts_with("//"));
        let first = code.next().unwrap_or_default();
        let second = code.next().unwrap_or_default();
        let wrapped = first.starts_with("guard(")
            || first.starts_with("guard_query(")
            || first.starts_with("unsafe { operate(")
            // Taking ownership of arg/freecb first, so that every failure frees it.
            || (first.starts_with("let user = UserData") && second.starts_with("guard("))
            || names.iter().any(|other| first.starts_with(&format!("unsafe {{ {other}(")));
        assert!(wrapped, "{name} does not start with the wrapper: {first}");
    }
}

#[test]
fn header_declares_exactly_the_exports() {
    let header = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/virevent.h")).unwrap();
    let mut exports: Vec<String> = exports().into_iter().map(|(n, _)| n).collect();
    let mut declared: Vec<String> = header
        .lines()
        .filter(|l| !l.starts_with([' ', '*', '/', '#']) && !l.starts_with("typedef") && l.contains('('))
        .filter_map(|l| l.split('(').next()?.rsplit([' ', '*']).next().map(str::to_string))
        .filter(|name| name.starts_with("vir"))
        .collect();
    exports.sort();
    declared.sort();
    assert_eq!(exports, declared);
}
