#!/usr/bin/env bash
# measure-engine.sh — the UDP request/response ceiling of this machine and sipedge's share of it
# (issue 3), measured back to back in ONE run:
#   (a) udp-echo naive   (b) udp-echo mmsg   (c) udp-echo uring        — the ceiling
#   (d) sipedge --shards 1, io = "uring"     (e) sipedge --shards 1, io = "mmsg"  — answering OPTIONS
# Each server is pinned to core $SERVER_CORE, sipload to core $GEN_CORE; each case is measured at
# closed-loop max (--rate 0, $WINDOW in flight) and with an open-loop ramp. Loopback only; every
# run is bounded in time; everything started here is killed on exit.
#
# Environment knobs (defaults in brackets):
#   SERVER_CORE [0] GEN_CORE [1] UAS [1000] SOURCES [1] WINDOW [256] CLOSED_SECS [5]
#   RAMP [20000:10000:400000] STEP_SECS [4] CASES ["echo-naive echo-mmsg echo-uring sipedge-uring sipedge-mmsg"]
#   IDLE_WAIT [120] (seconds to wait for the rest of the machine to go idle before each case)
#   OUT [target/measure-engine] (JSON of every run, and table.md)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
UAS=${UAS:-1000}
SOURCES=${SOURCES:-1}
WINDOW=${WINDOW:-256}
CLOSED_SECS=${CLOSED_SECS:-5}
RAMP=${RAMP:-20000:10000:400000}
STEP_SECS=${STEP_SECS:-4}
CASES=${CASES:-echo-naive echo-mmsg echo-uring sipedge-uring sipedge-mmsg}
OUT=${OUT:-$ROOT/target/measure-engine}
IDLE_WAIT=${IDLE_WAIT:-120}
BIN=$ROOT/target/release
# Loopback addresses used by no default config (sipedge's default is 127.0.0.1:5060).
ECHO_ADDR=127.0.77.1:7000
SIPEDGE_IP=127.0.77.2
SIPEDGE_PORT=5070
ADMIN_ADDR=127.0.77.2:9165

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

echo "== building release binaries"
cargo build --release -p sipload -p udp-echo
cargo build --release
ulimit -n "$(( UAS + 1024 ))" 2>/dev/null || echo "warning: could not raise ulimit -n for $UAS UAs"

echo "== machine"
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty tree)'), $(date -u +%FT%TZ)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "other processes using CPU now (a busy machine skews every number below):"
ps -eo pid,pcpu,comm --sort=-pcpu | awk 'NR>1 && $2>5.0' | head -5 || true

# sipedge config: the embedded default's keys, on our own address, one worker.
sipedge_config() { # $1 = io
    cat >"$TMP/sipedge-$1.toml" <<EOF
[server]
listen = ["udp:$SIPEDGE_IP:$SIPEDGE_PORT"]
domains = ["localhost"]
workers = 1
io = "$1"
recv_buffer_bytes = 8388608
send_buffer_bytes = 4194304
max_message_bytes = 65535

[admin]
listen = "$ADMIN_ADDR"

[log]
level = "warn"
EOF
    echo "$TMP/sipedge-$1.toml"
}

answers() { # $1 = target, rest = extra sipload flags: true when something answers there
    local t=$1
    shift
    "$BIN/sipload" options --target "$t" "$@" --uas 1 --rate 1000 --duration 0.05 \
        --drain-ms 200 --json 2>/dev/null | grep -q '"replies": [1-9]'
}

# Waits (at most IDLE_WAIT seconds) until the rest of the machine is idle: below 0.15 cores
# busy over 5 s. Other load lands on the measured cores and skews everything.
wait_idle() {
    local end=$(( $(date +%s) + IDLE_WAIT )) b0 b1
    while :; do
        b0=$(busy_seconds); sleep 5; b1=$(busy_seconds)
        if awk -v a="$b0" -v b="$b1" 'BEGIN{exit !((b-a)/5 < 0.15)}'; then return 0; fi
        if (( $(date +%s) >= end )); then
            echo "warning: the machine is still busy ($(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", (b-a)/5}') cores); measuring anyway:"
            ps -eo pid,pcpu,comm --sort=-pcpu | awk 'NR>1 && $2>5.0' | head -3
            return 0
        fi
    done
}

start_server() { # $1 = case; sets SERVER_PID, TARGET, EXTRA
    case "$1" in
        echo-*) answers "$ECHO_ADDR" --count-any-reply && { echo "$ECHO_ADDR is already in use"; exit 1; } ;;
        sipedge-*) answers "$SIPEDGE_IP:$SIPEDGE_PORT" && { echo "$SIPEDGE_IP:$SIPEDGE_PORT is already in use"; exit 1; } ;;
    esac
    case "$1" in
        echo-*)
            TARGET=$ECHO_ADDR
            EXTRA=(--count-any-reply)
            "$BIN/udp-echo" --engine "${1#echo-}" --addr "$ECHO_ADDR" --shards 1 --pin "$SERVER_CORE" \
                --duration 600 2>"$OUT/$1.server.log" &
            ;;
        sipedge-*)
            TARGET=$SIPEDGE_IP:$SIPEDGE_PORT
            EXTRA=()
            local cfg
            cfg=$(sipedge_config "${1#sipedge-}")
            "$BIN/sipedge" --check --config "$cfg" >/dev/null
            taskset -c "$SERVER_CORE" "$BIN/sipedge" --config "$cfg" --shards 1 2>"$OUT/$1.server.log" &
            ;;
    esac
    SERVER_PID=$!
    # Ready when it answers a few requests (at most 10 s).
    for _ in $(seq 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$1: server exited:"; cat "$OUT/$1.server.log"; exit 1; }
        answers "$TARGET" "${EXTRA[@]}" && return 0
        sleep 0.2
    done
    echo "$1: server never answered"; exit 1
}

