//! Exports for connections, handlers, emission and delivery.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::os::fd::IntoRawFd;

use super::args::{bytes, connection, filter_vector, text};
use super::boundary::guard;
use super::types::{virConnect, virConnectPtr, virEventHandler, virFreeCallback};
use crate::connection::Connection;
use crate::error::{Error, ErrorCode};
use crate::event::Event;

/// Opens a connection.
///
/// `uri` is NULL, "" or "test:///default" for the embedded default (an in-process
/// event hub with the test driver, holding one running domain named "test", id 1),
/// or "test:///empty" for the same with no domains. Connections are independent;
/// many may be open at once. Opening starts no thread.
///
/// A libvirt daemon, over its Unix socket and libvirt's remote protocol:
/// - "DRIVER+unix:///PATH?socket=SOCKET" ("test+unix:///default?socket=...",
///   "qemu+unix:///system?socket=..."); without socket=, the default socket;
/// - "DRIVER+tcp://[USER@]HOST[:PORT]/PATH" ("qemu+tcp://host.example/system"):
///   a daemon on another host over plain TCP, port 16509 by default; the host's
///   addresses are tried in getaddrinfo's order within the open deadline;
/// - "DRIVER+tls://[USER@]HOST[:PORT]/PATH" ("qemu+tls://host.example/system"):
///   the same over TLS, port 16514 by default, with libvirt's files (root:
///   /etc/pki/CA/cacert.pem, /etc/pki/CA/cacrl.pem when present,
///   /etc/pki/libvirt/clientcert.pem, /etc/pki/libvirt/private/clientkey.pem;
///   other users each of ~/.pki/libvirt/{cacert,cacrl,clientcert,clientkey}.pem
///   where it exists; pkipath=DIR for all four in DIR). The daemon's
///   certificate must be signed by that CA, be valid now and name HOST;
///   no_verify=1 skips that check. A failure is VIR_ERR_NO_CONNECT naming its
///   cause (unknown CA, expired, not yet valid, wrong host name, a file missing
///   or unreadable, with its path, handshake timed out); a daemon that refuses
///   our certificate is VIR_ERR_AUTH_FAILED;
/// - "DRIVER+ssh://[USER@]HOST[:PORT]/PATH" ("qemu+ssh://root@host/system"): the
///   system's ssh with libvirt's arguments (-p, -l, -i keyfile=, -T -e none,
///   BatchMode=yes for no_tty=1, StrictHostKeyChecking=no for no_verify=1,
///   UserKnownHostsFile for known_hosts=, command= for another ssh) runs
///   libvirt's remote command (proxy=auto|netcat|native, netcat=, socket= the
///   daemon's socket there, which makes it netcat); the protocol goes over
///   the child's standard input and output, polled as a socket, and the child
///   is ended and reaped at close. When it ends, what ssh said on its
///   standard error (host key refused, permission denied, no such socket) is
///   the VIR_ERR_NO_CONNECT message. "+libssh" and "+libssh2" fail with
///   VIR_ERR_NO_SUPPORT, naming "+ssh";
/// - "qemu:///system": /run/libvirt/virtqemud-sock if it exists, else
///   /run/libvirt/libvirt-sock (as libvirt's own client picks);
/// - "qemu:///session": the same names in $XDG_RUNTIME_DIR/libvirt (or
///   ~/.cache/libvirt); the session daemon is not started for you.
///
/// The daemon is sent the plain driver URI ("test:///default",
/// "qemu:///system?other=params"), never the transport URI, and opened
/// read-only: the connection only receives events. Opening authenticates with
/// AUTH_LIST (and polkit when the daemon asks for it), registers for every
/// kind of event libvirt sends (the 28 domain event IDs, network, storage
/// pool, node device and secret events, one registration each, and the
/// daemon's connection-close callback; a kind an older daemon refuses is left
/// out, and only the domain lifecycle must be accepted: docs/events.md), and
/// lists every domain's state, so that the first
/// `domain-state-transition` of each has the right `old-state`. It blocks until
/// the daemon has answered, but never past one deadline of 30 s for the whole
/// sequence: connecting (a daemon whose listen backlog is full never accepts)
/// and every call together. Events that arrive while it runs update that
/// record but reach no handler: none can exist yet.
///
/// `old-state` is the connection's record of the domain, kept from the events;
/// a `started-*` event comes from the inactive state the start left even when
/// libvirt sent the start's `resumed-*` first; it is `nostate` for a domain it
/// never heard of, and for a state change the listing already showed (the
/// daemon may answer the listing before it sends the events of changes the
/// listing includes). When the daemon reports that its own hypervisor
/// connection closed, the link ends with `connection-closed` carrying the
/// daemon's reason (`eof`, `keepalive`, `error`, `client`).
///
/// Errors: NULL with VIR_ERR_NO_CONNECT for any other URI (naming it), for a
/// socket that is missing or where nothing listens (naming the path and the
/// system error), when the deadline passes (naming the socket, "timed out"),
/// or when the daemon has no such driver (its words);
/// VIR_ERR_AUTH_FAILED when polkit fails or SASL fails (virConnectOpen has no
/// callback: SASL credentials come from auth.conf alone; see
/// virConnectOpenAuth), with the cause; VIR_ERR_NO_SUPPORT when the daemon
/// wants SASL and the library was built without it; VIR_ERR_RPC when the
/// daemon answers what cannot be decoded.
///
/// # Safety
/// `uri` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn virConnectOpen(uri: *const c_char) -> virConnectPtr {
    guard(|| {
        let uri = if uri.is_null() { None } else { Some(unsafe { text(uri, "uri") }?) };
        let inner = Connection::open(uri)?;
        Ok(Box::into_raw(Box::new(virConnect { inner })))
    })
}

