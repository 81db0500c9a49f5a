//! The one wrapper every export runs in: it resets the thread's last error,
//! catches panics, and turns an error into the C failure value with the error
//! recorded. Nothing unwinds into C.

use std::any::Any;
use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{record, reset};
use crate::error::{Error, ErrorCode, Result};

/// What an export returns when it fails.
pub(crate) trait Failure {
    /// -1 for `int`, NULL for pointers.
    fn failure() -> Self;
}

impl Failure for c_int {
    fn failure() -> c_int {
        -1
    }
}

impl<T> Failure for *mut T {
    fn failure() -> *mut T {
        std::ptr::null_mut()
    }
}

/// Runs an export's body: the last error is reset on entry and on success, set
/// on failure; a panic becomes `VIR_ERR_INTERNAL_ERROR`.
pub(crate) fn guard<T: Failure>(body: impl FnOnce() -> Result<T>) -> T {
    reset();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => {
            reset();
            value
        }
        Ok(Err(error)) => {
            record(error);
            T::failure()
        }
        Err(panic) => {
            record(panic_error(panic));
            T::failure()
        }
    }
}

/// The wrapper for the error queries, which must not reset what they report:
/// only the panic boundary, `fallback` standing in for a panicked result.
pub(crate) fn guard_query<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_error(panic: Box<dyn Any + Send>) -> Error {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    Error::new(ErrorCode::InternalError, format!("internal error in virevent: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::{virGetLastErrorCode, virGetLastErrorMessage};
    use std::ffi::CStr;

    fn last_message() -> String {
        // SAFETY: the library's own string, read before the next call.
        unsafe { CStr::from_ptr(virGetLastErrorMessage()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        std::panic::set_hook(Box::new(|_| {}));
        let got: c_int = guard(|| panic!("boom"));
        let _ = std::panic::take_hook();
        assert_eq!(got, -1);
        assert_eq!(virGetLastErrorCode(), ErrorCode::InternalError as c_int);
        assert!(last_message().contains("boom"));
        let null: *mut u8 = guard(|| panic!("again"));
        assert!(null.is_null());
    }

    #[test]
    fn errors_are_recorded_and_success_clears_them() {
        let got: c_int = guard(|| Err(Error::new(ErrorCode::NoDomain, "no domain 'x'")));
        assert_eq!(got, -1);
        assert_eq!(virGetLastErrorCode(), 42);
        assert_eq!(last_message(), "no domain 'x'");
        let ok: c_int = guard(|| Ok(3));
        assert_eq!(ok, 3);
        assert_eq!(virGetLastErrorCode(), 0);
        assert_eq!(last_message(), "no error");
    }
}
