//! The remote driver: a real libvirt daemon as a source of events, with no
//! thread. Opening authenticates (AUTH_LIST), opens the plain driver URI
//! read-only, registers for the domain events of [`EVENTS`] and records every
//! domain's state. From then on [`RemoteDriver::pump`] (called by deliveries
//! and by the event thread) reads what the daemon sent without blocking and
//! emits the events it decodes into the connection's hub; a partial packet
//! waits for its rest.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::domain::DomainState;
use crate::error::{Error, ErrorCode, Result};
use crate::event::Builder;
use crate::hub::Hub;
use crate::notify::system_error;
use crate::remote::events::DomainStates;
use crate::remote::link::{CallError, Link, Loss};
use crate::remote::packet::{Kind, Packet, PROGRAM_REMOTE};
use crate::remote::protocol::{
    decode_domain_list, decode_event, decode_state, proc, RemoteError, AUTH_NONE, AUTH_POLKIT_TYPE, AUTH_SASL,
    CONNECT_READ_ONLY, EVENTS,
};
use crate::remote::uri::Target;
use crate::remote::xdr::{Decoder, Encoder};
use crate::tag;

/// How much one pump reads at most, so that a flooding daemon cannot keep a
/// delivery from returning; what is left keeps the descriptor readable.
const PUMP_BUDGET: usize = 256 * 1024;

/// How long closing waits for each of the daemon's answers.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to a libvirt daemon.
pub struct RemoteDriver {
    hub: Arc<Hub>,
    session: Mutex<Session>,
    socket: RawFd,
    /// Whether the link is gone (read without the session's lock).
    lost: AtomicBool,
    /// An epoll set of the socket and the hub's notifier: readable while the
    /// daemon has sent something or events wait for delivery.
    event_fd: OwnedFd,
}

/// What the socket's owner keeps.
struct Session {
    link: Link,
    states: DomainStates,
    callbacks: Vec<i32>,
    /// Why the link is gone, once it is (`None` while it works).
    ended: Option<Error>,
}

impl RemoteDriver {
    /// Connects to the daemon `target` names and opens its driver; events emitted
    /// from now on go to `hub`.
    pub fn open(target: &Target, hub: Arc<Hub>) -> Result<RemoteDriver> {
        let link = Link::connect(&target.socket)?;
        let socket = link.fd();
        let mut session = Session { link, states: DomainStates::default(), callbacks: Vec::new(), ended: None };
        session.authenticate(&hub)?;
        session.open(&target.name, &hub)?;
        session.register(&hub)?;
        session.learn_states(&hub)?;
        session.drain(&hub)?;
        let event_fd = epoll_of(&[socket, hub.event_fd()?])?;
        Ok(RemoteDriver { hub, session: Mutex::new(session), socket, lost: AtomicBool::new(false), event_fd })
    }

    /// Reads what the daemon has sent, without blocking, and emits its events.
    /// Does nothing while another thread reads, or once the link is gone.
    /// The events are emitted quietly: a delivery must follow, which sets the
    /// event descriptor.
    pub fn pump(&self) {
        let Some(mut session) = self.session.try_lock() else { return };
        if session.ended.is_none() {
            let outcome = session.pump(&self.hub);
            self.settle(&mut session, outcome);
        }
    }

    /// Records a loss: the `connection-closed` event, and the error later calls get.
    fn settle(&self, session: &mut Session, outcome: std::result::Result<(), Loss>) {
        if let Err(loss) = outcome {
            self.end(session, loss.error, loss.ending.reason());
        }
    }

    /// Ends the link for good: shuts the socket, keeps `error` for later
    /// calls and emits `connection-closed` with `reason`.
    fn end(&self, session: &mut Session, error: Error, reason: &str) {
        session.link.shut_down();
        session.ended = Some(error);
        self.lost.store(true, Ordering::Release);
        emit_closed(&self.hub, reason);
    }

    /// The socket while the link works, for the event thread to poll.
    pub fn live_socket(&self) -> Option<RawFd> {
        (!self.lost.load(Ordering::Acquire)).then_some(self.socket)
    }

    /// Fails with the link's error once it is gone.
    pub fn check_link(&self) -> Result<()> {
        if !self.lost.load(Ordering::Acquire) {
            return Ok(());
        }
        self.session.lock().ended.clone().map_or(Ok(()), Err)
    }

    /// The descriptor for poll loops: readable while the daemon has sent
    /// something or events wait (and, once the link is gone, for good).
    pub fn event_fd(&self) -> RawFd {
        self.event_fd.as_raw_fd()
    }

