//! docs/fleet.md works as written: its Python consumer (nats-py, installed
//! into a virtual environment under target/) reads what virevent-relay
//! published from a private libvirtd to a private nats-server; and the
//! README's two relay commands run (tests/readme.rs checks that this file
//! says so, with a `README: <command>` line for each).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::libvirtd::{wait_for, Daemon};
use common::nats::Nats;
use common::tools;

const RELAY: &str = env!("CARGO_BIN_EXE_virevent-relay");
const SUB: &str = env!("CARGO_BIN_EXE_virevent-sub");

/// The host the relay is told to name (`--host-name`), and its subject token.
const HOST: &str = "node1.example.com";
const HOST_TOKEN: &str = "node1_example_com";

fn read(path: &str) -> String {
    std::fs::read_to_string(common::root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The one ```python block of docs/fleet.md.
fn python_block(doc: &str) -> String {
    let blocks: Vec<&str> =
        doc.split("```python\n").skip(1).map(|rest| rest.split("\n```").next().expect("a closed block")).collect();
    assert_eq!(blocks.len(), 1, "docs/fleet.md has one Python block");
    format!("{}\n", blocks[0])
}

/// A process of the test's, ended by its PID (SIGTERM, then SIGKILL) and
/// reaped on drop.
struct Process {
    child: Option<Child>,
    /// Where its standard error goes.
    log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, log: PathBuf) -> Process {
        let file = std::fs::File::create(&log).unwrap();
        let child = command.stdin(Stdio::null()).stderr(file).spawn().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        Process { child: Some(child), log }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `limit` for `text` on its standard error.
    fn await_stderr(&mut self, text: &str, limit: Duration) {
        let start = Instant::now();
        while !self.stderr().contains(text) {
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                panic!("it ended ({status}) before saying {text:?}:\n{}", self.stderr());
            }
            assert!(start.elapsed() < limit, "no {text:?} in {limit:?}:\n{}", self.stderr());
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, and its exit status within `limit` (SIGKILL past it: a failure).
    fn stop(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        match common::end_child(&mut child, libc::SIGTERM, limit) {
            Some(status) => status.code(),
            None => panic!("it did not end within {limit:?} of SIGTERM:\n{}", self.stderr()),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            common::end_child(&mut child, libc::SIGTERM, Duration::from_secs(5));
        }
    }
}

/// Reads `child`'s standard output lines into a channel, so that every read
/// can be bounded.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("a piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first `n` lines from `rx`, within `limit` in all.
fn take_lines(rx: &mpsc::Receiver<String>, n: usize, limit: Duration, what: &str) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    while lines.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("{what}: {} line(s) of {n} within {limit:?}: {lines:#?}", lines.len()),
        }
    }
    lines
}

/// The test's private daemon and bus, and a relay between them; `None` (the
/// SKIPPED lines) where a tool is missing.
struct Fleet {
    relay: Process,
    nats: Nats,
    daemon: Daemon,
    dir: PathBuf,
}

impl Fleet {
    /// Starts the bus and the daemon, then virevent-relay with the arguments
    /// `args` makes of them.
    fn start(what: &str, args: impl FnOnce(&Daemon, &Nats) -> Vec<String>) -> Option<Fleet> {
        if !tools::needs(what, &[tools::NATS_SERVER, tools::LIBVIRTD, tools::VIRSH]) {
            return None;
        }
        let nats = Nats::start(what)?;
        let daemon = Daemon::start(what)?;
        let dir = common::test_dir("fleet-doc");
        std::fs::create_dir_all(&dir).unwrap();
        let mut command = Command::new(RELAY);
        command.args(args(&daemon, &nats)).stdout(Stdio::null());
        let mut relay = Process::spawn(&mut command, dir.join("relay.log"));
        // Its connection is open and the stream made: events from now on are
        // published.
        relay.await_stderr("publishing to the stream 'virevent'", Duration::from_secs(20));
        Some(Fleet { relay, nats, daemon, dir })
    }

    /// Suspend, resume, suspend: three domain-state-transition events.
    fn three_events(&self) {
        for step in ["suspend", "resume", "suspend"] {
            self.daemon.virsh(&[step, "test"]);
        }
    }

    /// SIGTERM: exit status 0, and a summary of `published` published.
    fn stop(mut self, published: usize) {
        let status = self.relay.stop(Duration::from_secs(15));
        let stderr = self.relay.stderr();
        assert_eq!(status, Some(0), "virevent-relay's exit status:\n{stderr}");
        let summary = stderr.lines().last().unwrap_or_default();
        assert!(
            summary.starts_with(&format!("virevent-relay: summary: {published} published, ")) && summary.contains(" 0 dropped "),
            "{stderr}"
        );
        drop(self.nats);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Python of a virtual environment under target/ with nats-py (made at
/// first use, then reused), or `None` and the SKIPPED line where python3's
/// venv or the install from PyPI fails.
fn nats_python(what: &str) -> Option<PathBuf> {
    if !tools::needs(what, &[tools::PYTHON3, tools::VENV]) {
        return None;
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fleet-doc-venv");
    let python = venv.join("bin/python3");
    let has_nats = |python: &Path| {
        Command::new(python)
            .args(["-c", "import nats.js"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_nats(&python) {
        return Some(python);
    }
    let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success());
    let installed = made
        && Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "nats-py"])
            .status()
            .is_ok_and(|s| s.success());
    if installed && has_nats(&python) {
        return Some(python);
    }
    // No venv or no PyPI: the tool rule, for nats-py itself.
    tools::needs(what, &[tools::NATS_PY]).then(|| PathBuf::from("python3"))
}

/// The attribute `name` of an event's root element.
fn attribute<'a>(xml: &'a str, name: &str) -> &'a str {
    let root = xml.split('>').next().unwrap();
    let start = root.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in {xml}")) + name.len() + 3;
    &root[start..start + root[start..].find('"').unwrap()]
}

#[test]
fn the_docs_python_consumer_prints_the_relays_events() {
    const WHAT: &str = "docs/fleet.md's Python consumer";
    let consumer = python_block(&read("docs/fleet.md"));
    // Every tool first: the venv's install is the slow part.
    if !tools::needs(WHAT, &[tools::NATS_SERVER, tools::LIBVIRTD, tools::VIRSH]) {
        return;
    }
    let Some(python) = nats_python(WHAT) else { return };
    let Some(fleet) = Fleet::start(WHAT, |daemon, nats| {
        ["--uri", &daemon.uri, "--host-name", HOST, "--server", &nats.url()].map(String::from).to_vec()
    }) else {
        return;
    };
    fleet.three_events();

    let script = fleet.dir.join("consumer.py");
    std::fs::write(&script, consumer).unwrap();
    let subject = format!("virevent.{HOST_TOKEN}.>");
    let mut child = Command::new(&python)
        .arg(&script)
        .args([fleet.nats.url().as_str(), subject.as_str(), "3"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python runs");
    let status = wait_for(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read as _;
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.is_some_and(|s| s.success()), "the consumer ({status:?}):\n{stdout}{stderr}");
    print!("{stdout}");

    // HOST TYPE SEQ PAYLOAD, the first three from the headers.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let mut seqs = Vec::new();
    for (line, state) in lines.iter().zip(["paused", "running", "paused"]) {
        let fields: Vec<&str> = line.splitn(4, ' ').collect();
        let [host, kind, seq, payload] = fields[..] else { panic!("{line:?}") };
        assert_eq!((host, kind), (HOST, "domain-state-transition"), "{line}");
        assert_eq!(attribute(payload, "type"), kind, "{line}");
        assert_eq!(attribute(payload, "seq"), seq, "the header's seq is the event's: {line}");
        assert!(payload.contains(&format!("<new-state>{state}</new-state>")), "{line}");
        seqs.push(seq.parse::<u64>().unwrap());
    }
    assert!(seqs[0] >= 1 && seqs[1] == seqs[0] + 1 && seqs[2] == seqs[1] + 1, "seqs {seqs:?}");
    fleet.stop(3);
}

// The README's relay commands, as tests/readme.rs finds them there:
// README: target/release/virevent-relay --uri qemu:///system --server nats://bus.example.com:4222
// README: target/release/virevent-sub --uri 'nats://bus.example.com/virevent?subject=virevent.*.domain-state-transition' --format line
// They run below as written but for what a test cannot have: the program is
// this build's, qemu:///system is the private libvirtd's URI, and
// bus.example.com the private nats-server.
const README_RELAY: &str = "target/release/virevent-relay --uri qemu:///system --server nats://bus.example.com:4222";
const README_SUB: &str = "target/release/virevent-sub --uri 'nats://bus.example.com/virevent?subject=virevent.*.domain-state-transition' --format line";

/// A command line's words: split at spaces, '...' quoting.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = command.trim();
    while !rest.is_empty() {
        let (word, tail) = match rest.strip_prefix('\'') {
            Some(quoted) => quoted.split_once('\'').expect("a closing quote"),
            None => rest.split_once(' ').unwrap_or((rest, "")),
        };
        words.push(word.to_string());
        rest = tail.trim_start();
    }
    words
}

/// `command`'s words with the program, the daemon and the server the test's.
fn with_private(command: &str, daemon: &Daemon, nats: &Nats) -> (String, Vec<String>) {
    let authority = nats.url().trim_start_matches("nats://").to_string();
    let mut words: Vec<String> = words(command)
        .into_iter()
        .map(|w| {
            if w == "qemu:///system" {
                daemon.uri.clone()
            } else {
                w.replace("bus.example.com:4222", &authority).replace("bus.example.com", &authority)
            }
        })
        .collect();
    let program = match words.remove(0).as_str() {
        "target/release/virevent-relay" => RELAY,
        "target/release/virevent-sub" => SUB,
        other => panic!("README runs {other}"),
    };
    (program.to_string(), words)
}

#[test]
fn the_readme_relay_commands_run() {
    const WHAT: &str = "the README's relay commands";
    let readme = read("README.md");
    let commands: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with("target/release/virevent-relay") || l.starts_with("target/release/virevent-sub"))
        .collect();
    assert_eq!(commands, [README_RELAY, README_SUB], "the README's relay commands are the ones this test runs");
    let Some(fleet) = Fleet::start(WHAT, |daemon, nats| with_private(README_RELAY, daemon, nats).1) else { return };
    fleet.three_events();

    // The subject's host is `*`: each line names the URI its relay watched.
    let (program, args) = with_private(README_SUB, &fleet.daemon, &fleet.nats);
    let mut sub = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("virevent-sub runs");
    let lines = take_lines(&lines_of(&mut sub), 3, Duration::from_secs(20), "virevent-sub");
    // It reads on until stopped; SIGTERM ends it.
    let sub = Process { child: Some(sub), log: fleet.dir.join("none") };
    drop(sub);
    let prefix = format!("{}: ", fleet.daemon.uri);
    for (line, end) in lines.iter().zip([
        " test running -> paused (suspended-paused)",
        " test paused -> running (resumed-unpaused)",
        " test running -> paused (suspended-paused)",
    ]) {
        assert!(line.starts_with(&prefix) && line.ends_with(end), "{line:?} wants {prefix:?} ... {end:?}");
    }
    fleet.stop(3);
}

/// The rows `| `A` | `B` |` of the table under docs/fleet.md's `### heading`:
/// (A, B), the first two cells' code.
fn table(doc: &str, heading: &str) -> Vec<(String, String)> {
    let section = doc.split(&format!("\n### {heading}\n")).nth(1).unwrap_or_else(|| panic!("no ### {heading}"));
    let section = section.split("\n#").next().unwrap();
    section
        .lines()
        .filter_map(|l| {
            let mut cells = l.strip_prefix("| `")?.split(" | ");
            let first = cells.next()?.strip_suffix('`')?.to_string();
            let second = cells.next()?;
            Some((first, second.trim_end_matches(" |").to_string()))
        })
        .collect()
}

#[test]
fn the_docs_subjects_and_headers_are_the_relays() {
    use virevent_relay::{headers, subject};
    let doc = read("docs/fleet.md");
    let escapes = table(&doc, "Subjects");
    assert!(escapes.len() >= 4, "{escapes:?}");
    for (name, token) in &escapes {
        assert_eq!(format!("`{}`", subject::escape(name)), *token, "docs/fleet.md escapes {name}");
    }
    assert!(doc.contains(&format!("`{}`", subject::of("node1.example.com", "domain-state-transition"))));
    let documented: Vec<String> = table(&doc, "Headers").into_iter().map(|(name, _)| name).collect();
    let relays = [headers::HOST, headers::TYPE, headers::SEQ, headers::TIMESTAMP, headers::URI, headers::FORMAT, headers::MSG_ID];
    assert_eq!(documented, relays, "docs/fleet.md's headers table against relay/src/headers.rs");
}
