//! The optional event thread: one library thread per connection that sleeps in
//! poll(2) on the connection's event descriptor, on a libvirt daemon's socket
//! while it works, on its streams (for room where events wait, and for readers
//! hanging up) and on a descriptor raised when a stream starts waiting, and
//! reads, delivers or writes as soon as there is work. No timer, no busy waiting.

use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::driver::remote::RemoteDriver;
use crate::error::{Error, ErrorCode, Result};
use crate::hub::Hub;
use crate::notify::Notifier;

/// A running event thread and the means to stop it.
pub struct EventThread {
    stop: Notifier,
    handle: JoinHandle<()>,
}

impl EventThread {
    /// Starts the thread; from now on it delivers, and callers' deliveries make
    /// no calls.
    pub fn start(hub: &Arc<Hub>, remote: Option<Arc<RemoteDriver>>) -> Result<EventThread> {
        let stop = Notifier::new()?;
        let stop_fd = stop.fd();
        let wake_fds = hub.begin_threaded()?;
        let thread_hub = hub.clone();
        let handle = thread::Builder::new()
            .name("virevent-events".into())
            .spawn(move || run(&thread_hub, remote.as_deref(), wake_fds, stop_fd))
            .map_err(|e| {
                hub.end_threaded();
                Error::new(ErrorCode::SystemError, format!("cannot start the event thread: {e}"))
            })?;
        Ok(EventThread { stop, handle })
    }

    /// Stops the thread, waiting for the handler it runs, if any, to return;
    /// delivery goes back to callers of `deliver`.
    pub fn stop(mut self, hub: &Hub) {
        self.stop.set(true);
        let _ = self.handle.join();
        hub.end_threaded();
    }
}

fn run(hub: &Hub, remote: Option<&RemoteDriver>, wake: [RawFd; 2], stop: RawFd) {
    hub.enter_event_thread();
    let mut fds = Vec::new();
    loop {
        fds.clear();
        fds.push(libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 });
        fds.extend(wake.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }));
        if let Some(socket) = remote.and_then(RemoteDriver::live_socket) {
            fds.push(libc::pollfd { fd: socket, events: libc::POLLIN, revents: 0 });
        }
        hub.stream_pollfds(&mut fds);
        // SAFETY: `fds` holds `fds.len()` pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            continue; // EINTR; poll has no other transient failure worth more
        }
        if fds[0].revents != 0 {
            return;
        }
        if let Some(remote) = remote {
            remote.pump();
        }
        // A panicking Rust handler must not end the thread (C handlers cannot).
        let _ = catch_unwind(AssertUnwindSafe(|| hub.deliver_on_thread()));
    }
}
