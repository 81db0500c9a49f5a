//! SSH to a daemon (`DRIVER+ssh://[USER@]HOST[:PORT]/PATH`) as libvirt's
//! client does it: the system's `ssh` with libvirt's arguments runs libvirt's
//! remote command (`nc -U SOCKET` or `virt-ssh-helper`), and the protocol goes
//! over the child's standard input and output. Those are one end of a socket
//! pair whose other end is the link's socket, so the link reads, writes and
//! polls it as any socket: no thread, no blocking. The child's standard error
//! is kept (host key refused, permission denied, no such socket): when the
//! connection ends, it is the error's message. The child is ended and reaped
//! with the link.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

/// Where libvirt's remote command finds the daemon when no `socket=` says.
const REMOTE_SOCKET: &str = "/var/run/libvirt/libvirt-sock";

/// How much of the child's standard error is kept.
const SAID_MAX: usize = 4096;

/// How the remote end reaches the daemon (`proxy=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proxy {
    /// virt-ssh-helper where the remote host has it, else netcat.
    #[default]
    Auto,
    /// `nc -U SOCKET`.
    Netcat,
    /// `virt-ssh-helper URI`.
    Native,
}

/// What a `+ssh` URI says about ssh.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `USER@`: `-l USER`.
    pub user: Option<String>,
    /// `:PORT`: `-p PORT`.
    pub port: Option<u16>,
    /// `keyfile=`: `-i KEYFILE`.
    pub keyfile: Option<String>,
    /// `no_tty=1`: `-o BatchMode=yes` (never ask for a password).
    pub no_tty: bool,
    /// `no_verify=1`: `-o StrictHostKeyChecking=no`.
    pub no_verify: bool,
    /// `known_hosts=`: `-o UserKnownHostsFile=FILE`.
    pub known_hosts: Option<String>,
    /// `command=`: the ssh program (default `ssh`).
    pub command: Option<String>,
    /// `proxy=`; `socket=` makes it netcat.
    pub proxy: Proxy,
    /// `netcat=`: the remote netcat program (default `nc`).
    pub netcat: Option<String>,
    /// `socket=`: the daemon's socket on the remote host.
    pub socket: Option<PathBuf>,
    /// The driver URI, for virt-ssh-helper.
    pub name: String,
}

/// libvirt's remote command: what the remote host runs to reach the daemon
/// (virt-ssh-helper read-only, `-r`, for the driver URI).
fn remote_command(options: &Options) -> String {
    let name = &options.name;
    let nc = options.netcat.as_deref().unwrap_or("nc");
    let socket = options.socket.as_ref().map_or(REMOTE_SOCKET.to_string(), |s| s.display().to_string());
    let netcat = format!(
        "if '{nc}' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'{nc}' $ARG -U {socket}"
    );
    let proxy = if options.socket.is_some() { Proxy::Netcat } else { options.proxy };
    match proxy {
        Proxy::Netcat => format!("sh -c '{netcat}'"),
        Proxy::Native => format!("sh -c 'virt-ssh-helper -r '{name}''"),
        Proxy::Auto => format!(
            "sh -c 'which virt-ssh-helper 1>/dev/null 2>&1; if test $? = 0; then virt-ssh-helper -r '{name}'; else {netcat}; fi'"
        ),
    }
}

/// The ssh program and its arguments, libvirt's, for `host`.
pub fn command_line(host: &str, options: &Options) -> Vec<String> {
    let mut args = vec![options.command.clone().unwrap_or_else(|| "ssh".into())];
    if let Some(port) = options.port {
        args.extend(["-p".into(), port.to_string()]);
    }
    if let Some(user) = &options.user {
        args.extend(["-l".into(), user.clone()]);
    }
    if let Some(keyfile) = &options.keyfile {
        args.extend(["-i".into(), keyfile.clone()]);
    }
    args.extend(["-T".into(), "-e".into(), "none".into()]);
    if options.no_tty {
        args.extend(["-o".into(), "BatchMode=yes".into()]);
    }
    if options.no_verify {
        args.extend(["-o".into(), "StrictHostKeyChecking=no".into()]);
    }
    if let Some(file) = &options.known_hosts {
        args.extend(["-o".into(), format!("UserKnownHostsFile={file}")]);
    }
    args.extend(["--".into(), host.into(), remote_command(options)]);
    args
}

/// The ssh child: its standard error, and what it has said there.
pub struct Ssh {
    child: Child,
    stderr: ChildStderr,
    said: Vec<u8>,
}

impl Ssh {
    /// Runs ssh for `host`; returns our end of its standard input and output
    /// (non-blocking, close-on-exec) and the child.
    pub fn spawn(host: &str, options: &Options) -> io::Result<(OwnedFd, Ssh)> {
        // Both ends close-on-exec: the child gets its copies as stdin and stdout only.
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let args = command_line(host, options);
        let mut child = Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::from(OwnedFd::from(theirs.try_clone()?)))
            .stdout(Stdio::from(OwnedFd::from(theirs)))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run '{}': {e}", args[0])))?;
        let stderr = child.stderr.take().expect("piped");
        let ssh = Ssh { child, stderr, said: Vec::new() };
        super::socket::set_nonblocking(ssh.stderr.as_raw_fd())?;
        Ok((ours.into(), ssh))
    }

    /// What ssh (or the remote command) said on its standard error so far,
    /// its lines joined by "; " (empty when nothing); read without blocking.
    /// ssh writes its complaint before it exits, which is when the link sees
    /// end of file. Reaps the child if it has ended.
    pub fn said(&mut self) -> String {
        let mut buf = [0u8; 1024];
        while self.said.len() < SAID_MAX {
            match self.stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.said.extend_from_slice(&buf[..n.min(SAID_MAX - self.said.len())]),
            }
        }
        let _ = self.child.try_wait();
        String::from_utf8_lossy(&self.said).lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
    }
}

impl Drop for Ssh {
    /// Ends the child (SIGTERM, then SIGKILL after a second) and reaps it.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: plain system call on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(1) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_libvirts() {
        let options = Options {
            user: Some("root".into()),
            port: Some(2222),
            keyfile: Some("/k".into()),
            no_tty: true,
            no_verify: true,
            known_hosts: Some("/kh".into()),
            socket: Some("/s/sock".into()),
            name: "test:///default".into(),
            ..Options::default()
        };
        assert_eq!(
            command_line("h.example", &options),
            [
                "ssh", "-p", "2222", "-l", "root", "-i", "/k", "-T", "-e", "none", "-o", "BatchMode=yes", "-o",
                "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/kh", "--", "h.example",
                "sh -c 'if 'nc' -q 2>&1 | grep \"requires an argument\" >/dev/null 2>&1; then ARG=-q0;else ARG=;fi;'nc' $ARG -U /s/sock'",
            ]
        );
        let plain = command_line("h", &Options { name: "qemu:///system".into(), ..Options::default() });
        assert_eq!(plain[..6], ["ssh", "-T", "-e", "none", "--", "h"]);
        assert!(plain[6].contains("virt-ssh-helper -r 'qemu:///system'") && plain[6].contains("-U /var/run/libvirt/libvirt-sock"));
        let native =
            Options { proxy: Proxy::Native, command: Some("/my/ssh".into()), name: "qemu:///session".into(), ..Options::default() };
        assert_eq!(command_line("h", &native)[0], "/my/ssh");
        assert_eq!(command_line("h", &native)[6], "sh -c 'virt-ssh-helper -r 'qemu:///session''");
    }
}