/// Closes a connection and frees it: every handler is removed (each freecb runs
/// exactly once, after the handler's last call), queued events are discarded,
/// and domain handles still held fail with VIR_ERR_INVALID_CONN. Event streams
/// end; one whose reader lags gets up to 250 ms to take its waiting lines.
/// Returns 0.
///
/// On a remote connection whose daemon is still there, it first deregisters the
/// events and sends CONNECT_CLOSE, waiting for the replies at most 5 s in all
/// (a daemon that stopped reading or answering is given up then); event
/// streams then carry `connection-closed` with reason `client` (or `eof` or
/// `error`, if the daemon turns out to be gone) before their end of file.
///
/// Refused with -1 and VIR_ERR_OPERATION_INVALID, touching nothing (the
/// connection stays open, or its close goes on), from inside one of the
/// connection's own handlers, from inside a freecb it runs (at a removal or
/// at close), and while its close is under way. Every other call made on the
/// connection while its close is under way (from a freecb that close runs)
/// fails with VIR_ERR_OPERATION_INVALID "the connection is being closed". A
/// NULL `conn`: -1 with VIR_ERR_INVALID_CONN. It must not race other calls on
/// the same connection from other threads: the pointer is invalid once it
/// returns 0.
///
/// In a forked child, on a connection its parent opened, it frees the child's
/// handle and closes the child's copies of the connection's descriptors (so
/// that, say, a parent's stream reader sees end of file when the parent closes,
/// whatever the child does), and nothing else: nothing is sent to a daemon,
/// no stream is written, no lock is taken (a parent thread may have held one
/// at the fork), no freecb runs. Returns 0.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed. No thread but its own event thread may call a function on it during
/// the call, and none after it returns 0.
#[no_mangle]
pub unsafe extern "C" fn virConnectClose(conn: virConnectPtr) -> c_int {
    guard(|| {
        unsafe { connection(conn) }?.close()?;
        // SAFETY: `conn` came from Box::into_raw in virConnectOpen and is closed.
        drop(unsafe { Box::from_raw(conn) });
        Ok(0)
    })
}

