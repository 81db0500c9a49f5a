//! The C-visible types: opaque handles, callback signatures and error numbers.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_uint, c_void};

use crate::connection::{Connection, Domain};

/// A connection: an event hub with its handlers and queue, and the driver that
/// feeds it. Opaque; created by virConnectOpen, freed by virConnectClose. All
/// functions taking it may be called from any thread, and from inside its
/// handlers; virConnectClose must not race other calls on the same connection.
///
/// It belongs to the process that opened it: in a forked child, every call on
/// it fails at once with VIR_ERR_OPERATION_INVALID ("connection opened by
/// process N, used in process M"), except virConnectClose, which there frees
/// the child's handle only. A child opens connections of its own.
pub struct virConnect {
    pub(crate) inner: Connection,
}

/// A pointer to a connection.
pub type virConnectPtr = *mut virConnect;

/// The 2008 proposal's spelling of virConnectPtr.
pub type virConnPtr = virConnectPtr;

/// A domain of the test driver. Opaque; created by virDomainLookupByName, freed by
/// virDomainFree. It keeps its driver alive: after the connection is closed it
/// can still be freed, and its operations fail with VIR_ERR_INVALID_CONN.
pub struct virDomain {
    pub(crate) inner: Domain,
}

/// A pointer to a domain.
pub type virDomainPtr = *mut virDomain;

/// An event handler. `eventXML` is the event in its canonical one-line form,
/// NUL-terminated; it is valid only during the call, so a handler that keeps it
/// copies it. `arg` is the pointer given at registration. The handler runs on the
/// thread that delivers (the caller of virDeliverEvents, or the event thread),
/// never while the library holds a lock: it may call any virevent function on
/// its connection, except virConnectClose of that connection and
/// virConnectStopEventThread from the event thread.
pub type virEventHandler =
    Option<unsafe extern "C" fn(conn: virConnectPtr, eventXML: *const c_char, arg: *mut c_void)>;

/// Frees a handler's `arg`. Runs exactly once, after the handler's last call has
/// returned: at removal or at close (or at once, when registration fails).
/// It may call the connection's functions, except virConnectClose of that
/// connection (VIR_ERR_OPERATION_INVALID); while the connection's close runs
/// it, every call on that connection fails with VIR_ERR_OPERATION_INVALID.
pub type virFreeCallback = Option<unsafe extern "C" fn(arg: *mut c_void)>;

/// virConnectOpenAuth's flags, libvirt's virConnectFlags values.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum virConnectFlags {
    /// Read-only: every virevent connection is.
    VIR_CONNECT_RO = 1,
    /// No URI aliases: virevent has none.
    VIR_CONNECT_NO_ALIASES = 2,
}

/// What a credential is, libvirt's virConnectCredentialType values (they
/// never change). SASL asks for USERNAME (the identity to act as; left
/// unanswered, it is the AUTHNAME), AUTHNAME, PASSPHRASE, and, from a callback
/// that lists them, REALM, LANGUAGE, CNONCE, ECHOPROMPT and NOECHOPROMPT.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum virConnectCredentialType {
    /// The identity to act as (SASL's authorization id).
    VIR_CRED_USERNAME = 1,
    /// The identity to authenticate as.
    VIR_CRED_AUTHNAME = 2,
    /// RFC 1766 languages, comma separated.
    VIR_CRED_LANGUAGE = 3,
    /// A client nonce.
    VIR_CRED_CNONCE = 4,
    /// A password or passphrase.
    VIR_CRED_PASSPHRASE = 5,
    /// A challenge, answered with echo.
    VIR_CRED_ECHOPROMPT = 6,
    /// A challenge, answered without echo.
    VIR_CRED_NOECHOPROMPT = 7,
    /// The authentication realm.
    VIR_CRED_REALM = 8,
    /// Externally managed; never asked.
    VIR_CRED_EXTERNAL = 9,
}

/// One credential asked of an authentication callback, libvirt's layout.
/// The callback sets `result` to a string from malloc (or leaves it NULL to
/// leave the credential unanswered) and `resultlen` to its length; the
/// library wipes and frees it with free() after use.
#[repr(C)]
pub struct virConnectCredential {
    /// A virConnectCredentialType value.
    pub r#type: c_int,
    /// What to show the user.
    pub prompt: *const c_char,
    /// An additional challenge to show, or NULL.
    pub challenge: *const c_char,
    /// The mechanism's default answer, or NULL.
    pub defresult: *const c_char,
    /// The answer, from malloc; NULL when unanswered.
    pub result: *mut c_char,
    /// The answer's length in bytes.
    pub resultlen: c_uint,
}

/// A pointer to a credential.
pub type virConnectCredentialPtr = *mut virConnectCredential;

