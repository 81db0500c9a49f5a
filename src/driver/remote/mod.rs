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
//!
//! With reconnection on ([`reconnect`]), a lost link starts an outage: the
//! timer says when to attempt, each attempt's open runs without blocking
//! ([`Replay`]), and the restored link's listing is compared with the record
//! kept ([`inventory`]) before any of its events is emitted.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
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
use crate::rpc::packet::{Header, Kind, Packet, PROGRAM_REMOTE};
use crate::rpc::xdr::{Decoder, Encoder};
use kinds::{CLOSE_CALLBACK_REGISTER, CLOSE_CALLBACK_UNREGISTER, CONNECTION_CLOSED, KINDS};
use protocol::{
    decode_domain_list, decode_named_list, decode_state, proc, WireDomain, CONNECT_READ_ONLY, FEATURE_PROGRAM_KEEPALIVE,
    LIST_ACTIVE,
};
use inventory::{Inventory, Objects};
pub use reconnect::Backoff;
use reconnect::{Outage, ATTEMPT_TIMEOUT};
use routes::Routes;
use uri::Target;

mod auth;
mod inventory;
mod kinds;
mod protocol;
pub(crate) use auth::Login;
mod reconnect;
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
    /// Where the daemon is: what reconnecting connects to again.
    target: Target,
    state: Mutex<State>,
    /// The socket (-1 while away) and the timer, also known outside the
    /// state's lock for a forked child to close its copies.
    socket: AtomicI32,
    timer_fd: RawFd,
    /// Whether the link is gone for good (read without the lock).
    lost: AtomicBool,
}

/// What the driver's lock guards.
struct State {
    /// The link and what goes with it: `None` during an outage.
    session: Option<Session>,
    /// Expires when something is due: giving up a daemon that took no
    /// output for [`DAEMON_TIMEOUT`], keepalive, or the next attempt to
    /// reconnect.
    timer: Timer,
    /// What the program asked of keepalive, for every link of the connection.
    keepalive: (Duration, u32),
    /// Whether the last link's daemon offered keepalive.
    keepalive_offered: bool,
    /// Reconnection, once the program turns it on.
    reconnect: Option<Backoff>,
    /// The outage under way, with reconnection on.
    outage: Option<Outage>,
    /// During an outage, the attempt under way: its link, opening.
    attempt: Option<Session>,
    /// Why the link is gone for good (`None` while it works or is being restored).
    ended: Option<Error>,
}

impl State {
    /// Sets the timer to the link's next deadline, or the next attempt's.
    fn arm_timer(&mut self) {
        let due = match (&self.session, &self.outage, &self.attempt) {
            (_, Some(_), Some(attempt)) => Some(attempt.link.deadline()),
            (_, Some(outage), None) => Some(outage.due),
            (Some(session), None, _) => session.link.next_deadline(),
            (None, None, _) => None,
        };
        match due {
            Some(due) => self.timer.arm(due.saturating_duration_since(Instant::now())),
            None => self.timer.disarm(),
        }
    }

    /// Applies the keepalive setting to the link.
    fn apply_keepalive(&mut self) {
        if let Some(session) = &mut self.session {
            let (interval, count) = self.keepalive;
            self.keepalive_offered = session.set_keepalive(interval, count);
        }
        self.arm_timer();
    }
}

impl RemoteDriver {
    /// Connects to the daemon `target` names and opens its driver, all within
    /// [`DAEMON_TIMEOUT`]; events emitted from now on go to `hub`.
    pub fn open(target: &Target, login: &mut Login<'_>, hub: Arc<Hub>) -> Result<RemoteDriver> {
        let timer = Timer::new()?;
        let session = Session::connect(target, login, &hub, DAEMON_TIMEOUT)?;
        let (socket, timer_fd) = (session.link.fd(), timer.fd());
        let mut state = State {
            session: Some(session),
            timer,
            // Keepalive is on by default, as in libvirt's client.
            keepalive: (keepalive::DEFAULT_INTERVAL, keepalive::DEFAULT_COUNT),
            keepalive_offered: false,
            reconnect: None,
            outage: None,
            attempt: None,
            ended: None,
        };
        state.apply_keepalive();
        hub.work().add(socket, Interest::READ)?;
        hub.work().add(timer_fd, Interest::READ)?;
        Ok(RemoteDriver {
            hub,
            target: target.clone(),
            state: Mutex::new(state),
            socket: AtomicI32::new(socket),
            timer_fd,
            lost: AtomicBool::new(false),
        })
    }

