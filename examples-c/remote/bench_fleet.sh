#!/usr/bin/env bash
# The fleet-scale benchmark (issue 16, P8): one process, one thread, many
# connections, virevent beside libvirt's own client, one receiver after the
# other in the same run.
#
#  fake: CONNS connections to fleet_daemon (fake daemons in one process, one
#        Unix socket), RATE events/s in all for DURATION seconds, each event carrying
#        its send time (latency from the daemon's send to the handler).
#  real: DAEMONS private libvirtds (test driver, each in its own folder with
#        its own socket), PER_DAEMON connections to each, and fleet_load
#        suspending/resuming their domains at RATE / PER_DAEMON operations/s,
#        so that RATE events/s reach the receiver (no latency: the events
#        carry no send time).
# burst: BURST_CONNS connections to fleet_daemon, each sent BURST events (82
#        bytes each) back to back, once: what an idle connection keeps after
#        a burst (the "after" column); no latency (it is queueing behind the
#        burst).
#
# The table: KiB and descriptors per idle connection (VmRSS and /proc/self/fd
# after opening all connections, less before the first, divided by their
# number; "after": the same KiB once the load is over and the connections are
# idle again), threads, CPU (user + system) per event received during the
# load, its system part, the part in the receiver's poll(2) (virevent only:
# libvirt's poll is inside virEventRunDefaultImpl), p50/p99 latency (us),
# events received/expected. Three receivers: virevent with one poll(2) over
# all event descriptors, virevent with one epoll set instead, libvirt's client.
# The latency tail depends on what else the host runs: the load average
# before and after is printed with the table.
#   CONNS=1000 RATE=10000 DURATION=10 DAEMONS=10 PER_DAEMON=100 BURST_CONNS=100 BURST=1000 \
#       remote/bench_fleet.sh
set -euo pipefail
cd "$(dirname "$0")"
conns=${CONNS:-1000}
rate=${RATE:-10000}
seconds=${DURATION:-10}
daemons=${DAEMONS:-10}
per_daemon=${PER_DAEMON:-100}
burst_conns=${BURST_CONNS:-100}
burst=${BURST:-1000}
# virevent needs more than 1,024 descriptors for 1,000 connections.
ulimit -n "$(ulimit -Hn)"

load=$(cut -d' ' -f1-3 /proc/loadavg)
d=$(mktemp -d /tmp/virevent-fleet-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$d"
}
trap cleanup EXIT

# wait_for FILE PATTERN [COUNT]: until FILE has COUNT lines matching PATTERN.
wait_for() {
    until [ "$(cat "$1" 2>/dev/null | grep -c "$2")" -ge "${3:-1}" ]; do sleep 0.05; done
}

# receiver NAME ARGS...: starts the receiver NAME (virevent, virevent-epoll:
# the same waiting with epoll instead of poll, libvirt), run in the
# background: exec, so that $! is the receiver itself.
receiver() {
    local name=$1
    shift
    case $name in
    virevent-epoll) FLEET_EPOLL=1 exec ./fleet_virevent "$@" ;;
    *) exec "./fleet_$name" "$@" ;;
    esac
}
receivers=(virevent virevent-epoll libvirt)

rows=()
# row NAME REPORT EXPECTED [nolat]: one line of the table.
row() {
    # The receiver's key=value line (fleet.h), as awk variables (-v k=v ...;
    # no value has a space).
    local vars
    vars=$(grep '^conns=' "$2" | sed 's/\([a-z_0-9]*=\)/-v \1/g')
    # shellcheck disable=SC2086
    rows+=("$(awk $vars -v name="$1" -v e="$3" -v nolat="${4:-}" 'BEGIN {
        if (nolat) lat_n = 0
        r = received ? received : 1
        printf "%-19s %5d %8.1f %8.1f %8.2f %7d %9.1f %9.1f %9s %6s %6s %15s\n", name, conns,
            (idle_kib - base_kib) / conns, (after_kib - base_kib) / conns, (idle_fds - base_fds) / conns,
            threads, cpu_us / r, sys_us / r, poll_us < 0 ? "-" : sprintf("%.1f", poll_us / r),
            lat_n ? p50_us : "-", lat_n ? p99_us : "-", received "/" e }')")
}

