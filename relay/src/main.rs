//! virevent-relay: publishes the events of libvirt daemons to NATS JetStream.
//!
//! Two threads. The watch thread is virevent's own thread-free loop: one
//! poll(2) over every connection's event descriptor, a delivery where one is
//! readable, and a handler that turns each event into a message and queues it
//! in the outbox, which never waits. The main thread runs the NATS client
//! (tokio, one thread): the publisher takes messages from the outbox front,
//! keeps up to `--max-in-flight` published and awaiting JetStream's
//! acknowledgements (a sliding window), and
//! publishes again, with the same ids, whatever was not acknowledged.

use std::collections::VecDeque;
use std::future::IntoFuture as _;
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use virevent::format::{self, Format};
use virevent::{Connection, ErrorCode, Event, Filter};
use virevent_relay::cli::{self, Usage};
use virevent_relay::headers;
use virevent_relay::outbox::{Limits, Lost, Message, Origin, Outbox};
use virevent_relay::spool::{Left, Spool};
use virevent_relay::subject;

const NAME: &str = "virevent-relay";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How many messages the publisher has sent and awaits the acks of, unless
/// `--max-in-flight` says otherwise.
const WINDOW: usize = 256;
/// The waits between two tries of NATS after a failure: doubling from the
/// first to the last.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Reconnection to a daemon (on unless `--no-reconnect`), as virevent-watch's.
const RECONNECT_MIN: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

