//! The committed header is what cbindgen generates from the sources today.
//! `VIREVENT_BLESS=1 cargo test --test header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = root.join("include/virevent.h");
    if std::env::var_os("VIREVENT_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/virevent.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/virevent.h is stale: run `VIREVENT_BLESS=1 cargo test --test header` and commit it"
    );
}

/// Only the C API's own constants reach C: a Rust constant that cbindgen picks up
/// must be excluded in cbindgen.toml.
#[test]
fn header_defines_only_vir_names() {
    let header = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/virevent.h")).unwrap();
    for line in header.lines().filter(|l| l.starts_with("#define ")) {
        let name = line.split_whitespace().nth(1).unwrap_or_default();
        assert!(name.starts_with("VIR_") || name == "VIREVENT_H", "{name} is no C API constant: exclude it in cbindgen.toml");
    }
}
