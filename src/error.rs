//! Errors of the core: a libvirt error number and a message naming the culprit.

use std::fmt;

/// What went wrong, numbered as libvirt's `virErrorNumber`: the numbers are part of
/// the ABI and never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    /// No error.
    Ok = 0,
    /// A bug or an unexpected state inside the library (a caught panic, say).
    InternalError = 1,
    /// An allocation failed.
    NoMemory = 2,
    /// The operation is not supported by this connection's driver.
    NoSupport = 3,
    /// The connection could not be opened (unknown URI, unreachable daemon).
    NoConnect = 5,
    /// The connection argument is missing or no longer usable.
    InvalidConn = 6,
    /// An argument is missing or invalid.
    InvalidArg = 8,
    /// The operation failed for a reason outside the caller's control.
    OperationFailed = 9,
    /// Event XML is malformed or not allowed.
    XmlError = 27,
    /// A system call failed.
    SystemError = 38,
    /// The remote protocol failed.
    Rpc = 39,
    /// No domain has that name.
    NoDomain = 42,
    /// The daemon refused authentication.
    AuthFailed = 45,
    /// The operation is not valid in the current state.
    OperationInvalid = 55,
}

impl ErrorCode {
    /// The code numbered `n`, if this library has it.
    pub fn from_number(n: i32) -> Option<ErrorCode> {
        use ErrorCode::*;
        [
            Ok, InternalError, NoMemory, NoSupport, NoConnect, InvalidConn, InvalidArg, OperationFailed, XmlError,
            SystemError, Rpc, NoDomain, AuthFailed, OperationInvalid,
        ]
        .into_iter()
        .find(|code| *code as i32 == n)
    }
}

/// An error: its code and a message that names the culprit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// A sentence for people: which argument, entry, state or path was wrong.
    pub message: String,
}

impl Error {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code as i32)
    }
}

impl std::error::Error for Error {}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;
