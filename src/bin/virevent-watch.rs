//! virevent-watch: prints events as they arrive.
//!
//! It uses only the safe Rust API and no thread: one poll(2) waits on the
//! event descriptor of every connection it watches (`--uri`, repeated), then
//! it delivers on those that are readable, and each connection's one handler
//! queues the events for the loop to print (the handler cannot end the program
//! or report a failed write; the loop can). With `--demo` the loop also drives
//! the embedded test domain between polls.

use std::io::{self, IsTerminal, Write};
use std::os::fd::RawFd;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use virevent::terminal::TerminalAuth;
use virevent::{Connection, Domain, ErrorCode, Event, Filter};

use virevent::format::{self, prefixed, Format};

const NAME: &str = "virevent-watch";
const DEFAULT_URI: &str = "test:///default";

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One `--demo` step: a domain operation of the test driver.
type Step = fn(&Domain) -> virevent::Result<()>;

/// The steps of `--demo`, over and over: each emits one domain-state-transition.
const DEMO_STEPS: [(&str, Step); 4] = [
    ("suspend", Domain::suspend),
    ("resume", Domain::resume),
    ("destroy", Domain::destroy),
    ("create", Domain::create),
];

/// The time between two `--demo` steps unless `--interval` says otherwise.
const DEMO_INTERVAL: Duration = Duration::from_millis(500);

/// `--reconnect`'s waits: the library's between attempts on a lost link, and
/// the watch's own between tries of a daemon that was not there at start.
const RECONNECT_MIN: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