    /// A lost link: with reconnection on, `connection-lost` and the first
    /// attempt scheduled; without, the end.
    fn lose(&self, state: &mut State, loss: Loss) {
        if state.reconnect.is_none() {
            return self.end(state, loss.error, loss.ending.reason());
        }
        let Some(session) = state.session.take() else { return };
        // Out of the work set before its descriptor closes with the session.
        self.socket.store(-1, Ordering::Release);
        self.hub.work().remove(session.link.fd());
        session.link.shut_down();
        let reason = loss.ending.reason();
        let _ = self.hub.emit(reconnect::lost(reason, &loss.error));
        let outage = Outage::new(session.events.inventory, reason, loss.error);
        self.schedule(state, outage);
    }

    /// Sets when the next attempt is made.
    fn schedule(&self, state: &mut State, mut outage: Outage) {
        if let Some(backoff) = &state.reconnect {
            outage.due = Instant::now() + outage.next_wait(backoff);
        }
        state.outage = Some(outage);
        state.arm_timer();
    }

    /// During an outage: goes on with the attempt under way, or starts one
    /// once it is due. Neither waits for the daemon (see [`Session::advance`]).
    fn attempt(&self, state: &mut State) {
        if let Some(mut session) = state.attempt.take() {
            let outcome = if Instant::now() >= session.link.deadline() {
                Err(session.opening_error(session.link.timed_out().error, ATTEMPT_TIMEOUT))
            } else {
                session.advance(&self.target, &self.hub)
            };
            return self.settle_attempt(state, session, outcome);
        }
        let Some(outage) = state.outage.as_mut().filter(|outage| outage.due <= Instant::now()) else { return };
        outage.attempts += 1;
        let started = Session::start_again(&self.target)
            .and_then(|session| self.hub.work().add(session.link.fd(), Interest::READ).map(|()| session));
        match started {
            Ok(mut session) => {
                self.socket.store(session.link.fd(), Ordering::Release);
                let outcome = session.advance(&self.target, &self.hub);
                self.settle_attempt(state, session, outcome);
            }
            Err(error) => self.attempt_failed(state, error),
        }
    }

    /// What an attempt's round came to: it waits for more replies, it is
    /// complete (the link is restored), or it failed (the next is scheduled).
    fn settle_attempt(&self, state: &mut State, mut session: Session, outcome: Result<bool>) {
        match outcome {
            Ok(false) => {
                session.watch_room(&self.hub);
                state.attempt = Some(session);
                state.arm_timer();
            }
            Ok(true) => self.restore(state, session),
            Err(error) => {
                self.socket.store(-1, Ordering::Release);
                self.hub.work().remove(session.link.fd());
                drop(session);
                self.attempt_failed(state, error);
            }
        }
    }

    fn attempt_failed(&self, state: &mut State, error: Error) {
        let mut outage = state.outage.take().expect("an attempt belongs to an outage");
        outage.last_error = error;
        self.schedule(state, outage);
    }

    /// The link is back: emits, before any event of the new link, the
    /// differences found (see [`inventory::resync`]) and
    /// `connection-restored`, then the events held during the open.
    fn restore(&self, state: &mut State, mut session: Session) {
        let outage = state.outage.take().expect("an attempt belongs to an outage");
        for draft in inventory::resync(&outage.before, &session.events.inventory) {
            let _ = self.hub.emit(draft);
        }
        let _ = self.hub.emit(outage.restored(&session.events.routes.type_names()));
        let released = session.release_held(&self.hub);
        state.session = Some(session);
        state.apply_keepalive();
        if let Err(loss) = released {
            self.lose(state, loss);
        }
    }

