#!/usr/bin/env bash
# Receiver cost per event: virevent's C client against libvirt's own, both
# receiving the same lifecycle events from one private libvirtd (test driver)
# while a third client suspends and resumes the domain. Reports instructions
# per event (valgrind --tool=callgrind, both receivers in one run) and CPU time
# per event (a second run, no valgrind). Needs libvirtd, libvirt-dev, valgrind.
#   ROUNDS=2000 remote/bench.sh        (each round makes 2 events)
set -euo pipefail
cd "$(dirname "$0")"
rounds=${ROUNDS:-2000}
events=$((2 * rounds))

d=$(mktemp -d)
mkdir -p "$d/drivers"
printf 'unix_sock_dir = "%s"\nunix_sock_rw_perms = "0770"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n' "$d" >"$d/libvirtd.conf"
LIBVIRT_DRIVER_DIR=$d/drivers libvirtd --config "$d/libvirtd.conf" --pid-file "$d/pid" >"$d/log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 200); do [ -S "$d/libvirt-sock" ] && break; sleep 0.05; done
uri="test+unix:///default?socket=$d/libvirt-sock"

# run PREFIX...: both receivers (each under PREFIX, with its name as the last
# word of PREFIX), the load, and the wait for both.
run() {
    local pids=()
    for r in virevent libvirt; do
        "${@/@R@/$r}" ./recv_$r "$uri" "$events" >"$d/$r.out" 2>"$d/$r.err" &
        pids+=($!)
    done
    for r in virevent libvirt; do
        until grep -q ready "$d/$r.out" 2>/dev/null; do sleep 0.05; done
    done
    ./load "$uri" "$rounds"
    wait "${pids[@]}"
}

# The instructions callgrind counted between the receiver's two client requests.
instructions() {
    grep -l 'Client Request: events' "$d"/cg.$1.* | xargs grep -h '^totals:' | awk '{print $2}'
}

run valgrind --tool=callgrind "--callgrind-out-file=$d/cg.@R@"
echo "instructions per received event, $events events (valgrind --tool=callgrind):"
for r in virevent libvirt; do
    echo "  $r: $(($(instructions $r) / events))"
done
run env
echo "CPU time per received event (getrusage, no valgrind):"
cat "$d/virevent.out" "$d/libvirt.out" | grep -v ready | sed 's/^/  /'