/// Registers `handler` for the events that `filter` matches, emitted from now on;
/// `handler(conn, eventXML, arg)` runs when they are delivered. Same as
/// virConnectAddEventHandlerFull with no freecb and flags 0.
///
/// `filter` is NULL (every event) or a NULL-terminated vector of entries; an
/// event matches when any entry matches it. An entry is
/// - a type pattern when it is made only of name characters (letters, digits,
///   '-', '_', '.', ':') and '*': matched against the event's type, '*' matching
///   any run of characters ("domain-state-transition", "domain-*");
/// - otherwise an XPath 1.0 expression evaluated with the event document as
///   context node, matching when its boolean value is true
///   ("/event[new-state='crashed']", "//domain-name = 'web1'",
///   "count(//disk) > 1", "/event/@seq > 100"). docs/filters.md lists what is
///   supported; expressions are at most 4 KiB, nest at most 32 levels and chain
///   at most 128 operators and nestings along one branch, and an evaluation that
///   exceeds its work budget counts as no match.
///
/// Filters are indexed by type: type patterns, and expressions of the form
/// "/event[@type='T' and ...]", cost nothing for events of other types.
/// An empty vector, an empty entry, or an expression that does not compile (or
/// uses what is not supported): -1 with VIR_ERR_INVALID_ARG, the message naming
/// the entry, its position (filter[N]) and, for XPath, the character where the
/// problem is. The filter is checked in full before anything is registered, and
/// copied: the caller may free it on return.
///
/// Returns the handler's id (>= 0, unique on the connection, never reused), or -1.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed. `filter` is NULL or a NULL-terminated array of NUL-terminated strings.
/// `handler` and `arg` stay usable until the handler is removed.
#[no_mangle]
pub unsafe extern "C" fn virConnectAddEventHandler(
    conn: virConnectPtr,
    filter: *const *const c_char,
    handler: virEventHandler,
    arg: *mut c_void,
) -> c_int {
    unsafe { virConnectAddEventHandlerFull(conn, filter, handler, arg, None, 0) }
}

/// Registers `handler` as virConnectAddEventHandler does, with `freecb(arg)` run
/// exactly once after the handler's last call has returned: when it is removed,
/// when the connection closes, or before this returns -1 if registration fails.
/// `freecb` may be NULL. `flags` must be 0 (else VIR_ERR_INVALID_ARG).
///
/// A handler runs on the thread that delivers, with no library lock held: it may
/// add and remove handlers (itself included), emit, deliver (which then returns
/// 0), and look up and drive domains on its own connection. A freecb may call
/// the connection too, except virConnectClose.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed. `filter` is NULL or a NULL-terminated array of NUL-terminated strings.
/// `handler`, `arg` and `freecb` stay usable until `freecb` has run.
#[no_mangle]
pub unsafe extern "C" fn virConnectAddEventHandlerFull(
    conn: virConnectPtr,
    filter: *const *const c_char,
    handler: virEventHandler,
    arg: *mut c_void,
    freecb: virFreeCallback,
    flags: c_uint,
) -> c_int {
    // Owned from the start, so that every failure below frees `arg` once.
    let user = UserData { arg, freecb };
    guard(move || {
        let connection = unsafe { connection(conn) }?;
        let handler = handler.ok_or_else(|| Error::new(ErrorCode::InvalidArg, "the handler is NULL"))?;
        if flags != 0 {
            return Err(Error::new(ErrorCode::InvalidArg, format!("flags must be 0, not {flags:#x}")));
        }
        let filter = unsafe { filter_vector(filter) }?;
        let call = HandlerCall { handler, conn, user };
        connection.add_handler(filter, move |event: &Event| call.run(event))
    })
}

/// Unregisters a handler. Once this returns, the handler is never called again:
/// a call running on another thread is waited for, unless the removal is made
/// from inside that very call. Its freecb runs once the last call has returned.
/// An unknown id: -1 with VIR_ERR_INVALID_ARG. Returns 0.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virConnectRemoveEventHandler(conn: virConnectPtr, handlerID: c_int) -> c_int {
    guard(|| {
        unsafe { connection(conn) }?.remove_handler(handlerID)?;
        Ok(0)
    })
}

