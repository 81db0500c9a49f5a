//! The virevent-watch program, run as a user would: against the embedded test
//! driver for its arguments, and against private libvirt daemons (libvirtd with
//! the test driver, each in its own folder, driven with virsh) for its output,
//! compared with what `virsh event` reports of the same changes; and its man
//! page against its --help. Needs Debian's
//! libvirt-daemon and libvirt-clients and root, as the C tests do.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;
use common::libvirtd::{wait_for, Daemon};
use common::man::man_tags;
use common::pki::{Pki, Role, Validity};
use common::sasl::SaslConf;
use common::sshd::Sshd;

const BIN: &str = env!("CARGO_BIN_EXE_virevent-watch");

/// How long anything expected may take before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(10);

const UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// A program whose stdout is read line by line as it comes, killed on drop if
/// it still runs.
struct Process {
    child: Child,
    lines: Receiver<String>,
    /// The lines taken by [`Process::collect`].
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
    /// Its stderr so far, as the reader takes it.
    stderr_so_far: Arc<Mutex<String>>,
    /// What its stderr starts with: the refusals of the daemons it watches.
    refused: String,
    /// How many daemons it watches: it is ready once it watches that many sockets.
    daemons: usize,
    /// Every line the program printed, as the reader took it.
    printed: Arc<Mutex<Vec<String>>>,
    /// A watcher printing XML: its arguments, and its lines are validated
    /// against docs/events.rng on drop.
    xml: Option<String>,
}

/// Whether virevent-watch with `args` prints events as XML lines (its default).
fn prints_xml(args: &[&str]) -> bool {
    let mut format = "xml";
    for (n, arg) in args.iter().enumerate() {
        match (arg.strip_prefix("--format="), *arg == "--format") {
            (Some(value), _) => format = value,
            (None, true) => format = args.get(n + 1).copied().unwrap_or(""),
            (None, false) => {}
        }
    }
    format == "xml" && !args.iter().any(|a| matches!(*a, "-h" | "--help" | "--version"))
}

/// What virevent-watch says first of libvirt 9.0's test driver: the kinds it
/// does not send (newer than 9.0, or secrets, which the test driver lacks).
const REFUSED: &str = "virevent-watch: the daemon does not send these event types: domain-nic-mac-change, \
    network-metadata-change, secret-lifecycle, secret-value-changed\n";

/// The `--uri` values of virevent-watch's `args`, in order.
fn uris<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut uris = Vec::new();
    for (n, arg) in args.iter().enumerate() {
        match (arg.strip_prefix("--uri="), *arg == "--uri") {
            (Some(value), _) => uris.push(value),
            (None, true) => uris.extend(args.get(n + 1).copied()),
            (None, false) => {}
        }
    }
    uris
}

/// Whether `uri` is a daemon's (libvirt 9.0's test driver, in these tests).
fn is_daemon(uri: &str) -> bool {
    ["+unix://", "+tcp://", "+tls://", "+ssh://"].iter().any(|t| uri.contains(t))
}

/// What a watch of `uris` says first on stderr: [`REFUSED`] for each daemon,
/// after `URI: ` when there are several.
fn refusals(uris: &[&str]) -> String {
    let daemons = uris.iter().filter(|uri| is_daemon(uri));
    let several = uris.len() > 1;
    daemons.map(|uri| if several { REFUSED.replacen(": the daemon", &format!(": {uri}: the daemon"), 1) } else { REFUSED.into() }).collect()
}

impl Process {
    /// Runs virevent-watch with `args`; with `keep`, only that many lines are read
    /// before its stdout is closed (as `| head -N` does).
    fn watch(args: &[&str], keep: Option<usize>) -> Process {
        let mut process = Process::spawn(Command::new(BIN).args(args), keep);
        let uris = uris(args);
        process.refused = refusals(&uris);
        process.daemons = uris.iter().filter(|uri| is_daemon(uri)).count().max(1);
        process.xml = prints_xml(args).then(|| args.join(" "));
        process
    }

    fn spawn(command: &mut Command, keep: Option<usize>) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let printed = Arc::new(Mutex::new(Vec::new()));
        let copy = printed.clone();
        thread::spawn(move || {
            // Dropping the reader at the end closes the pipe.
            for (n, line) in BufReader::new(stdout).lines().enumerate() {
                let Ok(line) = line else { break };
                copy.lock().unwrap().push(line.clone());
                if tx.send(line).is_err() || keep == Some(n + 1) {
                    break;
                }
            }
        });
        let stderr_so_far = Arc::new(Mutex::new(String::new()));
        let so_far = stderr_so_far.clone();
        let stderr = thread::spawn(move || {
            let mut bytes = Vec::new();
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                bytes.extend_from_slice(&chunk[..n]);
                *so_far.lock().unwrap() = String::from_utf8_lossy(&bytes).into_owned();
            }
            String::from_utf8_lossy(&bytes).into_owned()
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
            stderr_so_far,
            refused: String::new(),
            daemons: 1,
            printed,
            xml: None,
        }
    }

    /// Waits until the watcher has connected and registered: the library adds
    /// a remote connection's socket to the epoll set behind its event
    /// descriptor last in opening (the sets themselves exist from the start),
    /// after which every daemon event waits in the socket for a delivery,
    /// which comes after the handler is added. A watch of several daemons
    /// opens them in turn: it is ready once it watches a socket for each.
    fn wait_ready(&mut self) {
        let pid = self.child.id();
        let start = Instant::now();
        loop {
            if common::sockets_watched(pid) >= self.daemons {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the watcher ended before it was ready ({status}): {}",
                    self.stderr.take().unwrap().join().unwrap()
                );
            }
            assert!(start.elapsed() < PATIENCE, "the watcher did not connect in time");
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits, within [`PATIENCE`], until its stderr ends with `text`.
    fn wait_stderr_ending(&self, text: &str) {
        let start = Instant::now();
        while !self.stderr_so_far.lock().unwrap().ends_with(text) {
            assert!(start.elapsed() < PATIENCE, "its stderr {:?} does not end with {text:?}", self.stderr_so_far.lock().unwrap());
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The next line, within [`PATIENCE`].
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(e) => panic!("no line from the watcher ({e:?}); it printed {:?}", self.seen),
        }
    }

    fn lines(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.line()).collect()
    }

    /// Takes the lines printed so far into `seen`; returns how many there are.
    fn collect(&mut self) -> usize {
        self.seen.extend(self.lines.try_iter());
        self.seen.len()
    }

    /// Waits for the program to end; returns its exit code, the lines it printed
    /// that were not read yet, and its stderr.
    fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let Some(status) = wait_for(&mut self.child, PATIENCE) else {
            panic!("the program did not end; it printed {:?}", self.lines.try_iter().collect::<Vec<_>>())
        };
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("its stdout stayed open"),
            }
        }
        let mut stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(stderr.starts_with(&self.refused), "the refusals do not start its stderr: {stderr:?}");
        stderr.drain(..self.refused.len());
        (status.code(), rest, stderr)
    }

    /// Stops it with SIGTERM and reaps it.
    fn stop(&mut self) {
        // SAFETY: plain system call on our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = wait_for(&mut self.child, PATIENCE);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let (Some(args), false) = (&self.xml, thread::panicking()) {
            let printed = self.printed.lock().unwrap().clone();
            common::schema::validate(&format!("virevent-watch {args}"), &printed);
        }
    }
}

/// Runs virevent-watch with `args` to its end: exit code, stdout, stderr. Its
/// XML lines, if it prints those, must be valid against docs/events.rng.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(BIN).args(args).stdin(Stdio::null()).output().expect("virevent-watch runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    let stdout = text(output.stdout);
    if prints_xml(args) && output.status.success() {
        let lines: Vec<&str> = stdout.lines().collect();
        common::schema::validate(&format!("virevent-watch {}", args.join(" ")), &lines);
    }
    (output.status.code(), stdout, text(output.stderr))
}

/// An event's XML without its timestamp and seq, and its seq.
fn without_stamps(xml: &str) -> (String, u64) {
    let (head, rest) = xml.split_once(" timestamp=\"").unwrap_or_else(|| panic!("no timestamp in {xml}"));
    let (_, rest) = rest.split_once('"').unwrap();
    let (middle, rest) = rest.split_once(" seq=\"").unwrap_or_else(|| panic!("no seq in {xml}"));
    let (seq, tail) = rest.split_once('"').unwrap();
    (format!("{head}{middle}{tail}"), seq.parse().unwrap())
}

