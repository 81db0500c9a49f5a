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
