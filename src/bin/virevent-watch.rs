//! virevent-watch: prints events as they arrive.
//!
//! It uses only the safe Rust API and no thread: it polls the connection's
//! event descriptor, then delivers, and its one handler queues the events for
//! the loop to print (the handler cannot end the program or report a failed
//! write; the loop can).

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use virevent::{Connection, Event, Filter};

#[path = "virevent-watch/format.rs"]
mod format;

use format::Format;

const NAME: &str = "virevent-watch";
const DEFAULT_URI: &str = "test:///default";

const HELP: &str = "\
Usage: virevent-watch [OPTION]...
Print virevent events as they arrive, one per line, flushing each at once.

Options:
  --uri URI          where to watch (default test:///default: the embedded test
                     driver, where nothing happens from outside); a libvirt
                     daemon: test+unix:///default?socket=PATH, qemu:///system,
                     qemu:///session, DRIVER+unix:///PATH?socket=PATH
  --filter ENTRY     print only the events ENTRY matches: a type pattern made of
                     name characters and '*' (domain-state-transition, domain-*)
                     or else an XPath 1.0 expression (/event[new-state='paused']);
                     repeat it to print the events any entry matches
                     (default: every event)
  --count N          exit after printing N events
  --timeout SECONDS  exit once SECONDS have passed (decimals allowed: 0.5)
  --format FORMAT    how to print each event:
                     xml   the event's canonical one-line XML (the default)
                     line  a readable line, the time in UTC with milliseconds;
                           domain-state-transition events read
                             2026-11-24 20:59:26.281 test running -> paused (suspended-paused)
                           (time, domain-name, old-state -> new-state, (reason)),
                           other events: time, type, then the event's attributes
                           and child elements as NAME=VALUE (a value that is empty
                           or holds spaces, quotes or controls is written as a
                           JSON string)
                     json  one JSON object per line: \"type\", \"timestamp\" (a
                           number, seconds since the epoch), \"seq\" (a number),
                           then each attribute and child element of the event as
                           a string field; one named type, timestamp or seq is
                           written with a leading '_' (\"_type\")
  -h, --help         print this help and exit
Options take their value as the next argument or after '=' (--count=3).

Exit status:
  0  the count was reached, the timeout passed, or standard output was closed
  1  the connection could not be opened, or it was lost: when a daemon ends the
     connection, its connection-closed event (reason eof or error) is printed if
     the filters take it, then the reason goes to standard error
  2  bad arguments (including a filter entry the library refuses)
";

/// What the command line asks for.
struct Options {
    uri: String,
    filters: Vec<String>,
    count: Option<u64>,
    timeout: Option<Duration>,
    format: Format,
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
    Watch(Options),
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, Failure> {
    let mut options =
        Options { uri: DEFAULT_URI.into(), filters: Vec::new(), count: None, timeout: None, format: Format::Xml };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        if !matches!(name.as_str(), "--uri" | "--filter" | "--count" | "--timeout" | "--format") {
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
            "--uri" => options.uri = value,
            "--filter" => options.filters.push(value),
            "--count" => match value.parse::<u64>() {
                Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => options.count = Some(n),
                _ => return Err(Failure::usage(format!("--count wants a whole number of events, not '{value}'"))),
            },
            "--timeout" => options.timeout = Some(parse_seconds(&value)?),
            _ => {
                options.format = Format::parse(&value)
                    .ok_or_else(|| Failure::usage(format!("--format wants xml, line or json, not '{value}'")))?
            }
        }
    }
    Ok(Command::Watch(options))
}

/// Decimal seconds: digits, optionally a point and more digits (`0.5`, `.5`, `3`).
fn parse_seconds(value: &str) -> Result<Duration, Failure> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction);
    well_formed
        .then(|| value.parse::<f64>().ok())
        .flatten()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| Failure::usage(format!("--timeout wants decimal seconds (like 2 or 0.5), not '{value}'")))
}

fn main() -> ExitCode {
    let result = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => print_help(),
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

fn print_help() -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(HELP.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure::runtime(format!("cannot write: {e}"))),
        _ => Ok(()),
    }
}

/// Whether the loop goes on after printing.
enum Printed {
    More,
    Done,
}

fn watch(options: &Options) -> Result<(), Failure> {
    // The filter is checked before connecting: a bad one is a bad argument.
    let filter = if options.filters.is_empty() {
        Filter::All
    } else {
        Filter::parse(&options.filters).map_err(|e| Failure::usage(format!("bad --filter: {}", e.message)))?
    };
    let deadline = options.timeout.map(|t| Instant::now().checked_add(t));
    let conn = Connection::open(Some(&options.uri))
        .map_err(|e| Failure::runtime(format!("cannot connect to '{}': {}", options.uri, e.message)))?;
    let queue: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = queue.clone();
    conn.add_handler(filter, move |event| sink.lock().unwrap_or_else(PoisonError::into_inner).push(event.clone()))
        .map_err(|e| Failure::runtime(format!("cannot watch '{}': {}", options.uri, e.message)))?;
    let fd = conn.event_fd().map_err(|e| Failure::runtime(format!("cannot watch '{}': {}", options.uri, e.message)))?;

    let mut out = io::stdout().lock();
    let mut left = options.count;
    loop {
        let delivered = conn.deliver();
        let events = std::mem::take(&mut *queue.lock().unwrap_or_else(PoisonError::into_inner));
        for event in &events {
            if left == Some(0) {
                break;
            }
            if let Printed::Done = print(&mut out, options.format, event)? {
                return Ok(());
            }
            left = left.map(|n| n - 1);
        }
        if left == Some(0) {
            return Ok(());
        }
        // Once the link is gone and its connection-closed event is delivered,
        // deliveries fail with the reason.
        delivered.map_err(|e| Failure::runtime(format!("connection lost: {}", e.message)))?;
        let wait_ms = match deadline {
            None | Some(None) => -1,
            Some(Some(deadline)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                // Rounded up: waking early would only poll again.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
            }
        };
        let mut pollfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd, for the descriptor the connection owns and keeps open.
        if unsafe { libc::poll(&mut pollfd, 1, wait_ms) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(Failure::runtime(format!("poll failed: {e}")));
            }
        }
    }
}

/// Writes one event and flushes it; a closed stdout ends the watch quietly.
fn print(out: &mut impl Write, format: Format, event: &Event) -> Result<Printed, Failure> {
    let mut line = format::render(format, event);
    line.push('\n');
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(Printed::More),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Printed::Done),
        Err(e) => Err(Failure::runtime(format!("cannot write an event: {e}"))),
    }
}
