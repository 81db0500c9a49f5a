//! Exports for authenticated opens: virConnectOpenAuth with libvirt's
//! virConnectAuth, and libvirt's virConnectAuthPtrDefault, which asks on the
//! terminal.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

use super::args::text;
use super::boundary::guard;
use super::types::{virConnect, virConnectAuth, virConnectFlags, virConnectAuthPtr, virConnectCredential, virConnectPtr};
use crate::connection::Connection;
use crate::credentials::{wipe, Authenticator, Credential, CredentialType, Secret};
use crate::error::{Error, ErrorCode};
use crate::terminal::ASKED;

/// libvirt's open flags this library takes: VIR_CONNECT_RO (every virevent
/// connection is read-only) and VIR_CONNECT_NO_ALIASES (it has no aliases).
const OPEN_FLAGS: c_uint = virConnectFlags::VIR_CONNECT_RO as c_uint | virConnectFlags::VIR_CONNECT_NO_ALIASES as c_uint;

/// Opens `name` as virConnectOpen does, with `auth` supplying credentials
/// when the daemon wants SASL authentication. As in libvirt's client, the
/// credentials are taken from auth.conf first (the URI's `authfile=`, else
/// $LIBVIRT_AUTH_FILE, $XDG_CONFIG_HOME/libvirt/auth.conf, then
/// /etc/libvirt/auth.conf: `[auth-libvirt-HOST]` or `[auth-libvirt-default]`
/// naming a `[credentials-NAME]` group with `username`, `authname`,
/// `password`, `realm`), and `auth`'s callback is asked, in one call, for the
/// rest of those of its `credtype` list. The URI's `auth=sasl.MECH` picks a
/// mechanism. On plain TCP the mechanism must bring a security layer of at
/// least 56 bits (DIGEST-MD5, GSSAPI), which then protects every later
/// packet; over TLS or a Unix socket any mechanism the daemon offers will do.
/// The whole exchange is part of the open, bounded by its deadline.
///
/// `auth` may be NULL (then only auth.conf answers) or virConnectAuthPtrDefault.
/// `flags`: 0, VIR_CONNECT_RO (1) or VIR_CONNECT_NO_ALIASES (2).
///
/// Errors: as virConnectOpen; VIR_ERR_AUTH_FAILED when a credential the
/// mechanism needs is not given (naming it and the host), when the callback
/// returns -1, when the daemon refuses the credentials or the mechanism
/// (with its words), when the mechanism is too weak for plain TCP, or when
/// auth.conf cannot be read or parsed (naming it); VIR_ERR_NO_SUPPORT when the
/// library was built without SASL; VIR_ERR_INVALID_ARG for other flags.
/// Passwords are wiped from memory after use and never appear in a message.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `auth` is NULL or points to a
/// virConnectAuth whose `credtype` holds `ncredtype` ints.
#[no_mangle]
pub unsafe extern "C" fn virConnectOpenAuth(name: *const c_char, auth: virConnectAuthPtr, flags: c_uint) -> virConnectPtr {
    guard(|| {
        if flags & !OPEN_FLAGS != 0 {
            return Err(Error::new(ErrorCode::InvalidArg, format!("unsupported flags {flags:#x} (VIR_CONNECT_RO and VIR_CONNECT_NO_ALIASES are)")));
        }
        let uri = if name.is_null() { None } else { Some(unsafe { text(name, "name") }?) };
        // SAFETY: the caller's contract.
        let mut program = unsafe { auth.as_ref() }.map(|auth| unsafe { CallbackAuth::new(auth) });
        let inner = Connection::open_auth(uri, program.as_mut().map(|p| p as &mut dyn Authenticator))?;
        Ok(Box::into_raw(Box::new(virConnect { inner })))
    })
}

/// A C virConnectAuth as an [`Authenticator`].
struct CallbackAuth {
    types: Vec<CredentialType>,
    auth: *const virConnectAuth,
}

impl CallbackAuth {
    /// # Safety
    /// `auth.credtype` holds `auth.ncredtype` ints (or is NULL).
    unsafe fn new(auth: &virConnectAuth) -> CallbackAuth {
        let listed = if auth.credtype.is_null() || auth.cb.is_none() {
            &[][..]
        } else {
            // SAFETY: the caller's contract.
            unsafe { std::slice::from_raw_parts(auth.credtype, auth.ncredtype as usize) }
        };
        CallbackAuth { types: listed.iter().filter_map(|&n| CredentialType::from_number(n)).collect(), auth }
    }
}

