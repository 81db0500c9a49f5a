//! Fuzzes the XPath compiler and evaluator, and the tree scanner, with an
//! expression and an event document per input (see `common.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let _ = common::run(data);
});
