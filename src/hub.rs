//! A connection's event hub: assigns seqs, holds the handlers and the handler
//! queue, and delivers. One mutex guards it; no user code ever runs under it.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::event::Draft;
use crate::filter::Filter;
use crate::handlers::{retire, Callback, Entry, HandlerId, Registry};
use crate::queue::{Queue, DEFAULT_LIMIT};
use crate::thread_mark;

/// The shared state of one connection's events.
pub struct Hub {
    state: Mutex<State>,
}

struct State {
    last_seq: u64,
    handlers: Registry,
    queue: Queue,
    /// The thread running a delivery now, if any: a second delivery meanwhile
    /// (from a handler, or another thread) makes no calls, which keeps every
    /// handler's events in seq order.
    delivering: Option<usize>,
    closed: bool,
}

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
                delivering: None,
                closed: false,
            }),
        })
    }

    /// Assigns the next seq to a validated event and queues it for the handlers
    /// that may take it. Never blocks on a consumer. Returns the seq.
    pub fn emit(&self, draft: Draft) -> Result<u64> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(closed_error());
        }
        state.last_seq += 1;
        let seq = state.last_seq;
        if state.handlers.any_may_take(draft.kind()) {
            let event = draft.seal(seq);
            state.queue.push(event);
        }
        Ok(seq)
    }

    /// Fails with [`ErrorCode::InvalidConn`] once the hub is closed.
    pub fn check_open(&self) -> Result<()> {
        if self.state.lock().closed {
            return Err(closed_error());
        }
        Ok(())
    }

    /// Registers a handler for events emitted from now on.
    pub fn add_handler(&self, filter: Filter, callback: Callback) -> Result<HandlerId> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(closed_error());
        }
        let after_seq = state.last_seq;
        state.handlers.add(filter, callback, after_seq)
    }

    /// Unregisters a handler; once this returns it is never called again. Waits
    /// for a call running on another thread; a call on this thread (removal from
    /// inside the handler) finishes normally. The callback is dropped after its
    /// last call has returned.
    pub fn remove_handler(&self, id: HandlerId) -> Result<()> {
        let entry = self.state.lock().handlers.remove(id)?;
        retire(std::slice::from_ref(&entry));
        Ok(())
    }

    /// Runs, on this thread, the handlers for the events queued before the call
    /// and returns how many handler calls it made. Returns 0 at once if a delivery
    /// is already running on this connection (in a handler, or another thread).
    pub fn deliver(&self) -> Result<usize> {
        let mut events = Vec::new();
        let mut calls: Vec<(usize, Arc<Entry>)> = Vec::new();
        {
            let mut state = self.state.lock();
            if state.closed {
                return Err(closed_error());
            }
            if state.delivering.is_some() || state.queue.is_empty() {
                return Ok(0);
            }
            state.queue.drain_into(&mut events);
            let mut takers = Vec::new();
            for (i, event) in events.iter().enumerate() {
                state.handlers.matching(event, &mut takers);
                calls.extend(takers.drain(..).map(|entry| (i, entry)));
            }
            state.delivering = Some(thread_mark::current());
        }
        let _done = DeliveryDone(self);
        Ok(calls.iter().filter(|(i, entry)| entry.call(&events[*i])).count())
    }

    /// Whether the calling thread is running a delivery of this hub, that is, is
    /// inside one of its handlers.
    pub fn in_delivery(&self) -> bool {
        self.state.lock().delivering == Some(thread_mark::current())
    }

    /// Changes the handler queue's limit.
    pub fn set_queue_limit(&self, limit: usize) {
        self.state.lock().queue.set_limit(limit);
    }

    /// Ends the hub: refuses further calls, drops what is queued, removes every
    /// handler (waiting for calls on other threads) and drops them, in id order.
    /// Refused from inside one of its own handlers.
    pub fn close(&self) -> Result<()> {
        let handlers = {
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
            state.handlers.take_all()
        };
        retire(&handlers);
        drop(handlers);
        Ok(())
    }
}

/// Ends a delivery, even one a panicking handler cut short.
struct DeliveryDone<'a>(&'a Hub);

impl Drop for DeliveryDone<'_> {
    fn drop(&mut self) {
        self.0.state.lock().delivering = None;
    }
}
