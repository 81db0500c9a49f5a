//! Runs tests/xpath/differential.py: every XPath filter of tests/xpath/generate.py
//! (hand-written and generated) against every event there, through the
//! libvirevent.so that this `cargo test` built and through libxml2 (Python's
//! lxml), requiring the same boolean for each pair (issue 4).

use std::path::{Path, PathBuf};
use std::process::Command;

/// target/debug/deps: where `cargo test` builds libvirevent.so afresh (it does
/// not refresh the copy in target/debug, which `cargo build` makes).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("deps dir").to_path_buf()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn xpath_matches_libxml2() {
    let dir = library_dir();
    let lib = dir.join("libvirevent.so");
    assert!(lib.is_file(), "no libvirevent.so in {}", dir.display());
    let script = root().join("tests/xpath/differential.py");

    let output = match Command::new("python3")
        .arg(&script)
        .current_dir(root())
        .env("VIREVENT_LIB", &lib)
        // cargo's LD_LIBRARY_PATH names target/debug too, where another build's
        // library may stand: this build's directory only.
        .env("LD_LIBRARY_PATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("python3 is not installed (or not on PATH): the XPath differential test needs it and lxml (.ci/run installs both)")
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(output.status.success(), "{} failed ({}):\n{stdout}{stderr}", script.display(), output.status);
}
