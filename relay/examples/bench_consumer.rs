//! The consumer of bench_relay.sh: end-to-end latency from a fake daemon's
//! event to a JetStream consumer, and the rate messages arrive at.
//!
//!   bench_consumer --server URL [--stream NAME] [--subject S] [--count N]
//!                  [--idle SECONDS] [--timeout SECONDS]
//!
//! Makes an ordered consumer (deliver new) of SUBJECT (default virevent.>),
//! prints "ready", then reads until COUNT messages came, or IDLE seconds
//! (default 2) passed without one after the first, or TIMEOUT seconds
//! (default 120) in all, or SIGTERM/SIGINT. For each message whose payload
//! holds `name>L` and 19 digits (fleet_daemon's domain names, raw_publish's
//! payloads: the CLOCK_MONOTONIC nanoseconds of the send, same host, same
//! clock), the latency is the time of its arrival here less that one. The
//! Virevent-Timestamp header is no daemon time: the remote driver stamps an
//! event when the client decodes it. One line on stdout at the end:
//!   consumer received=N timed=N p50_us= p99_us= max_us= seconds= rate= bytes= cpu_us=
//! seconds and rate: from the first message to the last; bytes: the mean
//! payload size; cpu_us: this process's CPU time (user + system) from
//! "ready" to the end.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;

mod common;
use common::{cpu_us, monotonic_ns};

/// The send time a payload carries, if any.
fn sent_ns(payload: &[u8]) -> Option<i64> {
    const MARK: &[u8] = b"name>L";
    let at = payload.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = payload.get(at..at + 19)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn usage(why: &str) -> ! {
    eprintln!("bench_consumer: {why}");
    eprintln!("usage: bench_consumer --server URL [--stream NAME] [--subject S] [--count N] [--idle S] [--timeout S]");
    std::process::exit(2)
}

fn fail(what: &str, e: &dyn std::fmt::Display) -> ! {
    eprintln!("bench_consumer: {what}: {e}");
    std::process::exit(1)
}

/// The sample at quantile `q` of sorted `v`, in microseconds.
fn quantile(v: &[i64], q: f64) -> f64 {
    if v.is_empty() {
        return -1.0;
    }
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (mut server, mut stream_name, mut subject) =
        ("nats://127.0.0.1:4222".to_string(), "virevent".to_string(), "virevent.>".to_string());
    let (mut count, mut idle, mut timeout) = (u64::MAX, 2.0f64, 120.0f64);
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let value = it.next().unwrap_or_else(|| usage(&format!("{name} wants a value")));
        let number = || value.parse::<f64>().unwrap_or_else(|_| usage(&format!("{name} wants a number")));
        match name.as_str() {
            "--server" => server = value,
            "--stream" => stream_name = value,
            "--subject" => subject = value,
            "--count" => count = number() as u64,
            "--idle" => idle = number(),
            "--timeout" => timeout = number(),
            _ => usage(&format!("unknown option {name}")),
        }
    }
    let client = async_nats::connect(server.as_str()).await.unwrap_or_else(|e| fail("cannot connect", &e));
    let js = jetstream::new(client);
    let stream = js.get_stream(&stream_name).await.unwrap_or_else(|e| fail("cannot get the stream", &e));
    let config = consumer::pull::OrderedConfig {
        filter_subject: subject,
        deliver_policy: consumer::DeliverPolicy::New,
        ..Default::default()
    };
    let consumer: consumer::Consumer<consumer::pull::OrderedConfig> =
        stream.create_consumer(config).await.unwrap_or_else(|e| fail("cannot make the consumer", &e));
    let mut messages = consumer.messages().await.unwrap_or_else(|e| fail("cannot read", &e));
    println!("ready");
    let cpu_ready = cpu_us();

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).unwrap_or_else(|e| fail("signal", &e));
    let mut int = signal(SignalKind::interrupt()).unwrap_or_else(|e| fail("signal", &e));
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout);
    let idle = Duration::from_secs_f64(idle);
    let mut samples: Vec<i64> = Vec::with_capacity(1 << 20);
    let (mut received, mut first, mut last) = (0u64, None::<Instant>, Instant::now());
    let mut bytes = 0u64;
    while received < count {
        // Before the first message only the timeout counts.
        let wait = if first.is_some() { deadline.min(tokio::time::Instant::now() + idle) } else { deadline };
        let message = tokio::select! {
            m = messages.next() => m,
            _ = tokio::time::sleep_until(wait) => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let Some(message) = message else { break };
        let message = message.unwrap_or_else(|e| fail("cannot read", &e));
        let now = monotonic_ns();
        last = Instant::now();
        first.get_or_insert(last);
        received += 1;
        bytes += message.payload.len() as u64;
        if let Some(sent) = sent_ns(&message.payload) {
            samples.push(now - sent);
        }
    }
    let seconds = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    samples.sort_unstable();
    println!(
        "consumer received={received} timed={} p50_us={:.0} p99_us={:.0} max_us={:.0} seconds={seconds:.3} rate={:.0} \
         bytes={} cpu_us={:.0}",
        samples.len(),
        quantile(&samples, 0.5),
        quantile(&samples, 0.99),
        quantile(&samples, 1.0),
        if seconds > 0.0 { (received - 1) as f64 / seconds } else { 0.0 },
        bytes / received.max(1),
        cpu_us() - cpu_ready
    );
}
