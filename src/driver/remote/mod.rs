//! The remote driver: a real libvirt daemon as a source of events, with no
//! thread. Opening authenticates (AUTH_LIST), opens the plain driver URI
//! read-only, registers for every kind of event in [`kinds::KINDS`] (and the
//! daemon's connection-close callback) and records every domain's state, all
//! within one deadline. From then on [`Source::pump`]
//! (which every delivery round runs, the event thread's too) reads what the
//! daemon sent without blocking and emits the events it decodes into the
//! connection's hub; a partial packet waits for its rest. Nothing written to
//! the daemon after opening ever blocks: it waits in the link's outbox while
//! the socket is watched for room, and a timer gives the daemon up if it
//! takes nothing for [`DAEMON_TIMEOUT`].

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::domain::DomainState;
use crate::driver::Source;
use crate::error::{Error, ErrorCode, Result};
use crate::event::Builder;
use crate::hub::Hub;
use crate::poll_set::Interest;
use crate::rpc::error::RemoteError;
use crate::rpc::keepalive::{self, Keepalive};
use crate::rpc::link::{CallError, Ending, Link, Loss, DAEMON_TIMEOUT};
use crate::rpc::packet::{Kind, Packet, PROGRAM_REMOTE};
use crate::rpc::xdr::{Decoder, Encoder};
use kinds::{CLOSE_CALLBACK_REGISTER, CLOSE_CALLBACK_UNREGISTER, CONNECTION_CLOSED, KINDS};
use protocol::{
    decode_domain_list, decode_state, proc, CONNECT_READ_ONLY, FEATURE_PROGRAM_KEEPALIVE,
};
use routes::Routes;
use states::DomainStates;
use uri::Target;

mod auth;
mod kinds;
mod protocol;
pub(crate) use auth::Login;
mod routes;
#[cfg(virevent_sasl)]
mod sasl;
mod states;
pub(crate) mod uri;
use crate::tag;
use crate::timer::Timer;

/// How much one pump reads at most, so that a flooding daemon cannot keep a
/// delivery from returning; what is left keeps the descriptor readable.
const PUMP_BUDGET: usize = 256 * 1024;

/// How long closing waits, at most, for the daemon's answers to the whole
/// goodbye (every deregistration and CONNECT_CLOSE).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to a libvirt daemon.
pub struct RemoteDriver {
    hub: Arc<Hub>,
    session: Mutex<Session>,
    /// The socket and the timer, also known outside the session's lock
    /// for a forked child to close its copies.
    socket: RawFd,
    timer_fd: RawFd,
    /// Whether the link is gone (read without the session's lock).
    lost: AtomicBool,
}

/// What the socket's owner keeps.
struct Session {
    link: Link,
    /// What decoding the events needs: the registrations and the states.
    events: Registry,
    /// The event types the daemon refused to register, with its words.
    refused: Vec<(&'static str, String)>,
    /// Expires when the link next has something to do on its own: give up a
    /// daemon that took no output for [`DAEMON_TIMEOUT`], or keepalive.
    timer: Timer,
    /// Whether the daemon offers keepalive (feature 10).
    keepalive_offered: bool,
    /// Whether the socket is watched for room (while output waits).
    watching_room: bool,
    /// Why the link is gone, once it is (`None` while it works).
    ended: Option<Error>,
}

impl RemoteDriver {
    /// Connects to the daemon `target` names and opens its driver, all within
    /// [`DAEMON_TIMEOUT`]; events emitted from now on go to `hub`.
    pub fn open(target: &Target, login: &mut Login<'_>, hub: Arc<Hub>) -> Result<RemoteDriver> {
        let deadline = Instant::now() + DAEMON_TIMEOUT;
        let link = Link::connect(&target.endpoint, deadline)?;
        let (socket, timer) = (link.fd(), Timer::new()?);
        let timer_fd = timer.fd();
        let mut session = Session {
            link,
            events: Registry::default(),
            refused: Vec::new(),
            timer,
            keepalive_offered: false,
            watching_room: false,
            ended: None,
        };
        session.open_sequence(&target.name, login, &hub).map_err(|e| session.opening_error(e))?;
        // Keepalive is on by default, as in libvirt's client.
        session.set_keepalive(keepalive::DEFAULT_INTERVAL, keepalive::DEFAULT_COUNT);
        hub.work().add(socket, Interest::READ)?;
        hub.work().add(timer_fd, Interest::READ)?;
        Ok(RemoteDriver { hub, session: Mutex::new(session), socket, timer_fd, lost: AtomicBool::new(false) })
    }

