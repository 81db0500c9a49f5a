//! docs/events.rng against the events the tests receive: each event the
//! library made is validated with `xmllint --relaxng`, and one that fails, or
//! is of a type the library is not known to produce, fails the test. The
//! events a C program emits itself (`virConnectEmitEvent`, any type and
//! content) are its own: tests/c/seen_log.h tells them apart, and they are
//! counted and left alone.
//!
//! One xmllint run takes a whole batch: the lines go into one document,
//! `<events>` and a line per event, checked by a grammar that includes
//! docs/events.rng with its start replaced by that wrapper. xmllint names the
//! line of each error, which is the event's. Without xmllint (a bare machine)
//! the check is skipped with the tools rule's SKIPPED line.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::root;
use super::tools::{self, XMLLINT};

/// The types of the kinds table (src/driver/remote/kinds.rs): the third
/// argument of each `kind(` row.
pub fn table_types() -> Vec<String> {
    let source = std::fs::read_to_string(root().join("src/driver/remote/kinds.rs")).unwrap();
    let types: Vec<String> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("kind("))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_string)
        .collect();
    assert_eq!(types.len(), 36, "{types:?}");
    types
}

/// The library's own types, beside the kinds table's (the embedded test
/// driver's events are `domain-state-transition`, one of the table's).
pub const OWN_TYPES: [&str; 4] = ["connection-closed", "connection-lost", "connection-restored", "events-lost"];

/// Every type the library produces.
pub fn library_types() -> Vec<String> {
    let mut types = table_types();
    types.extend(OWN_TYPES.map(str::to_string));
    types
}

/// The `type` of an event line (its root's first attribute, as the canonical
/// form writes it).
pub fn type_of(line: &str) -> Option<&str> {
    line.strip_prefix("<event type=\"")?.split('"').next()
}

/// What [`validate_log`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Events the library made, each valid.
    pub validated: usize,
    /// Events the program emitted itself, left alone.
    pub own: usize,
}

/// Whether xmllint is there: asked once per test binary, so that a bare
/// machine gets one SKIPPED line for all its batches.
fn xmllint_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| tools::needs("validating the events tests receive against docs/events.rng", &[XMLLINT]))
}

/// Validates `lines`, events the library made, against docs/events.rng in
/// one xmllint run; panics naming each line that fails, and any line that is
/// not an event of a type the library produces (`what` names them). Returns
/// how many there were; `None` without xmllint (see [`xmllint_present`]).
pub fn validate<S: AsRef<str>>(what: &str, lines: &[S]) -> Option<usize> {
    if !xmllint_present() {
        return None;
    }
    let types = library_types();
    let lines: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
    for line in &lines {
        let known = type_of(line).is_some_and(|t| types.iter().any(|k| k == t));
        assert!(known, "{what}: an event of a type the library is not known to produce (nor docs/events.rng to define): {line}");
    }
    if !lines.is_empty() {
        check(what, &lines);
    }
    tools::note(&format!("VALIDATED {} {what}", lines.len()));
    Some(lines.len())
}

/// [`validate`] of what a C program received, as tests/c/seen_log.h logs it:
/// records `R PID CONN XML` of the events it received, `E PID CONN SEQ` of
/// those it emitted itself, and `O PID CONN -` of each connection opened. A
/// received event whose process, connection and seq are those of an emitted
/// one is the program's own, whatever its type; a connection is its address
/// since the last `O` of it (an address comes back once freed). A missing log
/// has no records.
pub fn validate_log(what: &str, path: &Path) -> Option<Checked> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    // Each record as its kind, its connection (process, address and how many
    // opens of that address came before) and the rest.
    let mut opens: HashMap<&str, usize> = HashMap::new();
    let mut records = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(kind), Some(pid), Some(conn), Some(rest)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            panic!("{}: not a record of tests/c/seen_log.h: {line:?}", path.display())
        };
        // "PID CONN", as one key.
        let start = kind.len() + 1;
        let address = &line[start..start + pid.len() + 1 + conn.len()];
        match kind {
            "O" => *opens.entry(address).or_default() += 1,
            "R" | "E" => records.push((kind, (address, opens.get(address).copied().unwrap_or(0)), rest)),
            _ => panic!("{}: not a record of tests/c/seen_log.h: {line:?}", path.display()),
        }
    }
    let emitted: HashSet<((&str, usize), &str)> = records.iter().filter(|r| r.0 == "E").map(|r| (r.1, r.2)).collect();
    let mut own = 0;
    let mut received = Vec::new();
    for &(_, conn, xml) in records.iter().filter(|r| r.0 == "R") {
        let seq = xml.split_once(" seq=\"").and_then(|(_, rest)| rest.split('"').next()).unwrap_or("");
        if emitted.contains(&(conn, seq)) {
            own += 1;
        } else {
            received.push(xml);
        }
    }
    let validated = validate(what, &received)?;
    Some(Checked { validated, own })
}

/// Where one batch is checked: a new folder under the test's temporary folder.
fn batch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("schema-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Validates `lines`, each an event of a type the schema defines; panics
/// naming those that fail.
fn check(what: &str, lines: &[&str]) {
    if let Err(failure) = xmllint(lines) {
        let shown: Vec<String> = failure.lines.iter().take(10).map(|&i| format!("  {}", lines[i])).collect();
        panic!(
            "{what}: {} of {} events fail docs/events.rng (kept in {}):\n{}\nxmllint says:\n{}",
            failure.lines.len(),
            lines.len(),
            failure.dir.display(),
            shown.join("\n"),
            failure.messages.lines().take(30).collect::<Vec<_>>().join("\n")
        );
    }
}

/// Why a batch failed.
#[derive(Debug)]
pub struct Failure {
    /// The indexes of the lines xmllint names (the first bad one at least:
    /// after an error it may not go on).
    pub lines: Vec<usize>,
    /// What xmllint said.
    pub messages: String,
    /// The batch's folder, kept: its wrapper grammar and document.
    pub dir: PathBuf,
}

/// Runs xmllint on `lines` as one batch (needs xmllint: see [`validate`]).
pub fn xmllint(lines: &[&str]) -> Result<(), Failure> {
    let dir = batch_dir();
    let wrapper = dir.join("wrapper.rng");
    std::fs::write(
        &wrapper,
        format!(
            "<grammar xmlns=\"http://relaxng.org/ns/structure/1.0\">\n\
             <include href=\"{}\"><start><element name=\"events\"><zeroOrMore><ref name=\"event\"/>\
             </zeroOrMore></element></start></include>\n</grammar>\n",
            root().join("docs/events.rng").display()
        ),
    )
    .unwrap();
    let document = dir.join("events.xml");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&document).unwrap());
    writeln!(file, "<events>").unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    writeln!(file, "</events>").unwrap();
    file.flush().unwrap();
    drop(file);
    let output = Command::new("xmllint")
        .args(["--noout", "--relaxng"])
        .arg(&wrapper)
        .arg(&document)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint: {e}"));
    if output.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    // "PATH:LINE: element NAME: Relax-NG validity error : ..." names the line,
    // and line 1 is the wrapper's.
    let messages = String::from_utf8_lossy(&output.stderr).into_owned();
    let prefix = format!("{}:", document.display());
    let mut failed: Vec<usize> = messages
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix)?.split(':').next()?.parse::<usize>().ok())
        .filter(|n| (2..lines.len() + 2).contains(n))
        .map(|n| n - 2)
        .collect();
    failed.sort_unstable();
    failed.dedup();
    Err(Failure { lines: failed, messages, dir })
}
