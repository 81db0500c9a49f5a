//! Connections: a URI opens a driver and a hub; this is the safe Rust API.

use std::mem::ManuallyDrop;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::credentials::Authenticator;
use crate::driver::remote::{Backoff, Login, RemoteDriver};
use crate::driver::test::{Operation, TestDriver};
use crate::driver::Source;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{parse, parse_bytes, Event};
use crate::event_thread::ThreadSlot;
use crate::filter::Filter;
use crate::fork;
use crate::handlers::HandlerId;
use crate::hub::Hub;
use crate::driver::remote::uri;

/// An open connection: its handlers, its queue and the driver that feeds it.
///
/// Every method may be called from any thread and from inside a handler of this
/// connection (the one exception is [`Connection::close`]). In a process other
/// than the one that opened it (a forked child), every method fails with
/// [`ErrorCode::OperationInvalid`], except `close`, which there only closes the
/// child's copies of the connection's descriptors.
pub struct Connection {
    /// Shared with the event thread. Never dropped in a forked child, where
    /// dropping it would run the parent's freecbs and take its locks.
    core: ManuallyDrop<Arc<Core>>,
    /// Likewise: in a child, its handle names a thread that is not there.
    thread: ManuallyDrop<ThreadSlot>,
    /// [`OPEN`], [`CLOSING`] or [`CLOSED`].
    life: AtomicU8,
}

const OPEN: u8 = 0;
const CLOSING: u8 = 1;
const CLOSED: u8 = 2;

/// What a delivery round needs: the hub and the driver that feeds it.
struct Core {
    hub: Arc<Hub>,
    driver: Driver,
}

/// Where a connection's domain events come from.
enum Driver {
    /// The embedded simulated hypervisor.
    Test(Arc<TestDriver>),
    /// A libvirt daemon, read by delivery rounds.
    Remote(Box<RemoteDriver>),
}

impl Core {
    fn source(&self) -> &dyn Source {
        match &self.driver {
            Driver::Test(test) => test.as_ref(),
            Driver::Remote(remote) => remote.as_ref(),
        }
    }

    /// One delivery round, the same for a caller of [`Connection::deliver`]
    /// and for the event thread (`on_thread`): the source's pump, then the
    /// handlers. A caller's round that finds nothing to deliver on a source
    /// that is gone fails with the source's error.
    fn round(&self, on_thread: bool) -> Result<usize> {
        let source = self.source();
        let calls = self.hub.deliver(on_thread, &|| source.pump())?;
        if !on_thread && calls == 0 && !self.hub.has_queued() {
            source.check()?;
        }
        Ok(calls)
    }
}

impl Connection {
    /// Opens `uri`: `None`, `""` or `test:///default` for the embedded default
    /// with its running domain `test`, `test:///empty` for one with no domains;
    /// `DRIVER+unix:///PATH?socket=SOCKET`, `qemu:///system` or `qemu:///session`
    /// for a libvirt daemon, whose domain events then arrive with no thread.
    pub fn open(uri: Option<&str>) -> Result<Connection> {
        Connection::open_auth(uri, None)
    }

    /// [`Connection::open`] with a source of credentials for a daemon that
    /// wants SASL authentication; `auth.conf` is read first (see
    /// [`crate::credentials`]).
    pub fn open_auth(uri: Option<&str>, program: Option<&mut dyn Authenticator>) -> Result<Connection> {
        let hub = Hub::new()?;
        let driver = match uri.unwrap_or("") {
            "" | "test:///default" => Driver::Test(Arc::new(TestDriver::default_host(hub.clone()))),
            "test:///empty" => Driver::Test(Arc::new(TestDriver::empty_host(hub.clone()))),
            other => match uri::target(other) {
                Some(target) => {
                    let target = target?;
                    let mut login = Login::of(&target, program);
                    Driver::Remote(Box::new(RemoteDriver::open(&target, &mut login, hub.clone())?))
                }
                None => {
                    return Err(Error::new(
                        ErrorCode::NoConnect,
                        format!(
                            "no driver for URI '{other}' (this library opens test:///default, test:///empty, \
                             DRIVER+unix:///PATH?socket=SOCKET, qemu:///system and qemu:///session)"
                        ),
                    ))
                }
            },
        };
        Ok(Connection {
            core: ManuallyDrop::new(Arc::new(Core { hub, driver })),
            thread: ManuallyDrop::new(ThreadSlot::new()),
            life: AtomicU8::new(OPEN),
        })
    }