/// Emits an event: the internal API for sending events. Safe from any thread and
/// from inside a handler; never blocks.
///
/// `eventXML` is one well-formed XML 1.0 document in UTF-8, at most 1 MiB, whose
/// root is `<event>` (without a prefix) with a `type` attribute made of name
/// characters. An optional `timestamp` is decimal seconds since the epoch
/// ("1221756307.123456"); when absent, the current time is stamped. `seq` is
/// assigned by the library (per connection, from 1, strictly increasing) and
/// must not be given. The document must be namespace-well-formed (Namespaces in
/// XML 1.0, as expat-based parsers such as Python's require): every prefix of an
/// element or attribute declared by an `xmlns:PREFIX` in scope (`xml` always
/// is), no `xmlns:PREFIX=""`, `xml` bound to its own namespace only, `xmlns`
/// never declared, names with at most one ':', and no two attributes of an
/// element with the same namespace and local name. It may hold no processing
/// instruction (the XML declaration is none): a PI's data can hold line breaks,
/// which have no one-line form inside a PI.
///
/// The event is delivered in a canonical one-line form: the root's type,
/// timestamp and seq first, the other attributes (namespace declarations
/// included), elements and text as written, every line break written as a
/// character reference, CDATA sections as escaped text; the XML declaration and
/// comments are dropped.
///
/// Returns the seq (> 0; a seq above INT_MAX is returned as INT_MAX, the event
/// itself carries it in full), or -1 with nothing queued: VIR_ERR_XML_ERROR for
/// malformed XML, a wrong root, a DOCTYPE, a processing instruction, a namespace
/// error (the message names the prefix or name, and the byte where its tag
/// starts), non-UTF-8 or over 1 MiB; VIR_ERR_INVALID_ARG for a missing or bad
/// type, a bad timestamp, or a seq.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed. `eventXML` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn virConnectEmitEvent(conn: virConnectPtr, eventXML: *const c_char) -> c_int {
    guard(|| {
        let connection = unsafe { connection(conn) }?;
        let seq = connection.emit_bytes(unsafe { bytes(eventXML, "eventXML") }?)?;
        Ok(c_int::try_from(seq).unwrap_or(c_int::MAX))
    })
}

/// Delivers, in the calling thread, the events queued before the call began, in
/// seq order, to the handlers that match them; returns the number of handler
/// calls made (0 when none), or -1. Never blocks. Events emitted meanwhile (by
/// handlers too) wait for the next call. A call made while another delivery
/// runs on the connection (from inside a handler, or from another thread), or
/// while the event thread runs, makes no calls and returns 0. It first writes
/// what event streams had waiting for room, and lets go of the streams whose
/// readers closed their ends.
///
/// On a remote connection it first reads, without blocking, what the daemon
/// sent (up to 256 KiB per call), decodes the whole packets and queues their
/// events (a partial packet waits for its rest; event streams get them at once),
/// and sends what waits for the daemon (a keepalive PONG) as far as the
/// socket takes it, never waiting for room: the rest waits, and the event
/// descriptor watches the socket for room meanwhile. A daemon that takes
/// nothing of it for 30 s is given up: `connection-closed` (reason `error`),
/// then VIR_ERR_RPC "the daemon stopped reading".
/// When the daemon goes away (end of file, a read error, or a packet that cannot
/// be decoded) one `<event type="connection-closed" ...><reason>eof</reason></event>`
/// (reason `error` for the other two) is queued after the events received
/// before; once it has been delivered and nothing is queued, this returns -1
/// with VIR_ERR_NO_CONNECT (after end of file) or VIR_ERR_RPC, as do emit,
/// adding a handler, opening a stream and starting the event thread. Filters
/// apply to connection-closed as to any event: NULL, or an entry naming it.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virDeliverEvents(conn: virConnectPtr) -> c_int {
    guard(|| {
        let calls = unsafe { connection(conn) }?.deliver()?;
        Ok(c_int::try_from(calls).unwrap_or(c_int::MAX))
    })
}