// docs/virevent-watch.1 says the same: tests/watch.rs checks that every option
// and exit status of one is in the other.
const HELP: &str = concat!(
    "\
Usage: virevent-watch [OPTION]...
Print virevent events as they arrive, one per line, flushing each at once.

Options:
  --uri URI          where to watch (default test:///default); repeat it to
                     watch several at once, in one thread: each event then
                     says which URI it came from (see --format), and a lost
                     connection is reported while the others go on. The embedded
                     test driver, test:///default (one running domain, 'test')
                     or test:///empty (no domain), which lives in this program,
                     so nothing happens there unless the program acts (--demo);
                     or a libvirt daemon: test+unix:///default?socket=PATH,
                     qemu:///system, qemu:///session,
                     DRIVER+unix:///PATH?socket=PATH,
                     DRIVER+tcp://HOST[:PORT]/PATH,
                     DRIVER+tls://HOST[:PORT]/PATH (pkipath=DIR, no_verify=1),
                     DRIVER+ssh://[USER@]HOST[:PORT]/PATH (keyfile=, no_tty=1,
                     known_hosts=, socket=, ...: the system's ssh)
  --demo             drive the domain 'test' of test:///default through suspend,
                     resume, destroy and create, over and over (the first step at
                     once, then one every --interval), so that events arrive
                     (only on test:///default)
  --interval SECONDS the time between two --demo steps (default 0.5)
  --filter ENTRY     print only the events ENTRY matches: a type pattern made of
                     name characters and '*' (domain-state-transition, domain-*)
                     or else an XPath 1.0 expression (/event[new-state='paused']);
                     repeat it to print the events any entry matches
                     (default: every event)
  --count N          exit after printing N events (of all the URIs together)
  --timeout SECONDS  exit once SECONDS have passed (decimals allowed: 0.5)
  --auth-file PATH   read credentials for SASL from PATH, a libvirt auth.conf
                     (as LIBVIRT_AUTH_FILE does; a URI's authfile= comes first).
                     What it lacks is asked on the terminal when standard input
                     is one (a password without echo)
  -k, --keepalive-interval SECONDS
                     with a daemon, send a keepalive PING after SECONDS (whole)
                     of silence from it; 0 turns keepalive off (default 5, as
                     virsh)
  -K, --keepalive-count N
                     with a daemon, end the connection (connection-closed,
                     reason keepalive) after N PINGs unanswered (default 6, as
                     virsh)
  --reconnect        with a daemon, do not end when its link is lost
                     (connection-lost, then attempts with waits from 0.25 s
                     doubling to 30 s, then the differences found as events
                     with reason resync, then connection-restored); a daemon
                     not there at start is tried the same way
  --format FORMAT    how to print each event (with several --uri, its URI is
                     added: a uri=\"URI\" attribute last on the root in xml, a
                     \"uri\" member last in json, \"URI: \" before the line in line
                     and virsh formats):
                     xml   the event's canonical one-line XML (the default)
                     line  a readable line, the time in UTC with milliseconds;
                           domain-state-transition events read
                             2026-11-24 20:59:26.281 test running -> paused (suspended-paused)
                           (time, domain-name, old-state -> new-state, (reason)),
                           other events: time, type, then the event's attributes
                           and child elements as NAME=VALUE (a value that is empty
                           or holds spaces, quotes or controls is written as a
                           JSON string; the texts of nested elements are joined
                           by spaces; a typed parameter reads param:NAME=VALUE)
                     json  one JSON object per line: \"type\", \"timestamp\" (a
                           number, seconds since the epoch), \"seq\" (a number),
                           then each attribute and child element of the event as
                           a string field; one named type, timestamp or seq (or
                           uri, with several --uri) is written with a leading
                           '_' (\"_type\")
                     virsh  what `virsh event --all --loop --timestamp` (and
                            net-event, pool-event, nodedev-event, secret-event)
                            print for the same event, byte for byte; virevent's
                            own events read in the same style:
                              ... event 'connection-closed' for connection: eof
                            and an emitted event of another type prints its
                            type and its children as NAME=VALUE
  -h, --help         print this help and exit
  --version          print the name and version (virevent-watch ",
    env!("CARGO_PKG_VERSION"),
    ") and exit
Options with a value take it as the next argument or after '=' (--count=3).

Exit status:
  0  the count was reached, the timeout passed, or standard output was closed
  1  a connection could not be opened, or it was lost: when a daemon ends the
     connection, its connection-closed event (reason eof or error) is printed if
     the filters take it, then the reason goes to standard error (\"connection
     lost: URI: REASON\" with several --uri, whose watch goes on until the last
     is lost; with --reconnect a daemon's connection is never lost this way);
     or a --demo step failed
  2  bad arguments (including a filter entry the library refuses, and --demo
     with another URI than test:///default, or with several)
"
);

/// What the command line asks for.
struct Options {
    /// Every `--uri`, in order (test:///default when none is given); with
    /// several, each event printed says which one it came from.
    uris: Vec<String>,
    filters: Vec<String>,
    count: Option<u64>,
    timeout: Option<Duration>,
    format: Format,
    /// With `--demo`: the time between two steps.
    demo: Option<Duration>,
    /// `-k` and `-K`, when given: they are checked against the connection.
    keepalive: Keepalive,
    /// `--auth-file`.
    auth_file: Option<String>,
    /// `--reconnect`.
    reconnect: bool,
}

/// Keepalive as virsh sets it: its defaults, and whether the user chose.
struct Keepalive {
    interval: u64,
    count: u32,
    chosen: bool,
}

impl Keepalive {
    /// virsh's own choice, `-k 5 -K 6` (libvirt's client library has count 5).
    const VIRSH: Keepalive = Keepalive { interval: 5, count: 6, chosen: false };
}

/// Why the program stops early: the exit status and the message for stderr.
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    fn usage(message: String) -> Failure {
        Failure { status: 2, message: format!("{message}\nTry '{NAME} --help' for more information.") }
    }

    fn runtime(message: String) -> Failure {
        Failure { status: 1, message }
    }
}

/// What the command line amounts to.
enum Command {
    Help,
    Version,
    Watch(Options),
}

/// The embedded test driver's URIs (what [`Connection::open`] opens in
/// process), and whether the URI has the domain `test` that `--demo` drives.
fn embedded(uri: &str) -> Option<bool> {
    match uri {
        "" | "test:///default" => Some(true),
        "test:///empty" => Some(false),
        _ => None,
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, Failure> {
    let mut options = Options {
        uris: Vec::new(),
        filters: Vec::new(),
        count: None,
        timeout: None,
        format: Format::Xml,
        demo: None,
        keepalive: Keepalive::VIRSH,
        auth_file: None,
        reconnect: false,
    };
    let (mut demo, mut interval) = (false, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--demo" => {
                demo = true;
                continue;
            }
            "--reconnect" => {
                options.reconnect = true;
                continue;
            }
            _ => {}
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        let name = match name.as_str() {
            "-k" => "--keepalive-interval".to_string(),
            "-K" => "--keepalive-count".to_string(),
            _ => name,
        };
        if matches!(name.as_str(), "--help" | "--version" | "--demo" | "--reconnect") {
            return Err(Failure::usage(format!("option '{name}' takes no value")));
        }
        if !matches!(
            name.as_str(),
            "--uri"
                | "--auth-file"
                | "--filter"
                | "--count"
                | "--timeout"
                | "--format"
                | "--interval"
                | "--keepalive-interval"
                | "--keepalive-count"
        ) {
            return Err(Failure::usage(if arg.starts_with('-') {
                format!("unknown option '{arg}'")
            } else {
                format!("unexpected argument '{arg}'")
            }));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(Failure::usage(format!("option '{name}' needs a value"))),
        };
        match name.as_str() {
            "--uri" => options.uris.push(value),
            "--auth-file" => options.auth_file = Some(value),
            "--filter" => options.filters.push(value),
            "--count" => options.count = Some(whole("--count", "events", &value)?),
            "--keepalive-interval" => {
                options.keepalive.interval = whole("--keepalive-interval", "seconds", &value)?;
                options.keepalive.chosen = true;
            }
            "--keepalive-count" => {
                options.keepalive.count = whole("--keepalive-count", "PINGs", &value)?;
                options.keepalive.chosen = true;
            }
            "--timeout" => options.timeout = Some(parse_seconds("--timeout", &value)?),
            "--interval" => match parse_seconds("--interval", &value)? {
                secs if secs.is_zero() => {
                    return Err(Failure::usage(format!("--interval wants more than 0 seconds, not '{value}'")))
                }
                secs => interval = Some(secs),
            },
            _ => {
                options.format = Format::parse(&value)
                    .ok_or_else(|| Failure::usage(format!("--format wants xml, line, json or virsh, not '{value}'")))?
            }
        }
    }
    if options.uris.is_empty() {
        options.uris.push(DEFAULT_URI.into());
    }
    if demo && options.uris.len() > 1 {
        return Err(Failure::usage(format!(
            "--demo drives the domain 'test' of one embedded {DEFAULT_URI}, not of {} URIs: give one --uri at most",
            options.uris.len()
        )));
    }
    if demo {
        match embedded(&options.uris[0]) {
            Some(true) => options.demo = Some(interval.unwrap_or(DEMO_INTERVAL)),
            Some(false) => {
                return Err(Failure::usage(format!(
                    "--demo drives the domain 'test' of {DEFAULT_URI}, and {} has no domain",
                    options.uris[0]
                )))
            }
            None => {
                return Err(Failure::usage(format!(
                    "--demo drives the domain 'test' of the embedded {DEFAULT_URI}, not of '{}': a \
                     daemon's domains are driven from outside (with virsh, say)",
                    options.uris[0]
                )))
            }
        }
    } else if interval.is_some() {
        return Err(Failure::usage("--interval is the time between --demo steps: give --demo too".into()));
    }
    Ok(Command::Watch(options))
}

/// A whole number of `what` (digits only) that fits `T`.
fn whole<T: std::str::FromStr>(option: &str, what: &str, value: &str) -> Result<T, Failure> {
    match value.parse::<T>() {
        Ok(n) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(Failure::usage(format!("{option} wants a whole number of {what}, not '{value}'"))),
    }
}

/// Decimal seconds: digits, optionally a point and more digits (`0.5`, `.5`, `3`).
fn parse_seconds(option: &str, value: &str) -> Result<Duration, Failure> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction);
    well_formed
        .then(|| value.parse::<f64>().ok())
        .flatten()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| Failure::usage(format!("{option} wants decimal seconds (like 2 or 0.5), not '{value}'")))
}

/// Whether `uri` is TLS with `no_verify=1` (any number but 0, as libvirt
/// reads it): the daemon's certificate is then taken unchecked.
fn skips_the_daemon_check(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else { return false };
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    scheme.ends_with("+tls")
        && query.split('&').any(|p| p.strip_prefix("no_verify=").is_some_and(|v| v.parse::<i64>().is_ok_and(|v| v != 0)))
}

/// Sets keepalive as virsh does. Where the connection has none (the embedded
/// driver, or a daemon without it), a user who chose `-k` or `-K` is told so
/// on stderr, and the watch goes on; virsh goes on too. `label` is the URI
/// when several are watched, for the messages to name.
fn set_keepalive(conn: &Connection, keepalive: &Keepalive, label: Option<&str>) -> Result<(), Failure> {
    let interval = Duration::from_secs(keepalive.interval);
    let note = match conn.set_keepalive(interval, keepalive.count) {
        Ok(true) => return Ok(()),
        Ok(false) => "the daemon does not offer keepalive".to_string(),
        Err(e) if e.code == ErrorCode::NoSupport => e.message,
        Err(e) => return Err(Failure::runtime(format!("cannot set keepalive: {}", prefixed(label, e.message)))),
    };
    if keepalive.chosen {
        let _ = writeln!(io::stderr(), "{NAME}: keepalive not set: {}", prefixed(label, note));
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => print_out(HELP),
        Ok(Command::Version) => print_out(&format!("{NAME} {VERSION}\n")),
        Ok(Command::Watch(options)) => watch(&options),
        Err(failure) => Err(failure),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { status, message }) => {
            eprintln!("{NAME}: {message}");
            ExitCode::from(status)
        }
    }
}

/// Writes `text` to stdout; a closed stdout is no failure.
fn print_out(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure::runtime(format!("cannot write: {e}"))),
        _ => Ok(()),
    }
}

