//! Installed like a C library: `make -C examples-c install-files` puts the
//! library (with its soname links), the static archive, the header and
//! virevent.pc under a prefix; a C program then builds with pkg-config's flags
//! alone and runs. And the shared library exports exactly the header's
//! functions, as `nm -D` sees them.

use std::path::Path;
use std::process::Command;

mod common;

use common::{library_dir, root};

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{command:?} failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The package version, as the Makefile reads it from Cargo.toml.
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn installs_into_a_prefix_and_builds_the_demo_with_pkg_config() {
    let prefix = std::env::temp_dir().join(format!("virevent-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    run(Command::new("make")
        .args(["-s", "-C"])
        .arg(root().join("examples-c"))
        .arg("install-files")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("LIBDIR={}", library_dir().display())));

    let lib = prefix.join("lib");
    let real = format!("libvirevent.so.{VERSION}");
    assert!(lib.join(&real).is_file(), "no {real}");
    assert_eq!(std::fs::read_link(lib.join("libvirevent.so.0")).unwrap(), Path::new(&real));
    assert_eq!(std::fs::read_link(lib.join("libvirevent.so")).unwrap(), Path::new("libvirevent.so.0"));
    assert!(lib.join("libvirevent.a").is_file());
    assert!(prefix.join("include/virevent.h").is_file());

    let pkg = |args: &[&str]| {
        run(Command::new("pkg-config").args(args).arg("virevent").env("PKG_CONFIG_PATH", lib.join("pkgconfig")))
    };
    assert_eq!(pkg(&["--modversion"]).trim(), VERSION);
    let flags = pkg(&["--cflags", "--libs"]);
    assert!(flags.contains(&format!("-I{}/include", prefix.display())), "{flags}");

    // Shared: cc demo.c $(pkg-config --cflags --libs virevent).
    let demo = prefix.join("demo");
    run(Command::new("cc")
        .arg(root().join("examples-c/demo.c"))
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(&demo));
    let out = run(Command::new(&demo).env("LD_LIBRARY_PATH", &lib));
    assert_eq!(out.matches("domain-state-transition").count(), 4, "{out}");

    // Static: the archive and pkg-config's private libraries.
    let demo_static = prefix.join("demo-static");
    let private = pkg(&["--static", "--libs-only-l"]);
    run(Command::new("cc")
        .arg(root().join("examples-c/demo.c"))
        .args(pkg(&["--cflags"]).split_whitespace())
        .arg(lib.join("libvirevent.a"))
        .args(private.split_whitespace().filter(|l| *l != "-lvirevent"))
        .arg("-o")
        .arg(&demo_static));
    let ldd = run(Command::new("ldd").arg(&demo_static));
    assert!(!ldd.contains("libvirevent"), "{ldd}");
    let out = run(&mut Command::new(&demo_static));
    assert_eq!(out.matches("domain-state-transition").count(), 4, "{out}");
    std::fs::remove_dir_all(&prefix).unwrap();
}

/// The function names `include/virevent.h` declares.
fn header_functions() -> Vec<String> {
    let header = std::fs::read_to_string(root().join("include/virevent.h")).unwrap();
    let mut names: Vec<String> = header
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.starts_with("typedef") && l.contains('('))
        .filter_map(|l| l.split('(').next()?.split_whitespace().last().map(|n| n.trim_start_matches('*').to_string()))
        .filter(|n| n.starts_with("vir"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_shared_library_exports_exactly_the_header_functions() {
    let so = library_dir().join("libvirevent.so");
    let nm = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&so));
    let mut exported: Vec<String> = nm.lines().filter_map(|l| l.split_whitespace().nth(2)).map(str::to_string).collect();
    exported.sort();
    let declared = header_functions();
    assert!(declared.len() >= 20, "{declared:?}");
    assert_eq!(exported, declared, "nm -D --defined-only against the header's functions");
}
