//! TLS to a daemon (`DRIVER+tls://HOST[:PORT]/PATH`) with rustls, which does
//! no I/O of its own: the handshake is driven here in poll within the open
//! deadline, and afterwards every read and write is a non-blocking step on the
//! link's socket, so TLS needs no thread and never blocks a delivery.
//!
//! Files are found as libvirt's client finds them (docs/api.md, "Remote
//! daemons"): `pkipath=DIR` gives `DIR/cacert.pem`, `DIR/cacrl.pem`,
//! `DIR/clientcert.pem`, `DIR/clientkey.pem`; otherwise root uses
//! `/etc/pki/CA/cacert.pem`, `/etc/pki/CA/cacrl.pem`,
//! `/etc/pki/libvirt/clientcert.pem` and `/etc/pki/libvirt/private/clientkey.pem`,
//! and other users each of `~/.pki/libvirt/{cacert,cacrl,clientcert,clientkey}.pem`
//! where it exists, else root's. The CRL is used when present. After the
//! handshake the daemon sends one byte, `\1`, when it accepts our certificate.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::socket::{ready_before, Socket};
use crate::error::{Error, ErrorCode};

/// What a `+tls` URI says about TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `pkipath=`: the folder of all four files.
    pub pkipath: Option<PathBuf>,
    /// `no_verify=1`: the server's certificate is not checked.
    pub no_verify: bool,
}

/// The four files, where they were found.
#[derive(Debug, PartialEq, Eq)]
struct Files {
    ca: PathBuf,
    crl: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Root's files, and the names of the files in a user's or pkipath's folder.
const SYSTEM: [(&str, &str); 4] = [
    ("/etc/pki/CA/cacert.pem", "cacert.pem"),
    ("/etc/pki/CA/cacrl.pem", "cacrl.pem"),
    ("/etc/pki/libvirt/clientcert.pem", "clientcert.pem"),
    ("/etc/pki/libvirt/private/clientkey.pem", "clientkey.pem"),
];

impl Files {
    /// Where libvirt's client looks: `pkipath`, or for a user (not root) the
    /// file in `home`'s `.pki/libvirt` where it exists, else root's.
    fn find(pkipath: Option<&Path>, home: Option<&Path>) -> Files {
        let [ca, crl, cert, key] = SYSTEM.map(|(system, name)| match (pkipath, home) {
            (Some(dir), _) => dir.join(name),
            (None, Some(home)) if home.join(".pki/libvirt").join(name).exists() => home.join(".pki/libvirt").join(name),
            _ => PathBuf::from(system),
        });
        Files { ca, crl, cert, key }
    }
}

/// The files for this process: root has no user folder.
fn files(options: &Options) -> Files {
    // SAFETY: plain system call.
    let root = unsafe { libc::geteuid() } == 0;
    let home = std::env::var_os("HOME").filter(|_| !root).map(PathBuf::from);
    Files::find(options.pkipath.as_deref(), home.as_deref())
}

/// The failure `why`, as a connect error (`AuthFailed` when the daemon
/// refused our certificate).
fn fail(code: ErrorCode, shown: &str, why: String) -> Error {
    Error::new(code, format!("cannot connect to the libvirt daemon at '{shown}': TLS: {why}"))
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} '{}': {e}", path.display()))
}

/// Every certificate of a PEM file (at least one).
fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(what, path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the {what} '{}' is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("the {what} '{}' holds no certificate", path.display()));
    }
    Ok(certs)
}

/// The client configuration: the CA (and CRL) to check the daemon with, and
/// our certificate and key, when both files are there.
fn config(files: &Files, no_verify: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = if no_verify {
        Arc::new(Unchecked(provider))
    } else {
        let mut roots = RootCertStore::empty();
        for cert in certificates("CA certificate", &files.ca)? {
            roots.add(cert).map_err(|e| format!("the CA certificate '{}' is not usable: {e}", files.ca.display()))?;
        }
        let mut crls = Vec::new();
        if files.crl.exists() {
            let pem = read_file("CRL", &files.crl)?;
            crls = CertificateRevocationListDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("the CRL '{}' is not PEM: {e}", files.crl.display()))?;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).with_crls(crls).build().map_err(|e| {
            match e {
                VerifierBuilderError::InvalidCrl(e) => format!("the CRL '{}' is not usable: {e:?}", files.crl.display()),
                e => format!("the CA certificate '{}' is not usable: {e}", files.ca.display()),
            }
        })?
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    // Without a certificate of ours, the daemon decides (libvirtd's default,
    // tls_no_verify_certificate = 0, refuses us after the handshake).
    if !files.cert.exists() && !files.key.exists() {
        return Ok(builder.with_no_client_auth());
    }
    let certs = certificates("client certificate", &files.cert)?;
    let pem = read_file("client key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("the client key '{}' is not a PEM private key: {e}", files.key.display()))?;
    builder
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("the client certificate '{}' and key '{}' do not fit: {e}", files.cert.display(), files.key.display()))
}

