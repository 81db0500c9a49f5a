//! What virevent-relay (daemons' events into NATS JetStream) and virevent-sub
//! (the events read back from JetStream) share: the subject grammar, the
//! headers each message carries, and how their command lines read numbers.

pub mod cli;
pub mod headers;
pub mod outbox;
pub mod spool;
pub mod subject;