/// The one notice a watch of the embedded test driver starts with, when
/// nothing but the program could make events there; with `several` URIs,
/// where --demo is refused, it points to a daemon alone.
fn quiet_notice(uri: &str, several: bool) -> String {
    let which = if uri.is_empty() { DEFAULT_URI } else { uri };
    if several {
        return format!(
            "{NAME}: {which} is the embedded test driver, inside this program: nothing happens there unless the \
             program itself acts, which it does only with --demo and one --uri"
        );
    }
    let demo = if embedded(uri) == Some(true) { "--demo" } else { "--demo (on test:///default)" };
    format!(
        "{NAME}: {which} is the embedded test driver, inside this program: nothing happens there unless the \
         program itself acts; try {demo} to see events, or the URI of a libvirt daemon (--uri qemu:///system)"
    )
}

/// `--demo`'s domain and its next step.
struct Demo {
    domain: Domain,
    interval: Duration,
    step: usize,
    /// When the next step is due; never, past what `Instant` can say.
    next: Option<Instant>,
}

impl Demo {
    /// Takes the next step if its time has come; says whether it did (and
    /// so queued an event to deliver).
    fn step_if_due(&mut self) -> Result<bool, Failure> {
        let now = Instant::now();
        if self.next.is_none_or(|next| now < next) {
            return Ok(false);
        }
        let (name, step) = DEMO_STEPS[self.step % DEMO_STEPS.len()];
        step(&self.domain)
            .map_err(|e| Failure::runtime(format!("--demo cannot {name} the domain 'test': {}", e.message)))?;
        self.step += 1;
        self.next = now.checked_add(self.interval);
        Ok(true)
    }
}