    /// Ends the session politely: deregisters, sends CONNECT_CLOSE and waits for
    /// its reply, then emits `connection-closed` (reason `client`), which the
    /// streams still carry. Nothing is done if the link is already gone.
    pub fn close(&self) {
        let mut session = self.session.lock();
        if session.ended.is_some() {
            return;
        }
        // Closing goes on whatever the daemon says: the socket is shut anyway.
        // A daemon found gone meanwhile gives the reason of its going.
        let reason = match session.say_goodbye(&self.hub) {
            Ok(()) => "client",
            Err(loss) => loss.ending.reason(),
        };
        self.end(&mut session, Error::new(ErrorCode::InvalidConn, "the connection is closed"), reason);
    }
}

impl Session {
    /// AUTH_LIST, which also authenticates root on a polkit socket; then polkit
    /// if the daemon wants it. SASL is not done: the daemon's refusal says so.
    fn authenticate(&mut self, hub: &Hub) -> Result<()> {
        let body = self.call(proc::AUTH_LIST, &[], hub)?;
        let kinds = Decoder::new(&body).array(20, Decoder::i32).map_err(|e| self.bad_reply("AUTH_LIST", e))?;
        if kinds.is_empty() || kinds.contains(&AUTH_NONE) {
            return Ok(());
        }
        if kinds.contains(&AUTH_POLKIT_TYPE) {
            return match self.call(proc::AUTH_POLKIT, &[], hub) {
                Ok(_) => Ok(()),
                Err(e) => Err(self.auth_failed(format!("polkit authentication failed: {}", e.message))),
            };
        }
        if kinds.contains(&AUTH_SASL) {
            return Err(self.auth_failed("it requires SASL authentication, which virevent does not do".into()));
        }
        Err(self.auth_failed(format!("it offers only authentication types {kinds:?}, none of which virevent does")))
    }

    fn auth_failed(&self, why: String) -> Error {
        Error::new(ErrorCode::AuthFailed, format!("the libvirt daemon at '{}' refused the connection: {why}", self.link.path()))
    }

    /// CONNECT_OPEN of `name`, read-only (all an events client needs).
    fn open(&mut self, name: &str, hub: &Hub) -> Result<()> {
        let mut e = Encoder::new();
        e.optional_string(Some(name)).u32(CONNECT_READ_ONLY);
        match self.call(proc::CONNECT_OPEN, &e.into_bytes(), hub) {
            Ok(_) => Ok(()),
            // A socket whose daemon wants authentication says so at open.
            Err(e) if e.code == ErrorCode::Rpc && e.message.ends_with("authentication required") => {
                Err(Error::new(ErrorCode::AuthFailed, e.message))
            }
            Err(e) => Err(e),
        }
    }

