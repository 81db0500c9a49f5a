//! A private SASL configuration for a test libvirtd (its SASL_CONF_PATH):
//! `libvirt.conf` offering DIGEST-MD5, SCRAM-SHA-256 and PLAIN, and a sasldb
//! made with saslpasswd2 that knows [`USER`] with [`PASSWORD`]. The folder
//! is removed on drop.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret pass";

pub struct SaslConf {
    pub dir: PathBuf,
}

impl SaslConf {
    /// Makes the folder `dir` with the configuration and the sasldb.
    pub fn new(dir: PathBuf) -> SaslConf {
        std::fs::create_dir(&dir).unwrap();
        let db = dir.join("passwd.db");
        let conf = format!("mech_list: digest-md5 scram-sha-256 plain\nsasldb_path: {}\n", db.display());
        std::fs::write(dir.join("libvirt.conf"), conf).unwrap();
        let mut saslpasswd = Command::new("saslpasswd2")
            .args(["-f", db.to_str().unwrap(), "-a", "libvirt", "-c", "-p", USER])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run saslpasswd2");
        saslpasswd.stdin.take().unwrap().write_all(PASSWORD.as_bytes()).unwrap();
        assert!(saslpasswd.wait().unwrap().success(), "saslpasswd2 failed");
        SaslConf { dir }
    }
}

impl Drop for SaslConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the tests are built with the `sasl` feature off
/// (`--no-default-features`), which no tool can make up for: a SASL test
/// then says so in one line and does nothing.
pub fn feature_off(what: &str) -> bool {
    if cfg!(feature = "sasl") {
        return false;
    }
    // Straight to the terminal, as the tools rule's lines: the harness captures eprintln!.
    let line = format!("SKIPPED {what}: the library is built without its sasl feature\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    true
}
