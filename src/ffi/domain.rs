//! Exports for test-driver domains.

use std::ffi::{c_char, c_int};

use super::args::{connection, domain, text};
use super::boundary::guard;
use super::types::{virConnectPtr, virDomain, virDomainPtr};
use crate::connection::Domain;
use crate::error::Result;

/// Looks up a domain by name: a handle to free with virDomainFree, or NULL with
/// VIR_ERR_NO_DOMAIN naming the domain when there is none. Domains are the test
/// driver's: on a remote connection, NULL with VIR_ERR_NO_SUPPORT (drive a
/// daemon's domains with virsh or libvirt; their events arrive here).
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed. `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn virDomainLookupByName(conn: virConnectPtr, name: *const c_char) -> virDomainPtr {
    guard(|| {
        let connection = unsafe { connection(conn) }?;
        let inner = connection.lookup_domain(unsafe { text(name, "name") }?)?;
        Ok(Box::into_raw(Box::new(virDomain { inner })))
    })
}

/// Runs a domain operation for an export.
unsafe fn operate(dom: virDomainPtr, op: fn(&Domain) -> Result<()>) -> c_int {
    guard(|| {
        op(unsafe { domain(dom) }?)?;
        Ok(0)
    })
}

/// Starts a shut-off domain (shutoff -> running, reason started-booted); it gets a
/// new id. Emits one domain-state-transition event. Returns 0; -1 with
/// VIR_ERR_OPERATION_INVALID, and nothing emitted, from any other state.
///
/// # Safety
/// `dom` is NULL or a domain from virDomainLookupByName that virDomainFree has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virDomainCreate(dom: virDomainPtr) -> c_int {
    unsafe { operate(dom, Domain::create) }
}

/// Pauses a running domain (running -> paused, reason suspended-paused). Emits one
/// domain-state-transition event. Returns 0; -1 with VIR_ERR_OPERATION_INVALID,
/// and nothing emitted, from any other state.
///
/// # Safety
/// `dom` is NULL or a domain from virDomainLookupByName that virDomainFree has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virDomainSuspend(dom: virDomainPtr) -> c_int {
    unsafe { operate(dom, Domain::suspend) }
}

/// Resumes a paused domain (paused -> running, reason resumed-unpaused). Emits one
/// domain-state-transition event. Returns 0; -1 with VIR_ERR_OPERATION_INVALID,
/// and nothing emitted, from any other state.
///
/// # Safety
/// `dom` is NULL or a domain from virDomainLookupByName that virDomainFree has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virDomainResume(dom: virDomainPtr) -> c_int {
    unsafe { operate(dom, Domain::resume) }
}

/// Shuts down a running domain (running -> shutoff, reason stopped-shutdown; its
/// id becomes -1). Emits one domain-state-transition event. Returns 0; -1 with
/// VIR_ERR_OPERATION_INVALID, and nothing emitted, from any other state.
///
/// # Safety
/// `dom` is NULL or a domain from virDomainLookupByName that virDomainFree has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virDomainShutdown(dom: virDomainPtr) -> c_int {
    unsafe { operate(dom, Domain::shutdown) }
}

/// Stops an active (running or paused) domain at once (-> shutoff, reason
/// stopped-destroyed; its id becomes -1). Emits one domain-state-transition event.
/// Returns 0; -1 with VIR_ERR_OPERATION_INVALID, and nothing emitted, when it is
/// not active.
///
/// # Safety
/// `dom` is NULL or a domain from virDomainLookupByName that virDomainFree has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virDomainDestroy(dom: virDomainPtr) -> c_int {
    unsafe { operate(dom, Domain::destroy) }
}

/// Frees a domain handle (the domain itself is untouched). Returns 0; NULL: -1
/// with VIR_ERR_INVALID_ARG. Valid after its connection was closed.
///
/// # Safety
/// `dom` is NULL or a domain from virDomainLookupByName that virDomainFree has not
/// freed. It is not used after the call.
#[no_mangle]
pub unsafe extern "C" fn virDomainFree(dom: virDomainPtr) -> c_int {
    guard(|| {
        unsafe { domain(dom) }?;
        // SAFETY: `dom` came from Box::into_raw in virDomainLookupByName.
        drop(unsafe { Box::from_raw(dom) });
        Ok(0)
    })
}
