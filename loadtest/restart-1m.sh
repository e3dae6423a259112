#!/usr/bin/env bash
# restart-1m.sh — issue 5's restart target: register N (default 1 000 000) bindings over UDP
# with sipload, stop sipedge cleanly (SIGTERM), start it again on the same journal and measure
# how long until it answers again with every binding restored (the sipedge_bindings gauge),
# plus resident memory per binding before and after. Loopback only (127.0.40.3), bounded.
#
# Environment knobs: N [1000000] SHARDS [2] RATE [100000] SYNC [batch] NO_BUILD [unset]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${N:-1000000}
SHARDS=${SHARDS:-2}
RATE=${RATE:-100000}
SYNC=${SYNC:-batch}
IP=127.0.40.3
PORT=5070
ADMIN=$IP:9171
BIN=$ROOT/target/release
TMP=$(mktemp -d)
PID=""
cleanup() { [[ -n "$PID" ]] && kill -KILL "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

[[ -n "${NO_BUILD:-}" ]] || cargo build --release -p sipedge -p sipload
cat >"$TMP/sipedge.toml" <<TOML
[server]
listen = ["udp:$IP:$PORT"]
domains = ["localhost"]

[admin]
listen = "$ADMIN"

[log]
level = "warn"

[registrar.persistence]
path = "$TMP/journal"
sync = "$SYNC"
TOML

metric() { # sum of a metric over shards
    curl -s "http://$ADMIN/metrics" | awk -v n="$1" '$1 ~ "^"n"\\{" {s += $2} END {print s+0}'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
start() {
    "$BIN/sipedge" --config "$TMP/sipedge.toml" --shards "$SHARDS" 2>>"$TMP/sipedge.log" &
    PID=$!
}
wait_answering() { # prints seconds from $1 (ns) until OPTIONS is answered
    for _ in $(seq 600); do
        if "$BIN/sipload" options --target "$IP:$PORT" --uas 1 --rate 1000 --duration 0.02 \
            --drain-ms 100 --source-base 127.0.41.200 --json 2>/dev/null | grep -q '"successes": [1-9]'; then
            echo "scale=3; ($(date +%s%N) - $1) / 1000000000" | bc
            return
        fi
        sleep 0.05
    done
    echo "never"
}

start
t0=$(date +%s%N)
echo "first start: answering after $(wait_answering "$t0") s"
base_kb=$(rss_kb "$PID")
echo "== registering $N bindings at $RATE/s"
"$BIN/sipload" register --target "$IP:$PORT" --rate "$RATE" --duration $(( N / RATE + 1 )) \
    --max-requests "$N" --uas 2000 --sources 20 --source-base 127.0.41.1 --expires 3600 \
    --drain-ms 3000 2>&1 | tail -n 4
held=$(metric sipedge_bindings)
full_kb=$(rss_kb "$PID")
echo "bindings held: $held; RSS $(( base_kb / 1024 )) → $(( full_kb / 1024 )) MiB: $(( (full_kb - base_kb) * 1024 / (held > 0 ? held : 1) )) B per binding"
kill -TERM "$PID"; wait "$PID" || true; PID=""
echo "journal on disk: $(du -sh "$TMP/journal" | cut -f1)"

start
t0=$(date +%s%N)
secs=$(wait_answering "$t0")
restored=$(metric sipedge_bindings)
echo "restart: answering after $secs s with $restored of $held bindings restored (RSS $(( $(rss_kb "$PID") / 1024 )) MiB)"
kill -TERM "$PID"; wait "$PID" || true; PID=""
