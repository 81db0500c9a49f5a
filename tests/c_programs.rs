//! Builds each C program in tests/c/ against include/virevent.h with
//! `-Wall -Wextra -Werror`, links it to the built libvirevent.so, and runs it.
//! With VIREVENT_VALGRIND=1 each runs under valgrind's memcheck, and any leak or
//! invalid access fails the test. Every event a program receives (tests/c/seen_log.h
//! logs each one) is then validated against docs/events.rng.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::tools::{self, needs, Tool};
use common::pki::{Pki, Role, Validity};
use common::sasl::SaslConf;
use common::sshd::Sshd;
use common::{build_c, library_dir, root, schema};

/// Compiles tests/c/NAME.c to a program beside the test binaries.
fn build(name: &str) -> PathBuf {
    build_c(&root().join(format!("tests/c/{name}.c")), name)
}

/// Builds and runs tests/c/NAME.c, which needs `tools`; it must exit 0. A
/// program that needs openssl is given certificates ([`tls_folder`]); one
/// that needs sshd, a private sshd (tests/common/sshd.rs: root only).
fn run(name: &str, tools: &[Tool]) {
    let what = format!("tests/c/{name}.c");
    let uses = |tool: Tool| tools.iter().any(|t| t.command == tool.command);
    if uses(tools::SASLPASSWD2) && common::sasl::feature_off(&what) {
        return;
    }
    if !needs(&what, tools) {
        return;
    }
    if uses(tools::SSHD) && !tools::needs_root(&what) {
        return;
    }
    let pki = uses(tools::OPENSSL).then(|| tls_folder(name));
    let sshd = uses(tools::SSHD)
        .then(|| Sshd::start(common::test_dir(&format!("sshd-{name}"))));
    let port = sshd.as_ref().map(|s| PathBuf::from(s.port.to_string()));
    let sasl = uses(tools::SASLPASSWD2).then(|| SaslConf::new(common::test_dir(&format!("sasl-{name}"))));
    let mut env: Vec<(&str, &Path)> = pki.iter().map(|pki| ("VIREVENT_TEST_PKI", pki.dir.as_path())).collect();
    env.extend(sshd.iter().map(|s| ("VIREVENT_TEST_SSHD", s.dir.as_path())));
    env.extend(port.iter().map(|p| ("VIREVENT_TEST_SSHD_PORT", p.as_path())));
    env.extend(sasl.iter().map(|s| ("VIREVENT_TEST_SASL", s.dir.as_path())));
    run_program_with(build(name), name, &env);
}

/// Whether the library under test does SASL: its `sasl` feature is on
/// (the default) and build.rs found libsasl2's development files.
fn built_with_sasl() -> bool {
    cfg!(feature = "sasl") && tools::present(tools::LIBSASL2_DEV)
}

/// What a TLS test program finds in $VIREVENT_TEST_PKI: the CA (ca/), the
/// daemon's certificate for 127.0.0.1 and localhost (daemon.pem,
/// daemon-key.pem), and pkipath= folders good/ (the CA and a client
/// certificate), anonymous/ (the CA alone) and wrong-ca/ (another CA).
fn tls_folder(name: &str) -> Pki {
    let pki = Pki::new(common::test_dir(&format!("pki-{name}")));
    pki.issue("ca", "daemon", Role::Server("IP:127.0.0.1,DNS:localhost"), Validity::Now);
    pki.issue("ca", "client", Role::Client, Validity::Now);
    pki.client_dir("good", "ca", Some("client"));
    pki.client_dir("anonymous", "ca", None);
    pki.client_dir("wrong-ca", "other-ca", Some("client"));
    pki
}

/// Runs a built C program (under valgrind when asked); it must exit 0, and
/// every event it received must be valid (tests/common/schema.rs).
fn run_program(program: PathBuf, name: &str) {
    run_program_with(program, name, &[]);
}

