//! libvirt's `auth.conf`: credentials for daemons, by host. Found where
//! libvirt's client finds it (the URI's `authfile=`, then
//! `$LIBVIRT_AUTH_FILE`, then `$XDG_CONFIG_HOME/libvirt/auth.conf` (or
//! `~/.config/libvirt/auth.conf`), then `/etc/libvirt/auth.conf`), and read
//! as libvirt reads it:
//!
//! ```text
//! [credentials-prod]
//! authname=fred
//! password=secret
//!
//! [auth-libvirt-db1.example.org]
//! credentials=prod
//! ```
//!
//! `[auth-libvirt-HOST]` names the credentials for the URI's host, and
//! `[auth-libvirt-default]` those for every other host. Values are kept as
//! [`Secret`]s, and the file's bytes are wiped once read.

// Only SASL asks for credentials: a build without it reads no auth.conf.
#![cfg_attr(not(virevent_sasl), allow(dead_code))]

use std::path::{Path, PathBuf};

use crate::credentials::{wipe, CredentialType, Secret};
use crate::error::{Error, ErrorCode, Result};

/// A parsed `auth.conf` (its Debug shows no value).
#[derive(Debug)]
pub struct AuthConf {
    path: PathBuf,
    /// `(group, key, value)` in file order.
    entries: Vec<(String, String, Secret)>,
}

impl AuthConf {
    /// The file libvirt's client would read for a URI whose `authfile=` is
    /// `from_uri`: `None` when none of the places has one.
    pub fn locate(from_uri: Option<&Path>) -> Option<PathBuf> {
        if let Some(path) = from_uri {
            return Some(path.to_path_buf());
        }
        if let Some(path) = std::env::var_os("LIBVIRT_AUTH_FILE").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")));
        let user = config.map(|dir| dir.join("libvirt/auth.conf"));
        user.into_iter().chain([PathBuf::from("/etc/libvirt/auth.conf")]).find(|p| p.exists())
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<AuthConf> {
        let mut bytes = std::fs::read(path).map_err(|e| {
            Error::new(ErrorCode::AuthFailed, format!("cannot read the credentials file '{}': {e}", path.display()))
        })?;
        let parsed = AuthConf::parse(path, &bytes);
        wipe(&mut bytes);
        parsed
    }

    /// Parses `bytes`, the contents of `path`: `[group]` lines, `key=value`
    /// lines (spaces around both trimmed), `#` and `;` comments, blank lines.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<AuthConf> {
        let bad = |line: usize, why: &str| {
            Error::new(ErrorCode::AuthFailed, format!("the credentials file '{}' is malformed at line {line}: {why}", path.display()))
        };
        let mut entries = Vec::new();
        let mut group: Option<String> = None;
        for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line).trim_ascii();
            if line.is_empty() || line[0] == b'#' || line[0] == b';' {
                continue;
            }
            if line[0] == b'[' {
                let name = line.strip_prefix(b"[").and_then(|l| l.strip_suffix(b"]")).ok_or_else(|| bad(number + 1, "a group line must end with ']'"))?;
                let name = std::str::from_utf8(name).map_err(|_| bad(number + 1, "the group name is not UTF-8"))?;
                group = Some(name.to_string());
                continue;
            }
            // The value is not shown: it may be a password.
            let equals = line.iter().position(|&b| b == b'=').ok_or_else(|| bad(number + 1, "expected [group] or key=value"))?;
            let group = group.clone().ok_or_else(|| bad(number + 1, "a key before any [group]"))?;
            let key = std::str::from_utf8(line[..equals].trim_ascii()).map_err(|_| bad(number + 1, "the key is not UTF-8"))?;
            entries.push((group, key.to_string(), Secret::new(line[equals + 1..].trim_ascii().to_vec())));
        }
        Ok(AuthConf { path: path.to_path_buf(), entries })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn value(&self, group: &str, key: &str) -> Option<&Secret> {
        // A key given twice: the last one counts, as in GLib's key files.
        self.entries.iter().rev().find(|(g, k, _)| g == group && k == key).map(|(_, _, v)| v)
    }

    /// The credential of type `kind` for the libvirt daemon at `host`, if
    /// the file has one (`[auth-libvirt-HOST]`, else `[auth-libvirt-default]`).
    pub fn lookup(&self, host: &str, kind: CredentialType) -> Option<&Secret> {
        let key = kind.auth_conf_key()?;
        let set = self
            .value(&format!("auth-libvirt-{host}"), "credentials")
            .or_else(|| self.value("auth-libvirt-default", "credentials"))?;
        let set = std::str::from_utf8(set.as_bytes()).ok()?;
        self.value(&format!("credentials-{set}"), key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# libvirt's example\n[credentials-test]\nauthname = fred\npassword=123456\n\n\
                        [credentials-prod]\nauthname=alice\npassword= s3cret \r\n[auth-libvirt-db1]\ncredentials=prod\n\
                        ; fallback\n[auth-libvirt-default]\ncredentials=test\n";

    fn conf() -> AuthConf {
        AuthConf::parse(Path::new("/x/auth.conf"), FILE.as_bytes()).unwrap()
    }

    fn lookup(host: &str, kind: CredentialType) -> Option<String> {
        conf().lookup(host, kind).map(|s| String::from_utf8(s.as_bytes().to_vec()).unwrap())
    }

    #[test]
    fn the_host_group_names_the_credentials() {
        assert_eq!(lookup("db1", CredentialType::Authname).as_deref(), Some("alice"));
        assert_eq!(lookup("db1", CredentialType::Passphrase).as_deref(), Some("s3cret"));
    }

    #[test]
    fn other_hosts_take_the_default_group() {
        assert_eq!(lookup("db2", CredentialType::Authname).as_deref(), Some("fred"));
        assert_eq!(lookup("db2", CredentialType::Username), None);
        assert_eq!(lookup("db2", CredentialType::Cnonce), None);
    }

    #[test]
    fn malformed_lines_are_errors_that_hide_values() {
        let e = AuthConf::parse(Path::new("/x/a"), b"[credentials-a]\npassword\n").unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthFailed);
        assert!(e.message.contains("'/x/a'") && e.message.contains("line 2"), "{}", e.message);
        let e = AuthConf::parse(Path::new("/x/a"), b"password=hunter2\n").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(AuthConf::parse(Path::new("/x/a"), b"[credentials-a\n").is_err());
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let e = AuthConf::read(Path::new("/nonexistent/auth.conf")).err().unwrap();
        assert_eq!(e.code, ErrorCode::AuthFailed);
        assert!(e.message.contains("'/nonexistent/auth.conf'"), "{}", e.message);
    }
}