/// The event types that the connection's daemon refused to register. Opening
/// registers every kind itself, and a daemon older than a kind refuses its
/// event ID; the connection goes on without it (libvirt's own client would
/// fail the one registration a program asked for), so a program learns here
/// which types will never come. Returns how many; when `types` is not NULL,
/// `*types` is set to a NULL-terminated array of that many type names
/// ("domain-memory-device-size-change", ...), in registration order, which the
/// caller frees with free(3), each name and then the array (as libvirt's
/// virConnectGetCPUModelNames). 0, and an array holding only NULL, for the
/// embedded driver and for a daemon that takes every kind. `flags`: 0, else -1
/// with VIR_ERR_INVALID_ARG. The list stays readable after the link ends.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed; `types` is NULL or points to writable room for one pointer.
#[no_mangle]
pub unsafe extern "C" fn virConnectListRefusedEventTypes(
    conn: virConnectPtr,
    types: *mut *mut *mut c_char,
    flags: c_uint,
) -> c_int {
    guard(|| {
        let connection = unsafe { connection(conn) }?;
        if flags != 0 {
            return Err(Error::new(ErrorCode::InvalidArg, format!("flags must be 0, not {flags}")));
        }
        let refused = connection.refused_event_types()?;
        if !types.is_null() {
            let names: Vec<&str> = refused.iter().map(|(kind, _)| kind.as_str()).collect();
            // SAFETY: `types` is writable (the caller's contract).
            unsafe { *types = malloc_strings(&names)? };
        }
        Ok(c_int::try_from(refused.len()).unwrap_or(c_int::MAX))
    })
}

/// `names` as a NULL-terminated array of C strings, array and strings from
/// malloc(3), so that the caller frees them with free(3).
fn malloc_strings(names: &[&str]) -> crate::error::Result<*mut *mut c_char> {
    let no_memory = || Error::new(ErrorCode::NoMemory, "out of memory for the list of event types");
    // SAFETY: malloc of a computed size; NULL is checked.
    let array = unsafe { libc::malloc((names.len() + 1) * std::mem::size_of::<*mut c_char>()) }.cast::<*mut c_char>();
    if array.is_null() {
        return Err(no_memory());
    }
    for (i, name) in names.iter().enumerate() {
        // SAFETY: room for len + 1 bytes; the copy stays inside both.
        let copy = unsafe { libc::malloc(name.len() + 1) }.cast::<c_char>();
        if copy.is_null() {
            // SAFETY: the names copied so far and the array came from malloc.
            unsafe {
                (0..i).for_each(|j| libc::free((*array.add(j)).cast()));
                libc::free(array.cast());
            }
            return Err(no_memory());
        }
        // SAFETY: `copy` has room for the name and its NUL; `array` for names.len() + 1 pointers.
        unsafe {
            std::ptr::copy_nonoverlapping(name.as_ptr().cast::<c_char>(), copy, name.len());
            *copy.add(name.len()) = 0;
            *array.add(i) = copy;
        }
    }
    // SAFETY: the last slot of the array.
    unsafe { *array.add(names.len()) = std::ptr::null_mut() };
    Ok(array)
}

/// Keepalive, as libvirt's virConnectSetKeepAlive: on a connection to a
/// daemon, a PING after each `interval` seconds in which nothing came from
/// it, and once `count` PINGs in a row went unanswered (about
/// interval * (count + 1) seconds of silence) the link ends with one
/// `connection-closed` event (reason `keepalive`), after which calls fail with
/// VIR_ERR_RPC. `interval` <= 0 turns it off. It is on from the open with
/// libvirt's client defaults, interval 5 and count 5. No thread is involved:
/// the PINGs and the countdown are driven by the connection's timer, which is
/// part of virConnectGetEventFD, so a loop that polls that descriptor and calls
/// virDeliverEvents keeps the connection alive, as does the event thread.
/// PINGs from the daemon are always answered. Returns 0; 1 when the daemon does
/// not offer keepalive (nothing is then sent, as libvirt does); -1 with
/// VIR_ERR_NO_SUPPORT on the embedded driver.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virConnectSetKeepAlive(conn: virConnectPtr, interval: c_int, count: c_uint) -> c_int {
    guard(|| {
        let connection = unsafe { connection(conn) }?;
        let interval = std::time::Duration::from_secs(u64::try_from(interval).unwrap_or(0));
        Ok(if connection.set_keepalive(interval, count)? { 0 } else { 1 })
    })
}

