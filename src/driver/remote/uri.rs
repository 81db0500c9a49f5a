//! Which daemon a remote URI names, and what to ask it: the socket to connect
//! to and the plain driver URI for CONNECT_OPEN, built as libvirt's client
//! builds it (docs/protocol.md sections 4.3 and 9). A transport URI is never
//! sent: a daemon given its own socket's URI opens a connection to itself.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorCode, Result};

/// Where to connect and what to open there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The daemon's Unix socket.
    pub socket: PathBuf,
    /// The URI sent in CONNECT_OPEN (`test:///default`, `qemu:///system?foo=bar`).
    pub name: String,
}

/// Query parameters only the client's remote driver reads; the rest go to the
/// daemon with the driver URI.
const CLIENT_ONLY: [&str; 17] = [
    "socket", "name", "command", "auth", "sshauth", "netcat", "keyfile", "pkipath", "known_hosts",
    "known_hosts_verify", "tls_priority", "mode", "proxy", "no_sanity", "no_verify", "no_tty", "authfile",
];

/// Where system daemons put their sockets (`/var/run` links here).
const SYSTEM_SOCKET_DIR: &str = "/run/libvirt";

/// The target of `uri` if it names a daemon over a Unix socket (`DRIVER+unix://...`
/// or `qemu:///system`, `qemu:///session`); `None` for any other URI. A `+ssh`,
/// `+tls` or `+tcp` URI is an error: only local sockets are reached.
pub fn target(uri: &str) -> Option<Result<Target>> {
    let (scheme, rest) = uri.split_once("://")?;
    let (driver, transport) = match scheme.split_once('+') {
        Some((driver, transport)) => (driver, Some(transport)),
        None if scheme == "qemu" => (scheme, None),
        None => return None,
    };
    if let Some(transport) = transport.filter(|t| *t != "unix") {
        return Some(Err(Error::new(
            ErrorCode::NoConnect,
            format!("cannot open '{uri}': transport '{transport}' is not supported (only local Unix sockets are)"),
        )));
    }
    // user@host:port is dropped: a Unix socket is always local.
    let rest = rest.find('/').map_or("", |slash| &rest[slash..]);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if transport.is_none() && path != "/system" && path != "/session" {
        return None;
    }
    if driver.is_empty() {
        return Some(Err(Error::new(ErrorCode::NoConnect, format!("cannot open '{uri}': no driver named"))));
    }
    let mut socket = None;
    let mut name = None;
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key {
            "socket" => socket = Some(PathBuf::from(percent_decode(value))),
            "name" => name = Some(percent_decode(value)),
            key if CLIENT_ONLY.contains(&key) => {}
            _ => kept.push(param),
        }
    }
    let name = name.unwrap_or_else(|| {
        let mut name = format!("{driver}://{path}");
        if !kept.is_empty() {
            name.push('?');
            name.push_str(&kept.join("&"));
        }
        name
    });
    let socket = socket.unwrap_or_else(|| default_socket(driver, path == "/session"));
    Some(Ok(Target { socket, name }))
}

/// The socket libvirt's own client would pick: the modular QEMU daemon's if it
/// exists, else the monolithic (or proxy) daemon's.
fn default_socket(driver: &str, session: bool) -> PathBuf {
    let dir = if session { session_socket_dir() } else { PathBuf::from(SYSTEM_SOCKET_DIR) };
    let modular = dir.join(format!("virt{driver}d-sock"));
    if driver == "qemu" && modular.exists() {
        modular
    } else {
        dir.join("libvirt-sock")
    }
}

/// `$XDG_RUNTIME_DIR/libvirt`, or `~/.cache/libvirt` without it, as libvirt has it.
fn session_socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join("libvirt"),
        _ => Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/libvirt"),
    }
}

/// Decodes `%XX` escapes; a malformed escape stays as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uri: &str) -> Target {
        target(uri).unwrap().unwrap()
    }

    #[test]
    fn sends_the_plain_driver_uri_never_the_transport_one() {
        let t = ok("test+unix:///default?socket=/tmp/d/libvirt-sock");
        assert_eq!(t, Target { socket: "/tmp/d/libvirt-sock".into(), name: "test:///default".into() });
        let t = ok("qemu+unix:///system?socket=/tmp/d/libvirt-sock&foo=bar");
        assert_eq!(t.name, "qemu:///system?foo=bar");
        assert_eq!(ok("qemu+unix://host.example/system?socket=/s&mode=direct&no_tty=1").name, "qemu:///system");
        assert_eq!(ok("test+unix:///default?socket=/s&name=test:///empty").name, "test:///empty");
    }

    #[test]
    fn socket_paths_are_percent_decoded() {
        assert_eq!(ok("test+unix:///default?socket=/tmp/a%20b/sock").socket, Path::new("/tmp/a b/sock"));
        assert_eq!(ok("test+unix:///default?socket=/tmp/100%/x").socket, Path::new("/tmp/100%/x"));
    }

    #[test]
    fn default_sockets_follow_libvirt() {
        let system = ok("qemu:///system");
        assert_eq!(system.name, "qemu:///system");
        let modular = Path::new("/run/libvirt/virtqemud-sock");
        let expected = if modular.exists() { modular } else { Path::new("/run/libvirt/libvirt-sock") };
        assert_eq!(system.socket, expected);
        assert_eq!(ok("test+unix:///default").socket, Path::new("/run/libvirt/libvirt-sock"));
        let session = ok("qemu:///session");
        assert_eq!(session.name, "qemu:///session");
        assert!(session.socket.ends_with("libvirt/libvirt-sock") || session.socket.ends_with("libvirt/virtqemud-sock"));
    }

    #[test]
    fn other_uris_are_not_remote() {
        for uri in ["test:///default", "test:///empty", "qemu:///embed", "xen:///system", "nonsense", ""] {
            assert_eq!(target(uri), None, "{uri}");
        }
        for uri in ["qemu+ssh://host/system", "qemu+tls://host/system", "+unix:///system"] {
            let error = target(uri).unwrap().unwrap_err();
            assert_eq!(error.code, ErrorCode::NoConnect, "{uri}");
            assert!(error.message.contains(uri), "{}", error.message);
        }
    }
}