/// [`run_program`] with `env` set for the program too.
fn run_program_with(program: PathBuf, name: &str, env: &[(&str, &Path)]) {
    let valgrind = std::env::var_os("VIREVENT_VALGRIND").is_some();
    if valgrind && !needs(&format!("{name} under valgrind"), &[tools::VALGRIND]) {
        return;
    }
    let mut command = if valgrind {
        let mut c = Command::new("valgrind");
        c.arg(format!("--suppressions={}", root().join("tests/valgrind.supp").display()));
        c.args(["--quiet", "--num-callers=40", "--child-silent-after-fork=yes", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible", "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    // Each program's own log of the events it receives (tests/c/seen_log.h).
    let seen = library_dir().join(format!("c-{name}.seen"));
    let _ = std::fs::remove_file(&seen);
    // cargo's LD_LIBRARY_PATH names target/debug too, where another build's
    // library may stand: load this build's, whatever the environment says.
    let output = command
        .envs(env.iter().copied())
        .env("LD_LIBRARY_PATH", library_dir())
        .env("VIREVENT_SEEN_LOG", &seen)
        .env("VIREVENT_BUILT_WITH_SASL", if built_with_sasl() { "1" } else { "0" })
        .output()
        .expect("run the C program");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(output.status.success(), "{name} failed ({}):\n{stdout}{stderr}", output.status);
    if let Some(checked) = schema::validate_log(name, &seen) {
        println!("{name}: {} events valid against docs/events.rng, {} the program's own", checked.validated, checked.own);
    }
    let _ = std::fs::remove_file(&seen);
}

/// What the programs that drive a private libvirt daemon (tests/c/daemon.h) need.
const DAEMON: &[Tool] = &[tools::LIBVIRTD, tools::VIRSH];

macro_rules! c_tests {
    ($($name:ident: $tools:expr),* $(,)?) => {
        $(#[test] fn $name() { run(stringify!($name), $tools); })*

        #[test]
        fn every_c_program_is_run() {
            let listed = [$(stringify!($name)),*];
            for entry in std::fs::read_dir(root().join("tests/c")).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "c") {
                    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                    assert!(listed.contains(&stem.as_str()), "tests/c/{stem}.c is not listed in c_tests!");
                }
            }
        }
    };
}

c_tests!(
    test_connect: &[],
    test_emit: &[],
    test_domains: &[],
    test_handlers: &[],
    test_deliver: &[],
    test_threads: &[],
    test_eventfd: &[],
    test_event_thread: &[],
    test_streams: &[],
    test_producers: &[],
    test_xpath: &[],
    test_fork: &[],
    // A real libvirt daemon (tests/c/daemon.h) and a scripted fake one.
    test_remote: DAEMON,
    test_remote_faults: DAEMON,
    test_remote_protocol: &[],
    test_remote_stalls: &[],
    test_keepalive: DAEMON,
    test_reconnect: DAEMON,
    test_tls: &[tools::LIBVIRTD, tools::VIRSH, tools::OPENSSL],
    test_sasl: &[tools::LIBVIRTD, tools::VIRSH, tools::SASLPASSWD2, tools::SASL_PLUGINS, tools::LIBSASL2_DEV],
    test_ssh: &[tools::LIBVIRTD, tools::VIRSH, tools::SSHD, tools::SSH, tools::SSH_KEYGEN, tools::NC, tools::UNSHARE],
);

/// The C example in README.md compiles as shown and runs.
#[test]
fn readme_example() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let code = readme.split("```c\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a C block");
    let source = library_dir().join("readme_example.c");
    std::fs::write(&source, code).unwrap();
    run_program(build_c(&source, "readme_example"), "readme_example");
}

/// examples-c/poll_loop.c, the thread-free poll loop, builds and runs.
#[test]
fn example_poll_loop() {
    let source = root().join("examples-c/poll_loop.c");
    run_program(build_c(&source, "poll_loop"), "poll_loop");
}
