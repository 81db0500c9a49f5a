//! Certificates for the TLS tests, made with the `openssl` command in a
//! folder of the test's: a CA, certificates it signs (for the daemon, for a
//! client, expired, not yet valid, for another host, revoked by the CA's
//! CRL), and a second CA that signs nothing of the daemon's. Folders laid out as libvirt's `pkipath=`
//! wants them (`cacert.pem`, `clientcert.pem`, `clientkey.pem`) come from
//! [`Pki::client_dir`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder all certificates are made in.
pub struct Pki {
    pub dir: PathBuf,
}

/// What a certificate is for, and so its extensions.
#[derive(Clone, Copy)]
pub enum Role {
    /// A daemon's, valid for `subject_alt_names`.
    Server(&'static str),
    Client,
}

/// How long a certificate is valid: from now, or a window in the past or future.
#[derive(Clone, Copy)]
pub enum Validity {
    Now,
    Expired,
    NotYet,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

impl Pki {
    /// A new folder with the CA `ca` and the wrong CA `other-ca` in it.
    pub fn new(dir: PathBuf) -> Pki {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        for ca in ["ca", "other-ca"] {
            let folder = pki.dir.join(ca);
            std::fs::create_dir_all(folder.join("new")).unwrap();
            std::fs::write(folder.join("index.txt"), "").unwrap();
            std::fs::write(folder.join("serial"), "1000\n").unwrap();
            // A CRL number makes a version 2 CRL, the kind rustls reads.
            std::fs::write(folder.join("crlnumber"), "1000\n").unwrap();
            std::fs::write(
                folder.join("ca.cnf"),
                format!(
                    "[ca]\ndefault_ca = this\n[this]\ndatabase = {0}/index.txt\nnew_certs_dir = {0}/new\n\
                     serial = {0}/serial\ncrlnumber = {0}/crlnumber\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
                     [any]\ncommonName = supplied\norganizationName = optional\n\
                     [v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n",
                    folder.display()
                ),
            )
            .unwrap();
            openssl(
                &folder,
                &[
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    "cakey.pem", "-out", "cacert.pem", "-days", "2", "-subj", &format!("/O=virevent tests/CN={ca}"),
                    "-config", "ca.cnf", "-extensions", "v3_ca",
                ],
            );
        }
        pki
    }

    /// The certificate `name` (`name.pem`, key `name-key.pem`) for `role`,
    /// signed by `ca` and valid as `validity` says.
    pub fn issue(&self, ca: &str, name: &str, role: Role, validity: Validity) {
        let folder = self.dir.join(ca);
        let key = self.dir.join(format!("{name}-key.pem"));
        let csr = self.dir.join(format!("{name}.csr"));
        let subject = format!("/O=virevent tests/CN={name}");
        let (key_s, csr_s) = (key.display().to_string(), csr.display().to_string());
        openssl(
            &self.dir,
            &[
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", &key_s, "-out",
                &csr_s, "-subj", &subject,
            ],
        );
        let extensions = match role {
            Role::Server(names) => format!(
                "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = serverAuth\nsubjectAltName = {names}\n"
            ),
            Role::Client => "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature,keyEncipherment\n\
                             extendedKeyUsage = clientAuth\n"
                .to_string(),
        };
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext, extensions).unwrap();
        let (start, end) = match validity {
            Validity::Now => (None, None),
            Validity::Expired => (Some("20200101000000Z"), Some("20200102000000Z")),
            Validity::NotYet => (Some("20990101000000Z"), Some("20990102000000Z")),
        };
        let out = self.dir.join(format!("{name}.pem")).display().to_string();
        let ext_s = ext.display().to_string();
        let mut args = vec![
            "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "cacert.pem", "-keyfile", "cakey.pem", "-in", &csr_s,
            "-out", &out, "-extfile", &ext_s,
        ];
        match (start, end) {
            (Some(start), Some(end)) => args.extend(["-startdate", start, "-enddate", end]),
            _ => args.extend(["-days", "2"]),
        }
        openssl(&folder, &args);
    }

    /// Revokes the certificate `name` of `ca` and writes `ca`'s CRL (`crl.pem`).
    pub fn revoke(&self, ca: &str, name: &str) {
        let folder = self.dir.join(ca);
        let cert = self.cert(name).display().to_string();
        let base = ["-config", "ca.cnf", "-cert", "cacert.pem", "-keyfile", "cakey.pem"];
        openssl(&folder, &[&["ca", "-revoke", &cert][..], &base].concat());
        openssl(&folder, &[&["ca", "-gencrl", "-crldays", "2", "-out", "crl.pem"][..], &base].concat());
    }

    /// The certificate `name`'s file.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// Its key's file.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-key.pem"))
    }

    /// `ca`'s certificate.
    pub fn ca_cert(&self, ca: &str) -> PathBuf {
        self.dir.join(ca).join("cacert.pem")
    }

    /// A `pkipath=` folder `folder`: `ca`'s certificate as cacert.pem, its
    /// CRL as cacrl.pem once [`Pki::revoke`] made one, and, when given, the
    /// client certificate `client` as clientcert.pem and clientkey.pem.
    pub fn client_dir(&self, folder: &str, ca: &str, client: Option<&str>) -> PathBuf {
        let dir = self.dir.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(self.ca_cert(ca), dir.join("cacert.pem")).unwrap();
        let crl = self.dir.join(ca).join("crl.pem");
        if crl.exists() {
            std::fs::copy(crl, dir.join("cacrl.pem")).unwrap();
        }
        if let Some(client) = client {
            std::fs::copy(self.cert(client), dir.join("clientcert.pem")).unwrap();
            std::fs::copy(self.key(client), dir.join("clientkey.pem")).unwrap();
        }
        dir
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
