//! Fuzzes what a connection does with a daemon's bytes after the open:
//! framing, then every event message decoded by its kind into an event that
//! must be its own canonical form (`virevent::fuzz_daemon_bytes`). Seeds in
//! fuzz/corpus/daemon: one packet of each body layout.
//! `cargo fuzz run daemon`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    virevent::fuzz_daemon_bytes(data);
});
