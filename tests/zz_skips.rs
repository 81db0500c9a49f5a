//! The last lines of a `cargo test` run: every group of tests that was skipped
//! for want of an outside tool (see tests/common/tools.rs), and how many events
//! the tests validated against docs/events.rng (tests/common/schema.rs). Its
//! name sorts last, and cargo runs test binaries in that order.

use std::io::Write;

mod common;

#[test]
fn list_every_skipped_group() {
    let dir = common::tools::skips_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let texts: Vec<String> = entries.flatten().filter_map(|entry| std::fs::read_to_string(entry.path()).ok()).collect();
    let mut lines: Vec<String> = texts
        .iter()
        .flat_map(|text| text.lines().filter(|l| l.starts_with("SKIPPED ")).map(str::to_string))
        .collect();
    lines.sort();
    lines.dedup();
    let _ = std::fs::remove_dir_all(&dir);
    let groups: Vec<&str> =
        lines.iter().filter_map(|l| l.strip_prefix("SKIPPED ")).map(|l| l.split(": needs").next().unwrap_or(l)).collect();
    let mut summary = format!("SKIPPED {} group(s) for want of a tool: {}\n", groups.len(), groups.join("; "));
    // "VALIDATED N WHAT" (tests/common/schema.rs): every batch counts.
    let (mut events, mut batches) = (0, 0);
    for text in &texts {
        for n in text.lines().filter_map(|l| l.strip_prefix("VALIDATED ")?.split(' ').next()?.parse::<usize>().ok()) {
            events += n;
            batches += 1;
        }
    }
    if batches > 0 {
        summary.push_str(&format!("VALIDATED {events} event(s) in {batches} batch(es) against docs/events.rng\n"));
    }
    // Straight to the terminal: the test harness captures print!.
    let _ = std::io::stderr().write_all(summary.as_bytes());
}
