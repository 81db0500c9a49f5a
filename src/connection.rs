//! Connections: a URI opens a driver and a hub; this is the safe Rust API.

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::driver::remote::RemoteDriver;
use crate::driver::test::{Operation, TestDriver};
use crate::error::{Error, ErrorCode, Result};
use crate::event::{parse, parse_bytes, Draft, Event};
use crate::event_thread::EventThread;
use crate::filter::Filter;
use crate::handlers::HandlerId;
use crate::hub::Hub;
use crate::remote::uri;

/// An open connection: its handlers, its queue and the driver that feeds it.
///
/// Every method may be called from any thread and from inside a handler of this
/// connection (the one exception is [`Connection::close`]).
pub struct Connection {
    hub: Arc<Hub>,
    driver: Driver,
    thread: Mutex<ThreadState>,
}

/// Where a connection's domain events come from.
enum Driver {
    /// The embedded simulated hypervisor.
    Test(Arc<TestDriver>),
    /// A libvirt daemon, read by deliveries or by the event thread.
    Remote(Arc<RemoteDriver>),
}

/// Where the event thread is in its life. `Stopping` keeps a start (say, from a
/// handler the stopping thread is still running) from racing the join.
enum ThreadState {
    Idle,
    Running(EventThread),
    Stopping,
}

