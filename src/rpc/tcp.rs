//! TCP to a daemon on another host (`DRIVER+tcp://HOST[:PORT]/PATH`): the
//! host's addresses from getaddrinfo, tried in its order, each connect
//! non-blocking and waited for in poll, all within the open deadline.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Instant;

/// `host:port` as messages show it, an IPv6 literal in brackets.
pub fn shown(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A connected, non-blocking, close-on-exec socket to `host` at `port`: the
/// first of its addresses that accepts before `deadline`. The error says what
/// each address answered (or why the name did not resolve).
pub fn connect(host: &str, port: u16, deadline: Instant) -> Result<OwnedFd, String> {
    let mut failures = Vec::new();
    for address in resolve(host, port)? {
        match connect_one(&address, deadline) {
            Ok(socket) => return Ok(socket),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                failures.push(format!("{}: timed out", address.shown));
                break;
            }
            Err(e) => failures.push(format!("{}: {e}", address.shown)),
        }
    }
    Err(failures.join("; "))
}

/// One address of the host, as getaddrinfo gave it.
struct Address {
    family: libc::c_int,
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
    shown: String,
}

/// The addresses of `host` for TCP `port`, in getaddrinfo's order.
fn resolve(host: &str, port: u16) -> Result<Vec<Address>, String> {
    let name = CString::new(host).map_err(|_| format!("the host name '{host}' holds a NUL"))?;
    let service = CString::new(port.to_string()).expect("digits");
    // SAFETY: addrinfo is plain data, valid all zero (the hints getaddrinfo wants).
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_flags = libc::AI_NUMERICSERV;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid strings and hints; `list` receives a list freed below.
    let status = unsafe { libc::getaddrinfo(name.as_ptr(), service.as_ptr(), &hints, &mut list) };
    if status != 0 {
        // SAFETY: gai_strerror returns a static string for any code.
        let why = unsafe { CStr::from_ptr(libc::gai_strerror(status)) }.to_string_lossy().into_owned();
        return Err(format!("cannot resolve '{host}': {why}"));
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: a node of the list getaddrinfo made, not yet freed.
        let info = unsafe { &*entry };
        let len = info.ai_addrlen as usize;
        if len <= std::mem::size_of::<libc::sockaddr_storage>() && !info.ai_addr.is_null() {
            // SAFETY: plain data, valid all zero.
            let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            // SAFETY: `len` bytes at ai_addr, and room for them in `storage`.
            unsafe { std::ptr::copy_nonoverlapping(info.ai_addr.cast::<u8>(), (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(), len) };
            let shown = numeric(&storage, info.ai_addrlen).map_or_else(|| shown(host, port), |ip| shown(&ip, port));
            addresses.push(Address { family: info.ai_family, storage, len: info.ai_addrlen, shown });
        }
        entry = info.ai_next;
    }
    // SAFETY: the list getaddrinfo made, freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(addresses)
}

/// The numeric form of an address (`127.0.0.1`, `::1`).
fn numeric(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<String> {
    let mut host = [0 as libc::c_char; 64];
    // SAFETY: a valid address of `len` bytes and a buffer of the size given.
    let status = unsafe {
        libc::getnameinfo(
            (storage as *const libc::sockaddr_storage).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NUMERICHOST,
        )
    };
    // SAFETY: getnameinfo wrote a NUL-terminated string on success.
    (status == 0).then(|| unsafe { CStr::from_ptr(host.as_ptr()) }.to_string_lossy().into_owned())
}

/// The local (or, with `peer`, the remote) address of the TCP socket `fd`
/// as `IP;PORT`, as SASL takes it; `None` for a socket of another family.
#[cfg(virevent_sasl)]
pub fn address_of(fd: std::os::fd::RawFd, peer: bool) -> Option<String> {
    // SAFETY: sockaddr_storage is plain data, valid all zero.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let at = (&mut storage as *mut libc::sockaddr_storage).cast();
    // SAFETY: a buffer of the size given.
    let status = unsafe { if peer { libc::getpeername(fd, at, &mut len) } else { libc::getsockname(fd, at, &mut len) } };
    let port = match i32::from(storage.ss_family) {
        // SAFETY: the family says which address it is.
        libc::AF_INET => u16::from_be(unsafe { (*(at as *const libc::sockaddr_in)).sin_port }),
        libc::AF_INET6 => u16::from_be(unsafe { (*(at as *const libc::sockaddr_in6)).sin6_port }),
        _ => return None,
    };
    (status == 0).then(|| numeric(&storage, len)).flatten().map(|host| format!("{host};{port}"))
}

/// Connects a new non-blocking socket to `address`, waiting in poll until
/// `deadline` at most.
fn connect_one(address: &Address, deadline: Instant) -> io::Result<OwnedFd> {
    // SAFETY: plain system call.
    let raw = unsafe { libc::socket(address.family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: a valid socket and an address of the length given.
    if unsafe { libc::connect(raw, (&address.storage as *const libc::sockaddr_storage).cast(), address.len) } == 0 {
        return Ok(socket);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINPROGRESS) {
        return Err(e);
    }
    if !super::socket::ready_before(raw, libc::POLLOUT, deadline)? {
        return Err(io::ErrorKind::TimedOut.into());
    }
    let mut error: libc::c_int = 0;
    let mut size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket and an option buffer of the size given.
    if unsafe { libc::getsockopt(raw, libc::SOL_SOCKET, libc::SO_ERROR, (&mut error as *mut libc::c_int).cast(), &mut size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if error != 0 {
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    #[test]
    fn connects_to_a_listener_and_names_refusals() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(connect("127.0.0.1", port, deadline).is_ok());
        drop(listener);
        let error = connect("127.0.0.1", port, deadline).unwrap_err();
        assert_eq!(error, format!("127.0.0.1:{port}: Connection refused (os error 111)"));
        let error = connect("no-such-host.invalid", port, deadline).unwrap_err();
        assert!(error.starts_with("cannot resolve 'no-such-host.invalid': "), "{error}");
    }

    #[test]
    fn ipv6_literals_are_bracketed() {
        assert_eq!(shown("::1", 16509), "[::1]:16509");
        assert_eq!(shown("example.org", 1), "example.org:1");
    }
}
