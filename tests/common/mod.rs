//! What the integration tests that drive the built library from outside share:
//! where that library is, and how to run a Python script against it.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

/// target/debug/deps: where `cargo test` builds libvirevent.so afresh (it does
/// not refresh the copy in target/debug, which `cargo build` makes).
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("deps dir").to_path_buf()
}

/// The library's directory, the workspace's top (also for the relay
/// package's tests, which use this module from relay/).
pub fn root() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().find(|dir| dir.join("include/virevent.h").is_file()).unwrap_or(manifest)
}

/// Programs load the library by its SONAME, libvirevent.so.0: link it to the
/// build's libvirevent.so, as an installation would.
fn link_soname(lib: &Path) {
    let link = lib.join("libvirevent.so.0");
    match std::os::unix::fs::symlink("libvirevent.so", &link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("cannot link {}: {e}", link.display()),
    }
}

/// Compiles a C source file (against include/virevent.h, with tests/c/ for
/// its helpers, `-Wall -Wextra -Werror`) to the program `c-NAME` beside the
/// test binaries, linked to this build's library.
pub fn build_c(source: &Path, name: &str) -> PathBuf {
    let lib = library_dir();
    assert!(lib.join("libvirevent.so").exists(), "no libvirevent.so in {}", lib.display());
    link_soname(&lib);
    let out = lib.join(format!("c-{name}"));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("tests/c"))
        .arg(source)
        .arg("-o")
        .arg(&out)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lvirevent", "-lpthread"])
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "{} does not compile", source.display());
    out
}

/// Runs `python3 SCRIPT ARGS` from the crate's directory with VIREVENT_LIB naming
/// this build's library, prints its output, and fails if it fails; skips it
/// (see [`tools::needs`]) when python3 or one of `modules` is missing. `what`
/// names the test for that line.
pub fn run_python(script: &str, args: &[&str], what: &str, modules: &[tools::Tool]) {
    run_python_with(script, args, what, modules, &[]);
}

/// [`run_python`] with `env` set for the script too; returns whether it ran.
pub fn run_python_with(script: &str, args: &[&str], what: &str, modules: &[tools::Tool], env: &[(&str, &Path)]) -> bool {
    let mut needed = vec![tools::PYTHON3];
    needed.extend_from_slice(modules);
    if !tools::needs(what, &needed) {
        return false;
    }
    let dir = library_dir();
    let lib = dir.join("libvirevent.so");
    assert!(lib.is_file(), "no libvirevent.so in {}", dir.display());
    let script = root().join(script);
    let output = Command::new("python3")
        .arg(&script)
        .args(args)
        .current_dir(root())
        .env("VIREVENT_LIB", &lib)
        // cargo's LD_LIBRARY_PATH names target/debug too, where another build's
        // library may stand: this build's directory only.
        .env("LD_LIBRARY_PATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(output.status.success(), "{} failed ({}):\n{stdout}{stderr}", script.display(), output.status);
    true
}

pub mod libvirtd;
pub mod man;
pub mod nats;
pub mod pki;
pub mod sasl;
pub mod schema;
pub mod sshd;
pub mod tools;

/// A folder name of this test process's own, new at each call:
/// /tmp/virevent-WHAT-PID-N (not made).
pub fn test_dir(what: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    PathBuf::from(format!("/tmp/virevent-{what}-{}-{n}", std::process::id()))
}

/// Sends `signal` to `child` (the test's own, not yet reaped) and reaps it,
/// killing it if it has not ended within `limit`: its exit status if it
/// ended on the signal in time.
pub fn end_child(
    child: &mut std::process::Child,
    signal: libc::c_int,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    // SAFETY: plain system call on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let status = libvirtd::wait_for(child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// A TCP port on 127.0.0.1 that nothing listens on now, the kernel's pick.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether an epoll set of process `pid` watches a socket (its fdinfo lists
/// each watched descriptor as `tfd: N`).
pub fn watches_a_socket(pid: u32) -> bool {
    sockets_watched(pid) > 0
}

/// How many sockets the epoll sets of process `pid` watch, over all its sets
/// (one per connection): a watch of N daemons is ready at N.
pub fn sockets_watched(pid: u32) -> usize {
    let target = |fd: &str| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.flatten()
        .map(|entry| {
            let fd = entry.file_name().to_string_lossy().into_owned();
            if target(&fd).as_os_str() != "anon_inode:[eventpoll]" {
                return 0;
            }
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
            info.lines()
                .filter_map(|line| line.strip_prefix("tfd:")?.split_whitespace().next())
                .filter(|watched| target(watched).to_string_lossy().starts_with("socket:"))
                .count()
        })
        .sum()
}