// docs/virevent-relay.1 says the same; relay/tests/man.rs checks that every
// option of one is in the other.
const HELP: &str = concat!(
    "\
Usage: virevent-relay --uri URI [OPTION]...
Publish every event of libvirt daemons to NATS JetStream, on subjects
virevent.HOST.TYPE (each token escaped: '.' reads '_', any byte but letters,
digits and '-' reads %XX), one message per event.

Options:
  --uri URI            a daemon to watch, any URI virevent-watch takes; repeat
                       it for several (one thread watches them all)
  --host-name NAME     the HOST of the subjects (default: the URI's host for
                       tcp, tls and ssh, else this machine's name); with
                       several --uri, give it once per --uri, in their order
  --server URL         the NATS server (default nats://127.0.0.1:4222; a
                       comma-separated list for a cluster)
  --stream NAME        the JetStream stream, made with subjects virevent.> when
                       missing (default virevent)
  --storage file|memory  the new stream's storage (default file)
  --max-age SECONDS    the new stream's age limit (default none)
  --max-bytes N        the new stream's size limit in bytes (default none)
  --max-msgs N         the new stream's message limit (default none)
  --duplicate-window SECONDS
                       the new stream's deduplication window (default 120)
  --format xml|json    the payload: the event's XML (the default) or the JSON
                       object virevent-watch --format json prints
  --filter ENTRY       publish only the events ENTRY matches, as virevent-watch
                       --filter (repeat it: any entry)
  --max-in-flight N    events published and awaiting JetStream's acknowledgement
                       at most (default 256): a sliding window, topped up as
                       acknowledgements come
  --max-pending N      events queued for NATS at most (default 100000), beside
                       those in flight; beyond, the oldest queued are dropped
                       and one
                       events-lost event per watched URI (count, first-seq,
                       last-seq) is published when NATS takes events again
  --max-pending-bytes N  bytes waiting at most (default 67108864)
  --spool FILE         keep every waiting event in FILE until JetStream
                       acknowledges it, and publish again at start what a
                       relay before left unacknowledged (the server stores
                       each once)
  --drain SECONDS      at SIGTERM or SIGINT, wait this long at most for the
                       waiting events to be acknowledged (default 5)
  --no-reconnect       end when a daemon's link is lost (default: reconnect,
                       and publish connection-lost, the resync differences
                       and connection-restored)
  -h, --help           print this help and exit
  --version            print the name and version (virevent-relay ",
    env!("CARGO_PKG_VERSION"),
    ") and exit

Each message has the headers Virevent-Host, Virevent-Type, Virevent-Seq,
Virevent-Timestamp, Virevent-Uri, Virevent-Format and Nats-Msg-Id
(HOST/START/SEQ, START the microseconds since the epoch when the relay opened
the connection). Progress and a final summary go to standard error.

Exit status:
  0  stopped by SIGTERM or SIGINT
  1  a daemon could not be watched (or, with --no-reconnect, every link was
     lost), or NATS refused the stream
  2  bad arguments
"
);

/// What the command line asks for.
struct Options {
    uris: Vec<String>,
    hosts: Vec<String>,
    server: String,
    stream: stream::Config,
    format: Format,
    filter: Filter,
    limits: Limits,
    /// `--max-in-flight`.
    window: usize,
    spool: Option<String>,
    drain: Duration,
    reconnect: bool,
}

enum Command {
    Help,
    Version,
    Relay(Box<Options>),
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, Usage> {
    const FLAGS: [&str; 4] = ["-h", "--help", "--version", "--no-reconnect"];
    const VALUED: [&str; 16] = [
        "--uri",
        "--host-name",
        "--server",
        "--stream",
        "--storage",
        "--max-age",
        "--max-bytes",
        "--max-msgs",
        "--duplicate-window",
        "--format",
        "--filter",
        "--max-in-flight",
        "--max-pending",
        "--max-pending-bytes",
        "--spool",
        "--drain",
    ];
    let mut filters = Vec::new();
    let mut o = Options {
        uris: Vec::new(),
        hosts: Vec::new(),
        server: "nats://127.0.0.1:4222".into(),
        stream: stream::Config {
            name: "virevent".into(),
            subjects: vec![format!("{}.>", subject::ROOT)],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        },
        format: Format::Xml,
        filter: Filter::All,
        limits: Limits { count: 100_000, bytes: 64 << 20 },
        window: WINDOW,
        spool: None,
        drain: Duration::from_secs(5),
        reconnect: true,
    };
    for (name, value) in cli::options(args, &FLAGS, &VALUED)? {
        let value = value.unwrap_or_default();
        let n = |what| cli::whole::<i64>(&name, what, &value);
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--no-reconnect" => o.reconnect = false,
            "--uri" => o.uris.push(value),
            "--host-name" if value.is_empty() => return Err(Usage("--host-name wants a name, not ''".into())),
            "--host-name" => o.hosts.push(value),
            "--server" => o.server = value,
            "--stream" if !valid_stream_name(&value) => {
                return Err(Usage(format!(
                    "--stream wants a name without '.', '*', '>', '/', '\\\\' or white space, not '{value}'"
                )))
            }
            "--stream" => o.stream.name = value,
            "--storage" => {
                o.stream.storage = match value.as_str() {
                    "file" => stream::StorageType::File,
                    "memory" => stream::StorageType::Memory,
                    _ => return Err(Usage(format!("--storage wants file or memory, not '{value}'"))),
                }
            }
            "--max-age" => o.stream.max_age = cli::seconds(&name, &value)?,
            "--max-bytes" => o.stream.max_bytes = n("bytes")?,
            "--max-msgs" => o.stream.max_messages = n("messages")?,
            "--duplicate-window" => o.stream.duplicate_window = cli::seconds(&name, &value)?,
            "--format" => {
                o.format = match Format::parse(&value) {
                    Some(f @ (Format::Xml | Format::Json)) => f,
                    _ => return Err(Usage(format!("--format wants xml or json, not '{value}'"))),
                }
            }
            "--filter" => filters.push(value),
            "--max-in-flight" => o.window = cli::whole(&name, "events", &value)?,
            "--max-pending" => o.limits.count = cli::whole(&name, "events", &value)?,
            "--max-pending-bytes" => o.limits.bytes = cli::whole(&name, "bytes", &value)?,
            "--spool" => o.spool = Some(value),
            _ => o.drain = cli::seconds(&name, &value)?,
        }
    }
    if !filters.is_empty() {
        o.filter = Filter::parse(&filters).map_err(|e| Usage(format!("bad --filter: {}", e.message)))?;
    }
    if o.uris.is_empty() {
        return Err(Usage("give at least one --uri: the daemons to watch".into()));
    }
    if !o.hosts.is_empty() && o.hosts.len() != o.uris.len() {
        return Err(Usage(format!(
            "--host-name was given {} times for {} --uri: give it once per --uri, or never",
            o.hosts.len(),
            o.uris.len()
        )));
    }
    if o.limits.count == 0 {
        return Err(Usage("--max-pending wants at least 1 event".into()));
    }
    if o.window == 0 {
        return Err(Usage("--max-in-flight wants at least 1 event".into()));
    }
    Ok(Command::Relay(Box::new(o)))
}

/// JetStream's rule for stream names.
fn valid_stream_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['.', '*', '>', '/', '\\']) && !name.chars().any(char::is_whitespace)
}

