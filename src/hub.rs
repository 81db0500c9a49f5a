//! A connection's event hub: assigns seqs, holds the handlers, the handler
//! queue and the streams, and delivers. One mutex guards it; no user code ever
//! runs under it (stream writes are non-blocking system calls).

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::event::{Draft, Event};
use crate::filter::Filter;
use crate::handlers::{retire, Callback, Entry, HandlerId, Registry};
use crate::notify::Notifier;
use crate::queue::{Queue, DEFAULT_LIMIT};
use crate::sigpipe::Shield;
use crate::stream::{reap, Status, Stream};
use crate::thread_mark;

/// The shared state of one connection's events.
pub struct Hub {
    state: Mutex<State>,
}

struct State {
    last_seq: u64,
    handlers: Registry,
    queue: Queue,
    limit: usize,
    streams: Vec<Stream>,
    /// Readable while the handler queue has events; made on first request.
    notifier: Option<Notifier>,
    /// The thread running a delivery now, if any: a second delivery meanwhile
    /// (from a handler, or another thread) makes no calls, which keeps every
    /// handler's events in seq order.
    delivering: Option<usize>,
    /// Whether the event thread delivers: callers' deliveries then make no calls.
    threaded: bool,
    /// Raised, while the event thread runs, when a stream opens or starts
    /// waiting for room, so that the thread polls it too.
    kick: Option<Notifier>,
    /// The event thread, once it has started.
    event_thread: Option<usize>,
    scratch: Scratch,
    closed: bool,
}

impl State {
    /// Keeps the notifier readable exactly while the handler queue has events.
    fn sync_notifier(&mut self) {
        let pending = !self.queue.is_empty();
        if let Some(notifier) = &mut self.notifier {
            notifier.set(pending);
        }
    }

    /// Makes the event thread, if it runs, poll the streams afresh.
    fn kick_event_thread(&mut self) {
        if let Some(kick) = &mut self.kick {
            kick.set(true);
        }
    }

    /// Forgets the streams whose readers are gone, and writes what the others'
    /// readers can take now.
    fn flush_streams(&mut self) {
        reap(&mut self.streams);
        let mut shield = Shield::new();
        self.streams.retain_mut(|s| !s.has_backlog() || s.flush(&mut shield) == Status::Open);
    }
}

/// How long closing waits, at most, for stream readers to take the lines
/// still waiting for them.
const STREAM_LINGER: Duration = Duration::from_millis(250);

fn closed_error() -> Error {
    Error::new(ErrorCode::InvalidConn, "the connection is closed")
}