    fn hub(&self) -> &Hub {
        &self.core.hub
    }

    /// Fails in another process and while the connection is being closed
    /// (the hub's calls fail once it is closed); with `link`, also once a
    /// remote connection's link is gone (`VIR_ERR_NO_CONNECT` after end of
    /// file, `VIR_ERR_RPC` otherwise). Takes no lock.
    fn check(&self, link: bool) -> Result<()> {
        self.hub().check_origin()?;
        if self.life.load(Ordering::Acquire) == CLOSING {
            return Err(Error::new(ErrorCode::OperationInvalid, "the connection is being closed"));
        }
        if link {
            self.core.source().check()?;
        }
        Ok(())
    }

    /// The event types this connection's daemon refused to send, each with
    /// the daemon's words (a daemon older than the kind does not know it);
    /// empty for the embedded driver.
    pub fn refused_event_types(&self) -> Result<Vec<(String, String)>> {
        self.check(false)?;
        Ok(self.core.source().refused_event_types())
    }

    /// Registers `handler` for the events `filter` matches that are emitted from
    /// now on; returns its id. Dropping `handler` is deferred until its last call
    /// has returned (at removal or close).
    pub fn add_handler(&self, filter: Filter, handler: impl Fn(&Event) + Send + Sync + 'static) -> Result<HandlerId> {
        self.check(true)?;
        self.hub().add_handler(filter, Box::new(handler))
    }

    /// Unregisters a handler: once this returns it is never called again (a call
    /// running on another thread is waited for, unless this is called from inside
    /// that very call).
    pub fn remove_handler(&self, id: HandlerId) -> Result<()> {
        self.check(false)?;
        self.hub().remove_handler(id)
    }

    /// Emits event XML; returns its seq. Refused, before the XML is looked
    /// at, once a remote connection's link is gone.
    pub fn emit(&self, xml: &str) -> Result<u64> {
        self.check(true)?;
        self.hub().emit(parse(xml)?)
    }

    /// Emits event XML given as bytes (checked to be UTF-8); returns its seq.
    pub fn emit_bytes(&self, xml: &[u8]) -> Result<u64> {
        self.check(true)?;
        self.hub().emit(parse_bytes(xml)?)
    }

    /// Runs, on this thread, the handlers of the events queued before the call,
    /// in seq order; returns the number of handler calls made. Never blocks: while
    /// another delivery runs on this connection, or the event thread runs, it
    /// returns 0. Streams' waiting events are written first.
    ///
    /// On a remote connection it first reads, without blocking, what the daemon
    /// sent, and sends what waits for it. Once the link is gone and the events
    /// queued before (the last being `connection-closed`) have been delivered,
    /// it fails with the link's error.
    pub fn deliver(&self) -> Result<usize> {
        self.check(false)?;
        self.core.round(false)
    }

    /// A descriptor, owned by the connection, that is readable exactly while
    /// [`Connection::deliver`] has something to do: handler calls to make,
    /// stream lines to write to a reader that made room, a daemon's bytes to
    /// read or output it can take now, a timer that expired; and for good once
    /// a remote connection's link is gone.
    pub fn event_fd(&self) -> Result<RawFd> {
        self.check(false)?;
        self.hub().event_fd()
    }