    /// Registers for every event of [`EVENTS`], for all domains. Only the
    /// lifecycle registration must succeed: an older daemon may lack the others.
    fn register(&mut self, hub: &Hub) -> Result<()> {
        for (event_id, _) in EVENTS {
            let mut e = Encoder::new();
            e.i32(event_id).u32(0);
            match self.call(proc::EVENT_REGISTER_ANY, &e.into_bytes(), hub) {
                Ok(body) => {
                    let id = Decoder::new(&body).i32().map_err(|e| self.bad_reply("event registration", e))?;
                    self.callbacks.push(id);
                }
                // "unsupported event ID": skip it.
                Err(e) if event_id != 0 && e.code == ErrorCode::InternalError => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Lists every domain and records its state (a domain gone meanwhile is
    /// skipped). Events that arrive meanwhile are emitted in order.
    fn learn_states(&mut self, hub: &Hub) -> Result<()> {
        let mut e = Encoder::new();
        e.i32(1).u32(0);
        let body = self.call(proc::CONNECT_LIST_ALL_DOMAINS, &e.into_bytes(), hub)?;
        let domains = decode_domain_list(&body).map_err(|e| self.bad_reply("CONNECT_LIST_ALL_DOMAINS", e))?;
        for domain in domains {
            let mut e = Encoder::new();
            domain.encode(&mut e);
            e.u32(0);
            match self.call(proc::DOMAIN_GET_STATE, &e.into_bytes(), hub) {
                Ok(body) => {
                    let state = decode_state(&body).map_err(|e| self.bad_reply("DOMAIN_GET_STATE", e))?;
                    self.states.learn(domain.uuid, DomainState::from_number(state));
                }
                Err(e) if e.code == ErrorCode::NoDomain => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what has arrived and emits the events of the whole packets (those
    /// read before an end of file too).
    fn pump(&mut self, hub: &Hub) -> std::result::Result<(), Loss> {
        let read = self.link.read_available(PUMP_BUDGET);
        self.dispatch_read(hub)?;
        read
    }

    /// Emits the events of the whole packets already read.
    fn dispatch_read(&mut self, hub: &Hub) -> std::result::Result<(), Loss> {
        while let Some(packet) = self.link.next_packet()? {
            if let Err(e) = dispatch(&mut self.states, hub, &packet) {
                return Err(self.link.failure(e));
            }
        }
        Ok(())
    }

    /// Deregisters every event and closes the daemon's side.
    /// A refusal does not stop it: only a lost link does. A daemon that does
    /// not answer is given up after [`CLOSE_TIMEOUT`], not the calls' 30 s.
    fn say_goodbye(&mut self, hub: &Hub) -> std::result::Result<(), Loss> {
        self.link.set_timeout(CLOSE_TIMEOUT);
        for id in std::mem::take(&mut self.callbacks) {
            let mut e = Encoder::new();
            e.i32(id);
            if let Err(CallError::Lost(loss)) = self.call_raw(proc::EVENT_DEREGISTER_ANY, &e.into_bytes(), hub) {
                return Err(loss);
            }
        }
        match self.call_raw(proc::CONNECT_CLOSE, &[], hub) {
            Err(CallError::Lost(loss)) => Err(loss),
            _ => Ok(()),
        }
    }

    /// A call; the daemon's errors keep its code (when this library knows it)
    /// and its words.
    fn call(&mut self, procedure: i32, body: &[u8], hub: &Hub) -> Result<Vec<u8>> {
        self.call_raw(procedure, body, hub).map_err(|e| call_error(self.link.path(), e))
    }

    /// A call whose interleaved events are emitted to `hub`. Packets read
    /// with the reply but after it wait in the link for the next call, or for
    /// [`Session::drain`].
    fn call_raw(&mut self, procedure: i32, body: &[u8], hub: &Hub) -> std::result::Result<Vec<u8>, CallError> {
        let Session { link, states, .. } = self;
        let mut bad_event = None;
        let reply = link.call(procedure, body, |packet| {
            if bad_event.is_none() {
                bad_event = dispatch(states, hub, &packet).err();
            }
        });
        match bad_event {
            Some(e) => Err(CallError::Lost(link.failure(e))),
            None => reply,
        }
    }

    /// Emits the whole packets read after the last reply. Opening ends with
    /// this: the socket no longer holds them, so neither the event descriptor
    /// nor the event thread would wake for them. It comes after the states are
    /// recorded, as those packets came after the states were taken.
    fn drain(&mut self, hub: &Hub) -> Result<()> {
        self.dispatch_read(hub).map_err(|loss| loss.error)
    }

    fn bad_reply(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::new(ErrorCode::Rpc, format!("the libvirt daemon at '{}' sent a bad {what} reply: {e}", self.link.path()))
    }
}

/// Decodes and emits one packet's event; an error for an event body that does
/// not decode. Replies nobody waits for and other programs' messages are skipped.
fn dispatch(states: &mut DomainStates, hub: &Hub, packet: &Packet<'_>) -> std::result::Result<(), String> {
    let h = packet.header;
    if h.program != PROGRAM_REMOTE || h.kind != Kind::Message {
        return Ok(());
    }
    match decode_event(h.procedure, packet.body) {
        Ok(Some(event)) => {
            // A closed hub takes nothing, harmlessly.
            let _ = hub.emit_quiet(states.event(&event));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(format!("it sent a bad body for event procedure {}: {e}", h.procedure)),
    }
}

/// Emits `connection-closed` with `reason`.
fn emit_closed(hub: &Hub, reason: &str) {
    let mut event = Builder::new("connection-closed");
    event.known(tag!("reason"), &[reason]);
    let _ = hub.emit(event.finish());
}

/// The library error for a failed call.
fn call_error(path: &str, e: CallError) -> Error {
    match e {
        CallError::Lost(loss) => loss.error,
        CallError::Daemon(RemoteError { code, message }) => match ErrorCode::from_number(code) {
            Some(known) if known != ErrorCode::Ok => Error::new(known, message),
            _ => Error::new(ErrorCode::Rpc, format!("the libvirt daemon at '{path}' failed (its error {code}): {message}")),
        },
    }
}

/// An epoll set (close-on-exec) polling `fds` for input.
fn epoll_of(fds: &[RawFd]) -> Result<OwnedFd> {
    // SAFETY: plain system call.
    let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if raw < 0 {
        return Err(system_error("epoll_create1"));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(raw) };
    for &fd in fds {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
        // SAFETY: a valid epoll descriptor and event.
        if unsafe { libc::epoll_ctl(raw, libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            return Err(system_error("epoll_ctl"));
        }
    }
    Ok(epoll)
}