impl Hub {
    /// A hub with no handlers and nothing queued.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(State {
                last_seq: 0,
                handlers: Registry::default(),
                queue: Queue::new(DEFAULT_LIMIT),
                limit: DEFAULT_LIMIT,
                streams: Vec::new(),
                notifier: None,
                delivering: None,
                threaded: false,
                kick: None,
                event_thread: None,
                scratch: Scratch::default(),
                closed: false,
            }),
        })
    }

    fn open_state(&self) -> Result<parking_lot::MutexGuard<'_, State>> {
        let state = self.state.lock();
        if state.closed {
            return Err(closed_error());
        }
        Ok(state)
    }

    /// Fails with [`ErrorCode::InvalidConn`] once the hub is closed.
    pub fn check_open(&self) -> Result<()> {
        self.open_state().map(drop)
    }

    /// Assigns the next seq to a validated event, writes it to the streams that
    /// want it (and what other streams had waiting) and queues it for the
    /// handlers that may take it. Never blocks on a consumer. Returns the seq.
    pub fn emit(&self, draft: Draft) -> Result<u64> {
        self.emit_as(draft, true)
    }

    /// [`Hub::emit`] that leaves the event descriptor alone, for a driver
    /// that delivers right after emitting (which sets the descriptor): a
    /// delivery that empties the queue then costs no system call on it.
    pub fn emit_quiet(&self, draft: Draft) -> Result<u64> {
        self.emit_as(draft, false)
    }

    fn emit_as(&self, draft: Draft, notify: bool) -> Result<u64> {
        let mut state = self.open_state()?;
        state.last_seq += 1;
        let seq = state.last_seq;
        let for_handlers = state.handlers.any_may_take(draft.kind());
        let event = (for_handlers || !state.streams.is_empty()).then(|| draft.seal(seq));
        let mut new_backlog = false;
        let mut shield = Shield::new();
        state.streams.retain_mut(|stream| {
            let had_backlog = stream.has_backlog();
            let wanted = event.as_ref().filter(|event| stream.wants(event));
            let status = match wanted {
                Some(event) => stream.offer(event, &mut shield),
                None if had_backlog => stream.flush(&mut shield),
                None => Status::Open,
            };
            new_backlog |= !had_backlog && stream.has_backlog();
            status == Status::Open
        });
        if new_backlog {
            state.kick_event_thread();
        }
        if let (true, Some(event)) = (for_handlers, event) {
            state.queue.push(event);
            if notify {
                state.sync_notifier();
            }
        }
        Ok(seq)
    }

    /// Whether events wait in the handler queue.
    pub fn has_queued(&self) -> bool {
        !self.state.lock().queue.is_empty()
    }

    /// Registers a handler for events emitted from now on.
    pub fn add_handler(&self, filter: Filter, callback: Callback) -> Result<HandlerId> {
        let mut state = self.open_state()?;
        let after_seq = state.last_seq;
        state.handlers.add(filter, callback, after_seq)
    }

    /// Unregisters a handler; once this returns it is never called again. Waits
    /// for a call running on another thread; a call on this thread (removal from
    /// inside the handler) finishes normally. The callback is dropped after its
    /// last call has returned.
    pub fn remove_handler(&self, id: HandlerId) -> Result<()> {
        let entry = {
            let mut state = self.open_state()?;
            let entry = state.handlers.remove(id)?;
            // What no handler takes any more is no work for `deliver`.
            let State { queue, handlers, .. } = &mut *state;
            queue.retain(|event| handlers.any_takes(event));
            state.sync_notifier();
            entry
        };
        retire(std::slice::from_ref(&entry));
        Ok(())
    }

    /// A new stream of the events `filter` matches, from now on: the end the
    /// caller reads.
    pub fn open_stream(&self, filter: Filter, nonblocking: bool) -> Result<OwnedFd> {
        let mut state = self.open_state()?;
        reap(&mut state.streams);
        let (stream, reader) = Stream::open(filter, state.limit, nonblocking)?;
        state.streams.push(stream);
        state.kick_event_thread();
        Ok(reader)
    }

    /// The descriptor that is readable while [`Hub::deliver`] has work.
    pub fn event_fd(&self) -> Result<RawFd> {
        let mut state = self.open_state()?;
        if state.notifier.is_none() {
            state.notifier = Some(Notifier::new()?);
            state.sync_notifier();
        }
        Ok(state.notifier.as_ref().map_or(-1, Notifier::fd))
    }

    /// Runs, on this thread, the handlers for the events queued before the call
    /// and returns how many handler calls it made; first writes what streams
    /// had waiting. Returns 0 at once while the event thread delivers, or while
    /// a delivery is already running on this connection (in a handler, or on
    /// another thread).
    pub fn deliver(&self) -> Result<usize> {
        self.deliver_as(false)
    }

    /// [`Hub::deliver`] for the event thread.
    pub fn deliver_on_thread(&self) -> Result<usize> {
        self.deliver_as(true)
    }

    fn deliver_as(&self, event_thread: bool) -> Result<usize> {
        let Scratch { mut events, mut calls, mut takers };
        {
            let mut state = self.open_state()?;
            if state.threaded != event_thread {
                state.sync_notifier();
                return Ok(0);
            }
            if let Some(kick) = &mut state.kick {
                kick.set(false);
            }
            state.flush_streams();
            if state.delivering.is_some() || state.queue.is_empty() {
                state.sync_notifier();
                return Ok(0);
            }
            Scratch { events, calls, takers } = std::mem::take(&mut state.scratch);
            state.queue.drain_into(&mut events);
            state.sync_notifier();
            for (i, event) in events.iter().enumerate() {
                state.handlers.matching(event, &mut takers);
                calls.extend(takers.drain(..).map(|entry| (i, entry)));
            }
            state.delivering = Some(thread_mark::current());
        }
        let mut done = DeliveryDone { hub: self, scratch: Scratch::default() };
        let made = calls.iter().filter(|(i, entry)| entry.call(&events[*i])).count();
        done.scratch = Scratch { events, calls, takers }.emptied();
        Ok(made)
    }

    /// Whether the calling thread is running a delivery of this hub, that is, is
    /// inside one of its handlers.
    pub fn in_delivery(&self) -> bool {
        self.state.lock().delivering == Some(thread_mark::current())
    }

    /// Hands delivery to the event thread; returns the descriptors it waits on:
    /// the event descriptor, and the one raised when a stream starts waiting
    /// for room.
    pub fn begin_threaded(&self) -> Result<[RawFd; 2]> {
        let wake = self.event_fd()?;
        let kick = Notifier::new()?;
        let kick_fd = kick.fd();
        let mut state = self.open_state()?;
        state.kick = Some(kick);
        state.threaded = true;
        Ok([wake, kick_fd])
    }

    /// Called by the event thread when it starts: marks it as such.
    pub fn enter_event_thread(&self) {
        self.state.lock().event_thread = Some(thread_mark::current());
    }

    /// Hands delivery back to callers of [`Hub::deliver`].
    pub fn end_threaded(&self) {
        let mut state = self.state.lock();
        state.threaded = false;
        state.kick = None;
        state.event_thread = None;
    }

    /// Whether the calling thread is the event thread.
    pub fn on_event_thread(&self) -> bool {
        self.state.lock().event_thread == Some(thread_mark::current())
    }

    /// Appends what to poll the streams for: room where events wait for it, and
    /// a reader's hang-up.
    pub fn stream_pollfds(&self, out: &mut Vec<libc::pollfd>) {
        out.extend(self.state.lock().streams.iter().map(Stream::pollfd));
    }

    /// Changes the limit of the handler queue and of every stream's queue.
    pub fn set_queue_limit(&self, limit: usize) -> Result<()> {
        let mut state = self.open_state()?;
        state.limit = limit;
        state.queue.set_limit(limit);
        state.streams.iter_mut().for_each(|s| s.set_limit(limit));
        Ok(())
    }

    /// Ends the hub: refuses further calls, drops what is queued, ends the
    /// streams (their readers see end of file once they have taken what waits
    /// for them, or [`STREAM_LINGER`] has passed), removes every handler (waiting
    /// for calls on other threads) and drops them, in id order. Refused from
    /// inside one of its own handlers.
    pub fn close(&self) -> Result<()> {
        let (handlers, streams) = {
            let mut state = self.state.lock();
            if state.delivering == Some(thread_mark::current()) {
                return Err(Error::new(
                    ErrorCode::OperationInvalid,
                    "cannot close a connection from inside one of its own handlers",
                ));
            }
            if state.closed {
                return Ok(());
            }
            state.closed = true;
            state.queue = Queue::new(0);
            state.sync_notifier();
            (state.handlers.take_all(), std::mem::take(&mut state.streams))
        };
        let deadline = Instant::now() + STREAM_LINGER;
        streams.into_iter().for_each(|stream| stream.finish(deadline));
        retire(&handlers);
        drop(handlers);
        Ok(())
    }
}

/// Ends a delivery, even one a panicking handler cut short, and gives its
/// emptied vectors back for the next.
struct DeliveryDone<'a> {
    hub: &'a Hub,
    scratch: Scratch,
}

impl Drop for DeliveryDone<'_> {
    fn drop(&mut self) {
        let mut state = self.hub.state.lock();
        state.delivering = None;
        state.scratch = std::mem::take(&mut self.scratch);
    }
}

/// A delivery's working vectors, kept empty between deliveries so that each
/// does not allocate them anew.
#[derive(Default)]
struct Scratch {
    events: Vec<Event>,
    calls: Vec<(usize, Arc<Entry>)>,
    takers: Vec<Arc<Entry>>,
}

impl Scratch {
    /// The most entries a kept vector may have room for: a burst's big
    /// vectors are freed rather than held for good.
    const KEPT: usize = 1024;

    fn emptied(mut self) -> Scratch {
        fn empty<T>(v: &mut Vec<T>) {
            v.clear();
            if v.capacity() > Scratch::KEPT {
                *v = Vec::new();
            }
        }
        empty(&mut self.events);
        empty(&mut self.calls);
        empty(&mut self.takers);
        self
    }
}