# CPU seconds the whole machine spent busy so far (all cores; /proc/stat user..steal).
busy_seconds() {
    awk -v tck="$(getconf CLK_TCK)" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/tck; exit}' /proc/stat
}

gen() { # $1 = output name; the rest goes to sipload, pinned to the generator core
    local name=$1 b0 b1 t0 t1
    shift
    b0=$(busy_seconds); t0=$(date +%s.%N)
    timeout 900 taskset -c "$GEN_CORE" "$BIN/sipload" options --target "$TARGET" "${EXTRA[@]}" \
        --uas "$UAS" --sources "$SOURCES" --pin "$GEN_CORE" --server-pid "$SERVER_PID" --json "$@" \
        >"$OUT/$name.json"
    b1=$(busy_seconds); t1=$(date +%s.%N)
    # Machine-wide busy CPU seconds and wall seconds of this run: what neither the server nor
    # the generator used went to other processes, and skews the numbers.
    echo "$b0 $b1 $t0 $t1" | awk '{print $2-$1, $4-$3}' >"$OUT/$name.busy"
}

for c in $CASES; do
    echo "== $c"
    wait_idle
    start_server "$c"
    gen "$c.closed" --rate 0 --outstanding "$WINDOW" --duration "$CLOSED_SECS"
    gen "$c.ramp" --ramp "$RAMP" --step-seconds "$STEP_SECS" --ramp-patience 2
    stop_server
done

echo "== results"
python3 - "$OUT" "$CASES" "$WINDOW" "$RAMP" "$STEP_SECS" <<'PY' | tee "$OUT/table.md"
import json, sys
out, cases, window, ramp, step = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4], sys.argv[5]
def load(c, kind):
    try:
        return json.load(open(f"{out}/{c}.{kind}.json"))
    except (OSError, ValueError):
        return None
def others(c, kind, run):
    # Cores' worth of CPU used by processes other than server and generator during the run.
    try:
        busy, wall = map(float, open(f"{out}/{c}.{kind}.busy").read().split())
    except (OSError, ValueError):
        return None
    ours = sum((p["generator_cpu_s"] or 0) + (p["server_cpu_s"] or 0) for p in run["phases"]) if run else 0
    return max(busy - ours, 0) / wall if wall > 0 else None
def pc(x):
    return "-" if x is None else "%.2f%%" % (100 * x)
def f(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
rows = {}
for c in cases:
    cl, rp = load(c, "closed"), load(c, "ramp")
    b = cl and cl["best"]
    rb = rp and rp["best"]
    rows[c] = dict(
        closed=b and b["achieved_rps"],
        closed_cpu=b and b["server_cpu_s_per_m_replies"],
        srv_util=b and b["server_cpu_s"] and b["server_cpu_s"] / b["send_seconds"],
        gen_util=b and b["generator_cpu_s"] and b["generator_cpu_s"] / b["send_seconds"],
        p99=b and b["latency_us"]["p99"],
        ramp=rp and rp["best_sustained_rate"],
        ramp_rps=rb and rb["achieved_rps"],
        ramp_cpu=rb and rb["server_cpu_s_per_m_replies"],
        ramp_p99=rb and rb["latency_us"]["p99"],
        ramp_retx=rb and rb["retransmissions"] / max(rb["sent"], 1),
        others=others(c, "closed", cl),
        others_ramp=others(c, "ramp", rp),
    )
echo = {c: r for c, r in rows.items() if c.startswith("echo-")}
ceil_closed = max((r["closed"] or 0 for r in echo.values()), default=0) or None
ceil_ramp = max((r["ramp"] or 0 for r in echo.values()), default=0) or None
def pct(x, ceil):
    return "-" if not x or not ceil else f"{100 * x / ceil:.0f}%"
print(f"closed loop: --rate 0 --outstanding {window}; ramp: --ramp {ramp} --step-seconds {step} (sustained = ≤0.1% failed, ≤0.1% retransmitted, ≥99.9% of offered answered in the step)\n")
print("| case | closed-loop replies/s | server CPU s / M replies | server CPU busy | generator CPU busy | p99 µs | ramp: highest sustained offered/s | server CPU s / M replies at it | p99 µs at it | retransmitted at it | % of ceiling (closed / ramp) | % of same-engine echo (closed / ramp) | other processes' CPU, cores (closed / ramp) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for c, r in rows.items():
    same = rows.get("echo-" + c.split("-", 1)[1]) if c.startswith("sipedge-") else None
    vs_ceil = "(ceiling)" if c.startswith("echo-") else f"{pct(r['closed'], ceil_closed)} / {pct(r['ramp'], ceil_ramp)}"
    vs_same = "-" if not same else f"{pct(r['closed'], same['closed'])} / {pct(r['ramp'], same['ramp'])}"
    print(f"| {c} | {f(r['closed'])} | {f(r['closed_cpu'], 2)} | {pct(r['srv_util'], 1)} | {pct(r['gen_util'], 1)} | {f(r['p99'])} "
          f"| {f(r['ramp'])} | {f(r['ramp_cpu'], 2)} | {f(r['ramp_p99'])} | {pc(r['ramp_retx'])} | {vs_ceil} | {vs_same} | {f(r['others'], 2)} / {f(r['others_ramp'], 2)} |")
PY
echo "JSON of every run: $OUT/"
