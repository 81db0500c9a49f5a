//! Which daemon a remote URI names, and what to ask it: the socket to connect
//! to and the plain driver URI for CONNECT_OPEN, built as libvirt's client
//! builds it (docs/protocol.md sections 4.3 and 9). A transport URI is never
//! sent: a daemon given its own socket's URI opens a connection to itself.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorCode, Result};
pub use crate::rpc::link::Endpoint;
use crate::rpc::ssh::Proxy;

/// Where to connect and what to open there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// How to reach the daemon.
    pub endpoint: Endpoint,
    /// The URI sent in CONNECT_OPEN (`test:///default`, `qemu:///system?foo=bar`).
    pub name: String,
    /// The host that authentication names (SASL's server, auth.conf's
    /// `[auth-libvirt-HOST]`): the URI's, `localhost` for a Unix socket.
    pub host: String,
    /// The URI's `auth=` (`sasl`, `sasl.MECH`, `polkit`).
    pub auth: Option<String>,
    /// The URI's `authfile=`.
    pub auth_file: Option<PathBuf>,
}

/// libvirtd's TCP port (`tcp_port`), where a `+tcp` URI gives none.
const TCP_PORT: u16 = 16509;
/// libvirtd's TLS port (`tls_port`), where a `+tls` URI gives none.
const TLS_PORT: u16 = 16514;

/// Query parameters only the client's remote driver reads; the rest go to the
/// daemon with the driver URI.
const CLIENT_ONLY: [&str; 17] = [
    "socket", "name", "command", "auth", "sshauth", "netcat", "keyfile", "pkipath", "known_hosts",
    "known_hosts_verify", "tls_priority", "mode", "proxy", "no_sanity", "no_verify", "no_tty", "authfile",
];

/// Where system daemons put their sockets (`/var/run` links here).
const SYSTEM_SOCKET_DIR: &str = "/run/libvirt";

