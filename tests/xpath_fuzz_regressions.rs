//! Replays the inputs the `xpath` fuzz target found troublesome (the files of
//! fuzz/regressions/; the seed corpus fuzz/corpus/xpath/seed-* when there are
//! none) through the very logic of the fuzz target, which this test shares
//! with it (fuzz/fuzz_targets/common.rs). Each must finish without panicking,
//! and within a generous time.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[path = "../fuzz/fuzz_targets/common.rs"]
mod common;

/// How long one input may take: what the fuzzer allows is a few milliseconds in
/// a release build; this is a debug build, on a busy machine perhaps.
const LIMIT: Duration = Duration::from_secs(1);

/// The fuzzer runs inputs on the main thread: give each replay as much stack.
const STACK: usize = 8 << 20;

fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(&keep))
        .collect();
    files.sort();
    files
}

/// The regressions, or the seeds when there are none.
fn inputs() -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let regressions = files(&fuzz.join("regressions"), |name| !name.starts_with('.'));
    if !regressions.is_empty() {
        return regressions;
    }
    files(&fuzz.join("corpus").join("xpath"), |name| name.starts_with("seed-"))
}

/// A text for a failure message: quoted, and cut short when long.
fn shown(text: &str) -> String {
    const MOST: usize = 160;
    match text.char_indices().nth(MOST) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes in all)", &text[..cut], text.len()),
    }
}

/// Runs one input on its own thread: Err with what went wrong.
fn replay(data: Vec<u8>) -> Result<Duration, String> {
    let (done, outcome) = mpsc::channel();
    let started = Instant::now();
    thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| common::run(&data));
            let _ = done.send(result.map_err(|panic| {
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into())
            }));
        })
        .map_err(|e| format!("could not start a thread: {e}"))?;
    match outcome.recv_timeout(LIMIT) {
        Ok(Ok(_)) if started.elapsed() <= LIMIT => Ok(started.elapsed()),
        Ok(Ok(_)) => Err(format!("took {:?}, more than {LIMIT:?}", started.elapsed())),
        Ok(Err(message)) => Err(format!("panicked: {message}")),
        // A thread that never ends is left behind; the test process ends anyway.
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("still running after {LIMIT:?}")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the thread ended without an outcome".into()),
    }
}

#[test]
fn fuzz_regressions_replay_without_panic_or_hang() {
    let inputs = inputs();
    assert!(!inputs.is_empty(), "neither fuzz/regressions/ nor the seed corpus has an input");
    let mut failures = Vec::new();
    for path in &inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (expr, doc) = common::split(&data);
        match replay(data) {
            Ok(took) => eprintln!("ok   {} ({took:?})", path.display()),
            Err(what) => {
                eprintln!("FAIL {}: {what}", path.display());
                failures.push(format!(
                    "{}: {what}\n  expression: {}\n  document: {}",
                    path.display(),
                    shown(&expr),
                    shown(&doc)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} inputs failed:\n{}", failures.len(), inputs.len(), failures.join("\n"));
}

/// The seeds are real expressions and events: they all compile, and the
/// shared logic runs them (this keeps the seed corpus meaningful).
#[test]
fn seeds_compile() {
    let seeds = files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/xpath"), |n| n.starts_with("seed-"));
    assert!(seeds.len() >= 20, "only {} seeds", seeds.len());
    for path in seeds {
        let data = std::fs::read(&path).unwrap();
        assert!(common::run(&data).is_some(), "{}: the expression does not compile", path.display());
    }
}