impl Connection {
    /// Opens `uri`: `None`, `""` or `test:///default` for the embedded default
    /// with its running domain `test`, `test:///empty` for one with no domains;
    /// `DRIVER+unix:///PATH?socket=SOCKET`, `qemu:///system` or `qemu:///session`
    /// for a libvirt daemon, whose domain events then arrive with no thread.
    pub fn open(uri: Option<&str>) -> Result<Connection> {
        let hub = Hub::new();
        let driver = match uri.unwrap_or("") {
            "" | "test:///default" => Driver::Test(Arc::new(TestDriver::default_host(hub.clone()))),
            "test:///empty" => Driver::Test(Arc::new(TestDriver::empty_host(hub.clone()))),
            other => match uri::target(other) {
                Some(target) => Driver::Remote(Arc::new(RemoteDriver::open(&target?, hub.clone())?)),
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
        Ok(Connection { hub, driver, thread: Mutex::new(ThreadState::Idle) })
    }

    /// The daemon of a remote connection.
    fn remote(&self) -> Option<&Arc<RemoteDriver>> {
        match &self.driver {
            Driver::Remote(remote) => Some(remote),
            Driver::Test(_) => None,
        }
    }

    /// Fails, once a remote connection's link is gone, with the link's error
    /// (`VIR_ERR_NO_CONNECT` after end of file, `VIR_ERR_RPC` otherwise).
    fn check_link(&self) -> Result<()> {
        self.remote().map_or(Ok(()), |remote| remote.check_link())
    }

    /// Registers `handler` for the events `filter` matches that are emitted from
    /// now on; returns its id. Dropping `handler` is deferred until its last call
    /// has returned (at removal or close).
    pub fn add_handler(&self, filter: Filter, handler: impl Fn(&Event) + Send + Sync + 'static) -> Result<HandlerId> {
        self.check_link()?;
        self.hub.add_handler(filter, Box::new(handler))
    }

    /// Unregisters a handler: once this returns it is never called again (a call
    /// running on another thread is waited for, unless this is called from inside
    /// that very call).
    pub fn remove_handler(&self, id: HandlerId) -> Result<()> {
        self.hub.remove_handler(id)
    }

    /// Emits event XML; returns its seq.
    pub fn emit(&self, xml: &str) -> Result<u64> {
        self.emit_draft(parse(xml)?)
    }

    /// Emits event XML given as bytes (checked to be UTF-8); returns its seq.
    pub fn emit_bytes(&self, xml: &[u8]) -> Result<u64> {
        self.emit_draft(parse_bytes(xml)?)
    }

    /// Emits a validated event, unless a remote connection's link is gone.
    fn emit_draft(&self, draft: Draft) -> Result<u64> {
        self.check_link()?;
        self.hub.emit(draft)
    }

    /// Runs, on this thread, the handlers of the events queued before the call,
    /// in seq order; returns the number of handler calls made. Never blocks: while
    /// another delivery runs on this connection, or the event thread runs, it
    /// returns 0. Streams' waiting events are written first.
    ///
    /// On a remote connection it first reads, without blocking, what the daemon
    /// sent. Once the link is gone and the events queued before (the last being
    /// `connection-closed`) have been delivered, it fails with the link's error.
    pub fn deliver(&self) -> Result<usize> {
        let Some(remote) = self.remote() else { return self.hub.deliver() };
        remote.pump();
        let calls = self.hub.deliver()?;
        if calls == 0 && !self.hub.has_queued() {
            remote.check_link()?;
        }
        Ok(calls)
    }

    /// A descriptor, owned by the connection, that is readable exactly while
    /// [`Connection::deliver`] has handler calls to make. On a remote connection
    /// it is an epoll set of the daemon's socket and the queue's descriptor: it
    /// is also readable while the daemon has sent something (which may turn out
    /// to be no event, or a partial packet), and for good once the link is gone.
    pub fn event_fd(&self) -> Result<RawFd> {
        match self.remote() {
            Some(remote) => self.hub.check_open().map(|()| remote.event_fd()),
            None => self.hub.event_fd(),
        }
    }

    /// Starts the event thread, which runs the handlers as events arrive.
    pub fn start_event_thread(&self) -> Result<()> {
        let mut thread = self.thread.lock();
        match *thread {
            ThreadState::Idle => {
                self.check_link()?;
                *thread = ThreadState::Running(EventThread::start(&self.hub, self.remote().cloned())?);
                Ok(())
            }
            ThreadState::Running(_) => {
                Err(Error::new(ErrorCode::OperationInvalid, "the event thread is already running"))
            }
            ThreadState::Stopping => {
                Err(Error::new(ErrorCode::OperationInvalid, "the event thread is being stopped"))
            }
        }
    }

    /// Stops the event thread and waits for it to end. Refused from a handler
    /// running on it, and when no event thread runs.
    pub fn stop_event_thread(&self) -> Result<()> {
        if self.hub.on_event_thread() {
            return Err(Error::new(
                ErrorCode::OperationInvalid,
                "cannot stop the event thread from a handler running on it",
            ));
        }
        if !self.join_event_thread() {
            return Err(Error::new(ErrorCode::OperationInvalid, "no event thread is running"));
        }
        Ok(())
    }

    /// Stops and joins the event thread if one runs (with no lock held while it
    /// finishes its handler); returns whether one did.
    fn join_event_thread(&self) -> bool {
        let running = {
            let mut thread = self.thread.lock();
            match std::mem::replace(&mut *thread, ThreadState::Stopping) {
                ThreadState::Running(running) => running,
                other => {
                    *thread = other;
                    return false;
                }
            }
        };
        running.stop(&self.hub);
        *self.thread.lock() = ThreadState::Idle;
        true
    }

    /// A stream of the events `filter` matches, emitted from now on, one line of
    /// XML each: the descriptor the caller reads and closes.
    pub fn open_event_stream(&self, filter: Filter, nonblocking: bool) -> Result<OwnedFd> {
        self.check_link()?;
        self.hub.open_stream(filter, nonblocking)
    }

    /// Sets how many events the handler queue and each stream's queue hold
    /// (default 65536); beyond it, events are dropped for that consumer and
    /// reported to it by one `events-lost` event.
    pub fn set_queue_limit(&self, limit: usize) -> Result<()> {
        self.hub.set_queue_limit(limit)
    }

    /// A handle on the domain named `name` (test driver only: a remote
    /// connection answers [`ErrorCode::NoSupport`]).
    pub fn lookup_domain(&self, name: &str) -> Result<Domain> {
        self.hub.check_open()?;
        match &self.driver {
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
    /// and later calls fail with [`ErrorCode::InvalidConn`]. Refused with
    /// [`ErrorCode::OperationInvalid`] from inside one of this connection's
    /// handlers. Closing twice is harmless.
    pub fn close(&self) -> Result<()> {
        // From inside one of its handlers the hub refuses; joining the event
        // thread first would wait for that very handler.
        if self.hub.in_delivery() {
            return self.hub.close();
        }
        self.join_event_thread();
        if let Some(remote) = self.remote() {
            remote.close();
        }
        self.hub.close()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Dropped inside its own handler, it cannot close; the hub then lives on
        // until that delivery and every domain handle let go of it.
        let _ = self.close();
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
