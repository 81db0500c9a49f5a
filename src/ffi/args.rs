//! Argument checks and conversions shared by the exports: each turns a C argument
//! into a Rust value or an error that names the argument.

use std::ffi::{c_char, CStr};

use super::types::{virConnect, virDomain};
use crate::connection::{Connection, Domain};
use crate::error::{Error, ErrorCode, Result};
use crate::filter::Filter;

/// The connection behind `conn`.
///
/// # Safety
/// `conn` is NULL or a pointer from virConnectOpen that has not been closed.
pub(crate) unsafe fn connection<'a>(conn: *mut virConnect) -> Result<&'a Connection> {
    // SAFETY: the caller's contract.
    unsafe { conn.as_ref() }
        .map(|c| &c.inner)
        .ok_or_else(|| Error::new(ErrorCode::InvalidConn, "the connection is NULL"))
}

/// The domain behind `dom`.
///
/// # Safety
/// `dom` is NULL or a pointer from virDomainLookupByName that has not been freed.
pub(crate) unsafe fn domain<'a>(dom: *mut virDomain) -> Result<&'a Domain> {
    // SAFETY: the caller's contract.
    unsafe { dom.as_ref() }
        .map(|d| &d.inner)
        .ok_or_else(|| Error::new(ErrorCode::InvalidArg, "the domain is NULL"))
}

/// The bytes of a NUL-terminated string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string.
pub(crate) unsafe fn bytes<'a>(ptr: *const c_char, what: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        return Err(Error::new(ErrorCode::InvalidArg, format!("{what} is NULL")));
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// A NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    // SAFETY: the caller's contract.
    let bytes = unsafe { bytes(ptr, what) }?;
    std::str::from_utf8(bytes).map_err(|_| Error::new(ErrorCode::InvalidArg, format!("{what} is not UTF-8")))
}

/// A filter: NULL for every event, else a NULL-terminated vector of entries.
///
/// # Safety
/// `filter` is NULL or points to a NULL-terminated array of NUL-terminated strings.
pub(crate) unsafe fn filter_vector(filter: *const *const c_char) -> Result<Filter> {
    if filter.is_null() {
        return Ok(Filter::All);
    }
    let mut entries = Vec::new();
    loop {
        // SAFETY: the vector is NULL-terminated, so every index up to the NULL is in it.
        let entry = unsafe { *filter.add(entries.len()) };
        if entry.is_null() {
            break;
        }
        let position = entries.len();
        // SAFETY: a non-NULL entry is a NUL-terminated string.
        entries.push(unsafe { text(entry, &format!("filter[{position}]")) }?);
    }
    Filter::parse(&entries)
}
