#!/usr/bin/env bash
# Receiver cost per event: virevent's C client against libvirt's own, both
# receiving the same lifecycle events from one private libvirtd (test driver)
# while a third client suspends and resumes the domain. Reports instructions
# per event (valgrind --tool=callgrind, both receivers in one run) and CPU time
# per event (a second run, no valgrind). Needs libvirtd, libvirt-dev, valgrind.
# With TRANSPORT=tls both receivers connect over TLS on 127.0.0.1 (certificates
# made here with openssl, and python3 to find a free port).
#   ROUNDS=2000 remote/bench.sh        (each round makes 2 events)
#   TRANSPORT=tls remote/bench.sh
set -euo pipefail
cd "$(dirname "$0")"
rounds=${ROUNDS:-2000}
events=$((2 * rounds))

d=$(mktemp -d)
mkdir -p "$d/drivers"
printf 'unix_sock_dir = "%s"\nunix_sock_rw_perms = "0770"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n' "$d" >"$d/libvirtd.conf"
listen=()
if [ "${TRANSPORT:-unix}" = tls ]; then
    pki=$d/pki
    mkdir -p "$pki"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout "$pki/cakey.pem" -out "$pki/cacert.pem" -days 1 -subj /CN=bench-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    for who in server client; do
        usage=$([ $who = server ] && echo "serverAuth
subjectAltName = IP:127.0.0.1" || echo clientAuth)
        printf 'basicConstraints = CA:FALSE\nkeyUsage = digitalSignature,keyEncipherment\nextendedKeyUsage = %s\n' \
            "$usage" >"$pki/$who.ext"
        openssl req "${ec[@]}" -keyout "$pki/${who}key.pem" -out "$pki/$who.csr" -subj "/CN=bench-$who" 2>/dev/null
        openssl x509 -req -in "$pki/$who.csr" -CA "$pki/cacert.pem" -CAkey "$pki/cakey.pem" -CAcreateserial \
            -days 1 -extfile "$pki/$who.ext" -out "$pki/${who}cert.pem" 2>/dev/null
    done
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'listen_tcp = 0\nlisten_tls = 1\nlisten_addr = "127.0.0.1"\ntls_port = "%s"\nkey_file = "%s"\ncert_file = "%s"\nca_file = "%s"\n' \
        "$port" "$pki/serverkey.pem" "$pki/servercert.pem" "$pki/cacert.pem" >>"$d/libvirtd.conf"
    listen=(--listen)
fi
LIBVIRT_DRIVER_DIR=$d/drivers libvirtd "${listen[@]}" --config "$d/libvirtd.conf" --pid-file "$d/pid" >"$d/log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 200); do [ -S "$d/libvirt-sock" ] && break; sleep 0.05; done
uri="test+unix:///default?socket=$d/libvirt-sock"
# What the receivers watch; the load always drives the Unix socket.
watched=$uri
if [ "${TRANSPORT:-unix}" = tls ]; then
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    watched="test+tls://127.0.0.1:$port/default?pkipath=$pki"
    echo "over TLS: $watched"
fi

# run PREFIX...: both receivers (each under PREFIX, with its name as the last
# word of PREFIX), the load, and the wait for both.
run() {
    local pids=()
    for r in virevent libvirt; do
        "${@/@R@/$r}" ./recv_$r "$watched" "$events" >"$d/$r.out" 2>"$d/$r.err" &
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
