//! A private sshd for the ssh transport's tests: on 127.0.0.1 at a free
//! port, with its own host key, configuration and authorized key, all in a
//! folder of the test's, run by `unshare` in a mount namespace whose /run is
//! a tmpfs (sshd wants /run/sshd, which the host need not have). Keys for
//! the client: one it authorizes, one it does not, and known_hosts files with
//! its host key and with another. Stopped (by PID) and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    child: Child,
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "virevent-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen {}", path.display());
}

impl Sshd {
    pub fn start(dir: PathBuf) -> Sshd {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for key in ["host_key", "other_host_key", "client_key", "stranger_key"] {
            keygen(&dir.join(key));
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        std::fs::write(dir.join("authorized_keys"), read("client_key.pub")).unwrap();
        let port = super::free_port();
        // A host key line: "[127.0.0.1]:PORT TYPE KEY" (its comment dropped).
        let known = |key: &str| {
            let public = read(key);
            let fields: Vec<&str> = public.split_whitespace().take(2).collect();
            format!("[127.0.0.1]:{port} {}\n", fields.join(" "))
        };
        std::fs::write(dir.join("known_hosts"), known("host_key.pub")).unwrap();
        std::fs::write(dir.join("wrong_known_hosts"), known("other_host_key.pub")).unwrap();
        // libvirt 9.0 hands known_hosts= only to its libssh transports: for
        // virsh over +ssh, an ssh (command=) that knows the host key.
        let wrapper = dir.join("ssh");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec ssh -o UserKnownHostsFile={}/known_hosts \"$@\"\n", dir.display()),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "sh", "-c"])
            .arg(format!("mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec /usr/sbin/sshd -D -e -f {d}/sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("unshare runs");
        let mut sshd = Sshd { dir, port, child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd ended at start ({status}): {}", sshd.log());
            }
            assert!(start.elapsed() < Duration::from_secs(20), "sshd did not listen in time: {}", sshd.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        sshd
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// [`Sshd::uri`] for virsh too: ssh run by a wrapper that knows the host.
    pub fn virsh_uri(&self, socket: &str) -> String {
        format!("{}&command={}", self.uri(socket, "client_key", "known_hosts"), self.path("ssh"))
    }

    /// A `DRIVER+ssh://` URI of root at this sshd for the daemon socket
    /// `socket`, with `key` and `known_hosts` (files of the folder), never
    /// asking for anything.
    pub fn uri(&self, socket: &str, key: &str, known_hosts: &str) -> String {
        format!(
            "test+ssh://root@127.0.0.1:{}/default?socket={socket}&keyfile={}&known_hosts={}&no_tty=1",
            self.port,
            self.path(key),
            self.path(known_hosts)
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // unshare ran sh, which became sshd: the child is sshd itself.
        // SAFETY: plain system call on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