fn main() -> ExitCode {
    let result = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            let _ = std::io::stdout().write_all(HELP.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            let _ = writeln!(std::io::stdout(), "{NAME} {VERSION}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Relay(options)) => relay(*options),
        Err(Usage(message)) => {
            eprintln!("{NAME}: {message}\nTry '{NAME} --help' for more information.");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{NAME}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A line on stderr; a closed stderr is no failure.
fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{NAME}: {line}");
}

/// The counts the final summary reports.
#[derive(Default)]
struct Stats {
    /// Acknowledged as stored anew.
    published: AtomicU64,
    /// Acknowledged as a duplicate of one stored before (a publish again).
    deduplicated: AtomicU64,
    /// Sent again after a failed or missing acknowledgement.
    retried: AtomicU64,
    /// events-lost notices published.
    notices: AtomicU64,
    /// Taken by the publisher and not yet acknowledged.
    unacked: AtomicU64,
}

/// The outbox, the spool beside it, and the next message's index.
struct Pending {
    outbox: Outbox,
    spool: Option<Spool>,
    next_index: u64,
}

/// What the two threads share.
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the publisher when a message is queued (it keeps one wake-up
    /// given while it was busy).
    wake: tokio::sync::Notify,
    stats: Stats,
    /// Set at SIGTERM or SIGINT, or when the watch ended.
    stopping: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `m` (the handler's work: it never waits for NATS).
    fn push(&self, mut m: Message) {
        let mut p = self.lock();
        p.next_index += 1;
        m.index = p.next_index;
        let spooled = p.spool.as_mut().map_or(Ok(()), |s| s.append(&m));
        let dropped = p.outbox.push(m);
        let marked = p.spool.as_mut().map_or(Ok(()), |s| s.dropped(&dropped));
        if let Err(e) = spooled.and(marked) {
            drop_spool(&mut p, &e);
        }
        drop(p);
        self.wake.notify_one();
    }

    /// Takes what the publisher sends next: the events-lost notices first.
    fn take(&self, max: usize) -> (Vec<Lost>, Vec<Message>) {
        // What the publisher may send is on disk first.
        self.flush_spool();
        self.lock().outbox.take(max)
    }

    /// Writes what the spool holds in its buffer: the watch does after each
    /// delivery, so that an event a handler queued survives a kill.
    fn flush_spool(&self) {
        let mut p = self.lock();
        if let Some(Err(e)) = p.spool.as_mut().map(Spool::flush) {
            drop_spool(&mut p, &e);
        }
    }

    /// Marks `done` acknowledged; `unacked` is what the publisher still holds.
    fn acked(&self, done: &[Message], unacked: &[&Message]) {
        let mut p = self.lock();
        let Pending { outbox, spool, .. } = &mut *p;
        let Some(s) = spool else { return };
        let indexes: Vec<u64> = done.iter().filter(|m| m.covers.is_none()).map(|m| m.index).collect();
        let mut announced = done.iter().filter_map(|m| m.covers.as_ref());
        // A rewrite holds the lock, and so a handler, for as long as it
        // writes what is pending: rare (the file past twice the byte bound,
        // which takes an outage and acks after it), and never more than
        // --max-pending-bytes.
        let result = if unacked.is_empty() && outbox.is_empty() {
            s.rewrite(std::iter::empty(), std::iter::empty())
        } else if s.is_over() {
            // What waits: messages, and drops whose notice is not acknowledged.
            let notices = unacked.iter().filter_map(|m| m.covers.as_ref());
            s.rewrite(unacked.iter().copied().chain(outbox.iter()), notices.chain(outbox.lost()))
        } else {
            announced.try_for_each(|l| s.announced(&l.origin, l.last)).and(s.done(&indexes))
        };
        if let Err(e) = result {
            drop_spool(&mut p, &e);
        }
    }

    fn is_empty(&self) -> bool {
        self.lock().outbox.is_empty()
    }
}

/// A spool that cannot be written is given up, once and said: the relay
/// goes on with its queue in memory.
fn drop_spool(p: &mut Pending, e: &std::io::Error) {
    if p.spool.take().is_some() {
        log(&format!("cannot write the spool, going on without it: {e}"));
    }
}

fn relay(options: Options) -> Result<(), String> {
    let (mut spool, left) = match &options.spool {
        Some(path) => {
            let bound = (2 * options.limits.bytes as u64).max(1 << 20);
            let (spool, left) =
                Spool::open(path.as_ref(), bound).map_err(|e| format!("cannot use the spool {path}: {e}"))?;
            (Some(spool), left)
        }
        None => (None, Left::default()),
    };
    let mut outbox = Outbox::new(options.limits);
    let next_index = left.messages.iter().map(|m| m.index).max().unwrap_or(0);
    if !left.messages.is_empty() {
        log(&format!("publishing again {} event(s) the spool kept", left.messages.len()));
    }
    for lost in left.lost {
        log(&format!("{}: {} event(s) dropped before, not yet announced", lost.origin.uri, lost.count));
        outbox.count_lost(lost);
    }
    for m in left.messages {
        let dropped = outbox.push(m);
        if let Some(Err(e)) = spool.as_mut().map(|s| s.dropped(&dropped)) {
            return Err(format!("cannot write the spool: {e}"));
        }
    }
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending { outbox, spool, next_index }),
        wake: tokio::sync::Notify::new(),
        stats: Stats::default(),
        stopping: AtomicBool::new(false),
    });
    // Every connection is open, or known absent, before NATS is tried.
    let watch = Watch::open(&options, &shared)?;
    let (stop_read, stop_write) = pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the NATS client: {e}"))?;
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    let watcher = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || {
                let result = watch.run(&stop_read);
                shared.stopping.store(true, Ordering::SeqCst);
                shared.wake.notify_one();
                let _ = ended_tx.send(());
                result
            })
            .map_err(|e| format!("cannot start the watch thread: {e}"))?
    };
    let published = runtime.block_on(publish(&options, shared.clone(), ended_rx, &stop_write));
    stop_watch(&stop_write);
    let watched = watcher.join().unwrap_or_else(|_| Err("the watch thread panicked".into()));
    summary(&shared);
    published.and(watched)
}