/// Whether the loop goes on after printing.
enum Printed {
    More,
    Done,
}

/// One connection watched, and the queue its handler fills for the loop to print.
struct Watched {
    /// Its URI when several are watched: what its events and messages say.
    label: Option<String>,
    conn: Connection,
    /// Its event descriptor: readable exactly when a delivery has work.
    fd: RawFd,
    queue: Arc<Mutex<Vec<Event>>>,
}

impl Watched {
    /// Opens `uri` and registers the one handler; says on stderr what the
    /// daemon refuses. `label` is the URI when several are watched. With
    /// `--reconnect`, a daemon that is not there (VIR_ERR_NO_CONNECT) is
    /// [`Opened::Absent`], to be tried again, and reconnection is turned on.
    fn open(uri: &str, filter: &Filter, options: &Options, label: Option<&str>) -> Result<Opened, Failure> {
        // A password auth.conf lacks is asked on the terminal, where there is one.
        let mut prompt = TerminalAuth;
        let asker: Option<&mut dyn virevent::Authenticator> =
            if io::stdin().is_terminal() { Some(&mut prompt) } else { None };
        let cannot = |what: &str, e: virevent::Error| Failure::runtime(format!("cannot {what} '{uri}': {}", e.message));
        let conn = match Connection::open_auth(Some(uri), asker) {
            Ok(conn) => conn,
            Err(e) if options.reconnect && e.code == ErrorCode::NoConnect => return Ok(Opened::Absent(e.message)),
            Err(e) => return Err(cannot("connect to", e)),
        };
        set_keepalive(&conn, &options.keepalive, label)?;
        if options.reconnect && embedded(uri).is_none() {
            conn.set_reconnect(Some((RECONNECT_MIN, RECONNECT_MAX))).map_err(|e| cannot("turn reconnection on for", e))?;
        }
        let queue: Arc<Mutex<Vec<Event>>> = Arc::default();
        let sink = queue.clone();
        conn.add_handler(filter.clone(), move |event| {
            sink.lock().unwrap_or_else(PoisonError::into_inner).push(event.clone())
        })
        .map_err(|e| cannot("watch", e))?;
        let fd = conn.event_fd().map_err(|e| cannot("watch", e))?;
        // An older daemon lacks some kinds: say once which will never come.
        let refused: Vec<String> =
            conn.refused_event_types().unwrap_or_default().into_iter().map(|(kind, _)| kind).collect();
        if !refused.is_empty() {
            let note = prefixed(label, format!("the daemon does not send these event types: {}", refused.join(", ")));
            let _ = writeln!(io::stderr(), "{NAME}: {note}");
        }
        Ok(Opened::Watching(Watched { label: label.map(str::to_string), conn, fd, queue }))
    }
}