/// The XML of a state transition of domain `test` as the watcher prints it,
/// without timestamp and seq.
fn transition(id: i32, old: &str, new: &str, reason: &str) -> String {
    format!(
        "<event type=\"domain-state-transition\"><domain-id>{id}</domain-id><domain-name>test</domain-name>\
         <domain-uuid>{UUID}</domain-uuid><old-state>{old}</old-state><new-state>{new}</new-state>\
         <reason>{reason}</reason></event>"
    )
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Seconds since the epoch of `YYYY-MM-DD HH:MM:SS.mmm` read as UTC, checking
/// its shape on the way.
fn utc_seconds(stamp: &str) -> f64 {
    let b = stamp.as_bytes();
    let shape = "dddd-dd-dd dd:dd:dd.ddd";
    assert!(
        b.len() == shape.len()
            && shape.bytes().zip(b).all(|(s, &c)| if s == b'd' { c.is_ascii_digit() } else { c == s }),
        "{stamp:?} is not YYYY-MM-DD HH:MM:SS.mmm"
    );
    let n = |r: std::ops::Range<usize>| stamp[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) as f64 + n(20..23) as f64 / 1000.0
}

/// A `--format line` line: checks its time (UTC, within a minute of now) and
/// returns what follows it.
fn line_body(line: &str) -> &str {
    assert!(line.len() > 24 && line.as_bytes()[23] == b' ', "{line:?}");
    let at = utc_seconds(&line[..23]);
    assert!((at - now()).abs() < 60.0, "{line:?} is not the time now in UTC");
    &line[24..]
}

#[test]
fn xml_lines_are_the_events() {
    let Some(daemon) = Daemon::start("virevent-watch: xml lines are the events") else { return };
    let mut watcher = Process::watch(&["--uri", &daemon.uri, "--format", "xml", "--count", "4"], None);
    watcher.wait_ready();
    for op in ["suspend", "resume", "destroy", "start"] {
        daemon.virsh(&[op, "test"]);
    }
    let lines = watcher.lines(4);
    let (status, rest, stderr) = watcher.finish();
    assert_eq!((status, rest, stderr.as_str()), (Some(0), vec![], ""));
    let (events, seqs): (Vec<_>, Vec<_>) = lines.iter().map(|l| without_stamps(l)).unzip();
    assert_eq!(
        events,
        [
            transition(1, "running", "paused", "suspended-paused"),
            transition(1, "paused", "running", "resumed-unpaused"),
            transition(-1, "running", "shutoff", "stopped-destroyed"),
            transition(2, "shutoff", "running", "started-booted"),
        ]
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn line_format_reads_like_a_sentence() {
    let Some(daemon) = Daemon::start("virevent-watch: line format reads like a sentence") else { return };
    let mut watcher = Process::watch(&["--uri", &daemon.uri, "--format", "line", "--count", "6"], None);
    watcher.wait_ready();
    daemon.virsh(&["suspend", "test"]);
    daemon.virsh(&["resume", "test"]);
    daemon.virsh(&["destroy", "test"]);
    daemon.virsh(&["start", "test"]);
    daemon.virsh(&["desc", "test", "--live", "hello"]);
    daemon.virsh(&["define", &daemon.domain_file("two words")]);
    let lines = watcher.lines(6);
    assert_eq!(watcher.finish(), (Some(0), vec![], String::new()));
    let bodies: Vec<&str> = lines.iter().map(|l| line_body(l)).collect();
    assert_eq!(
        bodies,
        [
            "test running -> paused (suspended-paused)",
            "test paused -> running (resumed-unpaused)",
            "test running -> shutoff (stopped-destroyed)",
            "test shutoff -> running (started-booted)",
            &format!("domain-metadata-change domain-id=2 domain-name=test domain-uuid={UUID} type=description"),
            "\"two words\" nostate -> shutoff (defined-added)",
        ]
    );
}

#[test]
fn json_lines_are_objects_with_escaped_strings() {
    let Some(daemon) = Daemon::start("virevent-watch: json lines are objects with escaped strings") else { return };
    let mut watcher = Process::watch(&["--uri", &daemon.uri, "--format=json", "--count=3"], None);
    watcher.wait_ready();
    daemon.virsh(&["suspend", "test"]);
    daemon.virsh(&["desc", "test", "--live", "hello"]);
    daemon.virsh(&["define", &daemon.domain_file("a \"b\" \\c\t<&>")]);
    let lines = watcher.lines(3);
    assert_eq!(watcher.finish(), (Some(0), vec![], String::new()));
    // {"type":T,"timestamp":N,"seq":N,REST}: the stamps checked, then the rest.
    let mut seqs = Vec::new();
    let rests: Vec<&str> = lines
        .iter()
        .map(|line| {
            let (head, rest) = line.split_once(",\"timestamp\":").unwrap_or_else(|| panic!("{line}"));
            let (timestamp, rest) = rest.split_once(",\"seq\":").unwrap();
            let timestamp: f64 = timestamp.parse().unwrap_or_else(|_| panic!("timestamp in {line}"));
            assert!((timestamp - now()).abs() < 60.0, "{line}");
            let (seq, rest) = rest.split_once(',').unwrap();
            seqs.push(seq.parse::<u64>().unwrap_or_else(|_| panic!("seq in {line}")));
            assert!(head.starts_with("{\"type\":\"") && rest.ends_with('}'), "{line}");
            rest
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(lines[0].starts_with("{\"type\":\"domain-state-transition\","), "{}", lines[0]);
    assert_eq!(
        rests[0],
        format!(
            "\"domain-id\":\"1\",\"domain-name\":\"test\",\"domain-uuid\":\"{UUID}\",\"old-state\":\"running\",\
             \"new-state\":\"paused\",\"reason\":\"suspended-paused\"}}"
        )
    );
    // The child element <type> cannot take the event's "type".
    assert!(lines[1].starts_with("{\"type\":\"domain-metadata-change\","), "{}", lines[1]);
    assert_eq!(
        rests[1],
        format!("\"domain-id\":\"1\",\"domain-name\":\"test\",\"domain-uuid\":\"{UUID}\",\"_type\":\"description\"}}")
    );
    assert!(lines[2].starts_with("{\"type\":\"domain-state-transition\","), "{}", lines[2]);
    assert!(
        rests[2].starts_with("\"domain-id\":\"-1\",\"domain-name\":\"a \\\"b\\\" \\\\c\\t<&>\",\"domain-uuid\":\""),
        "{}",
        rests[2]
    );
    assert!(
        rests[2].ends_with("\"old-state\":\"nostate\",\"new-state\":\"shutoff\",\"reason\":\"defined-added\"}"),
        "{}",
        rests[2]
    );
}

#[test]
fn filters_select_by_type_and_xpath() {
    let Some(daemon) = Daemon::start("virevent-watch: filters select by type and xpath") else { return };
    let mut paused =
        Process::watch(&["--uri", &daemon.uri, "--filter", "/event[new-state='paused']", "--count", "2"], None);
    let mut mixed = Process::watch(
        &[
            "--uri",
            &daemon.uri,
            "--filter",
            "domain-meta*",
            "--filter",
            "/event[reason='started-booted']",
            "--count",
            "2",
        ],
        None,
    );
    let mut exact = Process::watch(&["--uri", &daemon.uri, "--filter=connection-closed", "--timeout", "30"], None);
    paused.wait_ready();
    mixed.wait_ready();
    exact.wait_ready();
    for op in [
        &["suspend", "test"][..],
        &["resume", "test"],
        &["desc", "test", "--live", "x"],
        &["destroy", "test"],
        &["start", "test"],
        &["suspend", "test"],
    ] {
        daemon.virsh(op);
    }
    let got: Vec<String> = paused.lines(2).iter().map(|l| without_stamps(l).0).collect();
    assert_eq!(
        got,
        [
            transition(1, "running", "paused", "suspended-paused"),
            transition(2, "running", "paused", "suspended-paused")
        ]
    );
    assert_eq!(paused.finish(), (Some(0), vec![], String::new()));
    let got: Vec<String> = mixed.lines(2).iter().map(|l| without_stamps(l).0).collect();
    assert_eq!(
        got,
        [
            format!(
                "<event type=\"domain-metadata-change\"><domain-id>1</domain-id><domain-name>test</domain-name>\
                 <domain-uuid>{UUID}</domain-uuid><type>description</type></event>"
            ),
            transition(2, "shutoff", "running", "started-booted"),
        ]
    );
    assert_eq!(mixed.finish(), (Some(0), vec![], String::new()));
    // No domain event passes a filter for connection-closed alone.
    exact.stop();
    let (_, rest, stderr) = exact.finish();
    assert_eq!((rest, stderr), (vec![], String::new()));
}

#[test]
fn count_ends_the_watch_and_a_closed_stdout_ends_it_quietly() {
    let Some(daemon) = Daemon::start("virevent-watch: count ends the watch and a closed stdout ends it quietly") else { return };
    let mut counted = Process::watch(&["--uri", &daemon.uri, "--count", "2", "--format", "line"], None);
    let mut headed = Process::watch(&["--uri", &daemon.uri], Some(1));
    counted.wait_ready();
    headed.wait_ready();
    daemon.virsh(&["suspend", "test"]);
    assert!(headed.line().contains("<reason>suspended-paused</reason>"));
    // Its reader is gone once the channel is: the pipe has no reader left.
    assert_eq!(headed.lines.recv_timeout(PATIENCE), Err(RecvTimeoutError::Disconnected));
    daemon.virsh(&["resume", "test"]);
    daemon.virsh(&["destroy", "test"]);
    let (status, rest, stderr) = headed.finish();
    assert_eq!((status, rest, stderr.as_str()), (Some(0), vec![], ""), "the watcher must end quietly on EPIPE");
    let (status, rest, stderr) = counted.finish();
    assert_eq!((status, stderr.as_str()), (Some(0), ""));
    let bodies: Vec<&str> = rest.iter().map(|l| line_body(l)).collect();
    assert_eq!(bodies, ["test running -> paused (suspended-paused)", "test paused -> running (resumed-unpaused)"]);
}

#[test]
fn arguments_are_checked() {
    let hint = "Try 'virevent-watch --help' for more information.";
    for (args, message) in [
        (&["--frobnicate"][..], "unknown option '--frobnicate'"),
        (&["extra"], "unexpected argument 'extra'"),
        (&["--count", "x"], "--count wants a whole number of events, not 'x'"),
        (&["--count", "-1"], "--count wants a whole number of events, not '-1'"),
        (&["--count"], "option '--count' needs a value"),
        (&["-k", "x"], "--keepalive-interval wants a whole number of seconds, not 'x'"),
        (&["--keepalive-interval=1.5"], "--keepalive-interval wants a whole number of seconds, not '1.5'"),
        (&["-K", "-1"], "--keepalive-count wants a whole number of PINGs, not '-1'"),
        (&["--keepalive-count", "4294967296"], "--keepalive-count wants a whole number of PINGs, not '4294967296'"),
        (&["-k"], "option '--keepalive-interval' needs a value"),
        (&["--timeout", "soon"], "--timeout wants decimal seconds"),
        (&["--timeout", "1e3"], "--timeout wants decimal seconds"),
        (&["--format", "yaml"], "--format wants xml, line, json or virsh, not 'yaml'"),
        (&["--filter", "/event[x="], "bad --filter: filter[0] \"/event[x=\": XPath error"),
        (&["--filter", "domain-*", "--filter", ""], "bad --filter: filter[1] is empty"),
        (&["--demo=1"], "option '--demo' takes no value"),
        (&["--version=2"], "option '--version' takes no value"),
        (&["--interval", "1"], "--interval is the time between --demo steps: give --demo too"),
        (&["--demo", "--interval", "0"], "--interval wants more than 0 seconds, not '0'"),
        (&["--demo", "--interval", "soon"], "--interval wants decimal seconds"),
        (
            &["--uri", "qemu:///system", "--demo"],
            "--demo drives the domain 'test' of the embedded test:///default, not of 'qemu:///system': \
             a daemon's domains are driven from outside",
        ),
        (
            &["--demo", "--uri", "test+unix:///default?socket=/nonexistent/sock"],
            "--demo drives the domain 'test' of the embedded test:///default, not of \
             'test+unix:///default?socket=/nonexistent/sock'",
        ),
        (
            &["--demo", "--uri", "test:///empty"],
            "--demo drives the domain 'test' of test:///default, and test:///empty has no domain",
        ),
        (
            &["--uri", "test:///default", "--demo", "--uri=test:///default"],
            "--demo drives the domain 'test' of one embedded test:///default, not of 2 URIs: give one --uri at most",
        ),
    ] {
        let (status, stdout, stderr) = run(args);
        assert_eq!(status, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.starts_with(&format!("virevent-watch: {message}")), "{args:?}: {stderr}");
        assert!(stderr.trim_end().ends_with(hint), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_uris_fail_with_the_library_message() {
    let (status, stdout, stderr) = run(&["--uri", "bogus://nowhere"]);
    assert_eq!((status, stdout.as_str()), (Some(1), ""), "{stderr}");
    assert!(
        stderr.starts_with("virevent-watch: cannot connect to 'bogus://nowhere': no driver for URI 'bogus://nowhere'"),
        "{stderr}"
    );
    let (status, _, stderr) = run(&["--uri", "test+unix:///default?socket=/nonexistent/virevent-sock"]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect to the libvirt daemon's socket '/nonexistent/virevent-sock'"), "{stderr}");
    // With several, any one that fails to open ends the watch at start, named.
    let (status, stdout, stderr) = run(&["--uri", "test:///default", "--uri", "bogus://nowhere", "--timeout", "5"]);
    assert_eq!((status, stdout.as_str()), (Some(1), ""), "{stderr}");
    let named = "virevent-watch: cannot connect to 'bogus://nowhere': no driver for URI 'bogus://nowhere'";
    assert!(stderr.lines().last().is_some_and(|l| l.starts_with(named)), "{stderr}");
}

#[test]
fn help_documents_every_option() {
    let (status, stdout, stderr) = run(&["--help"]);
    assert_eq!((status, stderr.as_str()), (Some(0), ""));
    for word in [
        "--uri",
        "--demo",
        "--interval",
        "--filter",
        "--count",
        "--timeout",
        "-k, --keepalive-interval",
        "-K, --keepalive-count",
        "--format",
        "--help",
        "--version",
        "xml",
        "line",
        "json",
        "UTC",
        "Exit status",
        &format!("virevent-watch {VERSION}"),
    ] {
        assert!(stdout.contains(word), "--help does not mention {word}:\n{stdout}");
    }
    assert_eq!(run(&["--count", "1", "-h"]).1, stdout);
}

/// The package version, as Cargo.toml gives it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn version_is_the_package_version() {
    let expected = (Some(0), format!("virevent-watch {VERSION}\n"), String::new());
    assert_eq!(run(&["--version"]), expected);
    // It ends the parse, as --help does, and connects to nothing.
    assert_eq!(run(&["--count", "1", "--version", "--frobnicate"]), expected);
    assert_eq!(run(&["--uri", "bogus://nowhere", "--version"]), expected);
}

/// What a watch of the embedded test driver says once on stderr, in every
/// case: what --demo and a daemon URI fix.
const QUIET: &str = "nothing happens there unless the program itself acts; try --demo";

#[test]
fn the_embedded_driver_says_once_that_nothing_happens_there() {
    for (args, uri) in [
        (&[][..], "test:///default"),
        (&["--uri", "test:///default"], "test:///default"),
        (&["--uri", ""], "test:///default"),
        (&["--uri", "test:///empty"], "test:///empty"),
    ] {
        let mut args = args.to_vec();
        args.extend(["--timeout", "0.3"]);
        let (status, stdout, stderr) = run(&args);
        assert_eq!((status, stdout.as_str()), (Some(0), ""), "{args:?}: {stderr}");
        assert_eq!(stderr.matches(QUIET).count(), 1, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("virevent-watch: {uri} is the embedded test driver")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("--uri qemu:///system"), "{args:?}: {stderr}");
    }
    // At start: before the first event, and before a count ends the watch.
    let (_, _, stderr) = run(&["--count", "0"]);
    assert_eq!(stderr.matches(QUIET).count(), 1, "{stderr}");
    // Not with --demo, which acts, nor with a daemon, where others do.
    let (status, stdout, stderr) = run(&["--demo", "--count", "1"]);
    assert_eq!((status, stdout.lines().count(), stderr.as_str()), (Some(0), 1, ""));
    let Some(daemon) = Daemon::start("virevent-watch: no quiet notice with a daemon URI") else { return };
    let mut watcher = Process::watch(&["--uri", &daemon.uri, "--count", "1"], None);
    watcher.wait_ready();
    daemon.virsh(&["suspend", "test"]);
    let (status, rest, stderr) = watcher.finish();
    assert_eq!((status, rest.len(), stderr.as_str()), (Some(0), 1, ""));
}

#[test]
fn demo_drives_the_test_domain_every_half_second() {
    let start = Instant::now();
    let (status, stdout, stderr) = run(&["--demo", "--count", "4"]);
    let took = start.elapsed();
    assert_eq!((status, stderr.as_str()), (Some(0), ""), "{stdout}");
    let (events, seqs): (Vec<_>, Vec<_>) = stdout.lines().map(without_stamps).unzip();
    assert_eq!(
        events,
        [
            transition(1, "running", "paused", "suspended-paused"),
            transition(1, "paused", "running", "resumed-unpaused"),
            transition(-1, "running", "shutoff", "stopped-destroyed"),
            transition(2, "shutoff", "running", "started-booted"),
        ]
    );
    assert_eq!(seqs, [1, 2, 3, 4]);
    // One step at once, then one every 0.5 s: the fourth after 1.5 s.
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(5), "{took:?}");

    // At once: one event before the first interval is over.
    let (status, stdout, _) = run(&["--demo", "--timeout", "0.25"]);
    assert_eq!((status, stdout.lines().count()), (Some(0), 1), "{stdout}");

    // Over and over, at the interval given, in any format, through filters.
    let start = Instant::now();
    let (status, stdout, stderr) = run(&["--demo", "--interval", "0.02", "--count", "6", "--format", "line"]);
    assert!(start.elapsed() >= Duration::from_millis(100), "{:?}", start.elapsed());
    assert_eq!((status, stderr.as_str()), (Some(0), ""));
    let bodies: Vec<&str> = stdout.lines().map(line_body).collect();
    assert_eq!(
        bodies,
        [
            "test running -> paused (suspended-paused)",
            "test paused -> running (resumed-unpaused)",
            "test running -> shutoff (stopped-destroyed)",
            "test shutoff -> running (started-booted)",
            "test running -> paused (suspended-paused)",
            "test paused -> running (resumed-unpaused)",
        ]
    );
    let (status, stdout, _) =
        run(&["--demo", "--interval=0.01", "--filter", "/event[new-state='running']", "--count", "3"]);
    let events: Vec<String> = stdout.lines().map(|l| without_stamps(l).0).collect();
    assert_eq!(status, Some(0));
    assert_eq!(
        events,
        [
            transition(1, "paused", "running", "resumed-unpaused"),
            transition(2, "shutoff", "running", "started-booted"),
            transition(2, "paused", "running", "resumed-unpaused"),
        ]
    );
}

/// The option names and metavariables of each `--help` option line
/// (`--uri URI`, `-h, --help`).
fn help_options(help: &str) -> Vec<String> {
    help.lines()
        .filter(|l| l.starts_with("  -"))
        .map(|l| {
            l.split_whitespace()
                .take_while(|w| w.starts_with('-') || (!w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase())))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn the_man_page_says_what_help_says() {
    let (_, help, _) = run(&["--help"]);
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/virevent-watch.1")).unwrap();

    // Options: `--uri URI` in --help is `.BI \-\-uri " URI"` in the page.
    let options = help_options(&help);
    assert!(options.len() >= 9, "{options:?}");
    assert_eq!(man_tags(&page, "OPTIONS"), options, "the options of docs/virevent-watch.1 against --help's, in order");

    // Exit statuses: `  0  ...` in --help, `.TP` `.B 0` in EXIT STATUS.
    let exit = help.split_once("\nExit status:\n").expect("an Exit status section").1;
    let statuses: Vec<String> = exit
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_once("  ").map(|(n, _)| n.to_string()))
        .filter(|n| n.parse::<u8>().is_ok())
        .collect();
    assert_eq!(statuses, ["0", "1", "2"]);
    assert_eq!(man_tags(&page, "EXIT STATUS"), statuses, "the exit statuses of docs/virevent-watch.1");

    // Formats: the words under --format in --help, the FORMATS tags in the page.
    let formats: Vec<String> = help
        .lines()
        .filter_map(|l| l.strip_prefix(&" ".repeat(21)))
        .filter_map(|l| l.split_once("  ").map(|(w, _)| w.to_string()))
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        .collect();
    assert_eq!(formats, ["xml", "line", "json", "virsh"]);
    assert_eq!(man_tags(&page, "FORMATS"), formats);

    // The version, in the header line and in what --version prints.
    let th = page.lines().find(|l| l.starts_with(".TH ")).expect(".TH");
    assert!(th.contains(&format!("\"virevent {VERSION}\"")), "{th}");
    assert!(page.contains(&format!("(virevent\\-watch {VERSION})")), "--version's words in the page");
    // Every option the page names anywhere is one of --help's, or one of
    // `virsh event --all --loop --timestamp`, which the page compares the program with.
    let known: Vec<&str> =
        options.iter().flat_map(|o| o.split([' ', ','])).chain(["--all", "--loop", "--timestamp"]).collect();
    let roff = page.replace("\\-", "-");
    for word in roff.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).filter(|w| w.starts_with("--")) {
        assert!(known.contains(&word), "docs/virevent-watch.1 names {word}, which --help does not have");
    }
}

#[test]
fn timeout_ends_a_quiet_watch() {
    for uri in [None, Some("test:///empty")] {
        let mut args = vec!["--timeout", "0.5"];
        args.extend(uri.iter().flat_map(|u| ["--uri", u]));
        let start = Instant::now();
        let (status, stdout, stderr) = run(&args);
        let took = start.elapsed();
        assert_eq!((status, stdout.as_str()), (Some(0), ""));
        assert!(stderr.contains(QUIET) && stderr.lines().count() == 1, "{stderr}");
        assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "{took:?}");
    }
    for args in [&["--timeout", "0"][..], &["--count", "0", "--timeout", "100"]] {
        let (status, stdout, stderr) = run(args);
        assert_eq!((status, stdout.as_str()), (Some(0), ""));
        assert!(stderr.contains(QUIET) && stderr.lines().count() == 1, "{stderr}");
    }
}

/// What one event is about, as both virsh and the watcher can say it:
/// (event, domain, detail) in virsh's words.
fn virsh_words(line: &str) -> (String, String, String) {
    let parse = || {
        let rest = line.strip_prefix("event '")?;
        let (event, rest) = rest.split_once("' for domain '")?;
        let (domain, detail) = rest.split_once("': ")?;
        Some((event.to_string(), domain.to_string(), detail.to_string()))
    };
    parse().unwrap_or_else(|| panic!("virsh printed {line:?}"))
}

/// The same of a watcher's `--format line` line: reason `suspended-paused` reads
/// `Suspended Paused`, a metadata change `type description, uri <null>`.
fn watcher_words(line: &str) -> (String, String, String) {
    let body = line_body(line);
    if let Some(fields) = body.strip_prefix("domain-metadata-change ") {
        let field =
            |name: &str| fields.split(' ').find_map(|f| f.strip_prefix(name)?.strip_prefix('=')).map(str::to_string);
        let detail = format!("type {}, uri {}", field("type").unwrap(), field("nsuri").unwrap_or("<null>".into()));
        return ("metadata-change".into(), field("domain-name").unwrap(), detail);
    }
    let (domain, rest) = body.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
    let reason = rest.split_once(" (").and_then(|(_, r)| r.strip_suffix(')')).unwrap_or_else(|| panic!("{line:?}"));
    let capital = |word: &str| word[..1].to_uppercase() + &word[1..];
    let (event, detail) = reason.split_once('-').unwrap();
    ("lifecycle".into(), domain.into(), format!("{} {}", capital(event), capital(detail)))
}

#[test]
fn reports_the_same_events_as_virsh() {
    let Some(daemon) = Daemon::start("virevent-watch: reports the same events as virsh") else { return };
    same_events_as_virsh(&daemon, &daemon.uri);
}

#[test]
fn reports_the_same_events_as_virsh_over_tcp() {
    let Some(daemon) = Daemon::start("virevent-watch: reports the same events as virsh over tcp") else { return };
    same_events_as_virsh(&daemon, &daemon.tcp_uri);
}

/// `virsh -c URI event --all --loop` and `virevent-watch --uri URI` side by
/// side, while the daemon's domains change.
fn same_events_as_virsh(daemon: &Daemon, uri: &str) {
    let mut virsh = Process::spawn(Command::new("virsh").args(["-q", "-c", uri, "event", "--all", "--loop"]), None);
    let mut watcher = Process::watch(&["--uri", uri, "--format", "line"], None);
    // virsh shows no sign of being ready: change the description until both
    // report it, let late reports come, and compare what follows.
    let start = Instant::now();
    while virsh.collect() == 0 || watcher.collect() == 0 {
        assert!(
            start.elapsed() < PATIENCE,
            "no probe event reached both: virsh {:?}, watcher {:?}",
            virsh.seen,
            watcher.seen
        );
        daemon.virsh(&["desc", "test", "--live", "probe"]);
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(200));
    let (virsh_from, watcher_from) = (virsh.collect(), watcher.collect());

    let test2 = daemon.domain_file("test2");
    let ops: [&[&str]; 8] = [
        &["suspend", "test"],
        &["resume", "test"],
        &["destroy", "test"],
        &["start", "test"],
        &["desc", "test", "--live", "hello"],
        &["shutdown", "test"],
        &["define", &test2],
        &["undefine", "test2"],
    ];
    for op in ops {
        daemon.virsh(op);
    }
    let start = Instant::now();
    while virsh.collect() < virsh_from + ops.len() || watcher.collect() < watcher_from + ops.len() {
        assert!(start.elapsed() < PATIENCE, "events missing: virsh {:?}, watcher {:?}", virsh.seen, watcher.seen);
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200)); // anything extra shows up now
    virsh.stop();
    watcher.stop();
    virsh.collect();
    watcher.collect();

    let from_virsh: Vec<_> = virsh.seen[virsh_from..].iter().map(|l| virsh_words(l)).collect();
    let from_watcher: Vec<_> = watcher.seen[watcher_from..].iter().map(|l| watcher_words(l)).collect();
    assert_eq!(from_watcher, from_virsh, "virsh printed {:?}\nthe watcher printed {:?}", virsh.seen, watcher.seen);
    let expected = [
        ("lifecycle", "test", "Suspended Paused"),
        ("lifecycle", "test", "Resumed Unpaused"),
        ("lifecycle", "test", "Stopped Destroyed"),
        ("lifecycle", "test", "Started Booted"),
        ("metadata-change", "test", "type description, uri <null>"),
        ("lifecycle", "test", "Stopped Shutdown"),
        ("lifecycle", "test2", "Defined Added"),
        ("lifecycle", "test2", "Undefined Removed"),
    ]
    .map(|(e, d, x)| (e.to_string(), d.to_string(), x.to_string()));
    assert_eq!(from_virsh, expected);
}

/// A line of virsh or of `--format virsh` after its timestamp
/// (`2026-12-02 20:59:26.281+0000: `), checked to be there.
fn after_timestamp(line: &str) -> String {
    let (stamp, rest) = line.split_at(line.find("+0000: ").map_or(0, |at| at + 7));
    assert!(stamp.len() == 30 && stamp.as_bytes()[10] == b' ', "no timestamp: {line:?}");
    rest.to_string()
}

#[test]
fn virsh_format_is_byte_for_byte_virshs() {
    let Some(daemon) = Daemon::start("virevent-watch: --format virsh prints what virsh prints") else { return };
    let virsh = |args: &[&str]| {
        let mut command = Command::new("virsh");
        command.args(["-q", "-c", &daemon.uri]).args(args).args(["--loop", "--timestamp"]);
        Process::spawn(&mut command, None)
    };
    let mut domains = virsh(&["event", "--all"]);
    let mut networks = virsh(&["net-event", "--event", "lifecycle"]);
    let mut pools = virsh(&["pool-event", "--event", "lifecycle"]);
    let mut refreshes = virsh(&["pool-event", "--event", "refresh"]);
    let mut watcher = Process::watch(&["--uri", &daemon.uri, "--format", "virsh"], None);
    watcher.wait_ready();
    // The same events as XML, for docs/events.rng (validated on drop).
    let mut xml = Process::watch(&["--uri", &daemon.uri], None);
    xml.wait_ready();
    // virsh shows no sign of being ready: make each one's kind of event until it
    // reports one, then compare what follows.
    let probes: [(&mut Process, &[&[&str]]); 4] = [
        (&mut domains, &[&["desc", "test", "--live", "probe"]]),
        (&mut networks, &[&["net-destroy", "default"], &["net-start", "default"]]),
        (&mut pools, &[&["pool-destroy", "default-pool"], &["pool-start", "default-pool"]]),
        (&mut refreshes, &[&["pool-refresh", "default-pool"]]),
    ];
    for (process, commands) in probes {
        let start = Instant::now();
        while process.collect() == 0 {
            assert!(start.elapsed() < PATIENCE, "virsh reported no probe event");
            for command in commands {
                daemon.virsh(command);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    thread::sleep(Duration::from_millis(300));
    let mut all = [domains, networks, pools, refreshes, watcher];
    let from: Vec<usize> = all.iter_mut().map(Process::collect).collect();

    let ops: [&[&str]; 11] = [
        &["suspend", "test"],
        &["resume", "test"],
        &["net-destroy", "default"],
        &["destroy", "test"],
        &["pool-refresh", "default-pool"],
        &["start", "test"],
        &["desc", "test", "--live", "--title", "a title"],
        &["metadata", "test", "http://example.org/x", "--key", "x", "--set", "<a/>", "--live"],
        &["pool-destroy", "default-pool"],
        &["net-start", "default"],
        &["pool-start", "default-pool"],
    ];
    for op in ops {
        daemon.virsh(op);
    }
    let want = [6, 2, 2, 1];
    let start = Instant::now();
    loop {
        let counts: Vec<usize> = all.iter_mut().zip(&from).map(|(p, from)| p.collect() - from).collect();
        if counts[..4] == want && counts[4] == want.iter().sum::<usize>() {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "events missing: {counts:?}, want {want:?}");
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200)); // anything extra shows up now
    for process in &mut all {
        process.stop();
        process.collect();
    }
    let lines: Vec<Vec<String>> =
        all.iter().zip(&from).map(|(p, from)| p.seen[*from..].iter().map(|l| after_timestamp(l)).collect()).collect();
    // The XML watcher printed every event the virsh-format one did.
    let start = Instant::now();
    while xml.collect() < all[4].seen.len() {
        assert!(start.elapsed() < PATIENCE, "the XML watcher printed {:?}", xml.seen);
        thread::sleep(Duration::from_millis(10));
    }
    xml.stop();
    assert_eq!(xml.collect(), all[4].seen.len(), "{:?}", xml.seen);
    let printed = &lines[4];
    let of = |prefix: &str, object: &str| -> Vec<String> {
        printed.iter().filter(|l| l.starts_with(prefix) && l.contains(object)).cloned().collect()
    };
    assert_eq!(of("event ", "for domain '"), lines[0]);
    assert_eq!(of("event 'lifecycle'", " for network "), lines[1]);
    assert_eq!(of("event 'lifecycle'", " for storage pool "), lines[2]);
    assert_eq!(of("event 'refresh'", " for storage pool "), lines[3]);
    assert_eq!(printed.len(), 11, "{printed:?}");
    assert_eq!(
        lines[0],
        [
            "event 'lifecycle' for domain 'test': Suspended Paused",
            "event 'lifecycle' for domain 'test': Resumed Unpaused",
            "event 'lifecycle' for domain 'test': Stopped Destroyed",
            "event 'lifecycle' for domain 'test': Started Booted",
            "event 'metadata-change' for domain 'test': type title, uri <null>",
            "event 'metadata-change' for domain 'test': type element, uri http://example.org/x",
        ]
    );
    assert_eq!(lines[1], ["event 'lifecycle' for network default: Stopped", "event 'lifecycle' for network default: Started"]);
    assert_eq!(
        lines[2],
        ["event 'lifecycle' for storage pool default-pool: Stopped", "event 'lifecycle' for storage pool default-pool: Started"]
    );
    assert_eq!(lines[3], ["event 'refresh' for storage pool default-pool"]);
}

#[test]
fn keepalive_options_end_the_watch_when_the_daemon_stops_answering() {
    let what = "virevent-watch: -k and -K against a stopped daemon";
    let Some(daemon) = Daemon::start(what) else { return };
    let mut quick = Process::watch(&["--uri", &daemon.uri, "-k", "1", "-K", "2"], None);
    let mut off = Process::watch(&["--uri", &daemon.uri, "--keepalive-interval=0", "--timeout", "5"], None);
    quick.wait_ready();
    off.wait_ready();
    let pid = daemon.child.as_ref().unwrap().id() as libc::pid_t;
    // SAFETY: plain system call on our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let stopped = Instant::now();
    let (status, rest, stderr) = quick.finish();
    let waited = stopped.elapsed();
    let (off_status, off_rest, off_stderr) = off.finish();
    // SAFETY: as above; the daemon goes on, to end at its drop.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    // Silence for 1 s, a PING, 1 s more, a second, 1 s more: dead after 3 s.
    assert!(waited >= Duration::from_millis(2900) && waited < Duration::from_secs(6), "{waited:?}");
    assert_eq!(status, Some(1), "{stderr}");
    let sock = format!("{}/libvirt-sock", daemon.dir.display());
    assert!(
        stderr.starts_with(&format!(
            "virevent-watch: connection lost: connection to the libvirt daemon at '{sock}' lost: \
             connection closed due to keepalive timeout (nothing heard from the daemon for "
        )),
        "{stderr}"
    );
    let rest: Vec<String> = rest.iter().map(|l| without_stamps(l).0).collect();
    assert_eq!(rest, ["<event type=\"connection-closed\"><reason>keepalive</reason></event>"]);
    // Keepalive off: the watch outlives the stopped daemon to its timeout.
    assert_eq!((off_status, off_rest, off_stderr), (Some(0), vec![], String::new()));
}

#[test]
fn keepalive_options_on_the_embedded_driver_are_noted() {
    let (status, stdout, stderr) = run(&["-k", "1", "--timeout", "0.2", "--uri", "test:///empty"]);
    assert_eq!((status, stdout.as_str()), (Some(0), ""), "{stderr}");
    assert!(stderr.starts_with("virevent-watch: keepalive not set: keepalive needs a connection to a libvirt daemon"), "{stderr}");
    // Without -k or -K, nothing is said about it.
    let (_, _, stderr) = run(&["--timeout", "0.2", "--uri", "test:///empty"]);
    assert!(!stderr.contains("keepalive"), "{stderr}");
}

#[test]
fn a_killed_daemon_ends_the_watch_with_an_error() {
    let Some(mut daemon) = Daemon::start("virevent-watch: a killed daemon ends the watch with an error") else { return };
    let mut all = Process::watch(&["--uri", &daemon.uri], None);
    let mut domains = Process::watch(&["--uri", &daemon.uri, "--filter", "domain-*", "--format", "line"], None);
    all.wait_ready();
    domains.wait_ready();
    daemon.virsh(&["suspend", "test"]);
    assert!(all.line().contains("<reason>suspended-paused</reason>"));
    assert!(domains.line().ends_with("test running -> paused (suspended-paused)"));
    let sock = format!("{}/libvirt-sock", daemon.dir.display());
    daemon.kill(libc::SIGKILL);

    let lost = format!(
        "virevent-watch: connection lost: the libvirt daemon at '{sock}' closed the connection (end of file)\n"
    );
    let (status, rest, stderr) = all.finish();
    assert_eq!((status, stderr.as_str()), (Some(1), lost.as_str()));
    let rest: Vec<String> = rest.iter().map(|l| without_stamps(l).0).collect();
    assert_eq!(rest, ["<event type=\"connection-closed\"><reason>eof</reason></event>"]);
    // A filter that does not take connection-closed changes nothing but the output.
    assert_eq!(domains.finish(), (Some(1), vec![], lost));
}

/// How many threads process `pid` has, as /proc/PID/status says.
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("Threads:")).expect("a Threads line");
    line.trim().parse().unwrap()
}

/// The lines of `lines` that name `uri` as the XML watcher does (the root's
/// last attribute, XML-escaped), without it, timestamp and seq.
fn xml_of(lines: &[String], uri: &str) -> Vec<String> {
    let attribute = format!(" uri=\"{}\"", uri.replace('&', "&amp;"));
    lines
        .iter()
        .filter_map(|l| {
            let (root, rest) = l.split_once('>').unwrap_or_else(|| panic!("{l}"));
            let root = root.strip_suffix(&attribute)?;
            Some(without_stamps(&format!("{root}>{rest}")).0)
        })
        .collect()
}

/// The bodies of the `--format line` lines of `lines` that start with `URI: `.
fn line_of<'a>(lines: &'a [String], uri: &str) -> Vec<&'a str> {
    lines.iter().filter_map(|l| l.strip_prefix(&format!("{uri}: "))).map(line_body).collect()
}

#[test]
fn several_daemons_are_watched_in_one_thread_each_event_naming_its_uri() {
    let what = "virevent-watch: several --uri in one thread";
    let Some(mut a) = Daemon::start(what) else { return };
    let mut b = Daemon::start_with("", None);
    // A parameter more, for a '&' to escape in XML.
    let (a_uri, b_uri) = (a.uri.clone(), format!("{}&no_tty=1", b.uri));
    let both = ["--uri", a_uri.as_str(), "--uri", b_uri.as_str()];
    let with = |more: &[&'static str]| -> Vec<&str> { both.iter().copied().chain(more.iter().copied()).collect() };
    let mut xml = Process::watch(&with(&[]), None);
    let mut line = Process::watch(&with(&["--format", "line"]), None);
    // --count counts the events of every connection.
    let mut json = Process::watch(&with(&["--format", "json", "--count", "3"]), None);
    let mut virsh = Process::watch(&with(&["--format", "virsh", "--count", "3"]), None);
    for watcher in [&mut xml, &mut line, &mut json, &mut virsh] {
        watcher.wait_ready();
        assert_eq!(common::sockets_watched(watcher.child.id()), 2, "the sockets of the two connections");
        assert_eq!(threads(watcher.child.id()), 1, "virevent-watch's threads, watching two daemons");
    }
    a.virsh(&["suspend", "test"]);
    b.virsh(&["destroy", "test"]);
    a.virsh(&["resume", "test"]);
    let (from_xml, from_line) = (xml.lines(3), line.lines(3));
    // Across connections the order is the daemons'; within one it is its own.
    assert_eq!(
        xml_of(&from_xml, &a_uri),
        [transition(1, "running", "paused", "suspended-paused"), transition(1, "paused", "running", "resumed-unpaused")]
    );
    assert_eq!(xml_of(&from_xml, &b_uri), [transition(-1, "running", "shutoff", "stopped-destroyed")]);
    assert_eq!(
        line_of(&from_line, &a_uri),
        ["test running -> paused (suspended-paused)", "test paused -> running (resumed-unpaused)"]
    );
    assert_eq!(line_of(&from_line, &b_uri), ["test running -> shutoff (stopped-destroyed)"]);
    let (status, printed, stderr) = json.finish();
    assert_eq!((status, stderr.as_str()), (Some(0), ""));
    let named = |uri: &str| printed.iter().filter(|l| l.ends_with(&format!(",\"uri\":\"{uri}\"}}"))).count();
    assert_eq!((printed.len(), named(&a_uri), named(&b_uri)), (3, 2, 1), "{printed:?}");
    let (status, printed, stderr) = virsh.finish();
    assert_eq!((status, stderr.as_str()), (Some(0), ""));
    let of = |uri: &str| -> Vec<String> {
        printed.iter().filter_map(|l| l.strip_prefix(&format!("{uri}: "))).map(after_timestamp).collect()
    };
    assert_eq!(
        of(&a_uri),
        ["event 'lifecycle' for domain 'test': Suspended Paused", "event 'lifecycle' for domain 'test': Resumed Unpaused"]
    );
    assert_eq!(of(&b_uri), ["event 'lifecycle' for domain 'test': Stopped Destroyed"]);

    // One daemon goes: its connection-closed, named, then the loss on stderr;
    // the watch goes on with the other.
    let lost = |daemon: &Daemon, uri: &str| {
        let sock = format!("{}/libvirt-sock", daemon.dir.display());
        format!("virevent-watch: connection lost: {uri}: the libvirt daemon at '{sock}' closed the connection (end of file)\n")
    };
    let (lost_a, lost_b) = (lost(&a, &a_uri), lost(&b, &b_uri));
    a.kill(libc::SIGTERM);
    let closed = "<event type=\"connection-closed\"><reason>eof</reason></event>";
    assert_eq!(xml_of(&xml.lines(1), &a_uri), [closed]);
    assert_eq!(line_of(&line.lines(1), &a_uri), ["connection-closed reason=eof"]);
    xml.wait_stderr_ending(&lost_a);
    line.wait_stderr_ending(&lost_a);
    b.virsh(&["start", "test"]);
    assert_eq!(xml_of(&xml.lines(1), &b_uri), [transition(2, "shutoff", "running", "started-booted")]);
    assert_eq!(line_of(&line.lines(1), &b_uri), ["test shutoff -> running (started-booted)"]);
    assert_eq!(xml.child.try_wait().unwrap(), None, "the watch ended with one daemon left");
    // The last one gone ends it, exit status 1, each loss said in turn.
    b.kill(libc::SIGTERM);
    let (status, rest, stderr) = xml.finish();
    assert_eq!((status, xml_of(&rest, &b_uri), stderr), (Some(1), vec![closed.to_string()], lost_a.clone() + &lost_b));
    let (status, rest, stderr) = line.finish();
    assert_eq!((status, line_of(&rest, &b_uri), stderr), (Some(1), vec!["connection-closed reason=eof"], lost_a + &lost_b));
}

/// Two embedded connections: a notice for each, naming it, and none offers
/// --demo, which wants one --uri.
#[test]
fn several_embedded_uris_are_each_noted_once() {
    let (status, stdout, stderr) = run(&["--uri", "test:///default", "--uri", "test:///empty", "--timeout", "0.2"]);
    assert_eq!((status, stdout.as_str()), (Some(0), ""), "{stderr}");
    let notices: Vec<&str> = stderr.lines().collect();
    assert_eq!(notices.len(), 2, "{stderr}");
    for (notice, uri) in notices.iter().zip(["test:///default", "test:///empty"]) {
        assert!(notice.starts_with(&format!("virevent-watch: {uri} is the embedded test driver")), "{notice}");
        assert!(notice.ends_with("which it does only with --demo and one --uri"), "{notice}");
    }
}

/// examples-c/fleet.c built against this build's library, as the program
/// `c-NAME` (one per test: the tests run at once).
fn fleet(name: &str) -> Command {
    let mut command = Command::new(common::build_c(&common::root().join("examples-c/fleet.c"), name));
    // cargo's LD_LIBRARY_PATH names target/debug too, where another build's
    // library may stand: this build's, as its rpath says.
    command.env("LD_LIBRARY_PATH", common::library_dir());
    command
}

/// The events of `lines` (fleet's `URI: XML`) from `uri`, without timestamp
/// and seq, checked against docs/events.rng.
fn fleet_events(lines: &[String], uri: &str) -> Vec<String> {
    let xml: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix(&format!("{uri}: "))).collect();
    common::schema::validate(&format!("examples-c/fleet, {uri}"), &xml);
    xml.iter().map(|l| without_stamps(l).0).collect()
}

#[test]
fn fleet_drives_its_two_embedded_connections() {
    let program = || fleet("fleet-embedded");
    let output = program().stdin(Stdio::null()).output().expect("fleet runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    let (suspended, resumed) =
        (transition(1, "running", "paused", "suspended-paused"), transition(1, "paused", "running", "resumed-unpaused"));
    // Two connections, each its own domain and its own seq from 1.
    assert_eq!(fleet_events(&lines, "test:///default"), [suspended.clone(), resumed.clone(), suspended, resumed]);
    let seqs: Vec<u64> = lines.iter().map(|l| without_stamps(l).1).collect();
    assert_eq!(seqs, [1, 2, 1, 2]);
    // -n stops it at N events.
    let output = program().args(["-n", "3"]).output().unwrap();
    assert_eq!((output.status.code(), output.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count()), (Some(0), 3));
}

#[test]
fn fleet_watches_two_daemons_in_one_poll_and_drops_the_lost_one() {
    let Some(mut a) = Daemon::start("examples-c/fleet against two daemons") else { return };
    let mut b = Daemon::start_with("", None);
    let mut watcher = Process::spawn(fleet("fleet-daemons").args([&a.uri, &b.uri]), None);
    watcher.daemons = 2;
    watcher.wait_ready();
    assert_eq!(threads(watcher.child.id()), 1, "fleet's threads");
    a.virsh(&["suspend", "test"]);
    b.virsh(&["destroy", "test"]);
    a.virsh(&["resume", "test"]);
    let lines = watcher.lines(3);
    assert_eq!(
        fleet_events(&lines, &a.uri),
        [transition(1, "running", "paused", "suspended-paused"), transition(1, "paused", "running", "resumed-unpaused")]
    );
    assert_eq!(fleet_events(&lines, &b.uri), [transition(-1, "running", "shutoff", "stopped-destroyed")]);
    let closed = "<event type=\"connection-closed\"><reason>eof</reason></event>";
    a.kill(libc::SIGTERM);
    assert_eq!(fleet_events(&watcher.lines(1), &a.uri), [closed]);
    b.virsh(&["start", "test"]);
    assert_eq!(fleet_events(&watcher.lines(1), &b.uri), [transition(2, "shutoff", "running", "started-booted")]);
    b.kill(libc::SIGTERM);
    let (status, rest, stderr) = watcher.finish();
    assert_eq!((status, fleet_events(&rest, &b.uri)), (Some(1), vec![closed.to_string()]), "{stderr}");
    let lost = |d: &Daemon| format!("fleet: connection lost: {}: the libvirt daemon at '{}/libvirt-sock' closed the connection (end of file)\n", d.uri, d.dir.display());
    assert_eq!(stderr, lost(&a) + &lost(&b));
}

/// `fleet -r`: a restarted daemon's connection is lost and restored, with
/// the resync of what changed, while the other's goes on in the same poll.
#[test]
fn fleet_reconnects_each_connection_on_its_own() {
    let Some(mut a) = Daemon::start("examples-c/fleet -r against two daemons") else { return };
    let b = Daemon::start_with("", None);
    let mut watcher = Process::spawn(fleet("fleet-reconnect").args(["-r", &a.uri, &b.uri]), None);
    watcher.daemons = 2;
    watcher.wait_ready();
    a.virsh(&["suspend", "test"]);
    assert_eq!(fleet_events(&watcher.lines(1), &a.uri), [transition(1, "running", "paused", "suspended-paused")]);
    a.kill(libc::SIGKILL);
    let lost = watcher.line();
    assert!(lost.starts_with(&format!("{}: <event type=\"connection-lost\"", a.uri)) && lost.contains("<reason>eof</reason>"), "{lost}");
    b.virsh(&["suspend", "test"]);
    assert_eq!(fleet_events(&watcher.lines(1), &b.uri), [transition(1, "running", "paused", "suspended-paused")]);
    a.restart();
    let back = watcher.lines(2);
    let back = fleet_events(&back, &a.uri);
    assert_eq!(back[0], transition(1, "paused", "running", "resync"));
    assert!(back[1].starts_with("<event type=\"connection-restored\"><outage-start>"), "{}", back[1]);
    a.virsh(&["suspend", "test"]);
    assert_eq!(fleet_events(&watcher.lines(1), &a.uri), [transition(1, "running", "paused", "suspended-paused")]);
    assert_eq!(threads(watcher.child.id()), 1, "fleet's threads");
    watcher.stop();
}

/// A daemon that also listens for TLS on 127.0.0.1, with certificates made
/// here: the daemon's (for 127.0.0.1 and localhost) and a client's, both of
/// the CA `ca`; with `allowed_dn`, libvirtd's tls_allowed_dn_list. `None`
/// (with a SKIPPED line) without libvirtd, virsh or openssl.
/// Certificates for a daemon on 127.0.0.1 and localhost and for a client,
/// a free TLS port, and the libvirtd.conf lines that serve them there.
fn tls_setup() -> (Pki, u16, String) {
    let pki = Pki::new(common::test_dir("pki"));
    pki.issue("ca", "daemon", Role::Server("IP:127.0.0.1,DNS:localhost"), Validity::Now);
    pki.issue("ca", "client", Role::Client, Validity::Now);
    let port = common::free_port();
    let conf = format!(
        "tls_port = \"{port}\"\nkey_file = \"{}\"\ncert_file = \"{}\"\nca_file = \"{}\"\n",
        pki.key("daemon").display(),
        pki.cert("daemon").display(),
        pki.ca_cert("ca").display()
    );
    (pki, port, conf)
}

fn tls_daemon(what: &str, allowed_dn: Option<&str>) -> Option<(Daemon, Pki, u16)> {
    use common::tools;
    if !tools::needs(what, &[tools::LIBVIRTD, tools::VIRSH, tools::OPENSSL]) {
        return None;
    }
    let (pki, port, mut conf) = tls_setup();
    if let Some(dn) = allowed_dn {
        conf.push_str(&format!("tls_allowed_dn_list = [\"{dn}\"]\n"));
    }
    Some((Daemon::start_with(&conf, Some(port)), pki, port))
}

#[test]
fn reports_the_same_events_as_virsh_over_tls() {
    let Some((daemon, pki, port)) = tls_daemon("virevent-watch against virsh over TLS", None) else { return };
    let good = pki.client_dir("good", "ca", Some("client"));
    let uri = format!("test+tls://127.0.0.1:{port}/default?pkipath={}", good.display());
    same_events_as_virsh(&daemon, &uri);
    // The certificate's other name, where localhost may first resolve to ::1.
    let uri = format!("test+tls://localhost:{port}/default?pkipath={}", good.display());
    let (status, stdout, stderr) = run(&["--uri", &uri, "--timeout", "0.2"]);
    assert_eq!((status, stdout.as_str(), stderr.as_str()), (Some(0), "", REFUSED));
}

/// What virevent-watch says when it cannot connect to `uri`: exit 1 and the
/// library's message after `cannot connect to 'URI': `.
fn cannot_connect(uri: &str) -> String {
    let (status, stdout, stderr) = run(&["--uri", uri, "--timeout", "0.2"]);
    assert_eq!((status, stdout.as_str()), (Some(1), ""), "{uri}: {stderr}");
    let prefix = format!("virevent-watch: cannot connect to '{uri}': ");
    assert!(stderr.starts_with(&prefix), "{stderr}");
    stderr[prefix.len()..].trim_end().to_string()
}

#[test]
fn tls_failures_name_their_cause() {
    let Some((daemon, pki, port)) = tls_daemon("virevent-watch: TLS failures", None) else { return };
    let at = format!("cannot connect to the libvirt daemon at '127.0.0.1:{port}': TLS: ");
    let uri = |dir: &Path| format!("test+tls://127.0.0.1:{port}/default?pkipath={}", dir.display());

    let wrong_ca = pki.client_dir("wrong-ca", "other-ca", Some("client"));
    assert_eq!(
        cannot_connect(&uri(&wrong_ca)),
        format!(
            "{at}the daemon's certificate is not signed by the CA in '{}/cacert.pem' (unknown CA)",
            wrong_ca.display()
        )
    );
    // no_verify=1 takes it, and says so.
    let (status, _, stderr) = run(&["--uri", &format!("{}&no_verify=1", uri(&wrong_ca)), "--timeout", "0.2"]);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(stderr, format!("{NO_VERIFY}{REFUSED}"));

    let empty = pki.dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(
        cannot_connect(&uri(&empty)),
        format!("{at}cannot read the CA certificate '{}/cacert.pem': No such file or directory (os error 2)", empty.display())
    );
    let no_key = pki.client_dir("no-key", "ca", Some("client"));
    std::fs::remove_file(no_key.join("clientkey.pem")).unwrap();
    assert_eq!(
        cannot_connect(&uri(&no_key)),
        format!("{at}cannot read the client key '{}/clientkey.pem': No such file or directory (os error 2)", no_key.display())
    );
    // A CRL that is not one.
    let bad_crl = pki.client_dir("bad-crl", "ca", Some("client"));
    std::fs::write(bad_crl.join("cacrl.pem"), "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n").unwrap();
    let why = cannot_connect(&uri(&bad_crl));
    assert!(why.starts_with(&format!("{at}the CRL '{}/cacrl.pem' is not usable: ", bad_crl.display())), "{why}");
    // Without a certificate of ours, libvirtd refuses us after the handshake.
    let anonymous = pki.client_dir("anonymous", "ca", None);
    assert_eq!(cannot_connect(&uri(&anonymous)), format!("{at}the daemon refused our certificate"));
    drop(daemon);

    // Certificates libvirtd would not start with, from openssl's own server.
    pki.issue("ca", "expired", Role::Server("IP:127.0.0.1"), Validity::Expired);
    pki.issue("ca", "not-yet", Role::Server("IP:127.0.0.1"), Validity::NotYet);
    pki.issue("ca", "elsewhere", Role::Server("DNS:elsewhere.example"), Validity::Now);
    pki.issue("ca", "revoked", Role::Server("IP:127.0.0.1"), Validity::Now);
    pki.revoke("ca", "revoked");
    // The CA's CRL now comes with the CA (cacrl.pem), as libvirt finds it.
    let good = pki.client_dir("with-crl", "ca", Some("client"));
    let revoked = format!("the daemon's certificate is revoked by the CRL '{}/cacrl.pem'", good.display());
    for (cert, why) in [
        ("expired", "the daemon's certificate has expired"),
        ("not-yet", "the daemon's certificate is not valid yet"),
        ("elsewhere", "the daemon's certificate is not valid for the host name '127.0.0.1'"),
        ("revoked", revoked.as_str()),
    ] {
        let server = TlsServer::start(&pki, cert);
        let at = format!("cannot connect to the libvirt daemon at '127.0.0.1:{}': TLS: ", server.port);
        let uri = format!("test+tls://127.0.0.1:{}/default?pkipath={}", server.port, good.display());
        assert_eq!(cannot_connect(&uri), format!("{at}{why}"), "{cert}");
    }
}

#[test]
fn a_daemon_whose_dn_list_lacks_us_refuses_our_certificate() {
    let what = "virevent-watch: TLS with tls_allowed_dn_list";
    let Some((_daemon, pki, port)) = tls_daemon(what, Some("CN=someone else")) else { return };
    let good = pki.client_dir("good", "ca", Some("client"));
    let uri = format!("test+tls://127.0.0.1:{port}/default?pkipath={}", good.display());
    assert_eq!(
        cannot_connect(&uri),
        format!("cannot connect to the libvirt daemon at '127.0.0.1:{port}': TLS: the daemon refused our certificate")
    );
}

/// What virevent-watch says of a `no_verify=1` URI.
const NO_VERIFY: &str = "virevent-watch: warning: no_verify=1: the daemon's certificate is not checked\n";

/// `openssl s_server` on a free port of 127.0.0.1 with the certificate
/// `cert`: a TLS server with certificates libvirtd refuses to start with.
/// Stopped on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(pki: &Pki, cert: &str) -> TlsServer {
        let port = common::free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(pki.cert(cert))
            .arg("-key")
            .arg(pki.key(cert))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs");
        let mut server = TlsServer { child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(server.child.try_wait().unwrap().is_none(), "openssl s_server ended");
            assert!(start.elapsed() < PATIENCE, "openssl s_server did not listen in time");
            thread::sleep(Duration::from_millis(10));
        }
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon and a private sshd in front of it (tests/common/sshd.rs); `None`
/// (with a SKIPPED line) without libvirtd, virsh, sshd, ssh, nc, unshare or root.
fn ssh_daemon(what: &str) -> Option<(Daemon, Sshd)> {
    use common::tools;
    let needed = [tools::LIBVIRTD, tools::VIRSH, tools::SSHD, tools::SSH, tools::SSH_KEYGEN, tools::NC, tools::UNSHARE];
    if !tools::needs(what, &needed) || !tools::needs_root(what) {
        return None;
    }
    Some((Daemon::start_with("", None), Sshd::start(common::test_dir("sshd"))))
}

#[test]
fn reports_the_same_events_as_virsh_over_ssh() {
    let Some((daemon, sshd)) = ssh_daemon("virevent-watch against virsh over ssh") else { return };
    let sock = format!("{}/libvirt-sock", daemon.dir.display());
    same_events_as_virsh(&daemon, &sshd.virsh_uri(&sock));
    let uri = sshd.uri(&sock, "client_key", "known_hosts");
    // One thread, the ssh child a process of its own, reaped at the end.
    let mut watcher = Process::watch(&["--uri", &uri, "--timeout", "1"], None);
    watcher.wait_ready();
    let pid = watcher.child.id();
    assert_eq!(std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count(), 1, "virevent-watch's threads");
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let children: Vec<&str> = children.split_whitespace().collect();
    assert_eq!(children.len(), 1, "{children:?}");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", children[0])).unwrap();
    assert_eq!(comm.trim(), "ssh");
    let (status, rest, stderr) = watcher.finish();
    assert_eq!((status, rest, stderr), (Some(0), vec![], String::new()));
    assert!(!Path::new(&format!("/proc/{}", children[0])).exists(), "the ssh child outlived the watch");
}

#[test]
fn ssh_failures_say_what_ssh_said() {
    let Some((daemon, sshd)) = ssh_daemon("virevent-watch: ssh failures") else { return };
    let sock = format!("{}/libvirt-sock", daemon.dir.display());
    let at = format!("the connection to the libvirt daemon at 'ssh://root@127.0.0.1:{}' ended: ssh said: ", sshd.port);
    for (uri, said) in [
        (sshd.uri(&sock, "client_key", "wrong_known_hosts"), "Host key verification failed."),
        (sshd.uri(&sock, "stranger_key", "known_hosts"), "Permission denied (publickey)"),
        (sshd.uri("/nonexistent/sock", "client_key", "known_hosts"), "No such file or directory"),
    ] {
        let why = cannot_connect(&uri);
        assert!(why.starts_with(&at) && why.contains(said), "{uri}: {why}");
    }
    // A program that is not there, named.
    let uri = format!("{}&command=/nonexistent/ssh", sshd.uri(&sock, "client_key", "known_hosts"));
    let why = cannot_connect(&uri);
    assert!(why.contains("cannot run '/nonexistent/ssh'"), "{why}");
}

/// A daemon that wants SASL on TCP (and, with `tls`, on TLS), with a private
/// SASL configuration (SASL_CONF_PATH) whose sasldb knows alice.
struct SaslDaemon {
    daemon: Daemon,
    /// The SASL configuration, where the test's auth.conf files go too.
    sasl: SaslConf,
    /// The TLS port and the client's pki folder.
    tls: Option<(u16, PathBuf, Pki)>,
}


fn sasl_daemon(what: &str, tls: bool) -> Option<SaslDaemon> {
    use common::tools;
    let mut needed = vec![tools::LIBVIRTD, tools::VIRSH, tools::SASLPASSWD2, tools::SASL_PLUGINS, tools::LIBSASL2_DEV];
    if tls {
        needed.push(tools::OPENSSL);
    }
    if common::sasl::feature_off(what) || !tools::needs(what, &needed) {
        return None;
    }
    let sasl = SaslConf::new(common::test_dir("sasl"));
    let mut conf = "auth_tcp = \"sasl\"\n".to_string();
    let tls = tls.then(|| {
        let (pki, port, tls_conf) = tls_setup();
        conf.push_str("auth_tls = \"sasl\"\n");
        conf.push_str(&tls_conf);
        (port, pki.client_dir("good", "ca", Some("client")), pki)
    });
    let daemon = Daemon::start_in_env(&conf, tls.as_ref().map(|t| t.0), &[("SASL_CONF_PATH", &sasl.dir)]);
    Some(SaslDaemon { daemon, sasl, tls })
}

impl SaslDaemon {
    /// An auth.conf in the test's folder giving `authname` and `password`
    /// for 127.0.0.1.
    fn auth_file(&self, name: &str, authname: &str, password: &str) -> PathBuf {
        let path = self.sasl.dir.join(name);
        let text = format!("[credentials-test]\nauthname={authname}\npassword={password}\n\n[auth-libvirt-127.0.0.1]\ncredentials=test\n");
        std::fs::write(&path, text).unwrap();
        path
    }
}

#[test]
fn sasl_over_tcp_reports_the_same_events_as_virsh() {
    let Some(sasl) = sasl_daemon("virevent-watch against virsh with SASL over TCP", false) else { return };
    let good = sasl.auth_file("auth.conf", "alice", common::sasl::PASSWORD);
    // Only DIGEST-MD5 of the three has a security layer, which plain TCP needs.
    let uri = format!("{}?authfile={}", sasl.daemon.tcp_uri, good.display());
    same_events_as_virsh(&sasl.daemon, &uri);
    // The same file through --auth-file.
    let (status, stdout, stderr) = run(&["--uri", &sasl.daemon.tcp_uri, "--auth-file", good.to_str().unwrap(), "--timeout", "0.2"]);
    assert_eq!((status, stdout.as_str(), stderr.as_str()), (Some(0), "", REFUSED));
}

#[test]
fn sasl_over_tls_reports_the_same_events_as_virsh() {
    let Some(sasl) = sasl_daemon("virevent-watch against virsh with SASL over TLS", true) else { return };
    let good = sasl.auth_file("auth.conf", "alice", common::sasl::PASSWORD);
    let (port, pki, _) = sasl.tls.as_ref().unwrap();
    let uri = |mech: &str| {
        format!("test+tls://127.0.0.1:{port}/default?pkipath={}&authfile={}&auth=sasl.{mech}", pki.display(), good.display())
    };
    same_events_as_virsh(&sasl.daemon, &uri("PLAIN"));
    for mech in ["SCRAM-SHA-256", "DIGEST-MD5"] {
        let (status, stdout, stderr) = run(&["--uri", &uri(mech), "--timeout", "0.2"]);
        assert_eq!((status, stdout.as_str(), stderr.as_str()), (Some(0), "", REFUSED), "{mech}");
    }
}

#[test]
fn sasl_failures_name_their_cause() {
    let Some(sasl) = sasl_daemon("virevent-watch: SASL failures", false) else { return };
    let tcp = &sasl.daemon.tcp_uri;
    let port = &tcp["test+tcp://127.0.0.1:".len()..tcp.len() - "/default".len()];
    let refused = format!("the libvirt daemon at '127.0.0.1:{port}' refused the connection: ");
    let with = |file: &Path, more: &str| format!("{tcp}?authfile={}{more}", file.display());
    for (file, who) in [("wrong-password.conf", "alice"), ("unknown-user.conf", "mallory")] {
        let path = sasl.auth_file(file, who, if who == "alice" { "wrong" } else { common::sasl::PASSWORD });
        let message = cannot_connect(&with(&path, ""));
        assert_eq!(
            message,
            format!("{refused}authentication failed: authentication failed (the credentials given for '{who}')"),
            "{file}"
        );
        // virsh says the same, in its words.
        let out = Command::new("virsh").args(["-c", &with(&path, ""), "list"]).stdin(Stdio::null()).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stderr).contains("authentication failed"), "virsh: {out:?}");
        assert!(!message.contains("wrong") && !message.contains(common::sasl::PASSWORD), "{message}");
    }
    let good = sasl.auth_file("auth.conf", "alice", common::sasl::PASSWORD);
    // Mechanisms without a security layer are not offered on plain TCP.
    for mech in ["SCRAM-SHA-256", "PLAIN"] {
        let message = cannot_connect(&with(&good, &format!("&auth=sasl.{mech}")));
        assert_eq!(
            message,
            format!(
                "{refused}SASL mechanism '{mech}' is not offered (it offers DIGEST-MD5, and on plain TCP it offers \
                 only mechanisms with a security layer of at least 56 bits)"
            )
        );
    }
    let message = cannot_connect(&with(&good, "&auth=polkit"));
    assert_eq!(message, format!("{refused}requested authentication type 'polkit' rejected"));
    // A file without the password, a file that is not there, and none at all.
    let nameless = sasl.sasl.dir.join("no-password.conf");
    std::fs::write(&nameless, "[credentials-test]\nauthname=alice\n[auth-libvirt-default]\ncredentials=test\n").unwrap();
    let message = cannot_connect(&with(&nameless, ""));
    assert!(
        message.starts_with("authentication to '127.0.0.1' needs VIR_CRED_PASSPHRASE (")
            && message.ends_with(&format!("and neither an authentication callback nor auth.conf ('{}') gives it", nameless.display())),
        "{message}"
    );
    let missing = sasl.sasl.dir.join("missing.conf");
    let message = cannot_connect(&with(&missing, ""));
    assert_eq!(message, format!("cannot read the credentials file '{}': No such file or directory (os error 2)", missing.display()));
}

/// Runs virevent-watch with `args` on a new pseudo-terminal (python3's pty
/// module), typing `answer` and a newline once it prompts for a password;
/// returns its exit code and everything the terminal showed.
fn on_a_terminal(args: &[&str], answer: &str) -> (i32, String) {
    const SCRIPT: &str = r#"
import os, pty, select, sys, time
answer = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
shown, typed, deadline = b"", False, time.time() + 20
while time.time() < deadline:
    if not select.select([fd], [], [], 0.5)[0]:
        continue
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    shown += data
    if not typed and b"password" in shown.lower():
        time.sleep(0.1)
        os.write(fd, answer + b"\n")
        typed = True
done, status = os.waitpid(pid, os.WNOHANG)
while done == 0 and time.time() < deadline + 5:
    time.sleep(0.05)
    done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
sys.stdout.write(shown.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let output = Command::new("python3").args(["-c", SCRIPT, answer, BIN]).args(args).output().expect("python3 runs");
    let shown = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), shown)
}

#[test]
fn a_password_missing_from_auth_conf_is_asked_on_the_terminal_without_echo() {
    let what = "virevent-watch: the password prompt";
    if !common::tools::needs(what, &[common::tools::PYTHON3]) {
        return;
    }
    let Some(sasl) = sasl_daemon(what, false) else { return };
    let name_only = sasl.sasl.dir.join("name-only.conf");
    std::fs::write(&name_only, "[credentials-test]\nauthname=alice\n[auth-libvirt-127.0.0.1]\ncredentials=test\n").unwrap();
    let args = ["--uri", &sasl.daemon.tcp_uri, "--auth-file", name_only.to_str().unwrap(), "--timeout", "0.2"];
    let (status, shown) = on_a_terminal(&args, common::sasl::PASSWORD);
    assert_eq!(status, 0, "{shown}");
    assert!(shown.to_lowercase().contains("password"), "no prompt: {shown:?}");
    assert!(!shown.contains(common::sasl::PASSWORD), "the password was echoed: {shown:?}");
    // A wrong one typed there is refused like one from a file.
    let (status, shown) = on_a_terminal(&args, "not it");
    assert_eq!(status, 1, "{shown}");
    assert!(shown.contains("authentication failed (the credentials given for 'alice')"), "{shown:?}");
    assert!(!shown.contains("not it"), "{shown:?}");
    // Without a terminal nothing is asked: the missing password is named.
    let message = cannot_connect(&format!("{}?authfile={}", sasl.daemon.tcp_uri, name_only.display()));
    assert!(message.contains("needs VIR_CRED_PASSPHRASE"), "{message}");
}

/// `--reconnect` with two daemons in one thread: one not there at start is
/// tried until it is, then watched; the other, ended and started again,
/// prints connection-lost, the state it lost while away as a resync,
/// connection-restored, then its live events; each keeps its own link.
#[test]
fn reconnect_waits_for_a_daemon_and_resyncs_one_that_restarts() {
    let what = "virevent-watch: --reconnect";
    let Some(mut a) = Daemon::start(what) else { return };
    let mut b = Daemon::start_with("", None);
    // b is not there when the watch starts: its socket is gone.
    b.kill(libc::SIGTERM);
    let (a_uri, b_uri) = (a.uri.clone(), b.uri.clone());
    let mut line = Process::watch(&["--reconnect", "--format", "line", "--uri", &a_uri, "--uri", &b_uri], None);
    line.daemons = 1;
    line.wait_ready();
    line.wait_stderr_ending("; trying again (--reconnect)\n");
    assert!(line.stderr_so_far.lock().unwrap().contains(&format!("cannot connect to '{b_uri}': ")));
    b.restart();
    line.wait_stderr_ending(&format!("virevent-watch: connected to '{b_uri}'\n"));
    assert_eq!(threads(line.child.id()), 1, "virevent-watch's threads");
    b.virsh(&["suspend", "test"]);
    assert_eq!(line_of(&line.lines(1), &b_uri), ["test running -> paused (suspended-paused)"]);

    // a: paused, then ended; started again, it has `test` running.
    a.virsh(&["suspend", "test"]);
    assert_eq!(line_of(&line.lines(1), &a_uri), ["test running -> paused (suspended-paused)"]);
    a.kill(libc::SIGTERM);
    let lost = line.line();
    let body = lost.strip_prefix(&format!("{a_uri}: ")).map(line_body).unwrap_or_else(|| panic!("{lost}"));
    assert!(body.starts_with("connection-lost reason=eof message="), "{body}");
    // b goes on meanwhile.
    b.virsh(&["resume", "test"]);
    assert_eq!(line_of(&line.lines(1), &b_uri), ["test paused -> running (resumed-unpaused)"]);
    a.restart();
    let back = line.lines(2);
    let back = line_of(&back, &a_uri);
    assert_eq!(back[0], "test paused -> running (resync)");
    assert!(back[1].starts_with("connection-restored outage-start="), "{}", back[1]);
    assert!(back[1].contains(" may-have-missed=\"domain-reboot domain-rtc-change "), "{}", back[1]);
    a.virsh(&["suspend", "test"]);
    assert_eq!(line_of(&line.lines(1), &a_uri), ["test running -> paused (suspended-paused)"]);
    assert_eq!(threads(line.child.id()), 1, "virevent-watch's threads");
    assert_eq!(line.child.try_wait().unwrap(), None, "the watch ended");
    line.stop();
}
