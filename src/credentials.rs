//! Credentials for authenticating to a daemon, gathered as libvirt's client
//! gathers them: libvirt's credential types and numbers, the program's
//! callback ([`Authenticator`], `virConnectAuth` in C) and libvirt's
//! `auth.conf` ([`crate::auth_conf`]). For each question a SASL mechanism
//! asks, `auth.conf` answers first, as in libvirt (so that virsh and a
//! virevent program with the same file behave the same), and the callback
//! answers the rest, all of them in one call. Secrets are wiped from memory
//! when dropped, and never appear in an error message.

use crate::error::{Error, ErrorCode, Result};

/// libvirt's `virConnectCredentialType`, with its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum CredentialType {
    /// The identity to act as (SASL's authorization id).
    Username = 1,
    /// The identity to authenticate as.
    Authname = 2,
    /// RFC 1766 languages, comma separated.
    Language = 3,
    /// A client nonce.
    Cnonce = 4,
    /// The password or passphrase.
    Passphrase = 5,
    /// A challenge answered with echo.
    EchoPrompt = 6,
    /// A challenge answered without echo.
    NoEchoPrompt = 7,
    /// The authentication realm.
    Realm = 8,
    /// Externally managed (polkit's); never asked by SASL.
    External = 9,
}

impl CredentialType {
    /// The type with libvirt's number `n`.
    pub fn from_number(n: i32) -> Option<CredentialType> {
        use CredentialType::*;
        [Username, Authname, Language, Cnonce, Passphrase, EchoPrompt, NoEchoPrompt, Realm, External]
            .into_iter()
            .find(|t| *t as i32 == n)
    }

    /// libvirt's name for it, for messages.
    pub fn name(self) -> &'static str {
        match self {
            CredentialType::Username => "VIR_CRED_USERNAME",
            CredentialType::Authname => "VIR_CRED_AUTHNAME",
            CredentialType::Language => "VIR_CRED_LANGUAGE",
            CredentialType::Cnonce => "VIR_CRED_CNONCE",
            CredentialType::Passphrase => "VIR_CRED_PASSPHRASE",
            CredentialType::EchoPrompt => "VIR_CRED_ECHOPROMPT",
            CredentialType::NoEchoPrompt => "VIR_CRED_NOECHOPROMPT",
            CredentialType::Realm => "VIR_CRED_REALM",
            CredentialType::External => "VIR_CRED_EXTERNAL",
        }
    }

    /// The key of `auth.conf`'s credentials groups that holds it, as libvirt reads them.
    pub fn auth_conf_key(self) -> Option<&'static str> {
        match self {
            CredentialType::Username => Some("username"),
            CredentialType::Authname => Some("authname"),
            CredentialType::Passphrase => Some("password"),
            CredentialType::Realm => Some("realm"),
            _ => None,
        }
    }
}

