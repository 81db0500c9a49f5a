//! Replays the `resync` and `session` fuzz targets's seeds and findings (a whole
//! connection fed a daemon's bytes), and the `daemon` fuzz target's seeds (fuzz/corpus/daemon/seed-*, one
//! packet of each body layout) through the very function it fuzzes: each
//! seed makes its events, and no prefix of one (a body cut anywhere) panics.

use std::path::Path;

#[path = "common/fake_session.rs"]
mod fake_session;

/// The inputs of fuzz/corpus/TARGET and the findings fuzz/regressions/TARGET-*, sorted.
fn corpus_and_findings(target: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs: Vec<_> = std::fs::read_dir(root.join("corpus").join(target)).unwrap().map(|e| e.unwrap().path()).collect();
    let finding = format!("{target}-");
    inputs.extend(
        std::fs::read_dir(root.join("regressions"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&finding)),
    );
    inputs.sort();
    inputs
}

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

/// The `session` fuzz target's seeds (fuzz/corpus/session: seed-*, one
/// packet of each body layout; real-*, what a real libvirtd 9.0 sent, taken
/// by fuzz/capture_session_seeds.py) and findings (fuzz/regressions/session-*)
/// through the very function it fuzzes, a whole connection after a real open:
/// none panics or hangs, and each seed makes its events, then
/// connection-closed (eof).
#[test]
fn session_seeds_and_findings_end_in_connection_closed() {
    let inputs = corpus_and_findings("session");
    assert!(inputs.len() >= 10, "{inputs:?}");
    for input in inputs {
        let data = std::fs::read(&input).unwrap();
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let events = fake_session::run(&data);
        if name == "seed-closed" {
            // The daemon's connection-close callback: its reason.
            assert_eq!(events.len(), 1, "{name}: {events:?}");
            assert!(!events[0].contains("<reason>eof</reason>"), "{name}: {events:?}");
            continue;
        }
        if name == "real-all" {
            // Every message a real libvirtd sent, each one event.
            assert_eq!(events.len(), 16, "{name}: {events:?}");
        }
        if name.starts_with("seed-") || name.starts_with("real-") {
            let types: Vec<_> = events.iter().map(|e| e.split('"').nth(1).unwrap_or("")).collect();
            assert!(types.len() >= 2 && types.last() == Some(&"connection-closed"), "{name}: {events:?}");
            assert!(events.last().unwrap().contains("<reason>eof</reason>"), "{name}: {events:?}");
        }
    }
}

/// The `sasl` fuzz target's seeds (fuzz/corpus/sasl/seed-*: reply bodies for
/// AUTH_SASL_START and every STEP) and findings (fuzz/regressions/sasl-*),
/// whole and cut anywhere, through the very function it fuzzes: a body that
/// says complete at once opens the connection; any other fails the open with
/// a clear error, in time, and nothing panics.
#[test]
fn sasl_seeds_and_findings_open_or_fail_cleanly() {
    let inputs = corpus_and_findings("sasl");
    assert!(inputs.len() >= 6, "{inputs:?}");
    for input in inputs {
        let data = std::fs::read(&input).unwrap();
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let error = fake_session::run_sasl(&data);
        if !cfg!(feature = "sasl") || !Path::new("/usr/lib/x86_64-linux-gnu/pkgconfig/libsasl2.pc").exists() {
            // A build without SASL refuses every such daemon alike.
            assert_eq!(error.map(|e| e.code), Some(virevent::ErrorCode::NoSupport), "{name}");
            continue;
        }
        let opens = name.starts_with("seed-complete");
        assert_eq!(error.is_none(), opens, "{name}: {error:?}");
        if let Some(e) = error {
            assert!(matches!(e.code, virevent::ErrorCode::AuthFailed | virevent::ErrorCode::Rpc), "{name}: {e:?}");
        }
        for cut in (0..data.len()).step_by(4) {
            let error = fake_session::run_sasl(&data[..cut]);
            assert!(error.is_some(), "{name} cut at {cut} opened");
        }
    }
}

/// The `resync` fuzz target's seeds (fuzz/corpus/resync/seed-*: a
/// reconnection's listing replies, parts split by `SPLT`, then events) and
/// findings (fuzz/regressions/resync-*), whole and cut anywhere, through the
/// very function it fuzzes: nothing panics or hangs; a good seed gives the
/// exact resync, a bad listing fails the attempt and nothing is made of it.
#[test]
fn resync_seeds_and_findings_restore_or_fail_cleanly() {
    let inputs = corpus_and_findings("resync");
    assert!(inputs.len() >= 4, "{inputs:?}");
    for input in inputs {
        let data = std::fs::read(&input).unwrap();
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let events = fake_session::run_resync(&data);
        let want: &[&str] = match name.as_str() {
            "seed-restore" => &[
                "connection-lost",
                "other nostate -> paused (defined-resync)",
                "test running -> paused (resync)",
                "network-lifecycle defined (resync)",
                "network-lifecycle started (resync)",
                "connection-restored",
                "test paused -> running (resumed-unpaused)",
                "connection-lost",
            ],
            "seed-same" => &["connection-lost", "connection-restored", "connection-lost"],
            "seed-gone" => &[
                "connection-lost",
                "test running -> shutoff (undefined-resync)",
                "storage-pool-lifecycle defined (resync)",
                "connection-restored",
                "connection-lost",
            ],
            // A listing that does not decode fails the attempt: nothing more.
            "seed-bad-list" => &["connection-lost"],
            _ => &[],
        };
        if !want.is_empty() {
            let summary: Vec<String> = events
                .iter()
                .map(|e| {
                    let kind = e.split('"').nth(1).unwrap_or("");
                    let tag = |t: &str| e.split_once(&format!("<{t}>")).map_or("", |(_, r)| r.split_once('<').unwrap().0);
                    match kind {
                        "domain-state-transition" => format!("{} {} -> {} ({})", tag("domain-name"), tag("old-state"), tag("new-state"), tag("reason")),
                        "network-lifecycle" | "storage-pool-lifecycle" => format!("{kind} {} ({})", tag("lifecycle"), tag("reason")),
                        _ => kind.to_string(),
                    }
                })
                .collect();
            assert_eq!(summary, want, "{name}");
        }
        for cut in (0..data.len()).step_by(3) {
            fake_session::run_resync(&data[..cut]);
        }
    }
}
