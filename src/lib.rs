//! virevent: the events API proposed for libvirt in September 2008.
//!
//! A [`Connection`] holds handlers with filters and one queue of events; events are
//! emitted as XML (or produced by a driver), validated once, given a per-connection
//! `seq`, and delivered to the handlers whose filters match. The C ABI in `ffi` is
//! a thin layer over this safe API.

mod auth_conf;
pub mod connection;
pub mod credentials;
pub(crate) mod domain;
pub(crate) mod driver;
pub mod error;
pub mod event;
mod event_fd;
mod event_thread;
pub mod filter;
mod fnv;
pub mod format;
mod fork;
pub(crate) mod handlers;
pub(crate) mod hub;
mod notify;
mod poll_set;
pub(crate) mod queue;
pub(crate) mod rpc;
mod sigpipe;
mod stream;
pub mod terminal;
mod thread_mark;
mod timer;
pub mod words;
pub mod xpath;

pub mod ffi;

pub use connection::{Connection, Domain};
pub use credentials::{Authenticator, Credential, CredentialType, Secret};
pub use error::{Error, ErrorCode, Result};
pub use event::Event;
pub use filter::Filter;
pub use handlers::HandlerId;

#[doc(hidden)]
pub use driver::remote::{daemon_bytes_events, fuzz_daemon_bytes};
