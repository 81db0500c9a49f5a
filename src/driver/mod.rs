//! Event sources behind a connection, chosen by its URI.

pub mod remote;
pub mod test;