    /// Records a loss: the `connection-closed` event, and the error later calls get.
    fn settle(&self, session: &mut Session, outcome: std::result::Result<(), Loss>) {
        if let Err(loss) = outcome {
            self.end(session, loss.error, loss.ending.reason());
        }
    }

    /// Ends the link for good: shuts the socket, keeps `error` for later
    /// calls, emits `connection-closed` with `reason` and says the source is
    /// gone. The socket (readable for good at end of file) and the timer
    /// leave the work set, so that the event thread sleeps.
    fn end(&self, session: &mut Session, error: Error, reason: &str) {
        session.link.shut_down();
        self.hub.work().remove(self.socket);
        self.hub.work().remove(self.timer_fd);
        session.timer.disarm();
        session.ended = Some(error);
        self.lost.store(true, Ordering::Release);
        emit_closed(&self.hub, reason);
        self.hub.set_gone();
    }
}

impl Source for RemoteDriver {
    /// Reads what the daemon has sent, emits its events, and sends what
    /// waits for it, all without blocking. Does nothing while another thread
    /// pumps, or once the link is gone.
    fn pump(&self) {
        let Some(mut session) = self.session.try_lock() else { return };
        if session.ended.is_none() {
            let outcome = session.pump(&self.hub);
            self.settle(&mut session, outcome);
        }
    }

    /// Fails with the link's error once it is gone.
    fn check(&self) -> Result<()> {
        if !self.lost.load(Ordering::Acquire) {
            return Ok(());
        }
        self.session.lock().ended.clone().map_or(Ok(()), Err)
    }

    /// Ends the session politely: deregisters, sends CONNECT_CLOSE and waits for
    /// its reply, all within [`CLOSE_TIMEOUT`], then emits `connection-closed`
    /// (reason `client`), which the streams still carry. Nothing is done if
    /// the link is already gone.
    fn close(&self) {
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

    fn descriptors_after_fork(&self, out: &mut Vec<RawFd>) {
        out.extend([self.socket, self.timer_fd]);
    }

    fn refused_event_types(&self) -> Vec<(String, String)> {
        self.session.lock().refused.iter().map(|(kind, why)| (kind.to_string(), why.clone())).collect()
    }

    fn set_keepalive(&self, interval: Duration, count: u32) -> Result<bool> {
        let mut session = self.session.lock();
        if let Some(error) = &session.ended {
            return Err(error.clone());
        }
        Ok(session.set_keepalive(interval, count))
    }
}

/// What turns the daemon's event messages into events.
#[derive(Default)]
struct Registry {
    routes: Routes,
    states: DomainStates,
    /// Whether the daemon's connection-close callback is registered.
    close_callback: bool,
}

/// Why an event message ends the link.
enum Stop {
    /// Its body does not decode.
    Bad(String),
    /// The daemon's connection-close callback: its reason number.
    DaemonClosed(i32),
}

impl Stop {
    fn loss(self, link: &Link) -> Loss {
        match self {
            Stop::Bad(what) => link.failure(what),
            Stop::DaemonClosed(reason) => {
                // A reason this library does not know reads as an error.
                let reason = crate::words::CLOSE_REASON.event_word(reason).unwrap_or("error");
                Loss {
                    ending: Ending::Reported(reason),
                    error: Error::new(
                        ErrorCode::NoConnect,
                        format!("the libvirt daemon at '{}' closed its connection to the hypervisor ({reason})", link.path()),
                    ),
                }
            }
        }
    }
}

impl Session {
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