/// What opening one URI came to.
enum Opened {
    Watching(Watched),
    /// With `--reconnect`: the daemon is not there (why).
    Absent(String),
}

/// A daemon `--reconnect` tries again, not there at start: when next, and
/// the wait after that try.
struct Absent {
    uri: String,
    next: Instant,
    wait: Duration,
}

/// What one delivery on a connection came to.
enum Delivered {
    /// Go on watching it.
    More,
    /// The count was reached or stdout closed: the watch is over.
    Done,
    /// Its link is gone (its connection-closed event printed): the reason.
    Lost(String),
}

fn watch(options: &Options) -> Result<(), Failure> {
    // The filter is checked before connecting: a bad one is a bad argument.
    let filter = if options.filters.is_empty() {
        Filter::All
    } else {
        Filter::parse(&options.filters).map_err(|e| Failure::usage(format!("bad --filter: {}", e.message)))?
    };
    let deadline = options.timeout.map(|t| Instant::now().checked_add(t));
    if let Some(path) = &options.auth_file {
        // Read by the opens below, as libvirt's client reads it; no thread runs yet.
        std::env::set_var("LIBVIRT_AUTH_FILE", path);
    }
    // Events name their connection only when there are several.
    let several = options.uris.len() > 1;
    let mut watched = Vec::with_capacity(options.uris.len());
    let mut absent = Vec::new();
    for uri in &options.uris {
        if skips_the_daemon_check(uri) {
            let note = prefixed(several.then_some(uri), "no_verify=1: the daemon's certificate is not checked".into());
            let _ = writeln!(io::stderr(), "{NAME}: warning: {note}");
        }
        match Watched::open(uri, &filter, options, several.then_some(uri.as_str()))? {
            Opened::Watching(w) => watched.push(w),
            Opened::Absent(why) => {
                let _ = writeln!(io::stderr(), "{NAME}: cannot connect to '{uri}': {why}; trying again (--reconnect)");
                absent.push(Absent { uri: uri.clone(), next: Instant::now() + RECONNECT_MIN, wait: RECONNECT_MIN });
            }
        }
    }
    let mut demo = match options.demo {
        Some(interval) => {
            let domain = watched[0]
                .conn
                .lookup_domain("test")
                .map_err(|e| Failure::runtime(format!("--demo cannot find the domain 'test': {}", e.message)))?;
            Some(Demo { domain, interval, step: 0, next: Some(Instant::now()) })
        }
        None => {
            for uri in options.uris.iter().filter(|uri| embedded(uri).is_some()) {
                // Not eprintln!: a closed stderr must not end the watch.
                let _ = writeln!(io::stderr(), "{}", quiet_notice(uri, several));
            }
            None
        }
    };

    let mut out = io::stdout().lock();
    let mut left = options.count;
    // Each connection delivers once at start (what came with the open), then
    // whenever poll finds its descriptor readable, and only then.
    let mut ready = vec![true; watched.len()];
    loop {
        if let Some(demo) = &mut demo {
            ready[0] |= demo.step_if_due()?;
        }
        // The daemons not there at start whose next try is due.
        let now = Instant::now();
        let mut i = 0;
        while i < absent.len() {
            let a: &mut Absent = &mut absent[i];
            if a.next > now {
                i += 1;
                continue;
            }
            match Watched::open(&a.uri, &filter, options, several.then_some(a.uri.as_str()))? {
                Opened::Watching(w) => {
                    let _ = writeln!(io::stderr(), "{NAME}: connected to '{}'", a.uri);
                    watched.push(w);
                    ready.push(true);
                    absent.remove(i);
                }
                Opened::Absent(_) => {
                    a.wait = (a.wait * 2).min(RECONNECT_MAX);
                    a.next = now + a.wait;
                    i += 1;
                }
            }
        }
        let mut n = 0;
        while n < watched.len() {
            if !std::mem::take(&mut ready[n]) {
                n += 1;
                continue;
            }
            match deliver(&watched[n], &mut out, options.format, &mut left)? {
                Delivered::More => n += 1,
                Delivered::Done => return Ok(()),
                // The others go on; the last one lost ends the watch (exit 1).
                Delivered::Lost(reason) => {
                    let lost = Failure::runtime(format!("connection lost: {reason}"));
                    watched.remove(n);
                    ready.remove(n);
                    if watched.is_empty() && absent.is_empty() {
                        return Err(lost);
                    }
                    let _ = writeln!(io::stderr(), "{NAME}: {}", lost.message);
                }
            }
        }
        // Until the deadline, or the next demo step if it comes first.
        let mut wait = match deadline {
            None | Some(None) => None,
            Some(Some(deadline)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                Some(left)
            }
        };
        let demo_next = demo.as_ref().and_then(|demo| demo.next);
        for next in demo_next.into_iter().chain(absent.iter().map(|a| a.next)) {
            let step = next.saturating_duration_since(Instant::now());
            wait = Some(wait.map_or(step, |w| w.min(step)));
        }
        // Rounded up: waking early would only poll again.
        let wait_ms = wait.map_or(-1, |w| w.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int);
        let mut pollfds: Vec<libc::pollfd> =
            watched.iter().map(|w| libc::pollfd { fd: w.fd, events: libc::POLLIN, revents: 0 }).collect();
        // SAFETY: the pollfds are ours, for descriptors the connections own and keep open.
        if unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, wait_ms) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(Failure::runtime(format!("poll failed: {e}")));
            }
        }
        // POLLERR or POLLHUP too: the delivery says what went wrong.
        for (ready, pollfd) in ready.iter_mut().zip(&pollfds) {
            *ready = pollfd.revents != 0;
        }
    }
}

