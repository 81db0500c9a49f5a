//! A connection's event hub: assigns seqs, holds the handlers, the handler
//! queue, the streams and the event descriptor, and delivers. One mutex guards
//! it; no user code ever runs under it (stream writes are non-blocking system
//! calls).

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::event::{Draft, Event};
use crate::event_fd::EventFd;
use crate::filter::Filter;
use crate::fork::Origin;
use crate::handlers::{retire, Callback, Entry, HandlerId, Registry};
use crate::poll_set::PollSet;
use crate::queue::{Queue, DEFAULT_LIMIT};
use crate::sigpipe::Shield;
use crate::stream::{reap, Outgoing, Status, Stream};
use crate::thread_mark;

/// The shared state of one connection's events.
pub struct Hub {
    state: Mutex<State>,
    /// The process the hub belongs to: every call checks it before any lock.
    origin: Origin,
    /// The event descriptor's work set, read without the lock.
    work: Arc<PollSet>,
}

struct State {
    last_seq: u64,
    handlers: Registry,
    queue: Queue,
    limit: usize,
    /// Dropped before `event_fd`, whose work set they leave on the way.
    streams: Vec<Stream>,
    event_fd: EventFd,
    /// The thread running a delivery now, if any: a second delivery meanwhile
    /// (from a handler, or another thread) makes no calls, which keeps every
    /// handler's events in seq order.
    delivering: Option<usize>,
    /// Threads running freecbs of removed handlers now.
    retiring: Vec<usize>,
    /// Whether the event thread delivers: callers' deliveries then make no calls.
    threaded: bool,
    scratch: Scratch,
    closed: bool,
}

impl State {
    /// Keeps the event descriptor's queue flag raised exactly while the
    /// handler queue has events that a delivery can take now: not while a
    /// delivery runs, which would take none of them (its end raises it).
    fn sync_notifier(&mut self) {
        let deliverable = !self.queue.is_empty() && self.delivering.is_none();
        self.event_fd.set_queued(deliverable);
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
    /// A hub with no handlers and nothing queued, belonging to this process.
    pub fn new() -> Result<Arc<Hub>> {
        let event_fd = EventFd::new()?;
        let work = event_fd.work().clone();
        Ok(Arc::new(Hub {
            state: Mutex::new(State {
                last_seq: 0,
                handlers: Registry::default(),
                queue: Queue::new(DEFAULT_LIMIT),
                limit: DEFAULT_LIMIT,
                streams: Vec::new(),
                event_fd,
                delivering: None,
                retiring: Vec::new(),
                threaded: false,
                scratch: Scratch::default(),
                closed: false,
            }),
            origin: Origin::here(),
            work,
        }))
    }

    fn open_state(&self) -> Result<parking_lot::MutexGuard<'_, State>> {
        self.origin.check()?;
        let state = self.state.lock();
        if state.closed {
            return Err(closed_error());
        }
        Ok(state)
    }

    /// Fails with [`ErrorCode::InvalidConn`] once the hub is closed, and with
    /// [`ErrorCode::OperationInvalid`] in a process other than its own.
    pub fn check_open(&self) -> Result<()> {
        self.open_state().map(drop)
    }

    /// Fails, without taking any lock, in a process other than the hub's own.
    pub fn check_origin(&self) -> Result<()> {
        self.origin.check()
    }

    /// Whether the calling process is the hub's own.
    pub fn is_home(&self) -> bool {
        self.origin.is_here()
    }