    /// Ends the link for good: shuts the socket, keeps `error` for later
    /// calls, emits `connection-closed` with `reason` and says the source is
    /// gone. The socket (readable for good at end of file) and the timer
    /// leave the work set, so that the event thread sleeps.
    fn end(&self, state: &mut State, error: Error, reason: &str) {
        if let Some(session) = &state.session {
            session.link.shut_down();
            self.hub.work().remove(session.link.fd());
        }
        if let Some(attempt) = state.attempt.take() {
            self.hub.work().remove(attempt.link.fd());
        }
        self.hub.work().remove(self.timer_fd);
        state.outage = None;
        state.ended = Some(error);
        self.lost.store(true, Ordering::Release);
        emit_closed(&self.hub, reason);
        // The timer, expired and never read again, is what keeps the event
        // descriptor readable for good. Adding it fails only without memory;
        // the connection-closed event just queued still wakes the loop once.
        state.timer.arm(Duration::ZERO);
        let _ = self.hub.set_gone(self.timer_fd);
    }
}

impl Source for RemoteDriver {
    /// Reads what the daemon has sent, emits its events, and sends what
    /// waits for it, all without blocking; during an outage, makes the
    /// attempt that is due. Does nothing while another thread pumps, or once
    /// the link is gone.
    fn pump(&self) {
        let Some(mut state) = self.state.try_lock() else { return };
        let state = &mut *state;
        if state.ended.is_some() {
            return;
        }
        match &mut state.session {
            Some(session) => match session.pump(&self.hub) {
                Ok(()) => state.arm_timer(),
                Err(loss) => self.lose(state, loss),
            },
            None => self.attempt(state),
        }
    }

    /// Fails with the link's error once it is gone for good (an outage that
    /// reconnection may end is not a failure).
    fn check(&self) -> Result<()> {
        if !self.lost.load(Ordering::Acquire) {
            return Ok(());
        }
        self.state.lock().ended.clone().map_or(Ok(()), Err)
    }

    /// Ends the session politely: deregisters, sends CONNECT_CLOSE and waits for
    /// its reply, all within [`CLOSE_TIMEOUT`], then emits `connection-closed`
    /// (reason `client`), which the streams still carry. During an outage it
    /// ends at once. Nothing is done if the link is already gone.
    fn close(&self) {
        let mut state = self.state.lock();
        if state.ended.is_some() {
            return;
        }
        // Closing goes on whatever the daemon says: the socket is shut anyway.
        // A daemon found gone meanwhile gives the reason of its going.
        let state = &mut *state;
        let reason = match (&mut state.session, &state.outage) {
            (Some(session), None) => match session.say_goodbye(&self.hub) {
                Ok(()) => "client",
                Err(loss) => loss.ending.reason(),
            },
            _ => "client",
        };
        self.end(state, Error::new(ErrorCode::InvalidConn, "the connection is closed"), reason);
    }

    fn descriptors_after_fork(&self, out: &mut Vec<RawFd>) {
        let socket = self.socket.load(Ordering::Acquire);
        out.extend([socket, self.timer_fd].into_iter().filter(|&fd| fd >= 0));
    }

    fn refused_event_types(&self) -> Vec<(String, String)> {
        let state = self.state.lock();
        let Some(session) = &state.session else { return Vec::new() };
        session.refused.iter().map(|(kind, why)| (kind.to_string(), why.clone())).collect()
    }

    /// Also kept for the links that reconnection makes; during an outage,
    /// returns whether the last link's daemon offered keepalive.
    fn set_keepalive(&self, interval: Duration, count: u32) -> Result<bool> {
        let mut state = self.state.lock();
        if let Some(error) = &state.ended {
            return Err(error.clone());
        }
        state.keepalive = (interval, count);
        state.apply_keepalive();
        Ok(state.keepalive_offered)
    }

    /// Turning it on lists the networks and storage pools (once), for the
    /// resync to compare with; turning it off during an outage ends the link
    /// with the loss's reason and error.
    fn set_reconnect(&self, backoff: Option<Backoff>) -> Result<()> {
        let mut state = self.state.lock();
        if let Some(error) = &state.ended {
            return Err(error.clone());
        }
        match (backoff, &mut state.session) {
            (Some(_), Some(session)) => {
                session.link.set_deadline(Instant::now() + DAEMON_TIMEOUT);
                session.list_objects(&self.hub)?;
            }
            (None, None) => {
                let outage = state.outage.take().expect("an outage while there is no session");
                self.end(&mut state, outage.last_error, outage.reason);
            }
            _ => {}
        }
        state.reconnect = backoff;
        Ok(())
    }
}