/// Delivers on one connection and prints what its handler queued, counting
/// down `left` (the events still to print, over all connections).
fn deliver(w: &Watched, out: &mut impl Write, format: Format, left: &mut Option<u64>) -> Result<Delivered, Failure> {
    let label = w.label.as_deref();
    let delivered = w.conn.deliver();
    let events = std::mem::take(&mut *w.queue.lock().unwrap_or_else(PoisonError::into_inner));
    for event in &events {
        if *left == Some(0) {
            break;
        }
        if let Printed::Done = print(out, format, event, label)? {
            return Ok(Delivered::Done);
        }
        *left = left.map(|n| n - 1);
    }
    if *left == Some(0) {
        return Ok(Delivered::Done);
    }
    // Once the link is gone and its connection-closed event is delivered,
    // deliveries fail with the reason.
    Ok(match delivered {
        Ok(_) => Delivered::More,
        Err(e) => Delivered::Lost(prefixed(label, e.message)),
    })
}

/// Writes one event and flushes it; a closed stdout ends the watch quietly.
fn print(out: &mut impl Write, format: Format, event: &Event, label: Option<&str>) -> Result<Printed, Failure> {
    let mut line = format::render(format, event, label);
    line.push('\n');
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(Printed::More),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Printed::Done),
        Err(e) => Err(Failure::runtime(format!("cannot write an event: {e}"))),
    }
}
