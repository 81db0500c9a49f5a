//! The thread-local last error and its three exports.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};

use super::boundary::guard_query;
use crate::error::{Error, ErrorCode};

thread_local! {
    static LAST: RefCell<Option<(ErrorCode, CString)>> = const { RefCell::new(None) };
}

/// Forgets this thread's last error.
pub(crate) fn reset() {
    LAST.with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = None;
        }
    });
}

/// Makes `error` this thread's last error.
pub(crate) fn record(error: Error) {
    let message = CString::new(error.message.replace('\0', "\\0")).unwrap_or_default();
    LAST.with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some((error.code, message));
        }
    });
}

static NO_ERROR: &std::ffi::CStr = c"no error";

/// The code of the last error on this thread: a `virErrorNumber`, `VIR_ERR_OK` (0)
/// when the last call succeeded.
///
/// Unlike every other function, it does not reset the last error.
#[no_mangle]
pub extern "C" fn virGetLastErrorCode() -> c_int {
    guard_query(ErrorCode::InternalError as c_int, || LAST.with(|last| last.borrow().as_ref().map_or(0, |(code, _)| *code as c_int)))
}

/// The message of the last error on this thread, naming what was wrong; "no error"
/// when the last call succeeded. The string belongs to the library and stays valid
/// until the next virevent call on this thread; copy it to keep it.
///
/// Unlike every other function, it does not reset the last error.
#[no_mangle]
pub extern "C" fn virGetLastErrorMessage() -> *const c_char {
    guard_query(NO_ERROR.as_ptr(), || {
        LAST.with(|last| last.borrow().as_ref().map_or(NO_ERROR.as_ptr(), |(_, message)| message.as_ptr()))
    })
}

/// Forgets the last error of this thread: afterwards virGetLastErrorCode() is
/// VIR_ERR_OK and virGetLastErrorMessage() is "no error".
#[no_mangle]
pub extern "C" fn virResetLastError() {
    guard_query((), reset)
}