/// `no_verify=1`: any server certificate is taken, but the handshake's
/// signatures are still checked (the session is still encrypted to whoever
/// holds the certificate's key).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a failed handshake means to a user: which check failed.
fn handshake_error(e: &rustls::Error, host: &str, files: &Files) -> (ErrorCode, String) {
    use rustls::AlertDescription as Alert;
    let cert = |e: &CertificateError| match e {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            format!("the daemon's certificate is not signed by the CA in '{}' (unknown CA)", files.ca.display())
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the daemon's certificate has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the daemon's certificate is not valid yet".to_string()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the daemon's certificate is not valid for the host name '{host}'")
        }
        CertificateError::Revoked => {
            format!("the daemon's certificate is revoked by the CRL '{}'", files.crl.display())
        }
        other => format!("the daemon's certificate is refused: {other:?}"),
    };
    match e {
        rustls::Error::InvalidCertificate(e) => (ErrorCode::NoConnect, cert(e)),
        rustls::Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateRequired
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::AccessDenied,
        ) => {
            (ErrorCode::AuthFailed, format!("the daemon refused our certificate ({e})"))
        }
        other => (ErrorCode::NoConnect, format!("the handshake failed: {other}")),
    }
}

/// How many decrypted bytes one [`Tls::recv`] returns at most: what the link
/// offers one read of a plain socket.
const PLAIN_ROOM: usize = super::link::READ_ROOM;

/// An established TLS session on the link's socket.
pub struct Tls {
    session: ClientConnection,
    /// Where [`Tls::recv`] puts decrypted bytes: zeroed once, reused.
    plain: Box<[u8]>,
    /// Whether the last [`Tls::recv`] filled `plain`, so that decrypted
    /// bytes may wait in the session.
    held: bool,
}