    /// Registers for every kind of [`KINDS`], for all objects, one
    /// registration each, then for the daemon's connection-close callback.
    /// Only the domain lifecycle must succeed: a daemon older than a kind
    /// refuses it, and that refusal is recorded, not fatal.
    fn register(&mut self, hub: &Hub) -> Result<()> {
        for kind in &KINDS {
            let mut e = Encoder::new();
            e.i32(kind.event_id).u32(0);
            match self.call_raw(kind.object.procedures().0, &e.into_bytes(), hub) {
                Ok(body) => {
                    let id = Decoder::new(&body).i32().map_err(|e| self.bad_reply("event registration", e))?;
                    self.events.routes.add(kind, id);
                }
                Err(CallError::Daemon(refusal)) if kind.procedure != KINDS[0].procedure => {
                    self.refused.push((kind.type_name, refusal.message));
                }
                Err(e) => return Err(call_error(self.link.path(), e)),
            }
        }
        match self.call_raw(CLOSE_CALLBACK_REGISTER, &[], hub) {
            Ok(_) => self.events.close_callback = true,
            Err(CallError::Daemon(_)) => {}
            Err(e) => return Err(call_error(self.link.path(), e)),
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
                    self.events.states.learn(domain.uuid, DomainState::from_number(state));
                }
                Err(e) if e.code == ErrorCode::NoDomain => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The open sequence after connecting: authentication (see [`auth`]), the
    /// driver's CONNECT_OPEN, the registrations and the domain listing; then
    /// the whole packets read after the last reply are emitted (the socket no
    /// longer holds them, so neither the event descriptor nor the event
    /// thread would wake for them), after the states are recorded, as those
    /// packets came after the states were taken.
    fn open_sequence(&mut self, name: &str, login: &mut Login<'_>, hub: &Hub) -> Result<()> {
        self.authenticate(hub, login)?;
        self.open(name, hub)?;
        self.keepalive_offered = self.ask_keepalive(hub)?;
        self.register(hub)?;
        self.learn_states(hub)?;
        self.dispatch_read(hub).map_err(|loss| loss.error)
    }

    /// What a failed open reports: the open's deadline passing is
    /// `VIR_ERR_NO_CONNECT` "timed out", as a daemon that never accepts is.
    fn opening_error(&self, e: Error) -> Error {
        if e.code != ErrorCode::Rpc || !e.message.ends_with("in time (timed out)") {
            return e;
        }
        let what = if e.message.contains("took nothing") { "it took nothing we sent" } else { "it did not answer" };
        Error::new(
            ErrorCode::NoConnect,
            format!(
                "cannot open the libvirt daemon at '{}': timed out after {} s ({what})",
                self.link.path(),
                DAEMON_TIMEOUT.as_secs()
            ),
        )
    }

    /// Reads what has arrived and emits the events of the whole packets (those
    /// read before an end of file too); sends what waits for the daemon; gives
    /// the daemon up if it has taken nothing for too long; then watches the
    /// socket for room and arms the stall timer while output waits.
    fn pump(&mut self, hub: &Hub) -> std::result::Result<(), Loss> {
        let read = self.link.read_available(PUMP_BUDGET);
        self.dispatch_read(hub)?;
        read?;
        self.link.send_available()?;
        self.link.check_stall()?;
        self.link.check_keepalive(Instant::now())?;
        let waits = self.link.output_waits();
        if waits != self.watching_room {
            self.watching_room = waits;
            hub.work().modify(self.link.fd(), if waits { Interest::READ_WRITE } else { Interest::READ });
        }
        self.arm_timer();
        Ok(())
    }

    /// Sets the timer to the link's next deadline.
    fn arm_timer(&mut self) {
        match self.link.next_deadline() {
            Some(deadline) => self.timer.arm(deadline.saturating_duration_since(Instant::now())),
            None => self.timer.disarm(),
        }
    }

    /// Keepalive with a PING after each `interval` of silence, the daemon
    /// given up after `count` unanswered (a zero interval: off); returns
    /// whether the daemon offers it (it is off when not).
    fn set_keepalive(&mut self, interval: Duration, count: u32) -> bool {
        let on = self.keepalive_offered && !interval.is_zero();
        self.link.set_keepalive(on.then(|| Keepalive::new(interval, count, Instant::now())));
        self.arm_timer();
        self.keepalive_offered
    }

    /// Whether the daemon offers keepalive: CONNECT_SUPPORTS_FEATURE for
    /// feature 10, which also starts its own PINGs (answered by the link). A
    /// refusal means no.
    fn ask_keepalive(&mut self, hub: &Hub) -> Result<bool> {
        let mut e = Encoder::new();
        e.i32(FEATURE_PROGRAM_KEEPALIVE);
        match self.call_raw(proc::CONNECT_SUPPORTS_FEATURE, &e.into_bytes(), hub) {
            Ok(body) => {
                let supported = Decoder::new(&body).i32().map_err(|e| self.bad_reply("CONNECT_SUPPORTS_FEATURE", e))?;
                Ok(supported != 0)
            }
            Err(CallError::Daemon(_)) => Ok(false),
            Err(e) => Err(call_error(self.link.path(), e)),
        }
    }

    /// Emits the events of the whole packets already read.
    fn dispatch_read(&mut self, hub: &Hub) -> std::result::Result<(), Loss> {
        while let Some(packet) = self.link.next_packet()? {
            if let Err(stop) = dispatch(&mut self.events, hub, &packet) {
                return Err(stop.loss(&self.link));
            }
        }
        Ok(())
    }

    /// Deregisters every event and closes the daemon's side.
    /// A refusal does not stop it: only a lost link does. A daemon that does
    /// not answer is given up [`CLOSE_TIMEOUT`] after the first call, for the
    /// whole sequence.
    fn say_goodbye(&mut self, hub: &Hub) -> std::result::Result<(), Loss> {
        self.link.set_deadline(Instant::now() + CLOSE_TIMEOUT);
        for (kind, id) in self.events.routes.take() {
            let mut e = Encoder::new();
            e.i32(id);
            if let Err(CallError::Lost(loss)) = self.call_raw(kind.object.procedures().1, &e.into_bytes(), hub) {
                return Err(loss);
            }
        }
        if std::mem::take(&mut self.events.close_callback) {
            if let Err(CallError::Lost(loss)) = self.call_raw(CLOSE_CALLBACK_UNREGISTER, &[], hub) {
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
        let Session { link, events, .. } = self;
        let mut stop = None;
        let reply = link.call(procedure, body, |packet| {
            if stop.is_none() {
                stop = dispatch(events, hub, &packet).err();
            }
        });
        match stop {
            Some(stop) => Err(CallError::Lost(stop.loss(link))),
            None => reply,
        }
    }

    fn bad_reply(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::new(ErrorCode::Rpc, format!("the libvirt daemon at '{}' sent a bad {what} reply: {e}", self.link.path()))
    }
}

/// Decodes and emits one packet's event (see [`decode`]).
fn dispatch(events: &mut Registry, hub: &Hub, packet: &Packet<'_>) -> std::result::Result<(), Stop> {
    if let Some(event) = decode(events, packet)? {
        // A closed hub takes nothing, harmlessly.
        let _ = hub.emit(event);
    }
    Ok(())
}

/// The event of one packet. Replies nobody waits for, other programs'
/// messages and events of a registration this connection did not make are
/// skipped; a body that does not decode, or the daemon's word that it closed
/// its hypervisor connection, ends the link.
fn decode(events: &mut Registry, packet: &Packet<'_>) -> std::result::Result<Option<crate::event::Draft>, Stop> {
    let h = packet.header;
    if h.program != PROGRAM_REMOTE || h.kind != Kind::Message {
        return Ok(None);
    }
    let mut body = Decoder::new(packet.body);
    let bad = |e: crate::rpc::xdr::DecodeError| Stop::Bad(format!("it sent a bad body for event procedure {}: {e}", h.procedure));
    if h.procedure == CONNECTION_CLOSED && events.close_callback {
        return Err(Stop::DaemonClosed(body.i32().map_err(bad)?));
    }
    let Some((callback_id, kind)) = events.routes.get(h.procedure) else { return Ok(None) };
    if body.i32().map_err(bad)? != callback_id {
        return Ok(None);
    }
    kind.event(body, &mut events.states).map(Some).map_err(bad)
}

/// Feeds `data`, as bytes from a daemon after the open, through what the
/// connection does with them: framing, then each event message decoded by
/// its kind (every kind registered, each with its event ID as callback ID)
/// against one record of states. Returns how many events it made. Panics
/// when an event made is not its own canonical form (what `parse` makes of
/// it): the fuzz target `daemon` runs it on untrusted bytes.
#[doc(hidden)]
pub fn fuzz_daemon_bytes(data: &[u8]) -> usize {
    daemon_bytes_events(data).len()
}

/// The events [`fuzz_daemon_bytes`] makes of `data`, each sealed with seq 1:
/// tests/events_schema.rs validates them against docs/events.rng.
#[doc(hidden)]
pub fn daemon_bytes_events(data: &[u8]) -> Vec<String> {
    let mut framer = crate::rpc::packet::Framer::new();
    framer.push(data);
    let mut events = Registry { close_callback: true, ..Registry::default() };
    for kind in &KINDS {
        events.routes.add(kind, kind.event_id);
    }
    let mut made = Vec::new();
    while let Ok(Some((header, range))) = framer.next_packet() {
        let packet = Packet { header, body: framer.body(range) };
        match decode(&mut events, &packet) {
            Ok(Some(draft)) => {
                let event = draft.seal(1);
                let unsealed = event.xml().replacen(" seq=\"1\"", "", 1);
                let again = crate::event::parse(&unsealed).unwrap_or_else(|e| panic!("{unsealed}: {}", e.message));
                assert_eq!(again.seal(1).xml(), event.xml());
                made.push(event.xml().to_string());
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
    made
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