/// Reconnection after a lost link, off from the open (a lost link then ends
/// the connection, as in libvirt). With `minDelayMs` > 0, a connection to a
/// daemon whose link is lost (end of file, error, keepalive, the daemon's
/// close) emits `connection-lost` (`<reason>`, `<message>`) instead of
/// `connection-closed`, and tries to connect again: the first attempt after
/// about `minDelayMs`, then waits doubling up to `maxDelayMs`, each jittered
/// (between half and all of its step, never under `minDelayMs`). The attempts
/// are driven by the connection's timer, part of virConnectGetEventFD: a loop
/// that polls it and calls virDeliverEvents reconnects, as does the event
/// thread; no call sleeps. One attempt (connecting, authenticating with
/// auth.conf, opening, registering, listing) takes 5 s at most, and its
/// calls wait for no reply: each reply is read by a later delivery round, so
/// a daemon that accepts and then hangs holds up no delivery (a TLS
/// handshake, ssh's start and a SASL exchange do wait, within those 5 s). An
/// authentication callback given to virConnectOpenAuth is not called again.
/// A successful attempt registers every event again, lists every domain,
/// network and storage pool again, and emits, before any event of the new
/// link: for each domain whose state changed while away (or that was
/// restarted), a `domain-state-transition` with reason `resync`; for each
/// that appeared or vanished, one with reason `defined-resync` or
/// `undefined-resync`; for networks and pools that appeared, vanished,
/// started or stopped, their lifecycle events with `<reason>resync</reason>`;
/// then one `connection-restored` (`<outage-start>`, `<outage-end>`,
/// `<attempts>`, and `<may-have-missed>` naming the event types that carry no
/// state, whose events of the outage are gone). Handler ids, filters, streams
/// and seqs carry on. While away, delivery calls succeed and the other calls
/// work as before. virConnectClose during an outage ends it at once
/// (`connection-closed`, reason `client`); `minDelayMs` 0 turns reconnection
/// off, and during an outage ends the link (`connection-closed` with the
/// loss's reason). Turning it on lists the daemon's networks and pools, which
/// the resync compares with. Returns 0; -1 with VIR_ERR_INVALID_ARG for
/// `maxDelayMs` under `minDelayMs` or `flags` other than 0, with
/// VIR_ERR_NO_SUPPORT on the embedded driver.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virConnectSetReconnect(conn: virConnectPtr, minDelayMs: c_uint, maxDelayMs: c_uint, flags: c_uint) -> c_int {
    guard(|| {
        let connection = unsafe { connection(conn) }?;
        if flags != 0 {
            return Err(Error::new(ErrorCode::InvalidArg, format!("flags must be 0, not {flags:#x}")));
        }
        let ms = |n: c_uint| std::time::Duration::from_millis(n.into());
        connection.set_reconnect((minDelayMs != 0).then(|| (ms(minDelayMs), ms(maxDelayMs))))?;
        Ok(0)
    })
}

