#!/usr/bin/env bash
# The relay benchmark (issue 17): events per second from one virevent-relay
# into JetStream with acknowledgements, end-to-end latency from a daemon's
# event to a JetStream consumer, beside the acknowledged publish rate of a
# minimal async-nats program (raw_publish) into the same stream: the limit on
# this machine.
#
# Each run: a private nats-server (JetStream, file storage in a temp folder,
# a free port of 127.0.0.1), then these phases, each with a new ordered
# consumer (bench_consumer, deliver new) reading what the phase publishes:
#  sustained: fleet_daemon (examples-c/remote: a fake libvirtd whose events
#         carry their CLOCK_MONOTONIC send time in the domain name) sends RATE
#         events/s for DURATION s on one connection to one virevent-relay;
#         acked/s is the relay's "published" (its summary at SIGTERM, sent
#         with --drain 0 right after the daemon's last event) over the time
#         from the daemon's first event to that SIGTERM;
#  burst: the relay's saturated rate: fleet_daemon sends BURST events
#         (default 90,000: the relay's outbox, --max-pending, holds 100,000)
#         back to back; acked/s is BURST over the time from the daemon's
#         signal to the consumer's last message (all of them published,
#         none dropped); the latency there is queueing behind the burst;
#  overload: the sustained phase at SAT_RATE events/s, above what the relay takes: the
#         outbox fills and drops the oldest (the work on the dropped events
#         is in the CPU column);
#  raw:   raw_publish sends RAW_COUNT messages through the relay's sliding
#         window of 256 acknowledgements; the payload is the size of the
#         relay's event (the mean the consumer saw) unless RAW_SIZE says;
#         raw+hdr: the same with the relay's seven headers, Nats-Msg-Id
#         among them (so the server deduplicates as for the relay).
# Columns: acked/s; consumed: what the phase's consumer read; p50/p99 from
# the daemon's send (raw: the publish) to the consumer; dropped by the
# relay's outbox; CPU (user + system) per acknowledged message of the
# publisher (the relay's process, both threads; raw_publish), of nats-server
# during the phase (it also serves the consumer) and of the consumer.
# ratio: the relay burst's acked/s over raw's (the anchor: the limit here),
# and over raw+hdr's (the relay's own protocol: its headers, its window).
#   RUNS=1 RATE=5000 BURST=90000 SAT_RATE=100000 DURATION=5 RAW_COUNT=200000 \
#       relay/bench/bench_relay.sh
# (make -C examples-c bench-relay builds everything and runs it.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
# RELAY: another virevent-relay to measure (a variant's build).
relay_bin=${RELAY:-$bin/virevent-relay}
fleet_daemon=$root/examples-c/remote/fleet_daemon
runs=${RUNS:-1}
rate=${RATE:-5000}
sat_rate=${SAT_RATE:-100000}
burst=${BURST:-90000}
seconds=${DURATION:-5}
raw_count=${RAW_COUNT:-200000}
for f in "$relay_bin" "$bin/examples/raw_publish" "$bin/examples/bench_consumer" "$fleet_daemon"; do
    [ -x "$f" ] || { echo "bench_relay: $f is missing (make -C examples-c bench-relay builds it)" >&2; exit 1; }
done
command -v nats-server >/dev/null || { echo "bench_relay: nats-server is not installed" >&2; exit 1; }

load=$(cut -d' ' -f1-3 /proc/loadavg)
d=$(mktemp -d /tmp/virevent-relay-bench-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$d"
}
trap cleanup EXIT