/// What turns the daemon's event messages into events.
#[derive(Default)]
struct Registry {
    routes: Routes,
    inventory: Inventory,
    /// Whether the daemon's connection-close callback is registered.
    close_callback: bool,
    /// Whether the messages being decoded are a reconnection's held ones,
    /// whose lifecycle changes the listing already shows are left out (the
    /// resync told them).
    replaying: bool,
}

/// A link to the daemon and what goes with it.
struct Session {
    link: Link,
    /// What decoding the events needs: the registrations and the record of objects.
    events: Registry,
    /// The event types the daemon refused to register, with its words.
    refused: Vec<(&'static str, String)>,
    /// Whether the daemon offers keepalive (feature 10).
    keepalive_offered: bool,
    /// Whether the socket is watched for room (while output waits).
    watching_room: bool,
    /// During a reconnection's open: the event messages that arrived, whole,
    /// to be decoded once the resync's events are out.
    held: Option<Vec<(Header, Vec<u8>)>>,
    /// During a reconnection's open: how it goes on without blocking.
    replay: Option<Replay>,
}

/// A reconnection's open, made without blocking: at each round the open
/// sequence runs again from its start, each call given at once the reply it
/// had before, until a call whose reply has not come: that one is sent (once)
/// and the run stops, to go on when the reply is read. The sequence only
/// reads replies and rebuilds the session's record, so running it again is
/// harmless. SASL cannot be run twice (a mechanism's steps depend on what was
/// sent before): once chosen, the rest of the open waits for each reply.
#[derive(Default)]
struct Replay {
    /// The replies so far, in the order of the calls: a body or a refusal.
    replies: Vec<std::result::Result<Vec<u8>, RemoteError>>,
    /// The call of this run the next reply is for.
    next: usize,
    /// The serial of the call sent whose reply has not come.
    awaiting: Option<u32>,
    /// Whether calls from now on wait for their replies (SASL).
    blocking: bool,
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
    /// Connects to the daemon `target` names and runs the open sequence, all
    /// within `timeout`, waiting for each reply: a connection's first open.
    fn connect(target: &Target, login: &mut Login<'_>, hub: &Hub, timeout: Duration) -> Result<Session> {
        let link = Link::connect(&target.endpoint, Instant::now() + timeout)?;
        let mut session = Session::on(link, None);
        session.open_sequence(&target.name, login, hub).map_err(|e| session.opening_error(e, timeout))?;
        Ok(session)
    }

    /// A reconnection's link, connected within [`ATTEMPT_TIMEOUT`] (a TLS
    /// handshake or ssh's start waits; the rest of the open does not: see
    /// [`Session::advance`]).
    fn start_again(target: &Target) -> Result<Session> {
        let link = Link::connect(&target.endpoint, Instant::now() + ATTEMPT_TIMEOUT)?;
        Ok(Session::on(link, Some(Replay::default())))
    }

    fn on(link: Link, replay: Option<Replay>) -> Session {
        Session {
            link,
            events: Registry::default(),
            refused: Vec::new(),
            keepalive_offered: false,
            watching_room: false,
            held: replay.is_some().then(Vec::new),
            replay,
        }
    }

    /// Takes a reconnection's open as far as the replies read so far allow,
    /// without blocking (see [`Replay`]); true once it is complete (the
    /// registrations made, domains, networks and pools listed, the events
    /// that came meanwhile held). Authentication with a program's callback is
    /// not possible here: auth.conf alone answers.
    fn advance(&mut self, target: &Target, hub: &Hub) -> Result<bool> {
        let read = self.link.read_available(PUMP_BUDGET);
        loop {
            let (header, body) = match self.link.next_packet() {
                Ok(Some(packet)) => (packet.header, packet.body.to_vec()),
                Ok(None) => break,
                Err(loss) => return Err(loss.error),
            };
            let awaited = self.replay.as_ref().and_then(|replay| replay.awaiting);
            if header.program == PROGRAM_REMOTE && header.kind == Kind::Reply && Some(header.serial) == awaited {
                let reply = match header.status {
                    0 => Ok(body),
                    _ => Err(RemoteError::decode(&body)
                        .map_err(|e| self.link.failure(format!("it sent a bad error reply: {e}")).error)?),
                };
                let replay = self.replay.as_mut().expect("advance runs during a reconnection's open");
                replay.awaiting = None;
                replay.replies.push(reply);
            } else if let Err(stop) = route(&mut self.events, &mut self.held, hub, &Packet { header, body: &body }) {
                return Err(stop.loss(&self.link).error);
            }
        }
        read.map_err(|loss| loss.error)?;
        self.link.send_available().map_err(|loss| loss.error)?;
        if self.replay.as_ref().is_some_and(|replay| replay.awaiting.is_some()) {
            return Ok(false);
        }
        // Again from the start, with the replies so far.
        self.events = Registry::default();
        self.refused.clear();
        if let Some(replay) = &mut self.replay {
            replay.next = 0;
        }
        let mut login = Login::of(target, None);
        match self.open_sequence(&target.name, &mut login, hub).and_then(|()| self.list_objects(hub)) {
            Ok(()) => {
                self.replay = None;
                Ok(true)
            }
            Err(e) if is_pending(&e) => Ok(false),
            Err(e) => Err(self.opening_error(e, ATTEMPT_TIMEOUT)),
        }
    }