/// Sets how many events each queue of the connection holds (default 65536):
/// the handler queue, and the queue of each event stream, present and future.
/// No emitter ever blocks: an event that finds a queue full is dropped for that
/// consumer only, and as soon as its queue has room again, before any later
/// event, that consumer receives one
/// `<event type="events-lost" timestamp="..." seq="0" count="N" first-seq="A" last-seq="B"/>`
/// (`first-seq`, `last-seq`: the seqs of the first and last dropped events; seq
/// 0: it is no emitted event). The handler queue's notice reaches every handler
/// and each stream's reaches that stream, whatever the filters. Events already
/// queued stay. `maxEvents` 0: -1 with VIR_ERR_INVALID_ARG. Returns 0.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virConnectSetEventQueueLimit(conn: virConnectPtr, maxEvents: c_uint) -> c_int {
    guard(|| {
        let connection = unsafe { connection(conn) }?;
        if maxEvents == 0 {
            return Err(Error::new(ErrorCode::InvalidArg, "maxEvents must be at least 1"));
        }
        connection.set_queue_limit(maxEvents as usize)?;
        Ok(0)
    })
}

/// The flag of virConnectOpenEventStream that makes the caller's descriptor
/// non-blocking (O_NONBLOCK).
pub const VIR_EVENT_STREAM_NONBLOCK: c_uint = 1;

/// A descriptor for poll loops, owned by the connection (do not close it; it is
/// closed by virConnectClose): it polls readable exactly while
/// virDeliverEvents has something to do, so a thread-free program waits for it
/// with poll and then calls virDeliverEvents. Something to do is: handler
/// calls to make (not while another delivery of the connection runs: its end
/// makes the descriptor readable again); lines waiting in an event stream
/// whose reader made room again; a stream whose reader closed its end, to be
/// let go of; on a remote connection, bytes the daemon sent, output waiting
/// for the daemon once its socket has room, and a deadline that expired. It is
/// never readable when there is nothing to do. It is level-triggered and the
/// library clears it; never read it. It is an epoll descriptor.
///
/// - poll/select: wait for POLLIN, then virDeliverEvents(conn).
/// - epoll: add it with EPOLLIN (level-triggered, not EPOLLET).
/// - GLib: g_unix_fd_add(fd, G_IO_IN, cb, conn), cb calls virDeliverEvents and
///   returns G_SOURCE_CONTINUE.
/// - libuv: uv_poll_init(loop, &handle, fd); uv_poll_start(&handle,
///   UV_READABLE, cb), cb calls virDeliverEvents.
///
/// While the event thread runs it is the thread's to wait on (virDeliverEvents
/// then returns 0). Every call returns the same descriptor. Returns the
/// descriptor, or -1.
///
/// On a remote connection virDeliverEvents may make no call when it was
/// readable (the bytes were keepalive traffic or part of a packet). Once the
/// daemon is gone it stays readable for good, so that a poll loop learns it
/// from virDeliverEvents' -1 (the event thread, which waits on the rest of
/// it, sleeps).
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virConnectGetEventFD(conn: virConnectPtr) -> c_int {
    guard(|| unsafe { connection(conn) }?.event_fd())
}

/// Starts the event thread: one library-owned thread that does what
/// virDeliverEvents does whenever there is something to do (see
/// virConnectGetEventFD), and sleeps in poll otherwise; it also sleeps while
/// a delivery a caller began (before the thread started, say from a handler
/// that started it) still runs, and takes over when it ends. While it runs,
/// virDeliverEvents returns 0 and handlers run on it, never holding a library
/// lock. Without this call the library never creates a thread. Returns 0; -1
/// with VIR_ERR_OPERATION_INVALID if it already runs.
///
/// Handlers must return: ending the thread from inside one (pthread_exit,
/// cancellation, or an embedding interpreter that does so at its exit) is not
/// supported. Stop the thread, or close the connection, before such an exit.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virConnectStartEventThread(conn: virConnectPtr) -> c_int {
    guard(|| {
        unsafe { connection(conn) }?.start_event_thread()?;
        Ok(0)
    })
}

/// Stops the event thread and joins it, after the handler it runs, if any,
/// returns; delivery goes back to virDeliverEvents. Returns 0; -1 with
/// VIR_ERR_OPERATION_INVALID from a handler running on that thread, or when no
/// event thread runs. virConnectClose stops it too.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed.
#[no_mangle]
pub unsafe extern "C" fn virConnectStopEventThread(conn: virConnectPtr) -> c_int {
    guard(|| {
        unsafe { connection(conn) }?.stop_event_thread()?;
        Ok(0)
    })
}