impl Tls {
    /// The handshake on the connected, non-blocking `fd` to `host` (`shown`
    /// in messages), then the daemon's verdict on our certificate, all before
    /// `deadline`.
    pub fn start(fd: RawFd, host: &str, shown: &str, options: &Options, deadline: Instant) -> Result<Tls, Error> {
        let files = files(options);
        let config = config(&files, options.no_verify).map_err(|why| fail(ErrorCode::NoConnect, shown, why))?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| fail(ErrorCode::NoConnect, shown, format!("'{host}' is not a host name: {e}")))?;
        let session = ClientConnection::new(Arc::new(config), name)
            .map_err(|e| fail(ErrorCode::NoConnect, shown, e.to_string()))?;
        let mut tls = Tls { session, plain: vec![0; PLAIN_ROOM].into_boxed_slice(), held: false };
        let timed_out = "the handshake timed out";
        while tls.session.is_handshaking() {
            if tls.session.wants_write() {
                match tls.session.write_tls(&mut Socket(fd)) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        wait(fd, libc::POLLOUT, deadline, shown, timed_out)?;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(fail(ErrorCode::NoConnect, shown, format!("writing failed: {e}"))),
                }
            }
            match tls.session.read_tls(&mut Socket(fd)) {
                Ok(0) => {
                    return Err(fail(ErrorCode::NoConnect, shown, "the daemon closed the connection in the handshake".into()))
                }
                Ok(_) => {
                    if let Err(e) = tls.session.process_new_packets() {
                        // Tell the daemon why, as far as it will take it.
                        let _ = tls.session.write_tls(&mut Socket(fd));
                        let (code, why) = handshake_error(&e, host, &files);
                        return Err(fail(code, shown, why));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait(fd, libc::POLLIN, deadline, shown, timed_out)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(ErrorCode::NoConnect, shown, format!("reading failed: {e}"))),
            }
        }
        tls.verdict(fd, shown, deadline)?;
        Ok(tls)
    }

    /// libvirtd checks our certificate (and its `tls_allowed_dn_list`) after
    /// the handshake, and sends `\1` when it accepts us.
    fn verdict(&mut self, fd: RawFd, shown: &str, deadline: Instant) -> Result<(), Error> {
        let refused = || fail(ErrorCode::AuthFailed, shown, "the daemon refused our certificate".to_string());
        loop {
            self.flush(fd).map_err(|e| fail(ErrorCode::NoConnect, shown, format!("writing failed: {e}")))?;
            // The daemon says nothing more before our first call.
            match self.recv(fd) {
                Ok([1]) => return Ok(()),
                Ok(_) => return Err(refused()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait(fd, libc::POLLIN, deadline, shown, "no answer on our certificate (timed out)")?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A daemon that refuses us may just close, or reset.
                Err(_) => return Err(refused()),
            }
        }
    }

    /// The decrypted bytes that have arrived, as many as there are up to
    /// [`PLAIN_ROOM`]: empty at end of file, `WouldBlock` when none have.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<&[u8]> {
        let mut total = 0;
        self.held = false;
        loop {
            match self.session.reader().read(&mut self.plain[total..]) {
                Ok(n) => {
                    total += n;
                    self.held = total == self.plain.len();
                    // Full, or the daemon closed the session (n == 0).
                    if n == 0 || self.held {
                        return Ok(&self.plain[..total]);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without TLS's close_notify: end of file all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(&self.plain[..total]),
                Err(e) => return Err(e),
            }
            match self.session.read_tls(&mut Socket(fd)) {
                Ok(_) => {}
                Err(e) if total > 0 && e.kind() == io::ErrorKind::WouldBlock => return Ok(&self.plain[..total]),
                Err(e) => return Err(e),
            }
            self.session.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Alerts or key updates to answer go out as the socket takes them.
            let _ = self.flush(fd);
        }
    }

    /// Whether decrypted bytes may wait in the session, which the socket's
    /// readiness no longer shows.
    pub fn holds_input(&self) -> bool {
        self.held
    }

    /// Encrypts as much of `bytes` as TLS buffers and sends what the socket
    /// takes. Returns how many of `bytes` were taken; with `bytes` empty,
    /// sends what waits (`Ok(0)` once some went). `WouldBlock` when nothing
    /// could go.
    pub fn send(&mut self, fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
        let progressed = self.flush(fd)?;
        if self.session.wants_write() {
            return if progressed { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        let n = self.session.writer().write(bytes)?;
        self.flush(fd)?;
        Ok(n)
    }

    /// The negotiated cipher's key size in bits, which SASL over TLS takes
    /// as its external strength (as libvirt's client does).
    #[cfg(virevent_sasl)]
    pub fn key_bits(&self) -> u32 {
        let suite = self.session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()));
        // Every suite this client offers is AES-128-GCM, AES-256-GCM or ChaCha20 (256 bits).
        if suite.is_some_and(|name| name.contains("AES_128")) {
            128
        } else {
            256
        }
    }

    /// Whether encrypted bytes wait for the socket.
    pub fn output_waits(&self) -> bool {
        self.session.wants_write()
    }

    /// Sends what the socket takes of the encrypted bytes; whether any went.
    fn flush(&mut self, fd: RawFd) -> io::Result<bool> {
        let mut progressed = false;
        while self.session.wants_write() {
            match self.session.write_tls(&mut Socket(fd)) {
                Ok(_) => progressed = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(progressed)
    }
}

/// Waits until `fd` is ready for `events`; at `deadline`, the error `timeout`
/// says what did not come.
fn wait(fd: RawFd, events: libc::c_short, deadline: Instant, shown: &str, timeout: &str) -> Result<(), Error> {
    match ready_before(fd, events, deadline) {
        Ok(true) => Ok(()),
        Ok(false) => Err(fail(ErrorCode::NoConnect, shown, timeout.to_string())),
        Err(e) => Err(fail(ErrorCode::NoConnect, shown, format!("waiting failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_where_libvirts_client_looks() {
        let system = Files::find(None, None);
        assert_eq!(system.ca, Path::new("/etc/pki/CA/cacert.pem"));
        assert_eq!(system.crl, Path::new("/etc/pki/CA/cacrl.pem"));
        assert_eq!(system.cert, Path::new("/etc/pki/libvirt/clientcert.pem"));
        assert_eq!(system.key, Path::new("/etc/pki/libvirt/private/clientkey.pem"));
        let dir = std::env::temp_dir().join(format!("virevent-pki-{}", std::process::id()));
        let pki = dir.join(".pki/libvirt");
        std::fs::create_dir_all(&pki).unwrap();
        // A user's own file wins, each file on its own.
        std::fs::write(pki.join("cacert.pem"), "").unwrap();
        let user = Files::find(None, Some(&dir));
        assert_eq!(user.ca, pki.join("cacert.pem"));
        assert_eq!(user.cert, system.cert);
        // pkipath= names all four, there or not.
        let custom = Files::find(Some(Path::new("/p")), Some(&dir));
        assert_eq!(
            custom,
            Files {
                ca: "/p/cacert.pem".into(),
                crl: "/p/cacrl.pem".into(),
                cert: "/p/clientcert.pem".into(),
                key: "/p/clientkey.pem".into()
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
