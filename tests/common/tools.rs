//! The outside tools tests need, and what a test does when one is missing: on
//! a machine with only Rust and a C compiler `cargo test` passes, each test
//! that needs more says so in one line
//! `SKIPPED <what>: needs <tool> (apt-get install <package>)`, and the last
//! test binary (tests/zz_skips.rs) lists every skipped group. With
//! VIREVENT_REQUIRE_ALL=1 (what .ci/run sets once it has installed
//! everything) a missing tool fails the test instead.
//!
//! Tools are looked up on PATH only, so that a PATH without them simulates a
//! bare machine.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A command a test runs, and the Debian package that has it.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    pub command: &'static str,
    pub package: &'static str,
    /// A Python module, looked for with `python3 -c 'import MODULE'`, rather
    /// than a command.
    pub python_module: Option<&'static str>,
    /// A file at a fixed path (a libvirt driver module), rather than a command.
    pub file: Option<&'static str>,
}

const fn command(command: &'static str, package: &'static str) -> Tool {
    Tool { command, package, python_module: None, file: None }
}

pub const LIBVIRTD: Tool = command("libvirtd", "libvirt-daemon");
pub const VIRSH: Tool = command("virsh", "libvirt-clients");
pub const PYTHON3: Tool = command("python3", "python3");
pub const LXML: Tool = Tool { command: "lxml", package: "python3-lxml", python_module: Some("lxml.etree"), file: None };
/// `python3 -m venv` with pip in the new environment: Debian's python3 has
/// ensurepip (and so pip in a venv) only with python3-venv.
pub const VENV: Tool = Tool { command: "venv", package: "python3-venv", python_module: Some("ensurepip"), file: None };
pub const VALGRIND: Tool = command("valgrind", "valgrind");
pub const PKG_CONFIG: Tool = command("pkg-config", "pkg-config");
/// What man-db renders pages with.
pub const GROFF: Tool = command("groff", "groff-base");
/// man-db's reader of a page's NAME line, as mandb and whatis take it.
pub const LEXGROG: Tool = command("lexgrog", "man-db");
pub const MAN: Tool = command("man", "man-db");
pub const GIT: Tool = command("git", "git");
/// The ssh transport's tests: a private sshd, the client, its key maker, and
/// the netcat libvirt's remote command runs.
pub const SSHD: Tool = Tool { command: "sshd", package: "openssh-server", python_module: None, file: Some("/usr/sbin/sshd") };
pub const SSH: Tool = command("ssh", "openssh-client");
pub const SSH_KEYGEN: Tool = command("ssh-keygen", "openssh-client");
pub const NC: Tool = command("nc", "netcat-openbsd");
/// What the TLS tests make their certificates with.
pub const OPENSSL: Tool = command("openssl", "openssl");
/// The SASL tests: the maker of their sasldb, the mechanisms' plugins, and
/// the development files the library's SASL support is built with.
pub const SASLPASSWD2: Tool = command("saslpasswd2", "sasl2-bin");
pub const SASL_PLUGINS: Tool = Tool {
    command: "libdigestmd5.so",
    package: "libsasl2-modules",
    python_module: None,
    file: Some("/usr/lib/x86_64-linux-gnu/sasl2/libdigestmd5.so"),
};
pub const LIBSASL2_DEV: Tool = Tool {
    command: "libsasl2.pc",
    package: "libsasl2-dev",
    python_module: None,
    file: Some("/usr/lib/x86_64-linux-gnu/pkgconfig/libsasl2.pc"),
};
/// libxml2's command line, which validates events against docs/events.rng.
pub const XMLLINT: Tool = command("xmllint", "libxml2-utils");
/// The emulator of the real-QEMU test (Debian 12 needs bookworm-backports'
/// build, see .ci/run).
/// NATS with JetStream, for the relay's tests.
pub const NATS_SERVER: Tool = command("nats-server", "nats-server");
/// NATS's Python client, which docs/fleet.md's consumer uses: installed from
/// PyPI into a virtual environment of the test's own (relay/tests/fleet_doc.rs),
/// never into the host's Python; looked for here only where that install failed.
pub const NATS_PY: Tool =
    Tool { command: "nats-py", package: "python3-venv, then pip install nats-py", python_module: Some("nats.js"), file: None };