    /// Starts the event thread, which runs delivery rounds as soon as there is
    /// work.
    pub fn start_event_thread(&self) -> Result<()> {
        self.check(true)?;
        self.hub().check_open()?;
        let core = Arc::clone(&self.core);
        let hub = self.core.hub.clone();
        self.thread.start(hub.work().fd(), move || drop(core.round(true)), &|on| hub.set_threaded(on))
    }

    /// Stops the event thread and waits for it to end. Refused from a handler
    /// running on it, and when no event thread runs.
    pub fn stop_event_thread(&self) -> Result<()> {
        self.check(false)?;
        if self.thread.is_current() {
            return Err(Error::new(
                ErrorCode::OperationInvalid,
                "cannot stop the event thread from a handler running on it",
            ));
        }
        if !self.thread.join(&|on| self.hub().set_threaded(on)) {
            return Err(Error::new(ErrorCode::OperationInvalid, "no event thread is running"));
        }
        Ok(())
    }

    /// A stream of the events `filter` matches, emitted from now on, one line of
    /// XML each: the descriptor the caller reads and closes.
    pub fn open_event_stream(&self, filter: Filter, nonblocking: bool) -> Result<OwnedFd> {
        self.check(true)?;
        self.hub().open_stream(filter, nonblocking)
    }

    /// Sets how many events the handler queue and each stream's queue hold
    /// (default 65536, at least 1: 0 is [`ErrorCode::InvalidArg`]); beyond
    /// it, events are dropped for that consumer and reported to it by one
    /// `events-lost` event.
    pub fn set_queue_limit(&self, limit: usize) -> Result<()> {
        self.check(false)?;
        self.hub().set_queue_limit(limit)
    }

    /// Keepalive for a remote connection, as libvirt's client does it: a PING
    /// after each `interval` of silence from the daemon, and after `count`
    /// unanswered ones the link ends (`connection-closed`, reason
    /// `keepalive`). A zero `interval` turns it off. It is on from the open
    /// with interval 5 s and count 5. Returns whether the daemon offers
    /// keepalive; when it does not, nothing is sent.
    /// [`ErrorCode::NoSupport`] on the embedded driver.
    pub fn set_keepalive(&self, interval: std::time::Duration, count: u32) -> Result<bool> {
        self.check(false)?;
        self.core.source().set_keepalive(interval, count)
    }

    /// Reconnection for a remote connection (off from the open): with
    /// `Some((min, max))`, a lost link (end of file, error, keepalive, the
    /// daemon's close) is `connection-lost` instead of `connection-closed`,
    /// then attempts follow, the waits between them growing from `min` to
    /// `max` (each jittered), driven by the event descriptor's timer. A
    /// successful attempt registers and lists again and emits, before any
    /// event of the new link, one event per difference from the record it
    /// kept (reason `resync`) and then `connection-restored`. Handlers,
    /// streams, filters and seqs carry on. `None` turns it off (during an
    /// outage, the link then ends). [`ErrorCode::InvalidArg`] for `min`
    /// zero or `max` under `min`; [`ErrorCode::NoSupport`] on the embedded
    /// driver.
    pub fn set_reconnect(&self, delays: Option<(std::time::Duration, std::time::Duration)>) -> Result<()> {
        self.check(false)?;
        self.hub().check_open()?;
        let backoff = delays.map(|(min, max)| Backoff::new(min, max)).transpose()?;
        self.core.source().set_reconnect(backoff)
    }

    /// A handle on the domain named `name` (test driver only: a remote
    /// connection answers [`ErrorCode::NoSupport`]).
    pub fn lookup_domain(&self, name: &str) -> Result<Domain> {
        self.check(false)?;
        self.hub().check_open()?;
        match &self.core.driver {
            Driver::Test(driver) => {
                driver.lookup(name)?;
                Ok(Domain { driver: driver.clone(), name: name.into() })
            }
            Driver::Remote(_) => Err(Error::new(
                ErrorCode::NoSupport,
                "domain operations are not forwarded to a libvirt daemon: use virsh or libvirt for them",
            )),
        }
    }

