//! The subjects events are published on: `virevent.<host>.<type>`.
//!
//! A NATS subject is tokens joined by `.`; a token may not hold `.`, `*`, `>`
//! or white space. A host name has dots and a type may too, so each token is
//! escaped, reversibly: ASCII letters, digits and `-` stay, `.` becomes `_`
//! (host names never hold `_`, so `node1.example.com` reads
//! `node1_example_com`), and every other byte, `_` included, becomes `%XX`
//! (upper-case hex): `::1` reads `%3A%3A1`.

/// The first token of every subject, and of the stream's subject filter.
pub const ROOT: &str = "virevent";

/// `token` escaped for a NATS subject.
pub fn escape(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for b in token.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => out.push(b as char),
            b'.' => out.push('_'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The subject of an event of type `kind` from `host`.
pub fn of(host: &str, kind: &str) -> String {
    format!("{ROOT}.{}.{}", escape(host), escape(kind))
}

/// The host an event's subject names, for a URI: the URI's host for a daemon
/// reached over the network, else this machine's name (a Unix socket, the
/// embedded driver).
pub fn host_of_uri(uri: &str) -> String {
    let remote = uri.split_once("://").and_then(|(scheme, rest)| {
        let transport = scheme.split_once('+').map(|(_, t)| t)?;
        if !matches!(transport, "tcp" | "tls" | "ssh" | "libssh" | "libssh2") {
            return None;
        }
        let authority = rest.split(['/', '?']).next()?;
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split_once(']')?.0,
            None => host_port.split(':').next()?,
        };
        (!host.is_empty()).then(|| host.to_string())
    });
    remote.unwrap_or_else(this_host)
}

/// This machine's name (gethostname), or `localhost` if it has none.
fn this_host() -> String {
    let mut name = [0u8; 256];
    // SAFETY: the buffer is ours and its length is passed.
    let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
    let len = name.iter().position(|&b| b == 0).unwrap_or(0);
    match std::str::from_utf8(&name[..len]) {
        Ok(host) if ok && !host.is_empty() => host.to_string(),
        _ => "localhost".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hold_no_subject_syntax_and_stay_distinct() {
        assert_eq!(escape("node1.example.com"), "node1_example_com");
        assert_eq!(escape("::1"), "%3A%3A1");
        assert_eq!(escape("a_b"), "a%5Fb");
        assert_eq!(escape("a b*>\t"), "a%20b%2A%3E%09");
        assert_eq!(escape("domain-state-transition"), "domain-state-transition");
        // Different names never meet in one token.
        assert_ne!(escape("a.b"), escape("a_b"));
        assert_eq!(of("h.x", "t"), "virevent.h_x.t");
    }

    #[test]
    fn the_host_is_the_uris_for_a_network_daemon_else_this_machines() {
        assert_eq!(host_of_uri("qemu+tcp://node1.example.com:16509/system"), "node1.example.com");
        assert_eq!(host_of_uri("qemu+ssh://root@node2/system?keyfile=k"), "node2");
        assert_eq!(host_of_uri("qemu+tls://[::1]:16514/system"), "::1");
        assert_eq!(host_of_uri("test+tls://127.0.0.1/default"), "127.0.0.1");
        let here = this_host();
        assert_eq!(host_of_uri("qemu:///system"), here);
        assert_eq!(host_of_uri("test+unix:///default?socket=/tmp/s"), here);
        assert_eq!(host_of_uri("test:///default"), here);
    }
}