# The fake fleet: one daemon process, RATE / CONNS events/s per connection.
./fleet_daemon "$d/fleet-sock" "$(awk -v r="$rate" -v c="$conns" 'BEGIN { print r / c }')" "$seconds" "$burst" \
    >"$d/fleet.out" 2>"$d/fleet.err" &
fleet=$!
pids+=("$fleet")
wait_for "$d/fleet.out" '^listening'
phase=0
# fake_phase KIND RECEIVER CONNS SIGNAL: one receiver on the fake fleet, whose
# events start with the daemon's SIGNAL (USR1 the steady load, USR2 the
# burst). The receiver stops on SIGUSR1 half a second after the daemon is
# done, or (FLEET_EXPECT set) by itself once it has every event.
fake_phase() {
    receiver "$2" "$3" "test+unix:///default?socket=$d/fleet-sock" >"$d/$1-$2.out" 2>"$d/$1-$2.err" &
    local p=$!
    pids+=("$p")
    wait_for "$d/$1-$2.out" '^ready'
    phase=$((phase + 1))
    kill -"$4" "$fleet"
    # No polling of files meanwhile: a receiver near saturation (the poll one
    # is 60 to 95% busy) turns every process the script starts into a
    # latency tail of milliseconds.
    if [ "$4" = USR1 ]; then sleep "$seconds"; fi
    wait_for "$d/fleet.out" '^done' "$phase"
    if [ -z "${FLEET_EXPECT:-}" ]; then
        sleep 0.5 # the last events on their way
        kill -USR1 "$p"
    fi
    wait "$p"
    expected=$(awk -v p="$p" '$1 == "sent" && $2 == p { print $3 }' "$d/fleet.out")
}
for r in "${receivers[@]}"; do
    fake_phase fake "$r" "$conns" USR1
    row "fake $r" "$d/fake-$r.out" "${expected:-0}"
done
# The burst, with libvirt's client beside (the epoll variant keeps the same).
for r in virevent libvirt; do
    FLEET_EXPECT=$((burst_conns * burst)) fake_phase burst "$r" "$burst_conns" USR2
    row "burst $r" "$d/burst-$r.out" "${expected:-0}" nolat
done

# The real daemons.
uris=()
for i in $(seq "$daemons"); do
    dd=$d/libvirtd$i
    mkdir -p "$dd/drivers"
    printf 'unix_sock_dir = "%s"\nunix_sock_rw_perms = "0770"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n' \
        "$dd" >"$dd/libvirtd.conf"
    LIBVIRT_DRIVER_DIR=$dd/drivers libvirtd --config "$dd/libvirtd.conf" --pid-file "$dd/pid" >"$dd/log" 2>&1 &
    pids+=($!)
    uris+=("test+unix:///default?socket=$dd/libvirt-sock")
done
for i in $(seq "$daemons"); do
    # The socket file appears a moment before the daemon listens.
    until virsh -q -c "${uris[$((i - 1))]}" uri >/dev/null 2>&1; do sleep 0.1; done
done
ops_rate=$(awk -v r="$rate" -v p="$per_daemon" 'BEGIN { print r / p }')
for r in "${receivers[@]}"; do
    receiver "$r" "$per_daemon" "${uris[@]}" >"$d/real-$r.out" 2>"$d/real-$r.err" &
    p=$!
    pids+=("$p")
    wait_for "$d/real-$r.out" '^ready'
    ops=$(./fleet_load "$ops_rate" "$seconds" "${uris[@]}" | awk '$1 == "ops" { print $2 }')
    sleep 1 # the last events on their way
    kill -USR1 "$p"
    wait "$p"
    row "real $r" "$d/real-$r.out" "$((ops * per_daemon))"
done

echo "fleet benchmark: fake = $conns connections to one fake-daemon process; real = $daemons libvirtds x $per_daemon" \
    "connections; $rate events/s in all for $seconds s; burst = $burst_conns connections sent $burst events each at once;" \
    "one receiver process at a time, one thread"
echo "host: $(nproc) CPUs, load average before the run: $load, after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-19s %5s %8s %8s %8s %7s %9s %9s %9s %6s %6s %15s\n" receiver conns KiB/conn "after" fds/conn \
    threads "CPU us/ev" "sys" "in poll" "p50us" "p99us" received/expected
printf '%s\n' "${rows[@]}"