/// Collects credentials: fills in the `ncred` credentials of `cred` and
/// returns 0, or returns -1 to fail the open (VIR_ERR_AUTH_FAILED). Called
/// during virConnectOpenAuth, on its thread, with no library lock held.
pub type virConnectAuthCallbackPtr =
    Option<unsafe extern "C" fn(cred: virConnectCredentialPtr, ncred: c_uint, cbdata: *mut c_void) -> c_int>;

/// How a program supplies credentials, libvirt's layout: the credential
/// types its callback answers, the callback, and the callback's data.
#[repr(C)]
pub struct virConnectAuth {
    /// The virConnectCredentialType values the callback answers.
    pub credtype: *mut c_int,
    /// How many there are.
    pub ncredtype: c_uint,
    /// The callback, or NULL.
    pub cb: virConnectAuthCallbackPtr,
    /// Passed to the callback.
    pub cbdata: *mut c_void,
}

/// A pointer to authentication callbacks.
pub type virConnectAuthPtr = *mut virConnectAuth;

/// Error codes, libvirt's virErrorNumber values; they never change.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum virErrorNumber {
    /// No error.
    VIR_ERR_OK = 0,
    /// A bug inside the library, such as a caught panic.
    VIR_ERR_INTERNAL_ERROR = 1,
    /// Out of memory.
    VIR_ERR_NO_MEMORY = 2,
    /// Not supported by this connection's driver.
    VIR_ERR_NO_SUPPORT = 3,
    /// The connection could not be opened: unknown URI, unreachable daemon.
    VIR_ERR_NO_CONNECT = 5,
    /// The connection is NULL or closed.
    VIR_ERR_INVALID_CONN = 6,
    /// An argument is NULL or invalid; the message names it.
    VIR_ERR_INVALID_ARG = 8,
    /// The operation failed.
    VIR_ERR_OPERATION_FAILED = 9,
    /// Event XML is malformed, has a DOCTYPE, is not UTF-8 or is over 1 MiB.
    VIR_ERR_XML_ERROR = 27,
    /// A system call failed.
    VIR_ERR_SYSTEM_ERROR = 38,
    /// The remote protocol failed.
    VIR_ERR_RPC = 39,
    /// No domain of that name.
    VIR_ERR_NO_DOMAIN = 42,
    /// The daemon refused authentication.
    VIR_ERR_AUTH_FAILED = 45,
    /// Not valid in the current state (a domain transition from the wrong
    /// state, closing a connection from its own handler).
    VIR_ERR_OPERATION_INVALID = 55,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    /// The C name of each core code: the match is exhaustive, so a new core code
    /// cannot be added without its C constant.
    fn c_number(code: ErrorCode) -> virErrorNumber {
        use virErrorNumber::*;
        match code {
            ErrorCode::Ok => VIR_ERR_OK,
            ErrorCode::InternalError => VIR_ERR_INTERNAL_ERROR,
            ErrorCode::NoMemory => VIR_ERR_NO_MEMORY,
            ErrorCode::NoSupport => VIR_ERR_NO_SUPPORT,
            ErrorCode::NoConnect => VIR_ERR_NO_CONNECT,
            ErrorCode::InvalidConn => VIR_ERR_INVALID_CONN,
            ErrorCode::InvalidArg => VIR_ERR_INVALID_ARG,
            ErrorCode::OperationFailed => VIR_ERR_OPERATION_FAILED,
            ErrorCode::XmlError => VIR_ERR_XML_ERROR,
            ErrorCode::SystemError => VIR_ERR_SYSTEM_ERROR,
            ErrorCode::Rpc => VIR_ERR_RPC,
            ErrorCode::NoDomain => VIR_ERR_NO_DOMAIN,
            ErrorCode::AuthFailed => VIR_ERR_AUTH_FAILED,
            ErrorCode::OperationInvalid => VIR_ERR_OPERATION_INVALID,
        }
    }


    #[test]
    fn c_numbers_are_the_core_numbers() {
        for code in ErrorCode::ALL {
            assert_eq!(c_number(code) as i32, code as i32, "{code:?}");
        }
    }

    #[test]
    fn credential_numbers_are_libvirts() {
        use crate::credentials::CredentialType;
        for n in 1..=9 {
            assert_eq!(CredentialType::from_number(n).map(|t| t as i32), Some(n));
        }
        assert_eq!(CredentialType::from_number(10), None);
        assert_eq!(virConnectCredentialType::VIR_CRED_PASSPHRASE as i32, CredentialType::Passphrase as i32);
        assert_eq!(virConnectCredentialType::VIR_CRED_EXTERNAL as i32, 9);
    }

    #[test]
    fn numbers_are_libvirts() {
        assert_eq!(virErrorNumber::VIR_ERR_XML_ERROR as i32, 27);
        assert_eq!(virErrorNumber::VIR_ERR_NO_DOMAIN as i32, 42);
        assert_eq!(virErrorNumber::VIR_ERR_OPERATION_INVALID as i32, 55);
    }
}
