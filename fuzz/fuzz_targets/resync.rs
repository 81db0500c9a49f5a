//! Fuzzes a reconnection (tests/common/fake_session.rs `run_resync`): the
//! daemon's answers to the listings a restored link makes (domains, their
//! states, networks, pools), compared with the record kept, and the events
//! after them. Seeds in fuzz/corpus/resync: parts split by `SPLT`.
//! `cargo fuzz run resync`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/fake_session.rs"]
mod fake_session;

fuzz_target!(|data: &[u8]| {
    fake_session::run_resync(data);
});
