//! virevent-sub: prints the events virevent-relay published to JetStream, as
//! virevent-watch prints a daemon's: the same filters, formats, count and
//! timeout, from a URI that names the NATS server, the stream and what to read.

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use virevent::format::{self, Format};
use virevent::Filter;
use virevent_relay::cli::{self, Usage};
use virevent_relay::headers;

const NAME: &str = "virevent-sub";
const VERSION: &str = env!("CARGO_PKG_VERSION");

// docs/virevent-sub.1 says the same; relay/tests/man.rs checks that every
// option of one is in the other.
const HELP: &str = concat!(
    "\
Usage: virevent-sub --uri nats://HOST[:PORT]/STREAM[?PARAMS] [OPTION]...
Print the events virevent-relay published to a NATS JetStream stream, one per
line, flushing each at once, as virevent-watch prints a daemon's.

The URI: HOST and PORT of the NATS server (default port 4222), the stream
(default virevent), and PARAMS joined by '&', taken as written:
  subject=SUBJECT      what to read (default virevent.>): virevent.HOST.TYPE
                       with NATS wildcards, virevent.node1_example_com.> for
                       one host, virevent.*.domain-state-transition for one
                       type
  durable=NAME         a durable consumer of that name: made at first use,
                       each event acknowledged once printed, and the next run
                       goes on where this one stopped
  deliver=all|new|last where a new consumer starts: the oldest event kept
                       (all, the default), the next one published (new), or
                       the last one (last)
  start-seq=N          start at the stream's sequence N
  start-time=SECONDS   start at the first event stored at or after SECONDS
                       since the epoch (decimals allowed, as event timestamps)

Options:
  --uri URI            the stream to read, as above
  --filter ENTRY       print only the events ENTRY matches, as virevent-watch
                       --filter (repeat it: any entry)
  --format FORMAT      xml (the default), line, json or virsh, as
                       virevent-watch --format; where the subject spans
                       several hosts, each event also names the URI its relay
                       watched (a uri attribute, a \"uri\" member, a prefix);
                       a JSON event (virevent-relay --format json) is printed
                       as stored
  --count N            exit after printing N events
  --timeout SECONDS    exit once SECONDS have passed
  -h, --help           print this help and exit
  --version            print the name and version (virevent-sub ",
    env!("CARGO_PKG_VERSION"),
    ") and exit

Exit status:
  0  the count was reached, the timeout passed, or standard output was closed
  1  the server or stream could not be reached, or a message is no relay's
     event (or is JSON, from virevent-relay --format json, while --filter or
     another format than json asks for the XML)
  2  bad arguments
"
);

/// Where and what to read.
struct Source {
    server: String,
    stream: String,
    subject: String,
    durable: Option<String>,
    deliver: consumer::DeliverPolicy,
}

struct Options {
    source: Source,
    filters: Vec<String>,
    format: Format,
    count: Option<u64>,
    timeout: Option<Duration>,
}

enum Command {
    Help,
    Version,
    Read(Options),
}

/// Reads `nats://HOST[:PORT]/STREAM[?PARAMS]`.
fn parse_uri(uri: &str) -> Result<Source, Usage> {
    let bad = |why: &str| Usage(format!("bad --uri '{uri}': {why}"));
    let rest = uri.strip_prefix("nats://").ok_or_else(|| bad("it starts with nats://"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, stream) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(bad("it names the NATS server: nats://HOST[:PORT]/STREAM"));
    }
    let stream = if stream.is_empty() { "virevent" } else { stream };
    if stream.contains(['/', '\\', '.', '*', '>']) || stream.contains(char::is_whitespace) {
        return Err(bad("a stream name holds no '/', '\\', '.', '*', '>' or white space"));
    }
    let mut source = Source {
        server: format!("nats://{authority}"),
        stream: stream.into(),
        subject: "virevent.>".into(),
        durable: None,
        deliver: consumer::DeliverPolicy::All,
    };
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = param.split_once('=').ok_or_else(|| bad(&format!("'{param}' is no NAME=VALUE")))?;
        match name {
            "subject" if !value.is_empty() => source.subject = value.into(),
            "durable" if !value.is_empty() && !value.contains(['.', '*', '>', ' ']) => {
                source.durable = Some(value.into())
            }
            "deliver" => {
                source.deliver = match value {
                    "all" => consumer::DeliverPolicy::All,
                    "new" => consumer::DeliverPolicy::New,
                    "last" => consumer::DeliverPolicy::Last,
                    _ => return Err(bad(&format!("deliver is all, new or last, not '{value}'"))),
                }
            }
            "start-seq" => {
                let start_sequence = cli::whole("start-seq", "stream sequences", value)?;
                source.deliver = consumer::DeliverPolicy::ByStartSequence { start_sequence }
            }
            "start-time" => {
                let at = cli::seconds("start-time", value)?;
                let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(at.as_nanos() as i128)
                    .map_err(|_| bad(&format!("start-time {value} is past what a date can say")))?;
                source.deliver = consumer::DeliverPolicy::ByStartTime { start_time }
            }
            _ => return Err(bad(&format!("unknown or empty parameter '{param}'"))),
        }
    }
    Ok(source)
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, Usage> {
    let mut uri = None;
    let (mut filters, mut format, mut count, mut timeout) = (Vec::new(), Format::Xml, None, None);
    for (name, value) in
        cli::options(args, &["-h", "--help", "--version"], &["--uri", "--filter", "--format", "--count", "--timeout"])?
    {
        let value = value.unwrap_or_default();
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--uri" => uri = Some(parse_uri(&value)?),
            "--filter" => filters.push(value),
            "--format" => {
                format = Format::parse(&value)
                    .ok_or_else(|| Usage(format!("--format wants xml, line, json or virsh, not '{value}'")))?
            }
            "--count" => count = Some(cli::whole(&name, "events", &value)?),
            _ => timeout = Some(cli::seconds(&name, &value)?),
        }
    }
    let source = uri.ok_or_else(|| Usage("give --uri nats://HOST[:PORT]/STREAM: the stream to read".into()))?;
    Ok(Command::Read(Options { source, filters, format, count, timeout }))
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            let _ = io::stdout().write_all(HELP.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            let _ = writeln!(io::stdout(), "{NAME} {VERSION}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Read(options)) => options,
        Err(Usage(message)) => return usage(&message),
    };
    let filter = if options.filters.is_empty() {
        Filter::All
    } else {
        match Filter::parse(&options.filters) {
            Ok(filter) => filter,
            Err(e) => return usage(&format!("bad --filter: {}", e.message)),
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return failure(&format!("cannot start the NATS client: {e}")),
    };
    let read = read(&options, &filter);
    let result = runtime.block_on(async {
        match options.timeout {
            Some(limit) => tokio::time::timeout(limit, read).await.unwrap_or(Ok(())),
            None => read.await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => failure(&message),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("{NAME}: {message}\nTry '{NAME} --help' for more information.");
    ExitCode::from(2)
}

fn failure(message: &str) -> ExitCode {
    eprintln!("{NAME}: {message}");
    ExitCode::FAILURE
}

/// Whether `subject` can match more than one host: its host token is a
/// wildcard, or it has none (`virevent.>`).
fn spans_hosts(subject: &str) -> bool {
    let mut tokens = subject.split('.');
    tokens.next();
    matches!(tokens.next(), None | Some("*" | ">"))
}

/// Reads the stream and prints, until the count is reached or stdout closes.
async fn read(options: &Options, filter: &Filter) -> Result<(), String> {
    let source = &options.source;
    let client = async_nats::ConnectOptions::new()
        .name(NAME)
        .connection_timeout(Duration::from_secs(5))
        .connect(source.server.as_str())
        .await
        .map_err(|e| format!("cannot connect to the NATS server '{}': {e}", source.server))?;
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(&source.stream).await.map_err(|e| format!("cannot read the stream '{}': {e}", source.stream))?;
    let mut printer = Printer { options, filter, labelled: spans_hosts(&source.subject), left: options.count };
    let Some(name) = &source.durable else {
        let config = consumer::pull::OrderedConfig {
            filter_subject: source.subject.clone(),
            deliver_policy: source.deliver,
            ..Default::default()
        };
        let consumer: consumer::Consumer<consumer::pull::OrderedConfig> =
            stream.create_consumer(config).await.map_err(|e| format!("cannot read the stream: {e}"))?;
        let mut messages = consumer.messages().await.map_err(|e| format!("cannot read: {e}"))?;
        while printer.left != Some(0) {
            let Some(message) = messages.next().await else { break };
            if !printer.show(&message.map_err(|e| format!("cannot read: {e}"))?)? {
                break;
            }
        }
        return Ok(());
    };
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: source.subject.clone(),
        deliver_policy: source.deliver,
        ack_policy: consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    let consumer = stream
        .get_or_create_consumer(name, config)
        .await
        .map_err(|e| format!("cannot use the durable consumer '{name}': {e}"))?;
    // In batches no larger than the count left: an event pulled is an event
    // printed and acknowledged, so the next run starts right after the last.
    let mut more = true;
    while more && printer.left != Some(0) {
        let size = printer.left.map_or(DURABLE_BATCH, |n| n.min(DURABLE_BATCH as u64) as usize);
        let mut batch = consumer
            .batch()
            .max_messages(size)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|e| format!("cannot read: {e}"))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| format!("cannot read: {e}"))?;
            more = printer.show(&message)?;
            message.ack().await.map_err(|e| format!("cannot acknowledge: {e}"))?;
            if !more {
                break;
            }
        }
        client.flush().await.map_err(|e| format!("cannot acknowledge: {e}"))?;
    }
    Ok(())
}

/// The most events a durable consumer pulls at once.
const DURABLE_BATCH: usize = 100;

/// Prints what the options ask for.
struct Printer<'a> {
    options: &'a Options,
    filter: &'a Filter,
    /// Whether each event names the URI its relay watched.
    labelled: bool,
    left: Option<u64>,
}

impl Printer<'_> {
    /// Prints `message` if the filter takes it; says whether to go on.
    fn show(&mut self, message: &jetstream::Message) -> Result<bool, String> {
        let header = |name: &str| message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
        let line = match header(headers::FORMAT).as_deref() {
            Some("json") if self.options.format == Format::Json && self.options.filters.is_empty() => {
                String::from_utf8_lossy(&message.payload).into_owned()
            }
            Some("json") => {
                return Err(format!(
                    "the stream holds JSON events (virevent-relay --format json) at '{}': read them with --format \
                     json and no --filter",
                    message.subject
                ))
            }
            _ => {
                let text = std::str::from_utf8(&message.payload)
                    .map_err(|_| format!("a message on '{}' is not UTF-8: no relay's event", message.subject))?;
                let event = virevent::event::parse_delivered(text)
                    .map_err(|e| format!("a message on '{}' is no relay's event: {}", message.subject, e.message))?;
                if !self.filter.matches(&event) {
                    return Ok(true);
                }
                let uri = header(headers::URI).filter(|_| self.labelled);
                format::render(self.options.format, &event, uri.as_deref())
            }
        };
        let mut out = io::stdout().lock();
        match out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(false),
            Err(e) => return Err(format!("cannot write an event: {e}")),
            Ok(()) => {}
        }
        self.left = self.left.map(|n| n - 1);
        Ok(self.left != Some(0))
    }
}
