//! Replays the `daemon` fuzz target's seeds (fuzz/corpus/daemon/seed-*, one
//! packet of each body layout) through the very function it fuzzes: each
//! seed makes its events, and no prefix of one (a body cut anywhere) panics.

use std::path::Path;

#[test]
fn seeds_make_their_events_and_no_cut_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/daemon");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    seeds.sort();
    assert!(seeds.len() >= 10, "{seeds:?}");
    for seed in seeds {
        let data = std::fs::read(&seed).unwrap();
        let name = seed.file_name().unwrap().to_string_lossy().into_owned();
        // The daemon's connection-close message makes no event: it ends the link.
        let want = match name.as_str() {
            "seed-closed" => 0,
            "seed-lifecycle" => 2,
            _ => 1,
        };
        assert_eq!(virevent::fuzz_daemon_bytes(&data), want, "{name}");
        for cut in 0..data.len() {
            // Only the lifecycle seed holds two packets (of one size): a cut
            // in the second leaves the first whole.
            let whole = usize::from(name == "seed-lifecycle" && cut >= data.len() / 2);
            assert_eq!(virevent::fuzz_daemon_bytes(&data[..cut]), whole, "{name} cut at {cut}");
        }
    }
}