    /// Ends the connection: the event thread is stopped, a daemon's events are
    /// deregistered and its connection closed (CONNECT_CLOSE; streams then carry
    /// `connection-closed` with reason `client`), every handler is removed and
    /// dropped (after its last call), queued events are discarded, streams end,
    /// and later calls fail with [`ErrorCode::InvalidConn`]. Closing twice is
    /// harmless.
    ///
    /// Refused with [`ErrorCode::OperationInvalid`], touching nothing, from
    /// inside one of this connection's handlers or of a freecb it runs, and
    /// while its close is under way (from a freecb that close runs).
    ///
    /// In a process other than the one that opened it, it closes that
    /// process's copies of the connection's descriptors and nothing else: no
    /// goodbye to the daemon, no stream written, no lock taken, no freecb run.
    pub fn close(&self) -> Result<()> {
        if !self.hub().is_home() {
            self.abandon();
            return Ok(());
        }
        if self.life.load(Ordering::Acquire) == CLOSING {
            return Err(Error::new(
                ErrorCode::OperationInvalid,
                "the connection is already being closed (by a virConnectClose this call is inside of)",
            ));
        }
        // Joining the event thread from one of its handlers would wait for
        // that very handler.
        if self.hub().in_callback() {
            return Err(Error::new(
                ErrorCode::OperationInvalid,
                "cannot close a connection from inside one of its own handlers or freecbs",
            ));
        }
        // Another thread racing this close breaks the contract; it is told so
        // rather than freeing the connection twice.
        if self.life.compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return match self.life.load(Ordering::Acquire) {
                CLOSED => Ok(()),
                _ => Err(Error::new(ErrorCode::OperationInvalid, "the connection is already being closed")),
            };
        }
        self.thread.join(&|on| self.hub().set_threaded(on));
        self.core.source().close();
        self.hub().close();
        self.life.store(CLOSED, Ordering::Release);
        Ok(())
    }

    /// A forked child's close: closes the child's copies of the descriptors
    /// the connection owns, once, reading its state without any lock.
    fn abandon(&self) {
        if self.life.swap(CLOSED, Ordering::AcqRel) == CLOSED {
            return;
        }
        let mut fds = Vec::new();
        self.hub().descriptors_after_fork(&mut fds);
        self.core.source().descriptors_after_fork(&mut fds);
        self.thread.descriptors_after_fork(&mut fds);
        fork::close_copies(&fds);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !self.hub().is_home() {
            // The core (and what it holds: handlers, streams, the daemon
            // link) and the event thread's handle stay where they are,
            // unreleased: their descriptors are closed already.
            self.abandon();
            return;
        }
        // Dropped inside its own handler, it cannot close; the hub then lives on
        // until that delivery and every domain handle let go of it.
        let _ = self.close();
        // SAFETY: dropped once, here, and never used again.
        unsafe {
            ManuallyDrop::drop(&mut self.thread);
            ManuallyDrop::drop(&mut self.core);
        }
    }
}

/// A domain of the test driver.
pub struct Domain {
    driver: Arc<TestDriver>,
    name: String,
}

impl Domain {
    /// The domain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts a shut-off domain.
    pub fn create(&self) -> Result<()> {
        self.driver.run(&self.name, Operation::Create)
    }

    /// Pauses a running domain.
    pub fn suspend(&self) -> Result<()> {
        self.driver.run(&self.name, Operation::Suspend)
    }

    /// Resumes a paused domain.
    pub fn resume(&self) -> Result<()> {
        self.driver.run(&self.name, Operation::Resume)
    }

    /// Shuts down a running domain.
    pub fn shutdown(&self) -> Result<()> {
        self.driver.run(&self.name, Operation::Shutdown)
    }

    /// Stops an active domain at once.
    pub fn destroy(&self) -> Result<()> {
        self.driver.run(&self.name, Operation::Destroy)
    }
}