/// Opens an event stream: returns a descriptor that carries each event that
/// `filter` matches, emitted from now on, as one line of canonical XML ending in
/// "\n". No callbacks: any program that reads lines can consume it. `filter` is
/// as for virConnectAddEventHandler: NULL for every event, type patterns, XPath.
///
/// The caller owns the descriptor: closing it unsubscribes (never raising
/// SIGPIPE, never making an emit fail). It is close-on-exec, and non-blocking
/// with `flags` VIR_EVENT_STREAM_NONBLOCK; other flags: VIR_ERR_INVALID_ARG. It
/// is the read end of a pipe. The library blocks SIGPIPE in the writing
/// thread around its writes (a SIGPIPE a write raises there is taken back; one
/// of the program's own, pending while it blocks SIGPIPE, is left pending), so
/// the program's signal mask and dispositions are never changed.
///
/// An event is written when it is emitted; what the reader has no room for
/// waits in the stream's queue (see virConnectSetEventQueueLimit) and is written,
/// many events per system call, by the next emit, virDeliverEvents call or the
/// event thread. While lines wait and the reader has made room, the event
/// descriptor (virConnectGetEventFD) polls readable: a thread-free loop that
/// polls its streams and the event descriptor, and delivers when the latter
/// says so, never leaves lines behind. Writes are whole lines of at most PIPE_BUF (4096) bytes in
/// all, which the pipe takes entirely or not at all: a reader never sees part
/// of a line, except of a line longer than that, which a full pipe can cut
/// until its rest is written. virConnectClose ends the stream: the reader sees end of file
/// after the lines still waiting for room, if it takes them within 250 ms (the
/// close waits that long at most); lines it has no room for by then are dropped.
/// Returns the descriptor, or -1.
///
/// # Safety
/// `conn` is NULL or a connection from virConnectOpen that virConnectClose has not
/// freed. `filter` is NULL or a NULL-terminated array of NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn virConnectOpenEventStream(
    conn: virConnectPtr,
    filter: *const *const c_char,
    flags: c_uint,
) -> c_int {
    guard(|| {
        let connection = unsafe { connection(conn) }?;
        if flags & !VIR_EVENT_STREAM_NONBLOCK != 0 {
            return Err(Error::new(ErrorCode::InvalidArg, format!("unknown flags {flags:#x}")));
        }
        let filter = unsafe { filter_vector(filter) }?;
        let reader = connection.open_event_stream(filter, flags & VIR_EVENT_STREAM_NONBLOCK != 0)?;
        Ok(reader.into_raw_fd())
    })
}

/// A C handler with everything it is called with.
struct HandlerCall {
    handler: unsafe extern "C" fn(virConnectPtr, *const c_char, *mut c_void),
    conn: virConnectPtr,
    user: UserData,
}

// SAFETY: the handler, its connection pointer and its arg are the C caller's, who
// is told that handlers run on whichever thread delivers.
unsafe impl Send for HandlerCall {}
// SAFETY: as above.
unsafe impl Sync for HandlerCall {}

impl HandlerCall {
    fn run(&self, event: &Event) {
        // SAFETY: the handler was registered with this connection and arg; the
        // connection outlives its handlers (close removes them first).
        unsafe { (self.handler)(self.conn, event.as_c_str().as_ptr(), self.user.arg) }
    }
}

/// A handler's `arg` and `freecb`: dropping it calls `freecb(arg)`, so every path
/// (removal, close, failed registration) frees it exactly once.
struct UserData {
    arg: *mut c_void,
    freecb: virFreeCallback,
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(freecb) = self.freecb {
            // SAFETY: the caller gave freecb for this arg, to be called once.
            unsafe { freecb(self.arg) }
        }
    }
}
