//! The last lines of the relay's tests: what they skipped for want of a tool
//! (tests/common/tools.rs), as the library's tests/zz_skips.rs says of its own.

#[path = "../../tests/common/mod.rs"]
mod common;

#[test]
fn list_every_skipped_group() {
    common::tools::summarize();
}