/// The target of `uri` if it names a daemon over a Unix socket (`DRIVER+unix://...`
/// or `qemu:///system`, `qemu:///session`), over TCP (`DRIVER+tcp://HOST[:PORT]/PATH`),
/// TLS (`DRIVER+tls://HOST[:PORT]/PATH`) or ssh (`DRIVER+ssh://[USER@]HOST[:PORT]/PATH`);
/// `None` for any other URI. Another transport is an error (`+libssh` and
/// `+libssh2`: `VIR_ERR_NO_SUPPORT`, pointing at `+ssh`).
pub fn target(uri: &str) -> Option<Result<Target>> {
    let (scheme, rest) = uri.split_once("://")?;
    let (driver, transport) = match scheme.split_once('+') {
        Some((driver, transport)) => (driver, Some(transport)),
        None if scheme == "qemu" => (scheme, None),
        None => return None,
    };
    if let Some(transport) = transport.filter(|t| matches!(*t, "libssh" | "libssh2")) {
        return Some(Err(Error::new(
            ErrorCode::NoSupport,
            format!("cannot open '{uri}': transport '{transport}' is not supported: use '+ssh', the system's ssh"),
        )));
    }
    if let Some(transport) = transport.filter(|t| !matches!(*t, "unix" | "tcp" | "tls" | "ssh")) {
        return Some(Err(Error::new(
            ErrorCode::NoConnect,
            format!("cannot open '{uri}': transport '{transport}' is not supported (unix, tcp, tls and ssh are)"),
        )));
    }
    // [user@]host[:port]; the daemon is never told it.
    let (authority, rest) = rest.find('/').map_or((rest, ""), |slash| (&rest[..slash], &rest[slash..]));
    let network = match transport {
        Some("tcp" | "tls" | "ssh") => match host_and_port(authority) {
            Ok(host_port) => Some(host_port),
            Err(why) => return Some(Err(Error::new(ErrorCode::NoConnect, format!("cannot open '{uri}': {why}")))),
        },
        _ => None,
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if transport.is_none() && path != "/system" && path != "/session" {
        return None;
    }
    if driver.is_empty() {
        return Some(Err(Error::new(ErrorCode::NoConnect, format!("cannot open '{uri}': no driver named"))));
    }
    let mut socket = None;
    let mut name = None;
    let (mut auth, mut auth_file) = (None, None);
    let mut tls = crate::rpc::tls::Options::default();
    let mut ssh = crate::rpc::ssh::Options::default();
    // libvirt reads the number; anything but 0 means yes.
    let yes = |value: &str| value.parse::<i64>().is_ok_and(|v| v != 0);
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key {
            "socket" => socket = Some(PathBuf::from(percent_decode(value))),
            "name" => name = Some(percent_decode(value)),
            "auth" => auth = Some(percent_decode(value)),
            "authfile" => auth_file = Some(PathBuf::from(percent_decode(value))),
            "pkipath" => tls.pkipath = Some(PathBuf::from(percent_decode(value))),
            "no_verify" => (tls.no_verify, ssh.no_verify) = (yes(value), yes(value)),
            "no_tty" => ssh.no_tty = yes(value),
            "keyfile" => ssh.keyfile = Some(percent_decode(value)),
            "known_hosts" => ssh.known_hosts = Some(percent_decode(value)),
            "command" => ssh.command = Some(percent_decode(value)),
            "netcat" => ssh.netcat = Some(percent_decode(value)),
            "proxy" => {
                ssh.proxy = match value {
                    "auto" => Proxy::Auto,
                    "netcat" => Proxy::Netcat,
                    "native" => Proxy::Native,
                    _ => {
                        let why = format!("proxy '{value}' is not one of auto, netcat and native");
                        return Some(Err(Error::new(ErrorCode::NoConnect, format!("cannot open '{uri}': {why}"))));
                    }
                }
            }
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
    let host = network.as_ref().map_or_else(|| "localhost".to_string(), |(host, _)| host.clone());
    let endpoint = match network {
        Some((host, port)) if transport == Some("ssh") => {
            ssh.user = authority.rsplit_once('@').map(|(user, _)| percent_decode(user));
            // Without one, ssh's own default.
            ssh.port = port;
            // socket= is the daemon's socket on the remote host.
            ssh.socket = socket;
            ssh.name = name.clone();
            Endpoint::Ssh { host, options: ssh }
        }
        Some((host, port)) if transport == Some("tls") => Endpoint::Tls { host, port: port.unwrap_or(TLS_PORT), options: tls },
        Some((host, port)) => Endpoint::Tcp { host, port: port.unwrap_or(TCP_PORT) },
        None => Endpoint::Unix(socket.unwrap_or_else(|| default_socket(driver, path == "/session"))),
    };
    Some(Ok(Target { endpoint, name, host, auth, auth_file }))
}

/// The host and port of `[user@]host[:port]` (a user is libvirt's for ssh
/// only): localhost where the host is missing, as libvirt has it, and no
/// port where none is given (each transport has its default). An IPv6
/// literal is written in brackets (`[::1]:16509`).
fn host_and_port(authority: &str) -> std::result::Result<(String, Option<u16>), String> {
    let server = authority.rsplit_once('@').map_or(authority, |(_, server)| server);
    let (host, port) = match server.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or(format!("the IPv6 address in '{server}' has no ']'"))?;
            (host, after.strip_prefix(':'))
        }
        None => match server.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (server, None),
        },
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(port.parse().ok().filter(|p| *p > 0).ok_or(format!("'{port}' is not a port number"))?),
    };
    let host = if host.is_empty() { "localhost" } else { host };
    Ok((percent_decode(host), port))
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

    fn socket(target: Target) -> PathBuf {
        match target.endpoint {
            Endpoint::Unix(path) => path,
            other => panic!("not a Unix socket: {other:?}"),
        }
    }

    #[test]
    fn tcp_uris_name_host_and_port_as_libvirt_does() {
        let tcp = |uri: &str| ok(uri).endpoint;
        let at = |host: &str, port| Endpoint::Tcp { host: host.into(), port };
        assert_eq!(tcp("qemu+tcp://example.org/system"), at("example.org", 16509));
        assert_eq!(tcp("qemu+tcp://example.org:1234/system"), at("example.org", 1234));
        assert_eq!(tcp("qemu+tcp://root@127.0.0.1:7/system"), at("127.0.0.1", 7));
        assert_eq!(tcp("qemu+tcp://[::1]:16600/system"), at("::1", 16600));
        assert_eq!(tcp("qemu+tcp://[fe80::1]/system"), at("fe80::1", 16509));
        assert_eq!(tcp("test+tcp:///default"), at("localhost", 16509));
        assert_eq!(tcp("test+tcp://host:/default"), at("host", 16509));
        // The daemon is sent the plain driver URI, without the socket= a Unix URI takes.
        let t = ok("qemu+tcp://user@host:1/system?socket=/s&foo=bar&no_verify=1");
        assert_eq!(t.name, "qemu:///system?foo=bar");
        for (uri, why) in [
            ("qemu+tcp://host:port/system", "'port' is not a port number"),
            ("qemu+tcp://host:0/system", "'0' is not a port number"),
            ("qemu+tcp://host:65536/system", "'65536' is not a port number"),
            ("qemu+tcp://[::1/system", "the IPv6 address in '[::1' has no ']'"),
        ] {
            let error = target(uri).unwrap().unwrap_err();
            assert_eq!(error.code, ErrorCode::NoConnect, "{uri}");
            assert_eq!(error.message, format!("cannot open '{uri}': {why}"));
        }
    }

    #[test]
    fn tls_uris_take_port_16514_pkipath_and_no_verify() {
        let tls = |uri: &str| ok(uri).endpoint;
        let at = |host: &str, port, pkipath: Option<&str>, no_verify| Endpoint::Tls {
            host: host.into(),
            port,
            options: crate::rpc::tls::Options { pkipath: pkipath.map(PathBuf::from), no_verify },
        };
        assert_eq!(tls("qemu+tls://example.org/system"), at("example.org", 16514, None, false));
        assert_eq!(tls("qemu+tls://[::1]:7/system"), at("::1", 7, None, false));
        assert_eq!(tls("test+tls://h/default?pkipath=/my%20pki&no_verify=1"), at("h", 16514, Some("/my pki"), true));
        assert_eq!(tls("test+tls://h/default?no_verify=0"), at("h", 16514, None, false));
        // Neither is sent to the daemon.
        assert_eq!(ok("test+tls://h/default?pkipath=/p&no_verify=1&x=y").name, "test:///default?x=y");
        let error = target("qemu+ext://h/system").unwrap().unwrap_err();
        assert_eq!(error.message, "cannot open 'qemu+ext://h/system': transport 'ext' is not supported (unix, tcp, tls and ssh are)");
    }

    #[test]
    fn ssh_uris_take_libvirts_parameters() {
        let Endpoint::Ssh { host, options } = ok(
            "test+ssh://me@[::1]:2222/default?keyfile=/k%20f&no_tty=1&no_verify=1&known_hosts=/kh&command=/bin/ssh\
             &netcat=ncat&proxy=netcat&socket=/r/sock&x=y",
        )
        .endpoint
        else {
            panic!("not ssh")
        };
        assert_eq!(host, "::1");
        assert_eq!(
            options,
            crate::rpc::ssh::Options {
                user: Some("me".into()),
                port: Some(2222),
                keyfile: Some("/k f".into()),
                no_tty: true,
                no_verify: true,
                known_hosts: Some("/kh".into()),
                command: Some("/bin/ssh".into()),
                proxy: Proxy::Netcat,
                netcat: Some("ncat".into()),
                socket: Some("/r/sock".into()),
                name: "test:///default?x=y".into(),
            }
        );
        let Endpoint::Ssh { options, .. } = ok("qemu+ssh://h/system").endpoint else { panic!("not ssh") };
        assert_eq!((options.port, options.user, options.proxy), (None, None, Proxy::Auto));
        for transport in ["libssh", "libssh2"] {
            let uri = format!("qemu+{transport}://h/system");
            let error = target(&uri).unwrap().unwrap_err();
            assert_eq!(error.code, ErrorCode::NoSupport);
            assert_eq!(error.message, format!("cannot open '{uri}': transport '{transport}' is not supported: use '+ssh', the system's ssh"));
        }
        let error = target("qemu+ssh://h/system?proxy=magic").unwrap().unwrap_err();
        assert_eq!(error.message, "cannot open 'qemu+ssh://h/system?proxy=magic': proxy 'magic' is not one of auto, netcat and native");
    }

    #[test]
    fn sends_the_plain_driver_uri_never_the_transport_one() {
        let t = ok("test+unix:///default?socket=/tmp/d/libvirt-sock");
        assert_eq!(
            t,
            Target {
                endpoint: Endpoint::Unix("/tmp/d/libvirt-sock".into()),
                name: "test:///default".into(),
                host: "localhost".into(),
                auth: None,
                auth_file: None
            }
        );
        let t = ok("qemu+unix:///system?socket=/tmp/d/libvirt-sock&foo=bar");
        assert_eq!(t.name, "qemu:///system?foo=bar");
        assert_eq!(ok("qemu+unix://host.example/system?socket=/s&mode=direct&no_tty=1").name, "qemu:///system");
        assert_eq!(ok("test+unix:///default?socket=/s&name=test:///empty").name, "test:///empty");
    }

    #[test]
    fn auth_and_authfile_stay_with_the_client() {
        let t = ok("test+tcp://db1:7/default?auth=sasl.DIGEST-MD5&authfile=/etc/a%20b&x=1");
        assert_eq!((t.host.as_str(), t.auth.as_deref()), ("db1", Some("sasl.DIGEST-MD5")));
        assert_eq!(t.auth_file, Some(PathBuf::from("/etc/a b")));
        assert_eq!(t.name, "test:///default?x=1");
    }

    #[test]
    fn socket_paths_are_percent_decoded() {
        assert_eq!(socket(ok("test+unix:///default?socket=/tmp/a%20b/sock")), Path::new("/tmp/a b/sock"));
        assert_eq!(socket(ok("test+unix:///default?socket=/tmp/100%/x")), Path::new("/tmp/100%/x"));
    }

    #[test]
    fn default_sockets_follow_libvirt() {
        let system = ok("qemu:///system");
        assert_eq!(system.name, "qemu:///system");
        let modular = Path::new("/run/libvirt/virtqemud-sock");
        let expected = if modular.exists() { modular } else { Path::new("/run/libvirt/libvirt-sock") };
        assert_eq!(socket(system), expected);
        assert_eq!(socket(ok("test+unix:///default")), Path::new("/run/libvirt/libvirt-sock"));
        let session = ok("qemu:///session");
        assert_eq!(session.name, "qemu:///session");
        let session = socket(session);
        assert!(session.ends_with("libvirt/libvirt-sock") || session.ends_with("libvirt/virtqemud-sock"));
    }

    #[test]
    fn other_uris_are_not_remote() {
        for uri in ["test:///default", "test:///empty", "qemu:///embed", "xen:///system", "nonsense", ""] {
            assert_eq!(target(uri), None, "{uri}");
        }
        for uri in ["qemu+ext://host/system", "+unix:///system"] {
            let error = target(uri).unwrap().unwrap_err();
            assert_eq!(error.code, ErrorCode::NoConnect, "{uri}");
            assert!(error.message.contains(uri), "{}", error.message);
        }
    }
}
