//! The last lines of a `cargo test` run: every group of tests that was skipped
//! for want of an outside tool (see tests/common/tools.rs), and how many events
//! the tests validated against docs/events.rng (tests/common/schema.rs). Its
//! name sorts last, and cargo runs test binaries in that order.

mod common;

#[test]
fn list_every_skipped_group() {
    common::tools::summarize();
}