impl Authenticator for CallbackAuth {
    fn types(&self) -> &[CredentialType] {
        &self.types
    }

    fn ask(&mut self, credentials: &mut [Credential]) -> bool {
        // SAFETY: `auth` outlives the open that uses this adapter.
        let auth = unsafe { &*self.auth };
        let Some(cb) = auth.cb else { return true };
        let text = |s: &str| CString::new(s.replace('\0', "")).unwrap_or_default();
        let strings: Vec<[Option<CString>; 3]> = credentials
            .iter()
            .map(|c| [Some(text(&c.prompt)), c.challenge.as_deref().map(text), c.default.as_deref().map(text)])
            .collect();
        let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        let mut c_creds: Vec<virConnectCredential> = credentials
            .iter()
            .zip(&strings)
            .map(|(c, [prompt, challenge, default])| virConnectCredential {
                r#type: c.kind as c_int,
                prompt: ptr(prompt),
                challenge: ptr(challenge),
                defresult: ptr(default),
                result: std::ptr::null_mut(),
                resultlen: 0,
            })
            .collect();
        // SAFETY: a valid array of `len` credentials whose strings live until
        // the call returns; the callback is the program's.
        let status = unsafe { cb(c_creds.as_mut_ptr(), c_creds.len() as c_uint, auth.cbdata) };
        for (c, credential) in c_creds.iter_mut().zip(credentials.iter_mut()) {
            if c.result.is_null() {
                continue;
            }
            // SAFETY: the callback's malloc'd answer of `resultlen` bytes.
            let answer = unsafe { std::slice::from_raw_parts_mut(c.result.cast::<u8>(), c.resultlen as usize) };
            credential.result = Some(Secret::new(answer.to_vec()));
            wipe(answer);
            // SAFETY: from malloc, as libvirt's contract says; freed once.
            unsafe { libc::free(c.result.cast::<c_void>()) };
            c.result = std::ptr::null_mut();
        }
        status >= 0
    }
}

/// What virConnectAuthPtrDefault answers: the terminal's types, as numbers.
static DEFAULT_TYPES: [c_int; ASKED.len()] = {
    let mut numbers = [0; ASKED.len()];
    let mut i = 0;
    while i < ASKED.len() {
        numbers[i] = ASKED[i] as c_int;
        i += 1;
    }
    numbers
};

/// A virConnectAuth whose callback asks on the controlling terminal, as
/// libvirt's does: AUTHNAME, REALM and ECHOPROMPT with echo, PASSPHRASE and
/// NOECHOPROMPT without (an empty answer takes the default); EXTERNAL is
/// listed, as in libvirt, and never asked. With no terminal it returns -1.
#[no_mangle]
pub static mut virConnectAuthPtrDefault: virConnectAuthPtr = &raw mut DEFAULT_AUTH;

static mut DEFAULT_AUTH: virConnectAuth = virConnectAuth {
    credtype: DEFAULT_TYPES.as_ptr() as *mut c_int,
    ncredtype: ASKED.len() as c_uint,
    cb: Some(ask_on_terminal),
    cbdata: std::ptr::null_mut(),
};

/// The default callback: each credential's prompt on /dev/tty, its answer
/// read from there.
unsafe extern "C" fn ask_on_terminal(cred: *mut virConnectCredential, ncred: c_uint, _cbdata: *mut c_void) -> c_int {
    let result = std::panic::catch_unwind(|| {
        // SAFETY: libvirt's contract: `ncred` credentials.
        let creds = unsafe { std::slice::from_raw_parts_mut(cred, ncred as usize) };
        let Ok(mut tty) = crate::terminal::Terminal::open() else { return -1 };
        // SAFETY: NULL or NUL-terminated strings, by libvirt's contract.
        let text = |p: *const c_char| (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) });
        for c in creds.iter_mut() {
            let prompt = text(c.prompt).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let default = text(c.defresult).map(CStr::to_bytes);
            let Ok(mut answer) = tty.answer(CredentialType::from_number(c.r#type), &prompt, default) else { return -1 };
            // SAFETY: malloc'd room for the answer and a NUL, as libvirt's contract wants.
            let room = unsafe { libc::malloc(answer.len() + 1) }.cast::<u8>();
            if room.is_null() {
                wipe(&mut answer);
                return -1;
            }
            unsafe {
                room.copy_from_nonoverlapping(answer.as_ptr(), answer.len());
                *room.add(answer.len()) = 0;
            }
            c.result = room.cast();
            c.resultlen = answer.len() as c_uint;
            wipe(&mut answer);
        }
        0
    });
    result.unwrap_or(-1)
}