/// The last lines on stderr: what was published, retried, deduplicated,
/// dropped and left.
fn summary(shared: &Shared) {
    let s = &shared.stats;
    let p = shared.lock();
    let left = p.outbox.len() as u64 + s.unacked.load(Ordering::Relaxed);
    let kept = if p.spool.is_some() && left > 0 { " (kept in the spool)" } else { "" };
    log(&format!(
        "summary: {} published, {} retried, {} deduplicated by the server, {} dropped ({} events-lost notice(s)), \
         {} left unpublished{kept}",
        s.published.load(Ordering::Relaxed),
        s.retried.load(Ordering::Relaxed),
        s.deduplicated.load(Ordering::Relaxed),
        p.outbox.dropped,
        s.notices.load(Ordering::Relaxed),
        left,
    ));
}

/// Tells the watch thread to end (it ends at once; it may have ended on its own).
fn stop_watch(stop: &OwnedFd) {
    // SAFETY: one byte from our buffer into our pipe.
    let _ = unsafe { libc::write(stop.as_raw_fd(), b"x".as_ptr().cast(), 1) };
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    use std::os::fd::FromRawFd;
    // SAFETY: both are new descriptors no one else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Connects to NATS, makes sure of the stream, and publishes until told to
/// stop; then ends the watch (no event comes after) and drains for
/// `--drain` at most.
async fn publish(
    options: &Options,
    shared: Arc<Shared>,
    watch_ended: tokio::sync::oneshot::Receiver<()>,
    stop: &OwnedFd,
) -> Result<(), String> {
    let client = async_nats::ConnectOptions::new()
        .name(NAME)
        .retry_on_initial_connect()
        .reconnect_delay_callback(|attempts| backoff(attempts as u32))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => log("NATS: connected"),
                async_nats::Event::Disconnected => log("NATS: disconnected; events wait (up to --max-pending)"),
                other => log(&format!("NATS: {other}")),
            }
        })
        .connect(options.server.as_str())
        .await
        .map_err(|e| format!("cannot use the NATS server '{}': {e}", options.server))?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .max_ack_inflight(2 * options.window)
        .backpressure_on_inflight(true)
        .build(client);
    let work = publisher(&js, options, &shared);
    tokio::pin!(work);
    let stopped = stop_signal(watch_ended);
    tokio::select! {
        result = &mut work => return result,
        () = stopped => {}
    }
    stop_watch(stop);
    shared.stopping.store(true, Ordering::SeqCst);
    shared.wake.notify_one();
    match tokio::time::timeout(options.drain, work).await {
        Ok(result) => result,
        Err(_) => {
            log(&format!("--drain ({} s) passed before NATS took every event", options.drain.as_secs_f64()));
            Ok(())
        }
    }
}