    /// Makes the rest of a reconnection's open wait for each reply (see [`Replay`]).
    fn wait_for_replies(&mut self) {
        if let Some(replay) = &mut self.replay {
            replay.blocking = true;
        }
    }

    /// Watches the socket for room while output waits, and only then.
    fn watch_room(&mut self, hub: &Hub) {
        let waits = self.link.output_waits();
        if waits != self.watching_room {
            self.watching_room = waits;
            hub.work().modify(self.link.fd(), if waits { Interest::READ_WRITE } else { Interest::READ });
        }
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
                    self.events.inventory.domains.learn(&domain, DomainState::from_number(state));
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
    fn opening_error(&self, e: Error, timeout: Duration) -> Error {
        if e.code != ErrorCode::Rpc || !e.message.ends_with("in time (timed out)") {
            return e;
        }
        let what = if e.message.contains("took nothing") { "it took nothing we sent" } else { "it did not answer" };
        Error::new(
            ErrorCode::NoConnect,
            format!(
                "cannot open the libvirt daemon at '{}': timed out after {} s ({what})",
                self.link.path(),
                timeout.as_secs()
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
        self.watch_room(hub);
        Ok(())
    }

    /// Keepalive with a PING after each `interval` of silence, the daemon
    /// given up after `count` unanswered (a zero interval: off); returns
    /// whether the daemon offers it (it is off when not).
    fn set_keepalive(&mut self, interval: Duration, count: u32) -> bool {
        let on = self.keepalive_offered && !interval.is_zero();
        self.link.set_keepalive(on.then(|| Keepalive::new(interval, count, Instant::now())));
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
            if let Err(stop) = route(&mut self.events, &mut self.held, hub, &packet) {
                return Err(stop.loss(&self.link));
            }
        }
        // Idle between reads: a fleet's connections keep no read buffer.
        self.link.release_read_buffer();
        Ok(())
    }

    /// Ends a reconnection's holding: emits the events of the messages held,
    /// in order, then those of the whole packets read since.
    fn release_held(&mut self, hub: &Hub) -> std::result::Result<(), Loss> {
        self.events.replaying = true;
        for (header, body) in self.held.take().unwrap_or_default() {
            if let Err(stop) = dispatch(&mut self.events, hub, &Packet { header, body: &body }) {
                return Err(stop.loss(&self.link));
            }
        }
        self.events.replaying = false;
        self.dispatch_read(hub)
    }

    /// Lists the networks and storage pools into the record, once, for a
    /// resync to compare with: each listed whole, then its active ones. A
    /// daemon without them (a driver that has none) has an empty list.
    fn list_objects(&mut self, hub: &Hub) -> Result<()> {
        if self.events.inventory.networks.is_listed() {
            return Ok(());
        }
        self.events.inventory.networks = self.list_named(proc::CONNECT_LIST_ALL_NETWORKS, hub)?;
        self.events.inventory.pools = self.list_named(proc::CONNECT_LIST_ALL_STORAGE_POOLS, hub)?;
        Ok(())
    }

    /// One of CONNECT_LIST_ALL_NETWORKS and CONNECT_LIST_ALL_STORAGE_POOLS.
    fn list_named(&mut self, procedure: i32, hub: &Hub) -> Result<Objects> {
        let mut list = |flags: u32| {
            let mut e = Encoder::new();
            e.i32(1).u32(flags);
            match self.call_raw(procedure, &e.into_bytes(), hub) {
                Ok(body) => decode_named_list(&body).map_err(|e| self.bad_reply("object listing", e)),
                Err(CallError::Daemon(_)) => Ok(Vec::new()),
                Err(e) => Err(call_error(self.link.path(), e)),
            }
        };
        let all = list(0)?;
        let active = list(LIST_ACTIVE)?;
        Ok(Objects::listed(all.into_iter().map(|(name, uuid)| {
            let on = active.iter().any(|(_, a)| *a == uuid);
            (name, uuid, on)
        })))
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

    /// A call whose interleaved events are emitted to `hub` (or held).
    /// Packets read with the reply but after it wait in the link for the next
    /// call, or for [`Session::dispatch_read`]. During a reconnection's open
    /// the call goes through its [`Replay`]: the reply given before, or
    /// [`CallError::Pending`] once it is sent.
    fn call_raw(&mut self, procedure: i32, body: &[u8], hub: &Hub) -> std::result::Result<Vec<u8>, CallError> {
        if let Some(replay) = &mut self.replay {
            if let Some(reply) = replay.replies.get(replay.next) {
                replay.next += 1;
                return reply.clone().map_err(CallError::Daemon);
            }
            if !replay.blocking {
                if replay.awaiting.is_none() {
                    replay.awaiting = Some(self.link.start_call(procedure, body).map_err(CallError::Lost)?);
                }
                return Err(CallError::Pending);
            }
        }
        let reply = self.wait_for_call(procedure, body, hub);
        // A reply or a refusal is kept for the runs to come; a loss ends the attempt.
        let kept = match &reply {
            Ok(body) => Ok(body.clone()),
            Err(CallError::Daemon(refusal)) => Err(refusal.clone()),
            Err(_) => return reply,
        };
        if let Some(replay) = &mut self.replay {
            replay.replies.push(kept);
            replay.next += 1;
        }
        reply
    }

    /// A call made and waited for (until the link's deadline).
    fn wait_for_call(&mut self, procedure: i32, body: &[u8], hub: &Hub) -> std::result::Result<Vec<u8>, CallError> {
        let Session { link, events, held, .. } = self;
        let mut stop = None;
        let reply = link.call(procedure, body, |packet| {
            if stop.is_none() {
                stop = route(events, held, hub, &packet).err();
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

/// Holds one packet (a whole copy) while `held` is on, or else decodes and
/// emits its event.
fn route(events: &mut Registry, held: &mut Option<Vec<(Header, Vec<u8>)>>, hub: &Hub, packet: &Packet<'_>) -> std::result::Result<(), Stop> {
    match held {
        Some(held) => {
            held.push((packet.header, packet.body.to_vec()));
            Ok(())
        }
        None => dispatch(events, hub, packet),
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
    if events.replaying && kind.procedure == KINDS[0].procedure {
        let mut ahead = body.clone();
        let (domain, event) = (WireDomain::decode(&mut ahead).map_err(bad)?, ahead.i32().map_err(bad)?);
        if events.inventory.domains.already_shows(&domain, event) {
            return Ok(None);
        }
    }
    kind.event(body, &mut events.inventory).map(Some).map_err(bad)
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

/// What a reconnection's open stops with while a call's reply has not come:
/// not a failure, it goes on at the next round ([`Session::advance`]).
const PENDING: &str = "a reconnection's call waits for its reply";

/// Whether `e` is [`PENDING`].
fn is_pending(e: &Error) -> bool {
    e.code == ErrorCode::Rpc && e.message == PENDING
}

/// The library error for a failed call.
fn call_error(path: &str, e: CallError) -> Error {
    match e {
        CallError::Lost(loss) => loss.error,
        CallError::Pending => Error::new(ErrorCode::Rpc, PENDING),
        CallError::Daemon(RemoteError { code, message }) => match ErrorCode::from_number(code) {
            Some(known) if known != ErrorCode::Ok => Error::new(known, message),
            _ => Error::new(ErrorCode::Rpc, format!("the libvirt daemon at '{path}' failed (its error {code}): {message}")),
        },
    }
}
