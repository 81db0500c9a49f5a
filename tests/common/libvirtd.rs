//! A private libvirtd with the test driver, in a folder of its own, on a Unix
//! socket there and a TCP port on 127.0.0.1: what the tests of programs that
//! watch daemons (virevent-watch, virevent-relay) start, restart and stop.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a daemon may take to start or end.
const PATIENCE: Duration = Duration::from_secs(10);

/// A private libvirtd with the test driver, stopped and its folder removed on drop
/// (on panic too).
pub struct Daemon {
    pub dir: PathBuf,
    /// Its Unix socket's URI.
    pub uri: String,
    /// The same daemon over TCP on 127.0.0.1 (auth none).
    pub tcp_uri: String,
    pub child: Option<Child>,
    /// Its TCP port, and the TLS port it opens, if any: what it listens on.
    pub tcp_port: u16,
    pub tls: Option<u16>,
}

impl Daemon {
    /// Starts a daemon in a new folder and waits until its socket accepts;
    /// `None` (with the tools rule's SKIPPED line) where libvirtd or virsh is
    /// missing, for the test `what`.
    pub fn start(what: &str) -> Option<Daemon> {
        if !super::tools::needs(what, &[super::tools::LIBVIRTD, super::tools::VIRSH]) {
            return None;
        }
        Some(Daemon::start_with("", None))
    }

    /// [`Daemon::start`] with `extra` in libvirtd.conf, and the TLS port
    /// `tls` it opens to wait for too.
    pub fn start_with(extra: &str, tls: Option<u16>) -> Daemon {
        Daemon::start_in_env(extra, tls, &[])
    }

    /// [`Daemon::start_with`] with more of libvirtd's environment.
    pub fn start_in_env(extra: &str, tls: Option<u16>, env: &[(&str, &Path)]) -> Daemon {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = loop {
            let dir = PathBuf::from(format!(
                "/tmp/virevent-libvirtd-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", dir.display()),
            }
        };
        let tcp_port = super::free_port();
        let mut daemon = Daemon { uri: String::new(), tcp_uri: String::new(), child: None, dir, tcp_port, tls };
        let dir = &daemon.dir;
        // An empty driver folder keeps the QEMU driver from loading; the test
        // driver is built in.
        std::fs::create_dir(dir.join("drivers")).unwrap();
        let conf = dir.join("libvirtd.conf");
        std::fs::write(
            &conf,
            format!(
                "unix_sock_dir = \"{}\"\nunix_sock_rw_perms = \"0770\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n\
                 listen_tls = {}\nlisten_tcp = 1\nlisten_addr = \"127.0.0.1\"\ntcp_port = \"{tcp_port}\"\n{}\
                 {extra}",
                dir.display(),
                u8::from(tls.is_some()),
                if extra.contains("auth_tcp") { "" } else { "auth_tcp = \"none\"\n" },
            ),
        )
        .unwrap();
        let sock = dir.join("libvirt-sock");
        daemon.uri = format!("test+unix:///default?socket={}", sock.display());
        daemon.tcp_uri = format!("test+tcp://127.0.0.1:{tcp_port}/default");
        daemon.spawn(env);
        daemon
    }

    /// Runs libvirtd with the folder's configuration and `env`, and waits
    /// until its sockets accept.
    pub fn spawn(&mut self, env: &[(&str, &Path)]) {
        let dir = &self.dir;
        let log = std::fs::File::options().create(true).append(true).open(dir.join("log")).unwrap();
        let child = Command::new("libvirtd")
            .arg("--listen")
            .arg("--config")
            .arg(dir.join("libvirtd.conf"))
            .arg("--pid-file")
            .arg(dir.join("pid"))
            .env("LIBVIRT_DRIVER_DIR", dir.join("drivers"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run libvirtd: {e}"));
        self.child = Some(child);
        // The socket file appears when it is bound, a moment before it listens.
        let sock = dir.join("libvirt-sock");
        let start = Instant::now();
        let listens = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        while UnixStream::connect(&sock).is_err() || !listens(self.tcp_port) || !self.tls.is_none_or(listens) {
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                self.child = None;
                panic!("libvirtd ended at start ({status}); see {}", self.log());
            }
            assert!(start.elapsed() < PATIENCE, "libvirtd made no socket at {} in time", sock.display());
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts it again in its folder, on the same sockets, once it has ended.
    pub fn restart(&mut self) {
        if self.child.is_none() {
            self.spawn(&[]);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Runs `virsh -q -c URI ARGS` and fails the test if it fails.
    pub fn virsh(&self, args: &[&str]) {
        let output = Command::new("virsh").arg("-q").arg("-c").arg(&self.uri).args(args).output().expect("virsh runs");
        assert!(output.status.success(), "virsh {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Writes a domain definition named `name` into the daemon's folder; returns its path.
    pub fn domain_file(&self, name: &str) -> String {
        let path = self.dir.join("domain.xml");
        let name = name.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
        std::fs::write(
            &path,
            format!("<domain type='test'><name>{name}</name><memory>8192</memory><os><type>hvm</type></os></domain>"),
        )
        .unwrap();
        path.display().to_string()
    }

    /// Sends `signal` and reaps the daemon.
    pub fn kill(&mut self, signal: libc::c_int) {
        if let Some(mut child) = self.child.take() {
            super::end_child(&mut child, signal, Duration::from_secs(3));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill(libc::SIGTERM);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits up to `limit` for `child` to end.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

