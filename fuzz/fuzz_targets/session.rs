//! Fuzzes a whole remote connection with a daemon's bytes after a successful
//! open (tests/common/fake_session.rs): the link with its keepalive, the
//! dispatch by procedure and callback ID, the state record, the hub and the
//! handler, until connection-closed. Seeds in fuzz/corpus/session: packets a
//! real libvirtd 9.0 sent (tests/daemon_fuzz_seeds.rs says how they were
//! taken) and one packet of each body layout.
//! `cargo fuzz run session`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/fake_session.rs"]
mod fake_session;

fuzz_target!(|data: &[u8]| {
    fake_session::run(data);
});
