#!/usr/bin/env bash
# overload.sh — issue 17's 10× overload run: one shard offered FACTOR × its highest sustained
# new-REGISTER rate (RATE, from `loadtest/compare.sh register`), while established calls go
# on beside it; sipedge (with [protect] and [overload]) and then Kamailio with pike
# (loadtest/kamailio/overload.cfg), same generator, same cores.
#
# Per server it runs, at the same time and for SECS seconds:
#   * a flood: sipload register at RATE × FACTOR from UAS UAs over SOURCES addresses of the
#     trusted generator prefix (127.0.40.0/22: [protect] trusted / pike skipped — the density
#     rule must not simply ban the load generator);
#   * calls: sipload call at CALL_RATE (INVITE, 200, ACK, BYE), from 127.0.42.1 (trusted too).
# and prints: REGISTERs completed per second (vs RATE: the Must-reach is ≥ 90 %), refused
# (503) and unanswered, p99 of what completed, call completion (every BYE answered), Pss
# before/after, and for sipedge the shed counters, kernel drops and the pressure level.
# Loopback only (sipedge 127.0.40.1, Kamailio 127.0.40.2); everything started is stopped.
#
# Environment knobs: RATE [required: the sustained rate from compare.sh register] FACTOR [10]
#   SECS [10] CALL_RATE [50] UAS [1000] SOURCES [10] SERVER_CORE [0] GEN_CORE [1]
#   CALL_CORE [$GEN_CORE] SERVERS ["sipedge kamailio"] NO_BUILD [unset]
#   OUT [target/overload] BIN [target/release] (BIN=target/debug NO_BUILD=1: a smoke run)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=${RATE:?set RATE to the sustained new-REGISTER rate of one shard (loadtest/compare.sh register)}
FACTOR=${FACTOR:-10}
SECS=${SECS:-10}
CALL_RATE=${CALL_RATE:-50}
UAS=${UAS:-1000}
SOURCES=${SOURCES:-10}
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
CALL_CORE=${CALL_CORE:-$GEN_CORE}
SERVERS=${SERVERS:-sipedge kamailio}
OUT=${OUT:-$ROOT/target/overload}
BIN=${BIN:-$ROOT/target/release}
PORT=5070
FLOOD_BASE=127.0.41.1
CALL_BASE=127.0.42.1
mkdir -p "$OUT"
TMP=$(mktemp -d)
SERVER_PID=""

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() { stop_server; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p sipload
    cargo build --release
fi
ulimit -n "$(( 2 * UAS + 1024 ))" 2>/dev/null || true
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ), $(kamailio -v | head -1)"
echo "offered: $RATE × $FACTOR = $(( RATE * FACTOR )) REGISTER/s for $SECS s, plus $CALL_RATE calls/s"

server_pids() {
    { echo "$SERVER_PID"; ps -o pid= --ppid "$SERVER_PID" 2>/dev/null || true; } | tr -d ' ' | paste -sd, -
}
server_pss_kb() {
    local sum=0 p v
    for p in $(server_pids | tr , ' '); do
        v=$(awk '/^Pss:/{print $2; exit}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        sum=$(( sum + ${v:-0} ))
    done
    echo "$sum"
}
answers() {
    "$BIN/sipload" options --target "$1" --uas 1 --rate 1000 --duration 0.05 --drain-ms 200 \
        --source-base "$FLOOD_BASE" --json 2>/dev/null | grep -q '"successes": [1-9]'
}

start_server() { # $1 = sipedge | kamailio; sets SERVER_PID, TARGET
    case "$1" in
        sipedge)
            TARGET=127.0.40.1:$PORT
            cat >"$TMP/sipedge.toml" <<EOF2
[server]
listen = ["udp:$TARGET"]
domains = ["localhost"]
workers = 1
io = "uring"
recv_buffer_bytes = 16777216
send_buffer_bytes = 4194304

[admin]
listen = "127.0.40.1:9170"

[log]
level = "warn"

[registrar]
persistence = false

[protect]
trusted = ["127.0.40.0/22"]
EOF2
            taskset -c "$SERVER_CORE" "$BIN/sipedge" --config "$TMP/sipedge.toml" --shards 1 \
                2>"$OUT/sipedge.server.log" &
            ;;
        kamailio)
            TARGET=127.0.40.2:$PORT
            mkdir -p "$TMP/kamailio"
            taskset -c "$SERVER_CORE" kamailio -f "$ROOT/loadtest/kamailio/overload.cfg" -DD -E \
                -m 4096 -M 64 -l "udp:$TARGET" -Y "$TMP/kamailio" 2>"$OUT/kamailio.server.log" &
            ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$1 exited:"; tail "$OUT/$1.server.log"; exit 1; }
        answers "$TARGET" && return 0
        sleep 0.2
    done
    echo "$1 never answered"; exit 1
}

for server in $SERVERS; do
    echo "== $server"
    start_server "$server"
    PIDS=$(server_pids)
    mem0=$(server_pss_kb)
    timeout $(( SECS + 600 )) taskset -c "$CALL_CORE" "$BIN/sipload" call --target "$TARGET" \
        --uas 100 --rate "$CALL_RATE" --duration "$SECS" --source-base "$CALL_BASE" \
        --domain localhost --json >"$OUT/$server.calls.json" 2>"$OUT/$server.calls.log" &
    CALLS=$!
    timeout $(( SECS + 600 )) taskset -c "$GEN_CORE" "$BIN/sipload" register --target "$TARGET" \
        --uas "$UAS" --sources "$SOURCES" --source-base "$FLOOD_BASE" --domain localhost \
        --rate "$(( RATE * FACTOR ))" --duration "$SECS" --pin "$GEN_CORE" \
        --server-pid "$PIDS" --json >"$OUT/$server.flood.json" 2>"$OUT/$server.flood.log"
    wait "$CALLS" || true
    mem1=$(server_pss_kb)
    echo "$mem0 $mem1" >"$OUT/$server.mem"
    if [[ $server == sipedge ]]; then
        curl -s "127.0.40.1:9170/metrics" | grep -E '^sipedge_(overload_|kernel_drops|protect_)' \
            >"$OUT/sipedge.metrics" || true
    fi
    stop_server
done

python3 - "$OUT" "$RATE" "$SERVERS" <<'PY' | tee "$OUT/table.md"
import json, sys
out, rate, servers = sys.argv[1], float(sys.argv[2]), sys.argv[3].split()
print("| server | REGISTER completed/s | % of RATE | refused/failed | unanswered | p99 ms | calls ok / all | Pss MiB before → after |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for s in servers:
    try:
        f = json.load(open(f"{out}/{s}.flood.json"))["phases"][0]
        c = json.load(open(f"{out}/{s}.calls.json"))["phases"][0]
        m0, m1 = map(int, open(f"{out}/{s}.mem").read().split())
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"| {s} | (no result: {e}) |")
        continue
    secs = f.get("send_seconds") or 1
    done = f["successes"] / secs
    calls = c["successes"] + c["failures"] + c["timeouts"] + c.get("unfinished", 0)
    print(f"| {s} | {done:,.0f} | {100 * done / rate:.0f} % | {f['failures']:,} | {f['timeouts'] + f.get('unfinished', 0):,} "
          f"| {f['latency_us']['p99'] / 1000:.1f} | {c['successes']:,} / {calls:,} | {m0 / 1024:.0f} → {m1 / 1024:.0f} |")
PY
[[ -f "$OUT/sipedge.metrics" ]] && { echo; echo "sipedge counters:"; grep -vE ' 0$' "$OUT/sipedge.metrics" || true; }
