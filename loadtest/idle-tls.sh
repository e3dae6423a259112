#!/usr/bin/env bash
# idle-tls.sh — issue 19's "100k idle TLS connections held with ≤ 20 KiB each": one sipedge
# with SHARDS shards holds CONNS registered TLS connections opened by GENS streamload
# processes; the server's Pss before and while they are held gives the bytes per connection
# (rustls buffers, framing state, the binding, the kernel-side socket not included: it is not
# process memory).
#
# Why several shards and generators: RLIMIT_NOFILE's hard limit here is 20,000 and cannot be
# raised without CAP_SYS_RESOURCE. The limit is checked per descriptor table; each sipedge
# shard has its own table (sipedge_rt::own_fd_table), so SHARDS shards hold up to SHARDS × the
# limit, and each generator process stays under it. On a host with a higher limit one shard
# holds them all (the per-connection cost does not depend on the shard count).
#
# Loopback only: sipedge on 127.0.90.1, generator g from 127.0.(91+g).1 … .32. Everything
# started is stopped on exit.
#
# Knobs: CONNS [100000] PER_GEN [16000] SHARDS [ceil(CONNS / PER_GEN)] OPEN_RATE [per
#   generator, 100: all together below what the shards handshake per second] HOLD_SECS [20] BIN [target/release] OUT [target/idle-tls] NO_BUILD
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
CONNS=${CONNS:-100000}
PER_GEN=${PER_GEN:-16000}
GENS=$(( (CONNS + PER_GEN - 1) / PER_GEN ))
SHARDS=${SHARDS:-$GENS}
OPEN_RATE=${OPEN_RATE:-100}
HOLD_SECS=${HOLD_SECS:-20}
BIN=${BIN:-$ROOT/target/release}
OUT=${OUT:-$ROOT/target/idle-tls}
IP=127.0.90.1
mkdir -p "$OUT"
TMP=$(mktemp -d)
SERVER_PID=""
GEN_PIDS=()

cleanup() {
    for p in "${GEN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p sipedge -p streamload
fi
ulimit -n "$(ulimit -Hn)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -subj /CN=sipedge-loadtest 2>/dev/null

echo "== machine"
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty tree)'), $(date -u +%FT%TZ)"
echo "RLIMIT_NOFILE soft/hard $(ulimit -Sn)/$(ulimit -Hn); $CONNS connections, $SHARDS shards, $GENS generators × ≤ $PER_GEN"

cat >"$TMP/sipedge.toml" <<EOF
[server]
listen = ["udp:$IP:5070", "tls:$IP:5071"]
domains = ["sip.example.com"]
workers = $SHARDS
io = "uring"

[tls]
certificate = "$TMP/cert.pem"
private_key = "$TMP/key.pem"

[tcp]
# A phone waits behind the others' handshakes while 100k connect (2 cores, every handshake
# ~1 ms of CPU on each side): the slowloris timeout is not what is measured here.
header_timeout_secs = 600
max_connections = $(( CONNS * 2 ))
max_connections_per_ip = $(( CONNS * 2 ))

[registrar]
expected_bindings = $(( CONNS * 2 ))

[registrar.persistence]
path = "$TMP/journal"

# Capacity, not protection: 100k handshakes on 2 cores make long turns, and issue 17's
# levels would answer REGISTERs with 503 while the phones connect.
[overload]
enabled = false

[admin]
listen = "$IP:9171"

[log]
level = "warn"
EOF
"$BIN/sipedge" --config "$TMP/sipedge.toml" --shards "$SHARDS" 2>"$OUT/sipedge.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -sf "http://$IP:9171/metrics" >/dev/null 2>&1 && break
    sleep 0.1
done

pss_kb() { awk '/^Pss:/{print $2; exit}' "/proc/$SERVER_PID/smaps_rollup"; }
open_conns() {
    curl -sf "http://$IP:9171/metrics" | awk '/^sipedge_tcp_connections_open/{s+=$2} END{print s+0}'
}
sleep 1
before=$(pss_kb)
echo "server Pss before: $before kB"

start=$(date +%s)
for g in $(seq 0 $(( GENS - 1 ))); do
    n=$PER_GEN
    (( (g + 1) * PER_GEN > CONNS )) && n=$(( CONNS - g * PER_GEN ))
    timeout 900 "$BIN/streamload" idle --transport tls --target "$IP:5071" --conns "$n" \
        --secs 100000 --open-rate "$OPEN_RATE" --setup-secs 600 \
        --first-user $(( 1000000 + g * PER_GEN )) --source "127.0.$(( 91 + g )).1" --source-count 32 \
        >"$OUT/gen$g.txt" 2>&1 &
    GEN_PIDS+=($!)
done

held=0
for _ in $(seq 600); do
    held=$(open_conns)
    (( held >= CONNS )) && break
    alive=0
    for p in "${GEN_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$(( alive + 1 )); done
    (( alive == 0 )) && break
    sleep 1
done
echo "connections open: $held after $(( $(date +%s) - start )) s"
sleep "$HOLD_SECS"
held=$(open_conns)
during=$(pss_kb)
bindings=$(curl -sf "http://$IP:9171/metrics" | awk '/^sipedge_bindings[{ ]/{s+=$2} END{print s+0}')
[[ "$bindings" == "$CONNS" ]] || echo "NOTE: $bindings bindings for $CONNS connections"
echo "server Pss while held: $during kB; connections open: $held; bindings: $bindings"
if (( held > 0 )); then
    echo "bytes per idle TLS connection: $(( (during - before) * 1024 / held ))"
fi
grep -h "refused\|error" "$OUT"/gen*.txt | sort | uniq -c | head -5 || true
