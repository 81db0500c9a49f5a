//! virevent-relay and virevent-sub run as a user runs them: private libvirt
//! daemons (the test driver, driven with virsh) -> relays -> a private
//! nats-server with JetStream on 127.0.0.1 -> the stream, read back both by
//! virevent-sub and directly (async-nats) for every header. NATS killed and
//! started again while events flow, a queue bound reached, a relay killed and
//! started again on its spool, a daemon restarted under the relay.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

#[path = "../../tests/common/mod.rs"]
mod common;
use common::libvirtd::Daemon;
use common::nats::Nats;

const RELAY: &str = env!("CARGO_BIN_EXE_virevent-relay");
const SUB: &str = env!("CARGO_BIN_EXE_virevent-sub");

/// How long anything expected may take before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(20);

/// A libvirtd and a nats-server, or `None` (SKIPPED lines) without them.
fn parts(what: &str) -> Option<(Daemon, Nats)> {
    let daemon = Daemon::start(what)?;
    let nats = Nats::start(what)?;
    Some((daemon, nats))
}

/// A running virevent-relay, its stderr in a file; SIGTERM and reaped on drop.
struct Relay {
    child: Option<Child>,
    dir: PathBuf,
}

impl Relay {
    /// Starts `virevent-relay --server URL ARGS` and waits until it watches
    /// every `--uri` it was given, or says it tries one again later.
    fn start(nats: &Nats, args: &[&str]) -> Relay {
        let dir = common::test_dir("relay");
        std::fs::create_dir_all(&dir).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
        let child = Command::new(RELAY)
            .arg("--server")
            .arg(nats.url())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("virevent-relay runs");
        let relay = Relay { child: Some(child), dir };
        let uris = args.iter().filter(|a| **a == "--uri").count();
        relay.wait_for_log(|log| {
            log.matches("virevent-relay: watching '").count() + log.matches("; trying again").count() >= uris
        });
        relay
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Waits until the relay's stderr satisfies `ready`.
    fn wait_for_log(&self, ready: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while !ready(&self.log()) {
            assert!(start.elapsed() < PATIENCE, "the relay did not get there in time; its stderr:\n{}", self.log());
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal`, reaps it, and returns its stderr.
    fn stop(&mut self, signal: libc::c_int) -> String {
        if let Some(mut child) = self.child.take() {
            if common::end_child(&mut child, signal, PATIENCE).is_none() {
                panic!("the relay did not end on signal {signal}; its stderr:\n{}", self.log());
            }
        }
        self.log()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop(libc::SIGKILL);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One message of the stream, as JetStream keeps it.
#[derive(Debug)]
struct Stored {
    subject: String,
    headers: BTreeMap<String, String>,
    payload: String,
}

impl Stored {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn seq(&self) -> u64 {
        self.header("Virevent-Seq").parse().unwrap()
    }
}

/// Every message of the stream `virevent` now, in stream order.
fn read_stream(nats: &Nats) -> Vec<Stored> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.expect("NATS answers");
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("virevent").await.expect("the relay made the stream");
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        if last == 0 {
            return out;
        }
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        while let Ok(Some(m)) = tokio::time::timeout(PATIENCE, messages.next()).await {
            let m = m.unwrap();
            let headers = m
                .headers
                .iter()
                .flat_map(|h| h.iter())
                .map(|(name, values)| (name.to_string(), values.first().map_or("", |v| v.as_str()).to_string()))
                .collect();
            let seq = m.info().unwrap().stream_sequence;
            out.push(Stored {
                subject: m.subject.to_string(),
                headers,
                payload: String::from_utf8(m.payload.to_vec()).unwrap(),
            });
            if seq >= last {
                break;
            }
        }
        out
    })
}

/// Waits until the stream holds `n` messages at least; returns them.
fn stream_with(nats: &Nats, n: usize) -> Vec<Stored> {
    let start = Instant::now();
    loop {
        let stored = if stream_exists(nats) { read_stream(nats) } else { Vec::new() };
        if stored.len() >= n {
            return stored;
        }
        assert!(start.elapsed() < PATIENCE, "the stream holds {} of {n} messages: {stored:#?}", stored.len());
        thread::sleep(Duration::from_millis(50));
    }
}

fn stream_exists(nats: &Nats) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let Ok(client) = async_nats::connect(nats.url()).await else { return false };
        async_nats::jetstream::new(client).get_stream("virevent").await.is_ok()
    })
}

/// `n` domain-state-transition events on the daemon: suspend and resume in turn.
fn make_events(daemon: &Daemon, n: usize) {
    for i in 0..n {
        daemon.virsh(&[if i % 2 == 0 { "suspend" } else { "resume" }, "test"]);
    }
}

/// An events-lost notice's count, first-seq and last-seq.
fn lost_range(notice: &Stored) -> (u64, u64, u64) {
    let attribute = |name: &str| -> u64 {
        let at = format!(" {name}=\"");
        notice.payload.split_once(&at).and_then(|(_, r)| r.split_once('"')).unwrap().0.parse().unwrap()
    };
    (attribute("count"), attribute("first-seq"), attribute("last-seq"))
}

/// Asserts no two messages share a deduplication id, and returns the ids.
fn assert_no_duplicate(stored: &[Stored]) -> HashSet<String> {
    let mut ids = HashSet::new();
    for m in stored {
        assert!(ids.insert(m.header("Nats-Msg-Id").to_string()), "stored twice: {m:?}");
    }
    ids
}

fn run(program: &str, args: &[&str]) -> Output {
    let mut child =
        Command::new(program).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn three_daemons_through_three_relays_reach_one_consumer_in_order_none_twice() {
    let what = "three daemons, three relays, one consumer";
    let Some((d1, nats)) = parts(what) else { return };
    let (d2, d3) = (Daemon::start_with("", None), Daemon::start_with("", None));
    let daemons = [&d1, &d2, &d3];
    let hosts = ["h1.example.com", "h2.example.com", "h3.example.com"];
    let _relays: Vec<Relay> =
        daemons.iter().zip(hosts).map(|(d, h)| Relay::start(&nats, &["--uri", &d.uri, "--host-name", h])).collect();
    // Interleaved: every host's events in flight at once.
    const N: usize = 6;
    thread::scope(|s| {
        for d in daemons {
            s.spawn(move || make_events(d, N));
        }
    });
    let stored = stream_with(&nats, 3 * N);
    assert_eq!(stored.len(), 3 * N, "{stored:#?}");
    assert_no_duplicate(&stored);
    for (d, host) in daemons.iter().zip(hosts) {
        let of_host: Vec<&Stored> = stored.iter().filter(|m| m.header("Virevent-Host") == host).collect();
        // Each host's events in its own order, seq 1 to N, on its subject.
        assert_eq!(of_host.iter().map(|m| m.seq()).collect::<Vec<_>>(), (1..=N as u64).collect::<Vec<_>>());
        for (i, m) in of_host.iter().enumerate() {
            let state = if i % 2 == 0 { "paused" } else { "running" };
            assert_eq!(m.subject, format!("virevent.{}.domain-state-transition", host.replace('.', "_")));
            assert_eq!(m.header("Virevent-Type"), "domain-state-transition");
            assert_eq!(m.header("Virevent-Uri"), d.uri);
            assert_eq!(m.header("Virevent-Format"), "xml");
            assert!(m.payload.contains(&format!("<new-state>{state}</new-state>")), "{m:?}");
            assert!(m.payload.contains(&format!(" seq=\"{}\"", i + 1)), "{m:?}");
            assert!(m.payload.contains(&format!(" timestamp=\"{}\"", m.header("Virevent-Timestamp"))));
            let start = m.header("Nats-Msg-Id").strip_prefix(&format!("{host}/")).unwrap();
            assert!(start.ends_with(&format!("/{}", i + 1)), "{m:?}");
        }
    }
    // The consumer: every host's events through one subject, each naming its
    // URI; then one host alone, in virsh's words.
    let url = format!("{}/virevent?subject=virevent.>", nats.url());
    let all = run(SUB, &["--uri", &url, "--count", &(3 * N).to_string()]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    let lines: Vec<String> = text(&all.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3 * N);
    common::schema::validate("virevent-sub's XML", &lines);
    for (line, m) in lines.iter().zip(&stored) {
        // The payload's root, then the URI as its last attribute.
        let root = &m.payload[..m.payload.find('>').unwrap()];
        assert!(line.starts_with(&format!("{root} uri=\"{}\">", m.header("Virevent-Uri"))), "{line}");
    }
    let one = format!("{}/virevent?subject=virevent.h2_example_com.>", nats.url());
    let h2 = run(SUB, &["--uri", &one, "--count", &N.to_string(), "--format", "virsh"]);
    assert!(h2.status.success(), "{}", text(&h2.stderr));
    let h2_lines: Vec<String> = text(&h2.stdout).lines().map(str::to_string).collect();
    assert_eq!(h2_lines.len(), N);
    for (i, line) in h2_lines.iter().enumerate() {
        let word = if i % 2 == 0 { "Suspended Paused" } else { "Resumed Unpaused" };
        assert!(line.ends_with(&format!("event 'lifecycle' for domain 'test': {word}")), "{line}");
        assert!(!line.contains("h2"), "one host: no label: {line}");
    }
    // And a filter: only the resumes, as XPath.
    let resumed = run(SUB, &["--uri", &url, "--count", "9", "--filter", "/event[new-state='running']", "--format", "line"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let resumed = text(&resumed.stdout);
    assert_eq!(resumed.lines().count(), 9);
    assert!(resumed.lines().all(|l| l.ends_with("test paused -> running (resumed-unpaused)")), "{resumed}");
}

#[test]
fn a_durable_consumer_goes_on_where_it_stopped() {
    let Some((daemon, nats)) = parts("a durable consumer") else { return };
    let _relay = Relay::start(&nats, &["--uri", &daemon.uri, "--host-name", "h"]);
    make_events(&daemon, 5);
    stream_with(&nats, 5);
    let url = format!("{}/virevent?subject=virevent.h.>&durable=reader", nats.url());
    let seqs = |out: &Output| -> Vec<u64> {
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().map(xml_seq).collect()
    };
    assert_eq!(seqs(&run(SUB, &["--uri", &url, "--count", "2"])), [1, 2]);
    assert_eq!(seqs(&run(SUB, &["--uri", &url, "--count", "2"])), [3, 4]);
    // A timeout ends it with what there was.
    assert_eq!(seqs(&run(SUB, &["--uri", &url, "--timeout", "2"])), [5]);
    // From a stream sequence, not durable.
    let from = format!("{}/virevent?start-seq=4", nats.url());
    assert_eq!(seqs(&run(SUB, &["--uri", &from, "--count", "2"])), [4, 5]);
}

/// The seq of an event line in XML.
fn xml_seq(line: &str) -> u64 {
    line.split_once(" seq=\"").and_then(|(_, r)| r.split_once('"')).unwrap().0.parse().unwrap()
}

#[test]
fn nats_killed_and_started_again_while_events_flow_loses_and_doubles_nothing() {
    let Some((daemon, mut nats)) = parts("NATS killed while events flow") else { return };
    let mut relay = Relay::start(&nats, &["--uri", &daemon.uri, "--host-name", "h"]);
    relay.wait_for_log(|log| log.contains("publishing to the stream"));
    make_events(&daemon, 4);
    stream_with(&nats, 4);
    thread::scope(|s| {
        let events = s.spawn(|| make_events(&daemon, 16));
        thread::sleep(Duration::from_millis(300));
        nats.kill(libc::SIGKILL);
        thread::sleep(Duration::from_secs(1));
        nats.restart();
        events.join().unwrap();
    });
    let stored = stream_with(&nats, 20);
    assert_no_duplicate(&stored);
    assert_eq!(stored.iter().map(Stored::seq).collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>());
    let log = relay.stop(libc::SIGTERM);
    assert!(log.contains("NATS: disconnected"), "{log}");
    let summary = log.lines().find(|l| l.contains("summary:")).expect("a summary");
    assert!(summary.contains(" 0 dropped") && summary.contains(" 0 left unpublished"), "{summary}");
}

#[test]
fn beyond_the_bound_the_oldest_are_dropped_and_announced_once_nats_is_back() {
    let Some((daemon, mut nats)) = parts("the pending bound") else { return };
    let mut relay = Relay::start(&nats, &["--uri", &daemon.uri, "--host-name", "h", "--max-in-flight", "1", "--max-pending", "5"]);
    relay.wait_for_log(|log| log.contains("publishing to the stream"));
    nats.kill(libc::SIGKILL);
    make_events(&daemon, 12);
    // The handler queued them all (it never waits for NATS).
    thread::sleep(Duration::from_millis(500));
    nats.restart();
    let stored = stream_with(&nats, 7);
    assert_no_duplicate(&stored);
    let lost: Vec<&Stored> = stored.iter().filter(|m| m.header("Virevent-Type") == "events-lost").collect();
    assert_eq!(lost.len(), 1, "{stored:#?}");
    assert_eq!(lost[0].subject, "virevent.h.events-lost");
    let (count, first, last) = lost_range(lost[0]);
    let seqs: Vec<u64> = stored.iter().filter(|m| m.header("Virevent-Type") != "events-lost").map(Stored::seq).collect();
    // Every seq is published or counted lost, once; the gap is announced
    // where it is, and what is left is the newest.
    assert_eq!(count, last - first + 1);
    let mut all: Vec<u64> = seqs.iter().copied().chain(first..=last).collect();
    all.sort();
    assert_eq!(all, (1..=12).collect::<Vec<_>>(), "{stored:#?}");
    assert!(seqs.ends_with(&[8, 9, 10, 11, 12]), "{seqs:?}");
    let at = stored.iter().position(|m| m.header("Virevent-Type") == "events-lost").unwrap();
    assert!(stored[..at].iter().all(|m| m.seq() < first) && stored[at + 1..].iter().all(|m| m.seq() > last));
    let log = relay.stop(libc::SIGTERM);
    assert!(log.contains(&format!("{count} event(s) dropped (seq {first} to {last})")), "{log}");
    let summary = log.lines().find(|l| l.contains("summary:")).expect("a summary");
    assert!(summary.contains(&format!(" {count} dropped (1 events-lost notice(s))")), "{summary}");
}

#[test]
fn a_relay_killed_and_started_again_on_its_spool_publishes_again_and_the_server_stores_once() {
    let Some((daemon, mut nats)) = parts("the relay's spool") else { return };
    let spool_dir = common::test_dir("spool");
    std::fs::create_dir_all(&spool_dir).unwrap();
    let spool = spool_dir.join("spool");
    let spool_arg = spool.to_str().unwrap();
    let args = ["--uri", &daemon.uri, "--host-name", "h", "--spool", spool_arg];
    // The test driver's state lives while a connection holds it: this one
    // keeps it across the relays' deaths.
    let _hold = virevent::Connection::open(Some(&daemon.uri)).unwrap();
    let mut relay = Relay::start(&nats, &args);
    relay.wait_for_log(|log| log.contains("publishing to the stream"));
    // NATS away: 4 events wait in the spool. A copy of it is what a relay
    // killed after the server stored them, before it marked them done, left.
    nats.kill(libc::SIGKILL);
    make_events(&daemon, 4);
    let snapshot = spool_dir.join("snapshot");
    let start = Instant::now();
    loop {
        std::fs::copy(&spool, &snapshot).unwrap();
        // Each event's record holds its type twice: the type, and the XML's.
        let kind = b"domain-state-transition";
        if std::fs::read(&snapshot).unwrap().windows(kind.len()).filter(|w| w == kind).count() >= 8 {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "the spool did not get the 4 events");
        thread::sleep(Duration::from_millis(20));
    }
    // Killed with the 4 unpublished: the next relay publishes them.
    relay.stop(libc::SIGKILL);
    nats.restart();
    let mut again = Relay::start(&nats, &args);
    let stored = stream_with(&nats, 4);
    assert_eq!(stored.iter().map(Stored::seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let log = again.stop(libc::SIGTERM);
    assert!(log.contains("publishing again 4 event(s) the spool kept"), "{log}");
    assert!(std::fs::metadata(&spool).unwrap().len() == 0, "nothing pending: the spool is empty");
    // The snapshot's relay: the same 4 again, each stored once.
    let snapshot_arg = snapshot.to_str().unwrap();
    let mut third = Relay::start(&nats, &["--uri", &daemon.uri, "--host-name", "h", "--spool", snapshot_arg]);
    third.wait_for_log(|log| log.contains("publishing to the stream"));
    thread::sleep(Duration::from_millis(500));
    let log = third.stop(libc::SIGTERM);
    assert!(log.contains("summary: 0 published, 0 retried, 4 deduplicated by the server"), "{log}");
    let stored = read_stream(&nats);
    assert_eq!(stored.len(), 4, "{stored:#?}");
    assert_no_duplicate(&stored);
    // Killed while events flow: whatever it took is in the stream once.
    let mut fourth = Relay::start(&nats, &args);
    thread::scope(|s| {
        let events = s.spawn(|| make_events(&daemon, 10));
        thread::sleep(Duration::from_millis(250));
        fourth.stop(libc::SIGKILL);
        events.join().unwrap();
    });
    let mut fifth = Relay::start(&nats, &args);
    thread::sleep(Duration::from_millis(500));
    fifth.stop(libc::SIGTERM);
    let stored = read_stream(&nats);
    assert_no_duplicate(&stored);
    let fourth_start = stored[4].header("Nats-Msg-Id").split('/').nth(1).unwrap().to_string();
    let of_fourth: Vec<u64> = stored
        .iter()
        .filter(|m| m.header("Nats-Msg-Id").split('/').nth(1) == Some(fourth_start.as_str()))
        .map(Stored::seq)
        .collect();
    // What the killed relay received is there with no gap.
    assert_eq!(of_fourth, (1..=of_fourth.len() as u64).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&spool_dir);
}

#[test]
fn drops_a_killed_relay_never_announced_are_announced_by_the_next_on_its_spool() {
    let Some((daemon, mut nats)) = parts("drops kept in the spool") else { return };
    let spool_dir = common::test_dir("spool-drops");
    std::fs::create_dir_all(&spool_dir).unwrap();
    let spool = spool_dir.join("spool");
    let args = [
        "--uri",
        &daemon.uri,
        "--host-name",
        "h",
        "--max-in-flight",
        "1",
        "--max-pending",
        "3",
        "--spool",
        spool.to_str().unwrap(),
    ];
    let _hold = virevent::Connection::open(Some(&daemon.uri)).unwrap();
    let mut relay = Relay::start(&nats, &args);
    relay.wait_for_log(|log| log.contains("publishing to the stream"));
    nats.kill(libc::SIGKILL);
    make_events(&daemon, 8);
    thread::sleep(Duration::from_millis(500));
    relay.stop(libc::SIGKILL);
    nats.restart();
    let mut next = Relay::start(&nats, &args);
    // At least the notice and the 3 the bound keeps.
    let stored = stream_with(&nats, 4);
    let log = next.stop(libc::SIGTERM);
    assert!(log.contains("event(s) dropped before, not yet announced"), "{log}");
    assert_no_duplicate(&stored);
    let notices: Vec<&Stored> = stored.iter().filter(|m| m.header("Virevent-Type") == "events-lost").collect();
    assert_eq!(notices.len(), 1, "{stored:#?}");
    let (count, first, last) = lost_range(notices[0]);
    let mut all: Vec<u64> =
        stored.iter().filter(|m| m.header("Virevent-Type") != "events-lost").map(Stored::seq).chain(first..=last).collect();
    all.sort();
    assert_eq!(count, last - first + 1);
    assert_eq!(all, (1..=8).collect::<Vec<_>>(), "{stored:#?}");
    // Announced: a third relay on the spool announces nothing again.
    let mut third = Relay::start(&nats, &args);
    thread::sleep(Duration::from_millis(300));
    let log = third.stop(libc::SIGTERM);
    assert!(!log.contains("dropped before"), "{log}");
    assert_eq!(read_stream(&nats).len(), stored.len());
    let _ = std::fs::remove_dir_all(&spool_dir);
}

#[test]
fn a_daemon_restarted_under_the_relay_publishes_the_resync() {
    let Some((mut daemon, nats)) = parts("a daemon restart under the relay") else { return };
    let _relay = Relay::start(&nats, &["--uri", &daemon.uri, "--host-name", "h"]);
    make_events(&daemon, 1);
    stream_with(&nats, 1);
    // The test driver starts again with its domain running: the pause is undone.
    daemon.kill(libc::SIGTERM);
    daemon.restart();
    let stored = stream_with(&nats, 4);
    let kinds: Vec<&str> = stored.iter().map(|m| m.header("Virevent-Type")).collect();
    assert_eq!(kinds, ["domain-state-transition", "connection-lost", "domain-state-transition", "connection-restored"]);
    let payloads: Vec<&str> = stored.iter().map(|m| m.payload.as_str()).collect();
    common::schema::validate("the relay's resync events", &payloads);
    assert!(stored[2].payload.contains("<old-state>paused</old-state><new-state>running</new-state><reason>resync</reason>"));
    assert_eq!(stored.iter().map(Stored::seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_no_duplicate(&stored);
}

#[test]
fn one_relay_watches_several_daemons_and_one_not_there_yet() {
    let Some((present, nats)) = parts("one relay, two daemons, one absent at start") else { return };
    let mut absent = Daemon::start_with("", None);
    absent.kill(libc::SIGTERM);
    let mut relay =
        Relay::start(&nats, &["--uri", &present.uri, "--host-name", "a", "--uri", &absent.uri, "--host-name", "b"]);
    assert!(relay.log().contains(&format!("cannot connect to '{}'", absent.uri)), "{}", relay.log());
    make_events(&present, 2);
    absent.restart();
    relay.wait_for_log(|log| log.matches("virevent-relay: watching '").count() == 2);
    make_events(&absent, 3);
    let stored = stream_with(&nats, 5);
    let of = |host: &str| stored.iter().filter(|m| m.header("Virevent-Host") == host).map(Stored::seq).collect::<Vec<_>>();
    assert_eq!((of("a"), of("b")), (vec![1, 2], vec![1, 2, 3]));
    assert_eq!(stored.iter().filter(|m| m.subject.starts_with("virevent.b.")).count(), 3);
    relay.stop(libc::SIGTERM);
}

#[test]
fn a_stop_while_nats_is_away_waits_the_drain_and_says_what_is_left() {
    let Some((daemon, mut nats)) = parts("a stop while NATS is away") else { return };
    let mut relay = Relay::start(&nats, &["--uri", &daemon.uri, "--host-name", "h", "--drain", "0.5"]);
    relay.wait_for_log(|log| log.contains("publishing to the stream"));
    nats.kill(libc::SIGKILL);
    make_events(&daemon, 3);
    thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let log = relay.stop(libc::SIGTERM);
    assert!(start.elapsed() < Duration::from_secs(5), "the drain is bounded: {:?}", start.elapsed());
    assert!(log.contains("--drain (0.5 s) passed before NATS took every event"), "{log}");
    let summary = log.lines().find(|l| l.contains("summary:")).expect("a summary");
    // One is in the publisher's hands, the others in the queue: all unpublished.
    assert!(summary.starts_with("virevent-relay: summary: 0 published"), "{summary}");
    assert!(summary.contains(" 0 dropped") && summary.contains(" 3 left unpublished"), "{summary}");
}

#[test]
fn a_json_relay_publishes_what_virevent_watch_prints() {
    let Some((daemon, nats)) = parts("a JSON relay") else { return };
    let _relay = Relay::start(&nats, &["--uri", &daemon.uri, "--host-name", "h", "--format", "json"]);
    make_events(&daemon, 1);
    let stored = stream_with(&nats, 1);
    assert_eq!(stored[0].header("Virevent-Format"), "json");
    assert!(stored[0].payload.starts_with("{\"type\":\"domain-state-transition\",\"timestamp\":"), "{stored:?}");
    assert!(stored[0].payload.contains("\"seq\":1,") && stored[0].payload.contains("\"new-state\":\"paused\""));
    let url = format!("{}/virevent", nats.url());
    let out = run(SUB, &["--uri", &url, "--count", "1", "--format", "json"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim_end(), stored[0].payload);
    // Another format needs the XML: a clear refusal, exit 1.
    let out = run(SUB, &["--uri", &url, "--count", "1", "--format", "line"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("the stream holds JSON events (virevent-relay --format json)"));
}

#[test]
fn bad_arguments_are_refused_with_exit_2_and_a_reason() {
    for (program, args, reason) in [
        (RELAY, &[][..], "give at least one --uri"),
        (RELAY, &["--uri", "test:///default", "--max-pending", "0"][..], "--max-pending wants at least 1 event"),
        (RELAY, &["--uri", "a", "--max-in-flight", "0"][..], "--max-in-flight wants at least 1 event"),
        (RELAY, &["--uri", "a", "--uri", "b", "--host-name", "h"][..], "--host-name was given 1 times for 2 --uri"),
        (RELAY, &["--uri", "a", "--stream", "a.b"][..], "--stream wants a name without '.'"),
        (RELAY, &["--uri", "a", "--format", "virsh"][..], "--format wants xml or json, not 'virsh'"),
        (RELAY, &["--uri", "a", "--storage", "disk"][..], "--storage wants file or memory"),
        (RELAY, &["--uri", "a", "--max-bytes", "-1"][..], "--max-bytes wants a whole number of bytes"),
        (RELAY, &["--uri", "a", "--filter", "/event["][..], "bad --filter"),
        (RELAY, &["--bogus"][..], "unknown option '--bogus'"),
        (SUB, &[][..], "give --uri nats://"),
        (SUB, &["--uri", "http://x/s"][..], "it starts with nats://"),
        (SUB, &["--uri", "nats://h/s?deliver=first"][..], "deliver is all, new or last, not 'first'"),
        (SUB, &["--uri", "nats://h/s?start-seq=x"][..], "start-seq wants a whole number"),
        (SUB, &["--uri", "nats://h/s?color=red"][..], "unknown or empty parameter 'color=red'"),
        (SUB, &["--uri", "nats://h/a.b"][..], "a stream name holds no"),
        (SUB, &["--uri", "nats://h/s", "--format", "yaml"][..], "--format wants xml, line, json or virsh"),
        (SUB, &["--uri", "nats://h/s", "--count", "-1"][..], "--count wants a whole number of events"),
        (SUB, &["--uri", "nats://127.0.0.1:1/s", "--filter", "/event["][..], "bad --filter"),
    ] {
        let out = run(program, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{program} {args:?}: {stderr}");
        assert!(stderr.contains(reason), "{program} {args:?}: {stderr}");
        assert!(stderr.contains("--help' for more information"), "{stderr}");
    }
}

#[test]
fn what_cannot_be_reached_or_read_ends_with_exit_1_and_says_why() {
    // A daemon that is not there, without reconnection.
    let out = run(RELAY, &["--uri", "test+unix:///default?socket=/nonexistent/sock", "--no-reconnect"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot watch 'test+unix:///default?socket=/nonexistent/sock'"));
    // No NATS server there.
    let closed = format!("nats://127.0.0.1:{}/virevent", common::free_port());
    let out = run(SUB, &["--uri", &closed, "--count", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot connect to the NATS server"), "{}", text(&out.stderr));
    let Some(nats) = Nats::start("virevent-sub on a stream that is not there") else { return };
    let out = run(SUB, &["--uri", &format!("{}/nothing", nats.url()), "--count", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read the stream 'nothing'"), "{}", text(&out.stderr));
    // A message in the stream that no relay published.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let config = async_nats::jetstream::stream::Config {
            name: "virevent".into(),
            subjects: vec!["virevent.>".into()],
            ..Default::default()
        };
        js.get_or_create_stream(config).await.unwrap();
        js.publish("virevent.x.y", "<event type='y' timestamp='1'/>".into()).await.unwrap().await.unwrap();
    });
    let out = run(SUB, &["--uri", &format!("{}/virevent", nats.url()), "--count", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("a message on 'virevent.x.y' is no relay's event"), "{stderr}");
}
