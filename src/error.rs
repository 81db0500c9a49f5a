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
    /// Every code, in number order: the one list the number-to-code mapping,
    /// the C header's `virErrorNumber` and the Python constants are checked
    /// against (tests/header.rs).
    pub const ALL: [ErrorCode; 14] = {
        use ErrorCode::*;
        [
            Ok, InternalError, NoMemory, NoSupport, NoConnect, InvalidConn, InvalidArg, OperationFailed, XmlError,
            SystemError, Rpc, NoDomain, AuthFailed, OperationInvalid,
        ]
    };

    /// The code numbered `n`, if this library has it.
    pub fn from_number(n: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|code| *code as i32 == n)
    }

    /// libvirt's name for it, as the C header spells it.
    pub fn c_name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "VIR_ERR_OK",
            ErrorCode::InternalError => "VIR_ERR_INTERNAL_ERROR",
            ErrorCode::NoMemory => "VIR_ERR_NO_MEMORY",
            ErrorCode::NoSupport => "VIR_ERR_NO_SUPPORT",
            ErrorCode::NoConnect => "VIR_ERR_NO_CONNECT",
            ErrorCode::InvalidConn => "VIR_ERR_INVALID_CONN",
            ErrorCode::InvalidArg => "VIR_ERR_INVALID_ARG",
            ErrorCode::OperationFailed => "VIR_ERR_OPERATION_FAILED",
            ErrorCode::XmlError => "VIR_ERR_XML_ERROR",
            ErrorCode::SystemError => "VIR_ERR_SYSTEM_ERROR",
            ErrorCode::Rpc => "VIR_ERR_RPC",
            ErrorCode::NoDomain => "VIR_ERR_NO_DOMAIN",
            ErrorCode::AuthFailed => "VIR_ERR_AUTH_FAILED",
            ErrorCode::OperationInvalid => "VIR_ERR_OPERATION_INVALID",
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Where each code stands in [`ErrorCode::ALL`]: the match is exhaustive,
    /// so a new code cannot be added without its place in the list.
    fn place(code: ErrorCode) -> usize {
        use ErrorCode::*;
        match code {
            Ok => 0,
            InternalError => 1,
            NoMemory => 2,
            NoSupport => 3,
            NoConnect => 4,
            InvalidConn => 5,
            InvalidArg => 6,
            OperationFailed => 7,
            XmlError => 8,
            SystemError => 9,
            Rpc => 10,
            NoDomain => 11,
            AuthFailed => 12,
            OperationInvalid => 13,
        }
    }

    #[test]
    fn every_code_is_in_the_list_once_in_number_order() {
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(place(code), i, "{code:?}");
            assert_eq!(ErrorCode::from_number(code as i32), Some(code));
        }
        assert!(ErrorCode::ALL.windows(2).all(|w| (w[0] as i32) < (w[1] as i32)));
        assert_eq!(ErrorCode::from_number(4), None);
    }
}