    /// Assigns the next seq to a validated event, writes it to the streams that
    /// want it (and what other streams had waiting) and queues it for the
    /// handlers that may take it. Never blocks on a consumer. Returns the seq.
    pub fn emit(&self, draft: Draft) -> Result<u64> {
        let mut state = self.open_state()?;
        state.last_seq += 1;
        let seq = state.last_seq;
        let for_handlers = state.handlers.any_may_take(draft.kind());
        if !for_handlers && state.streams.is_empty() {
            return Ok(seq);
        }
        let mut out = Outgoing::new(draft, seq);
        if !state.streams.is_empty() {
            let mut shield = Shield::new();
            state.streams.retain_mut(|stream| {
                let status = if stream.wants(&mut out) {
                    stream.offer(&mut out, &mut shield)
                } else if stream.has_backlog() {
                    stream.flush(&mut shield)
                } else {
                    Status::Open
                };
                status == Status::Open
            });
        }
        if for_handlers {
            state.queue.push(out.into_event());
            state.sync_notifier();
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
        let _retiring = Retiring::begin(self);
        retire(std::slice::from_ref(&entry));
        Ok(())
    }

    /// A new stream of the events `filter` matches, from now on: the end the
    /// caller reads.
    pub fn open_stream(&self, filter: Filter, nonblocking: bool) -> Result<OwnedFd> {
        let mut state = self.open_state()?;
        reap(&mut state.streams);
        let (stream, reader) = Stream::open(filter, state.limit, nonblocking, &self.work)?;
        state.streams.push(stream);
        Ok(reader)
    }

    /// The descriptor that is readable while a delivery round has work (see
    /// [`EventFd`]).
    pub fn event_fd(&self) -> Result<RawFd> {
        Ok(self.open_state()?.event_fd.fd())
    }

    /// The event descriptor's work set, where the event source watches its
    /// descriptors and the event thread waits.
    pub fn work(&self) -> &Arc<PollSet> {
        &self.work
    }

    /// Says, for good, that the event source is gone: the event descriptor
    /// stays readable for callers (not for the event thread), through
    /// `readable`, a descriptor of the source's readable from now on.
    pub fn set_gone(&self, readable: RawFd) -> Result<()> {
        self.state.lock().event_fd.set_gone(readable)
    }

    /// One delivery round on this thread: `pump` (the event source's reading,
    /// which emits), then the handlers of the events queued before the round,
    /// in seq order; returns how many handler calls it made. Streams' waiting
    /// lines are written first. With `on_thread`, the event thread's round,
    /// else a caller's: a round of the side that does not deliver now (callers
    /// while the event thread runs), or while a delivery is running already on
    /// this connection (in a handler, or on another thread), pumps and writes
    /// the streams but makes no calls.
    pub fn deliver(&self, on_thread: bool, pump: &dyn Fn()) -> Result<usize> {
        {
            let mut state = self.open_state()?;
            if state.threaded != on_thread || state.delivering.is_some() {
                drop(state);
                pump();
                self.state.lock().flush_streams();
                return Ok(0);
            }
            // Claimed before pumping: what the pump emits raises no flag that
            // this very round would lower again.
            state.delivering = Some(thread_mark::current());
            state.sync_notifier();
        }
        let mut done = DeliveryDone { hub: self, scratch: Scratch::default() };
        pump();
        let Scratch { mut events, mut calls, mut takers };
        {
            let mut state = self.state.lock();
            state.flush_streams();
            Scratch { events, calls, takers } = std::mem::take(&mut state.scratch);
            state.queue.drain_into(&mut events);
            for (i, event) in events.iter().enumerate() {
                state.handlers.matching(event, &mut takers);
                calls.extend(takers.drain(..).map(|entry| (i, entry)));
            }
        }
        let made = calls.iter().filter(|(i, entry)| entry.call(&events[*i])).count();
        done.scratch = Scratch { events, calls, takers }.emptied();
        Ok(made)
    }

    /// Whether the calling thread is inside one of this hub's handlers, or a
    /// freecb the hub runs.
    pub fn in_callback(&self) -> bool {
        let me = thread_mark::current();
        let state = self.state.lock();
        state.delivering == Some(me) || state.retiring.contains(&me)
    }

    /// Says who delivers: the event thread (`true`) or callers of [`Hub::deliver`].
    pub fn set_threaded(&self, threaded: bool) {
        let mut state = self.state.lock();
        state.threaded = threaded;
        state.sync_notifier();
    }

    /// Changes the limit of the handler queue and of every stream's queue
    /// (at least 1).
    pub fn set_queue_limit(&self, limit: usize) -> Result<()> {
        if limit == 0 {
            return Err(Error::new(ErrorCode::InvalidArg, "the queue limit must be at least 1"));
        }
        let mut state = self.open_state()?;
        state.limit = limit;
        state.queue.set_limit(limit);
        state.streams.iter_mut().for_each(|s| s.set_limit(limit));
        Ok(())
    }

    /// Ends the hub: refuses further calls, drops what is queued, ends the
    /// streams (their readers see end of file once they have taken what waits
    /// for them, or [`STREAM_LINGER`] has passed), removes every handler (waiting
    /// for calls on other threads) and drops them, in id order. Closing twice
    /// is harmless.
    pub fn close(&self) {
        let (handlers, streams) = {
            let mut state = self.state.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            state.queue = Queue::new(0);
            state.sync_notifier();
            (state.handlers.take_all(), std::mem::take(&mut state.streams))
        };
        let deadline = Instant::now() + STREAM_LINGER;
        streams.into_iter().for_each(|stream| stream.finish(deadline));
        let _retiring = Retiring::begin(self);
        retire(&handlers);
        drop(handlers);
    }

    /// The descriptors the hub owns, for a forked child to close its copies.
    /// Reads the state without its lock, which a parent thread may have held
    /// at the fork and which nobody in the child will release.
    pub fn descriptors_after_fork(&self, out: &mut Vec<RawFd>) {
        // SAFETY: in a forked child only the calling thread exists; the state
        // is as it was at the fork, and is only read. A vector a parent thread
        // was changing at that moment shows a length it had (retain_mut shows
        // 0): its descriptors then stay open, which only costs the child them.
        let state = unsafe { &*self.state.data_ptr() };
        state.event_fd.descriptors(out);
        out.extend(state.streams.iter().map(Stream::fd));
    }
}

/// Marks the calling thread as running freecbs of the hub's removed handlers,
/// for as long as it lives.
struct Retiring<'a> {
    hub: &'a Hub,
}

impl<'a> Retiring<'a> {
    fn begin(hub: &'a Hub) -> Retiring<'a> {
        hub.state.lock().retiring.push(thread_mark::current());
        Retiring { hub }
    }
}

impl Drop for Retiring<'_> {
    fn drop(&mut self) {
        let me = thread_mark::current();
        let mut state = self.hub.state.lock();
        if let Some(i) = state.retiring.iter().position(|&t| t == me) {
            state.retiring.swap_remove(i);
        }
    }
}

/// Ends a delivery, even one a panicking handler or pump cut short, and gives
/// its emptied vectors back for the next.
struct DeliveryDone<'a> {
    hub: &'a Hub,
    scratch: Scratch,
}

impl Drop for DeliveryDone<'_> {
    fn drop(&mut self) {
        let mut state = self.hub.state.lock();
        state.delivering = None;
        state.scratch = std::mem::take(&mut self.scratch);
        state.sync_notifier();
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
