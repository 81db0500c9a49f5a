//! The anchor of bench_relay.sh: the acknowledged JetStream publish rate of a
//! minimal async-nats program on this machine, the same payload size into the
//! same stream as virevent-relay's events.
//!
//!   raw_publish --server URL [--stream NAME] [--subject S] [--count N]
//!               [--size BYTES] [--window W] [--headers]
//!
//! Publishes COUNT messages of SIZE bytes (default 200) on SUBJECT (default
//! virevent.raw.bench) with one JetStream acknowledgement awaited for each,
//! through a sliding window as virevent-relay's: at most WINDOW (default
//! 256) in flight, a new publish as soon as the oldest is acknowledged.
//! --headers adds the relay's seven headers, Nats-Msg-Id among them (so the
//! server deduplicates as it does for the relay). Each payload starts with `<name>L` and the
//! CLOCK_MONOTONIC nanoseconds of its publish (19 digits, as fleet_daemon's
//! domain names), so bench_consumer measures its latency as a relay's event.
//! The stream is made as the relay makes it when missing. One line on
//! stdout:
//!   raw sent=N acked=N duplicates=N seconds=S rate=MSGS_PER_S cpu_us=US
//! cpu_us: this process's CPU time (user + system) from the first publish to
//! the last acknowledgement.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use bytes::Bytes;

mod common;
use common::{cpu_us, monotonic_ns};

struct Args {
    server: String,
    stream: String,
    subject: String,
    count: u64,
    size: usize,
    window: usize,
    /// The relay's headers: Nats-Msg-Id and the Virevent-* ones.
    headers: bool,
}

fn args() -> Args {
    let mut a = Args {
        server: "nats://127.0.0.1:4222".into(),
        stream: "virevent".into(),
        subject: "virevent.raw.bench".into(),
        count: 100_000,
        size: 200,
        window: 256,
        headers: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(&format!("{name} wants a value")));
        match name.as_str() {
            "--server" => a.server = value(),
            "--stream" => a.stream = value(),
            "--subject" => a.subject = value(),
            "--count" => a.count = value().parse().unwrap_or_else(|_| usage("--count wants a number")),
            "--size" => a.size = value().parse().unwrap_or_else(|_| usage("--size wants a number")),
            "--window" => a.window = value().parse().unwrap_or_else(|_| usage("--window wants a number")),
            "--headers" => a.headers = true,
            _ => usage(&format!("unknown option {name}")),
        }
    }
    if a.window == 0 || a.size < 32 {
        usage("--window wants at least 1, --size at least 32");
    }
    a
}

fn usage(why: &str) -> ! {
    eprintln!("raw_publish: {why}");
    eprintln!("usage: raw_publish --server URL [--stream NAME] [--subject S] [--count N] [--size BYTES] [--window W] [--headers]");
    std::process::exit(2)
}

/// A payload of `size` bytes: `<name>L` and the send time, then filler.
fn payload(size: usize) -> Bytes {
    let mut p = format!("<name>L{:019}</name>", monotonic_ns()).into_bytes();
    p.resize(size, b'x');
    Bytes::from(p)
}

fn message(a: &Args, i: u64, start: u64) -> PublishMessage {
    let m = PublishMessage::build().payload(payload(a.size));
    if !a.headers {
        return m;
    }
    // What virevent-relay sends with each event (main.rs, publication).
    m.message_id(format!("raw/{start}/{i}"))
        .header("Virevent-Host", "raw")
        .header("Virevent-Type", "domain-lifecycle")
        .header("Virevent-Seq", i.to_string())
        .header("Virevent-Timestamp", "1765140000.123456")
        .header("Virevent-Uri", "test+unix:///default?socket=/tmp/virevent-relay-bench-XXXXXX/fleet-sock")
        .header("Virevent-Format", "xml")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let client = async_nats::connect(a.server.as_str()).await.unwrap_or_else(|e| {
        eprintln!("raw_publish: cannot connect to {}: {e}", a.server);
        std::process::exit(1)
    });
    // As the relay's context: acks in flight bounded, publishes wait for room.
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .max_ack_inflight(2 * a.window)
        .backpressure_on_inflight(true)
        .build(client);
    let config = stream::Config {
        name: a.stream.clone(),
        subjects: vec!["virevent.>".into()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    if let Err(e) = js.get_or_create_stream(config).await {
        eprintln!("raw_publish: cannot use the stream {}: {e}", a.stream);
        std::process::exit(1)
    }
    let start_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    let (mut acked, mut duplicates) = (0u64, 0u64);
    let mut inflight: VecDeque<PublishAckFuture> = VecDeque::with_capacity(a.window);
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("raw_publish: {what}: {e}");
        std::process::exit(1)
    };
    let began = Instant::now();
    let cpu_began = cpu_us();
    for i in 0..a.count {
        if inflight.len() == a.window {
            let ack = inflight.pop_front().unwrap().await.unwrap_or_else(|e| fail("ack", &e));
            acked += 1;
            duplicates += ack.duplicate as u64;
        }
        let ack = js.send_publish(a.subject.clone(), message(&a, i, start_us)).await.unwrap_or_else(|e| fail("publish", &e));
        inflight.push_back(ack);
    }
    for ack in inflight.drain(..) {
        let ack = ack.await.unwrap_or_else(|e| fail("ack", &e));
        acked += 1;
        duplicates += ack.duplicate as u64;
    }
    let seconds = began.elapsed().as_secs_f64();
    let cpu = cpu_us() - cpu_began;
    println!(
        "raw sent={} acked={acked} duplicates={duplicates} seconds={seconds:.3} rate={:.0} cpu_us={cpu:.0}",
        a.count,
        acked as f64 / seconds
    );
}