# wait_for FILE PATTERN [COUNT]: until FILE has COUNT lines matching PATTERN,
# 30 s at most.
wait_for() {
    local i=0 n
    until n=$(grep -c "$2" "$1" 2>/dev/null) || true; [ "${n:-0}" -ge "${3:-1}" ]; do
        i=$((i + 1))
        if [ "$i" -gt 600 ]; then
            echo "bench_relay: no '$2' in $1 after 30 s:" >&2
            cat "$1" >&2 || true
            exit 1
        fi
        sleep 0.05
    done
}
# stop PID: SIGTERM, and reap it (it is one of ours).
stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
# key NAME LINE: the value of NAME= in a key=value line.
key() { sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" <<<"$2"; }
now() { date +%s.%N; }

rows=()
# row RUN PHASE OFFERED ACKED_PER_S CONSUMER_LINE DROPPED CPU_US SERVER_US ACKED:
# one line of the table (the CPU times of the phase in all, ACKED messages).
row() {
    rows+=("$(awk -v run="$1" -v phase="$2" -v offered="$3" -v rate="$4" -v got="$(key received "$5")" \
        -v p50="$(key p50_us "$5")" -v p99="$(key p99_us "$5")" -v dropped="$6" -v cpu="$7" -v srv="$8" -v acked="$9" -v cons="$(key cpu_us "$5")" 'BEGIN {
        n = acked > 0 ? acked : 1
        printf "%-4s %-16s %9s %9.0f %9s %10s %10s %9s %8.1f %8.1f %8.1f\n", run, phase, offered, rate, got, p50,
            p99, dropped, cpu / n, srv / n, cons / n }')")
}
# cpu_us PID: its CPU time so far (user + system, /proc/PID/stat), in us.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1e6 / hz }' "/proc/$1/stat"; }
# consumer NAME SUBJECT [COUNT]: starts bench_consumer in the background ($cons).
consumer() {
    "$bin/examples/bench_consumer" --server "$url" --subject "$2" --idle 2 --timeout $((seconds + 60)) \
        ${3:+--count "$3"} \
        >"$d/$1.cons" 2>"$d/$1.cons.err" &
    cons=$!
    pids+=("$cons")
    wait_for "$d/$1.cons" '^ready'
}

# start NAME COUNT ARG...: fleet_daemon on $d/NAME.sock with ARG..., one relay
# on it, and the phase's consumer (COUNT messages, or as long as they come
# when COUNT is empty); sets $fleet and $relay.
start() {
    local name=$1 count=$2 sock=$d/$1.sock
    shift 2
    "$fleet_daemon" "$sock" "$@" >"$d/$name.fleet" 2>&1 &
    fleet=$!
    pids+=("$fleet")
    wait_for "$d/$name.fleet" '^listening'
    "$relay_bin" --uri "test+unix:///default?socket=$sock" --host-name "$name" --server "$url" \
        --drain 0 >"$d/$name.relay.out" 2>"$d/$name.relay" &
    relay=$!
    pids+=("$relay")
    wait_for "$d/$name.relay" 'publishing to the stream'
    consumer "$name" "virevent.$name.>" "$count"
}

# summary NAME: from the relay's summary line, $published and $dropped; from
# the caller's c0, c1, s0 and s1, $cpu (the relay's CPU us) and $srv
# (nats-server's).
summary() {
    local line
    line=$(grep 'summary:' "$d/$1.relay")
    published=$(sed -n 's/.*summary: \([0-9]*\) published.*/\1/p' <<<"$line")
    dropped=$(sed -n 's/.* \([0-9]*\) dropped.*/\1/p' <<<"$line")
    cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')
    srv=$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')
}

# relay_phase NAME RATE: fleet_daemon at RATE events/s for DURATION s, one
# relay on it; sets what summary sets, and $rate_acked (published over the
# time from the first event to SIGTERM); the relay's CPU is counted from the
# first event to SIGTERM, nats-server's to the consumer's end.
relay_phase() {
    local name=$1 t0 t1 c0 c1 s0 s1
    start "$name" "" "$2" "$seconds"
    c0=$(cpu_us "$relay")
    s0=$(cpu_us "$nats")
    t0=$(now)
    kill -USR1 "$fleet"
    # No polling meanwhile: every process the script starts takes a CPU
    # from the relay's two threads and nats-server.
    sleep "$seconds"
    wait_for "$d/$name.fleet" '^done'
    c1=$(cpu_us "$relay")
    stop "$relay"
    t1=$(now)
    wait "$cons" || true
    s1=$(cpu_us "$nats")
    stop "$fleet"
    summary "$name"
    rate_acked=$(awk -v p="$published" -v a="$t0" -v b="$t1" 'BEGIN { print p / (b - a) }')
}

# relay_burst NAME: fleet_daemon sends BURST events at once to one relay;
# sets what relay_phase sets, over the time up to the consumer's last message.
relay_burst() {
    local name=$1 t0 t1 c0 c1 s0 s1
    start "$name" "$burst" 1 1 "$burst"
    c0=$(cpu_us "$relay")
    s0=$(cpu_us "$nats")
    t0=$(now)
    kill -USR2 "$fleet"
    wait "$cons" || true
    t1=$(now)
    c1=$(cpu_us "$relay")
    s1=$(cpu_us "$nats")
    stop "$relay"
    stop "$fleet"
    summary "$name"
    rate_acked=$(awk -v n="$(key received "$(cat "$d/$name.cons")")" -v a="$t0" -v b="$t1" 'BEGIN { print n / (b - a) }')
}

ratios=()
for run in $(seq "$runs"); do
    rm -rf "$d/js" "$d"/*.sock
    nats-server --jetstream --store_dir "$d/js" --addr 127.0.0.1 --port -1 >"$d/nats.log" 2>&1 &
    nats=$!
    pids+=("$nats")
    wait_for "$d/nats.log" 'Listening for client connections'
    port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$d/nats.log" | head -n 1)
    url=nats://127.0.0.1:$port

    relay_phase sustained "$rate"
    row "$run" relay-sustained "$rate" "$rate_acked" "$(cat "$d/sustained.cons")" "$dropped" "$cpu" "$srv" "$published"
    # The relay's payload, as the consumer saw it: the raw payload's size.
    size=${RAW_SIZE:-$(key bytes "$(cat "$d/sustained.cons")")}
    relay_burst burst
    relay_rate=$rate_acked
    row "$run" relay-burst "$burst" "$rate_acked" "$(cat "$d/burst.cons")" "$dropped" "$cpu" "$srv" "$published"
    relay_phase overload "$sat_rate"
    row "$run" relay-overload "$sat_rate" "$rate_acked" "$(cat "$d/overload.cons")" "$dropped" "$cpu" "$srv" "$published"

    for name in raw raw+hdr; do
        flags=()
        [ "$name" = raw ] || flags=(--headers)
        subject=virevent.bench.${name/+/-}
        consumer "$name" "$subject"
        s0=$(cpu_us "$nats")
        out=$("$bin/examples/raw_publish" --server "$url" --subject "$subject" --count "$raw_count" \
            --size "$size" ${flags[@]+"${flags[@]}"})
        wait "$cons" || true
        s1=$(cpu_us "$nats")
        row "$run" "$name" - "$(key rate "$out")" "$(cat "$d/$name.cons")" - "$(key cpu_us "$out")" \
            "$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')" "$(key acked "$out")"
        if [ "$name" = raw ]; then raw_rate=$(key rate "$out"); else hdr_rate=$(key rate "$out"); fi
    done
    ratios+=("$(awk -v r="$relay_rate" -v w="$raw_rate" -v h="$hdr_rate" 'BEGIN { printf "%.3f %.3f", r / w, r / h }')")
    stop "$nats"
done

echo "relay benchmark: one virevent-relay, one fleet_daemon connection; sustained $rate events/s and overload" \
    "$sat_rate events/s offered, $seconds s each; a burst of $burst events; raw_publish $raw_count messages of $size bytes, a window of 256;" \
    "file storage; latency from the daemon's send (raw: the publish) to the consumer"
echo "host: $(nproc) CPUs, load average before: $load, after: $(cut -d' ' -f1-3 /proc/loadavg)"
header() {
    printf '%-4s %-16s %9s %9s %9s %10s %10s %9s %8s %8s %8s\n' run phase offered acked/s consumed p50_us p99_us \
        dropped cpu_us/m srv_us/m cons_us/m
}
header
printf '%s\n' "${rows[@]}"
for run in $(seq "$runs"); do
    set -- ${ratios[$((run - 1))]}
    echo "run $run: relay burst / raw = $1; / raw+hdr = $2"
done
if [ "$runs" -gt 1 ]; then
    # Each column's median over the runs, phase by phase (of an even number
    # of runs, the lower middle value).
    echo "median of $runs runs:"
    header
    printf '%s\n' "${rows[@]}" | awk '
        !($2 in seen) { seen[$2] = 1; order[++n] = $2 }
        { m = ++k[$2]; for (c = 3; c <= NF; c++) v[$2, c, m] = $c }
        function median(p, c,   i, j, t, a, m) {
            m = k[p]; for (i = 1; i <= m; i++) a[i] = v[p, c, i]
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
            return a[int((m + 1) / 2)]
        }
        END { for (i = 1; i <= n; i++) { p = order[i]
            printf "%-4s %-16s %9s %9s %9s %10s %10s %9s %8s %8s %8s\n", "med", p, median(p, 3), median(p, 4),
                median(p, 5), median(p, 6), median(p, 7), median(p, 8), median(p, 9), median(p, 10), median(p, 11) } }'
    m=$(((runs + 1) / 2))
    echo "median: relay burst / raw = $(printf '%s\n' "${ratios[@]}" | awk '{ print $1 }' | sort -n |
        sed -n "${m}p"); / raw+hdr = $(printf '%s\n' "${ratios[@]}" | awk '{ print $2 }' | sort -n | sed -n "${m}p")"
fi