/// Bytes that are wiped when dropped, with a NUL after them for libraries
/// that read them as a C string.
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// A secret holding `bytes`, which are copied (with a NUL after them)
    /// into room of the right size and wiped, so that no copy is left behind.
    pub fn new(mut bytes: Vec<u8>) -> Secret {
        let mut kept = Vec::with_capacity(bytes.len() + 1);
        kept.extend_from_slice(&bytes);
        kept.push(0);
        wipe(&mut bytes);
        Secret { bytes: kept }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 1]
    }

    /// Where the bytes are, NUL-terminated.
    pub fn as_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }

    /// How many bytes, the NUL not counted.
    pub fn len(&self) -> usize {
        self.bytes.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Clone for Secret {
    fn clone(&self) -> Secret {
        Secret::new(self.as_bytes().to_vec())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.bytes);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Overwrites `bytes` with zeros in a way the compiler keeps.
pub fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: a valid, aligned byte of the slice.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// One credential a mechanism asks for, as the program's callback sees it.
#[derive(Debug)]
pub struct Credential {
    pub kind: CredentialType,
    /// What to show the user ("Please enter your password").
    pub prompt: String,
    pub challenge: Option<String>,
    /// The mechanism's default answer, if any.
    pub default: Option<String>,
    /// The answer; `None` leaves the credential unanswered.
    pub result: Option<Secret>,
}

/// The program's source of credentials: `virConnectAuth` in C.
pub trait Authenticator {
    /// The credential types it can answer; it is asked only for these.
    fn types(&self) -> &[CredentialType];
    /// Fills in the results it can; `false` means it failed (the open then
    /// fails with `VIR_ERR_AUTH_FAILED`).
    fn ask(&mut self, credentials: &mut [Credential]) -> bool;
}

/// One question of a mechanism, to be answered.
pub struct Question {
    pub kind: CredentialType,
    pub prompt: String,
    pub challenge: Option<String>,
    pub default: Option<String>,
}

/// Answers `questions` in their order: from `conf` first, then from
/// `program` for the rest it takes, all at once. An unanswered username (the
/// authorization id) is empty, which means the authentication name, and an
/// unanswered realm is the mechanism's default; any other unanswered
/// credential fails with `VIR_ERR_AUTH_FAILED` naming it and `host`.
pub fn answer(
    questions: &[Question],
    host: &str,
    conf: Option<&crate::auth_conf::AuthConf>,
    program: Option<&mut (dyn Authenticator + '_)>,
) -> Result<Vec<Secret>> {
    let mut answers: Vec<Option<Secret>> =
        questions.iter().map(|q| conf.and_then(|c| c.lookup(host, q.kind)).cloned()).collect();
    if let Some(program) = program {
        let open: Vec<usize> =
            (0..questions.len()).filter(|&i| answers[i].is_none() && program.types().contains(&questions[i].kind)).collect();
        if !open.is_empty() {
            let mut asked: Vec<Credential> = open
                .iter()
                .map(|&i| {
                    let q = &questions[i];
                    Credential { kind: q.kind, prompt: q.prompt.clone(), challenge: q.challenge.clone(), default: q.default.clone(), result: None }
                })
                .collect();
            if !program.ask(&mut asked) {
                return Err(Error::new(
                    ErrorCode::AuthFailed,
                    format!("the authentication callback failed to collect the credentials for '{host}'"),
                ));
            }
            for (&i, credential) in open.iter().zip(asked) {
                answers[i] = credential.result;
            }
        }
    }
    let authname = questions.iter().zip(&answers).find(|(q, _)| q.kind == CredentialType::Authname).and_then(|(_, a)| a.clone());
    questions
        .iter()
        .zip(answers)
        .map(|(q, answer)| match (answer, q.kind) {
            (Some(answer), _) => Ok(answer),
            (None, CredentialType::Username) => Ok(authname.clone().unwrap_or_else(|| Secret::new(Vec::new()))),
            (None, CredentialType::Realm) => Ok(Secret::new(q.default.clone().unwrap_or_default().into_bytes())),
            (None, kind) => Err(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "authentication to '{host}' needs {} ({}), and neither an authentication callback nor \
                     auth.conf{} gives it",
                    kind.name(),
                    q.prompt.trim_end_matches([':', ' ']),
                    conf.map_or(String::new(), |c| format!(" ('{}')", c.path().display()))
                ),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Program(Vec<CredentialType>, Option<&'static str>, usize);
    impl Authenticator for Program {
        fn types(&self) -> &[CredentialType] {
            &self.0
        }
        fn ask(&mut self, credentials: &mut [Credential]) -> bool {
            self.2 += 1;
            for c in credentials.iter_mut() {
                c.result = self.1.map(|s| Secret::new(s.as_bytes().to_vec()));
            }
            self.1.is_some()
        }
    }

    fn question(kind: CredentialType) -> Question {
        Question { kind, prompt: "Please enter it: ".into(), challenge: None, default: Some("realm0".into()) }
    }

    #[test]
    fn the_program_answers_what_it_takes_in_one_call() {
        let mut program = Program(vec![CredentialType::Authname, CredentialType::Passphrase], Some("x"), 0);
        let qs = [question(CredentialType::Authname), question(CredentialType::Passphrase), question(CredentialType::Username)];
        let got = answer(&qs, "h", None, Some(&mut program)).unwrap();
        assert_eq!(got.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>(), [b"x".to_vec(), b"x".to_vec(), b"x".to_vec()]);
        assert_eq!(program.2, 1);
    }

    #[test]
    fn a_missing_passphrase_is_named_with_the_host() {
        let mut program = Program(vec![CredentialType::Authname], Some("fred"), 0);
        let qs = [question(CredentialType::Authname), question(CredentialType::Passphrase)];
        let e = answer(&qs, "db1.example.org", None, Some(&mut program)).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthFailed);
        assert!(e.message.contains("VIR_CRED_PASSPHRASE") && e.message.contains("'db1.example.org'"), "{}", e.message);
    }

    #[test]
    fn a_failing_callback_fails_the_open() {
        let mut program = Program(vec![CredentialType::Passphrase], None, 0);
        let e = answer(&[question(CredentialType::Passphrase)], "h", None, Some(&mut program)).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthFailed);
        assert!(e.message.contains("callback failed"), "{}", e.message);
    }

    #[test]
    fn an_unanswered_realm_is_the_default() {
        let got = answer(&[question(CredentialType::Realm)], "h", None, None).unwrap();
        assert_eq!(got[0].as_bytes(), b"realm0");
    }

    #[test]
    fn secrets_are_nul_terminated_and_hide_in_debug() {
        let s = Secret::new(b"pw".to_vec());
        assert_eq!((s.len(), unsafe { *s.as_ptr().add(2) }), (2, 0));
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }
}
