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

/// The header's virErrorNumber is ErrorCode, the one table of error codes:
/// every code, by name and number, both ways.
#[test]
fn header_error_codes_are_the_core_codes() {
    let header = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/virevent.h")).unwrap();
    let body = header.split("typedef enum {").find(|part| part.contains("} virErrorNumber;")).expect("virErrorNumber");
    let body = &body[..body.find("} virErrorNumber;").unwrap()];
    let in_header: Vec<(String, i32)> = body
        .lines()
        .filter_map(|line| {
            let (name, value) = line.trim().trim_end_matches(',').split_once(" = ")?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect();
    let in_core: Vec<(String, i32)> =
        virevent::ErrorCode::ALL.iter().map(|code| (code.c_name().to_string(), *code as i32)).collect();
    assert_eq!(in_header, in_core);
}

/// Every unsafe export says, under `# Safety`, what its caller must hold to
/// (clippy's missing_safety_doc, checked here too so that `cargo test` says it).
#[test]
fn every_unsafe_export_has_a_safety_section() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with("pub unsafe extern \"C\" fn ") {
                continue;
            }
            let docs = lines[..i].iter().rev().skip_while(|l| l.starts_with("#[")).take_while(|l| l.starts_with("///"));
            if !docs.clone().any(|l| l.trim() == "/// # Safety") {
                missing.push(format!("{}: {line}", path.display()));
            }
        }
    }
    assert!(missing.is_empty(), "exports without a # Safety section:\n{}", missing.join("\n"));
}