pub const QEMU: Tool = command("qemu-system-x86_64", "qemu-system-x86");
/// What runs that test's libvirtd in private mount and PID namespaces.
pub const UNSHARE: Tool = command("unshare", "util-linux");
/// libvirtd's QEMU driver, which libvirt-daemon alone lacks.
pub const QEMU_DRIVER: Tool = Tool {
    command: "libvirt_driver_qemu.so",
    package: "libvirt-daemon-driver-qemu",
    python_module: None,
    file: Some("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"),
};

/// Whether every tool in `tools` is there. For each one missing: with
/// VIREVENT_REQUIRE_ALL=1, a panic; else one SKIPPED line naming `what`, and
/// a record for the run's summary, and false.
pub fn needs(what: &str, tools: &[Tool]) -> bool {
    let missing: Vec<Tool> = tools.iter().copied().filter(|tool| !present(*tool)).collect();
    if missing.is_empty() {
        return true;
    }
    let needs = missing
        .iter()
        .map(|tool| format!("{} (apt-get install {})", tool.command, tool.package))
        .collect::<Vec<_>>()
        .join(", ");
    skip(what, &needs)
}

/// Whether the test runs as root; if not, the same as a missing tool: a
/// panic with VIREVENT_REQUIRE_ALL=1, else one SKIPPED line and false.
pub fn needs_root(what: &str) -> bool {
    // SAFETY: plain system call.
    let root = unsafe { libc::geteuid() } == 0;
    root || skip(what, "root (run the tests as root)")
}

/// A test that cannot run for want of `needs`: the panic or the SKIPPED line.
fn skip(what: &str, needs: &str) -> bool {
    if std::env::var_os("VIREVENT_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{what}: needs {needs}, and VIREVENT_REQUIRE_ALL=1 forbids skipping it");
    }
    let line = format!("SKIPPED {what}: needs {needs}\n");
    // Straight to the terminal: the test harness captures print!.
    let _ = std::io::stderr().write_all(line.as_bytes());
    record(&line);
    false
}

/// Whether `tool` is on PATH (for a Python module: python3 is, and imports it;
/// for a file: it is there).
pub fn present(tool: Tool) -> bool {
    if let Some(file) = tool.file {
        return std::path::Path::new(file).is_file();
    }
    match tool.python_module {
        Some(module) => {
            present(PYTHON3)
                && Command::new("python3")
                    .args(["-c", &format!("import {module}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        }
        None => find(tool.command).is_some(),
    }
}

/// The path of `command` on PATH.
pub fn find(command: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|file| file.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Where this `cargo test` run's skips are recorded: one folder per run, named
/// by the cargo process that runs every test binary.
pub fn skips_dir() -> PathBuf {
    // SAFETY: plain system call.
    let cargo = unsafe { libc::getppid() };
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("skips-{cargo}"))
}

/// Records `line` for the run's last lines (tests/zz_skips.rs) without saying
/// it: how many events were validated against docs/events.rng, say.
pub fn note(line: &str) {
    record(&format!("{line}\n"));
}

fn record(line: &str) {
    let dir = skips_dir();
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("{}", std::process::id()));
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The run's last lines: every group of tests skipped for want of a tool,
/// and how many events were validated (tests/zz_skips.rs, and the relay's).
pub fn summarize() {
    let dir = skips_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let texts: Vec<String> = entries.flatten().filter_map(|entry| std::fs::read_to_string(entry.path()).ok()).collect();
    let mut lines: Vec<String> = texts
        .iter()
        .flat_map(|text| text.lines().filter(|l| l.starts_with("SKIPPED ")).map(str::to_string))
        .collect();
    lines.sort();
    lines.dedup();
    let _ = std::fs::remove_dir_all(&dir);
    let groups: Vec<&str> =
        lines.iter().filter_map(|l| l.strip_prefix("SKIPPED ")).map(|l| l.split(": needs").next().unwrap_or(l)).collect();
    let mut summary = format!("SKIPPED {} group(s) for want of a tool: {}\n", groups.len(), groups.join("; "));
    // "VALIDATED N WHAT" (tests/common/schema.rs): every batch counts.
    let (mut events, mut batches) = (0, 0);
    for text in &texts {
        for n in text.lines().filter_map(|l| l.strip_prefix("VALIDATED ")?.split(' ').next()?.parse::<usize>().ok()) {
            events += n;
            batches += 1;
        }
    }
    if batches > 0 {
        summary.push_str(&format!("VALIDATED {events} event(s) in {batches} batch(es) against docs/events.rng\n"));
    }
    // Straight to the terminal: the test harness captures print!.
    let _ = std::io::stderr().write_all(summary.as_bytes());
}