/// SIGTERM, SIGINT, or the end of the watch.
async fn stop_signal(watch_ended: tokio::sync::oneshot::Receiver<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        let _ = watch_ended.await;
        return;
    };
    tokio::select! {
        _ = term.recv() => log("SIGTERM: stopping"),
        _ = int.recv() => log("SIGINT: stopping"),
        _ = watch_ended => {}
    }
}

/// The wait after `attempts` failures in a row.
fn backoff(attempts: u32) -> Duration {
    RETRY_MIN.saturating_mul(1 << attempts.min(8)).min(RETRY_MAX)
}

/// Makes sure of the stream, then publishes through the sliding window; ends when
/// stopping with nothing left.
async fn publisher(js: &jetstream::Context, options: &Options, shared: &Shared) -> Result<(), String> {
    let mut failures = 0;
    loop {
        match js.get_or_create_stream(options.stream.clone()).await {
            Ok(stream) => {
                let subjects = &stream.cached_info().config.subjects;
                if !subjects.iter().any(|s| s == "virevent.>" || s == ">") {
                    log(&format!(
                        "warning: the stream '{}' takes {subjects:?}, which may not hold every subject virevent.>",
                        options.stream.name
                    ));
                }
                break;
            }
            Err(e) => {
                use async_nats::jetstream::context::CreateStreamErrorKind as Kind;
                if matches!(e.kind(), Kind::JetStream(_)) {
                    return Err(format!("NATS refused the stream '{}': {e}", options.stream.name));
                }
                if failures == 0 {
                    log(&format!("cannot reach the stream '{}' yet: {e}; trying again", options.stream.name));
                }
                if shared.stopping.load(Ordering::SeqCst) {
                    return Ok(());
                }
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
            }
        }
    }
    log(&format!("publishing to the stream '{}'", options.stream.name));
    let (stats, window) = (&shared.stats, options.window);
    let mut failures = 0;
    // Sent, each with its acknowledgement to come, in order: a sliding
    // window, topped up as acknowledgements arrive.
    let mut in_flight: VecDeque<(Message, AckFuture)> = VecDeque::new();
    // To send before anything new, in order: what the queue gave that did
    // not fit, and what a failure left unacknowledged.
    let mut next: VecDeque<Message> = VecDeque::new();
    // Acknowledged and not yet told to the spool (it hears in batches).
    let mut done: Vec<Message> = Vec::new();
    loop {
        if next.is_empty() && in_flight.len() < window {
            let (lost, messages) = shared.take(window - in_flight.len());
            next.extend(lost.into_iter().map(|l| notice(l, options.format)).chain(messages));
        }
        let mut failure = None;
        while in_flight.len() < window {
            let Some(m) = next.pop_front() else { break };
            match js.send_publish(m.subject(), publication(&m, options.format)).await {
                Ok(ack) => in_flight.push_back((m, ack.into_future())),
                Err(e) => {
                    next.push_front(m);
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        stats.unacked.store((in_flight.len() + next.len()) as u64, Ordering::Relaxed);
        let send_failed = failure.is_some();
        if !send_failed {
            let room = in_flight.len() < window;
            let Some((_, front)) = in_flight.front_mut() else {
                if shared.stopping.load(Ordering::SeqCst) && shared.is_empty() {
                    shared.acked(&done, &[]);
                    return Ok(());
                }
                shared.wake.notified().await;
                continue;
            };
            // The front's acknowledgement, or a message queued while the
            // window has room.
            let result = tokio::select! {
                result = front => result,
                () = shared.wake.notified(), if room => continue,
            };
            match result {
                Ok(ack) => {
                    let (m, _) = in_flight.pop_front().expect("the front was there");
                    let counter = if ack.duplicate { &stats.deduplicated } else { &stats.published };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if m.covers.is_some() {
                        stats.notices.fetch_add(1, Ordering::Relaxed);
                    }
                    done.push(m);
                    if failures > 0 {
                        log("NATS takes events again");
                        failures = 0;
                    }
                    if in_flight.is_empty() || done.len() >= window / 4 {
                        let waiting: Vec<&Message> = in_flight.iter().map(|(m, _)| m).chain(&next).collect();
                        shared.acked(&done, &waiting);
                        done.clear();
                    }
                    continue;
                }
                Err(e) => failure = Some(e.to_string()),
            }
        }
        // Everything unacknowledged goes again, in order, with its id: what
        // the server stored already it stores once.
        let again = in_flight.len() + usize::from(send_failed);
        for (m, _) in in_flight.drain(..).rev() {
            next.push_front(m);
        }
        let waiting: Vec<&Message> = next.iter().collect();
        shared.acked(&done, &waiting);
        done.clear();
        if failures == 0 {
            log(&format!("publish failed: {}; publishing {} event(s) again", failure.unwrap_or_default(), next.len()));
        }
        stats.retried.fetch_add(again as u64, Ordering::Relaxed);
        tokio::time::sleep(backoff(failures)).await;
        failures += 1;
    }
}

/// A publish's acknowledgement to come.
type AckFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>> + Send>,
>;

/// The message as published: payload and headers.
fn publication(m: &Message, format: Format) -> PublishMessage {
    let format = if format == Format::Json { "json" } else { "xml" };
    PublishMessage::build()
        .payload(m.payload.clone())
        .message_id(m.id())
        .header(headers::HOST, m.origin.host.as_str())
        .header(headers::TYPE, m.kind.as_str())
        .header(headers::SEQ, m.seq.to_string())
        .header(headers::TIMESTAMP, m.timestamp.as_str())
        .header(headers::URI, m.origin.uri.as_str())
        .header(headers::FORMAT, format)
}

/// The events-lost message for `lost`, as a handler would get the notice.
fn notice(lost: Lost, format: Format) -> Message {
    let event = Event::lost(lost.count, lost.first, lost.last);
    log(&format!(
        "{}: {} event(s) dropped (seq {} to {}): publishing events-lost",
        lost.origin.uri, lost.count, lost.first, lost.last
    ));
    Message {
        kind: event.kind().to_string(),
        seq: 0,
        timestamp: timestamp_of(&event),
        payload: payload(&event, format),
        index: 0,
        origin: lost.origin.clone(),
        covers: Some(lost),
    }
}

/// An event's `timestamp` attribute (the first after `type`).
fn timestamp_of(event: &Event) -> String {
    let xml = event.xml();
    xml.split_once(" timestamp=\"").and_then(|(_, rest)| rest.split_once('"')).map_or("", |(t, _)| t).to_string()
}

/// An event's payload: its XML, or virevent-watch's JSON object.
fn payload(event: &Event, format: Format) -> Bytes {
    match format {
        Format::Json => Bytes::from(format::render(Format::Json, event, None)),
        _ => Bytes::copy_from_slice(event.xml().as_bytes()),
    }
}

/// What each connection's handler needs to queue its events.
#[derive(Clone)]
struct Queueing {
    format: Format,
    filter: Filter,
    shared: Arc<Shared>,
}

/// The daemons watched, each open or tried again later.
struct Watch {
    sources: Vec<Source>,
    queueing: Queueing,
    reconnect: bool,
}

struct Source {
    uri: String,
    host: String,
    conn: Option<Connection>,
    /// Not there yet: when to try again, and the wait after that.
    retry: Option<(Instant, Duration)>,
}

impl Source {
    /// Opens the connection and registers the handler. A daemon not there,
    /// with reconnection on, is tried again later (an error otherwise).
    fn connect(&mut self, queueing: &Queueing, reconnect: bool) -> Result<(), String> {
        let cannot = |e: virevent::Error| format!("cannot watch '{}': {}", self.uri, e.message);
        let conn = match Connection::open(Some(&self.uri)) {
            Ok(conn) => conn,
            Err(e) if reconnect && e.code == ErrorCode::NoConnect => {
                let wait = self.retry.map_or(RECONNECT_MIN, |(_, wait)| (wait * 2).min(RECONNECT_MAX));
                if self.retry.is_none() {
                    log(&format!("cannot connect to '{}': {}; trying again", self.uri, e.message));
                }
                self.retry = Some((Instant::now() + wait, wait));
                return Ok(());
            }
            Err(e) => return Err(cannot(e)),
        };
        if reconnect {
            match conn.set_reconnect(Some((RECONNECT_MIN, RECONNECT_MAX))) {
                // The embedded driver has no link to lose.
                Err(e) if e.code != ErrorCode::NoSupport => return Err(cannot(e)),
                _ => {}
            }
        }
        let start = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let origin = Arc::new(Origin { host: self.host.clone(), uri: self.uri.clone(), start });
        let q = queueing.clone();
        conn.add_handler(q.filter.clone(), move |event| {
            q.shared.push(Message {
                origin: origin.clone(),
                index: 0,
                kind: event.kind().to_string(),
                seq: event.seq(),
                timestamp: timestamp_of(event),
                payload: payload(event, q.format),
                covers: None,
            })
        })
        .map_err(cannot)?;
        log(&format!("watching '{}' (host {}, subjects {}.{}.>)", self.uri, self.host, subject::ROOT, subject::escape(&self.host)));
        self.conn = Some(conn);
        self.retry = None;
        Ok(())
    }
}

impl Watch {
    fn open(options: &Options, shared: &Arc<Shared>) -> Result<Watch, String> {
        let queueing = Queueing { format: options.format, filter: options.filter.clone(), shared: shared.clone() };
        let mut sources = Vec::new();
        for (i, uri) in options.uris.iter().enumerate() {
            let host = options.hosts.get(i).cloned().unwrap_or_else(|| subject::host_of_uri(uri));
            let mut source = Source { uri: uri.clone(), host, conn: None, retry: None };
            source.connect(&queueing, options.reconnect)?;
            sources.push(source);
        }
        Ok(Watch { sources, queueing, reconnect: options.reconnect })
    }

    /// virevent's loop: deliver where an event descriptor is readable, open
    /// what is due, until `stop` is readable or (without reconnection) every
    /// link is lost.
    fn run(mut self, stop: &OwnedFd) -> Result<(), String> {
        let mut ready: Vec<bool> = vec![true; self.sources.len()];
        loop {
            let now = Instant::now();
            for (source, ready) in self.sources.iter_mut().zip(&mut ready) {
                if source.retry.is_some_and(|(due, _)| due <= now) {
                    source.connect(&self.queueing, self.reconnect)?;
                    *ready = source.conn.is_some();
                }
            }
            for (source, ready) in self.sources.iter_mut().zip(&ready) {
                let Some(conn) = source.conn.as_ref().filter(|_| *ready) else { continue };
                if let Err(e) = conn.deliver() {
                    log(&format!("connection lost: {}: {}", source.uri, e.message));
                    source.conn = None;
                }
            }
            self.queueing.shared.flush_spool();
            if self.sources.iter().all(|s| s.conn.is_none() && s.retry.is_none()) {
                return Err("every daemon's connection is lost".into());
            }
            let mut pollfds = vec![libc::pollfd { fd: stop.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
            let mut polled = Vec::new();
            for (i, source) in self.sources.iter().enumerate() {
                if let Some(fd) = source.conn.as_ref().and_then(|c| c.event_fd().ok()) {
                    pollfds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
                    polled.push(i);
                }
            }
            let next = self.sources.iter().filter_map(|s| s.retry.map(|(due, _)| due)).min();
            let wait = next.map_or(-1, |due| {
                due.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            });
            // SAFETY: the pollfds are ours, for descriptors open while we poll.
            if unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, wait) } < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!("poll failed: {e}"));
                }
            }
            if pollfds[0].revents != 0 {
                return Ok(());
            }
            ready.iter_mut().for_each(|r| *r = false);
            for (pollfd, &i) in pollfds[1..].iter().zip(&polled) {
                ready[i] = pollfd.revents != 0;
            }
        }
    }
}
