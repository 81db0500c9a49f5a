//! Fuzzes SASL authentication with a daemon's replies
//! (tests/common/fake_session.rs, `run_sasl`): a fake daemon that wants
//! SASL, offers PLAIN and answers AUTH_SASL_START and each AUTH_SASL_STEP
//! with the input as the reply's body. The open must fail with an error or
//! succeed, within its bounds, never panic or hang. Seeds in fuzz/corpus/sasl.
//! `cargo fuzz run sasl`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/fake_session.rs"]
mod fake_session;

fuzz_target!(|data: &[u8]| {
    fake_session::run_sasl(data);
});
