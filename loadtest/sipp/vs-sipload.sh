#!/usr/bin/env bash
# vs-sipload.sh [SCENARIO] — one sipload core against one SIPp process, same machine, same
# server, in one run (default SCENARIO: register; also options).
#
# The server is `udp-echo --sip-ok` (answers every request with its own headers under a
# `200 OK` status line, at the cost of a UDP echo) pinned to core $SERVER_CORE, so the server is
# not what limits either generator; each generator is pinned to core $GEN_CORE. Each is ramped
# up until a step is not sustained (sipload: its own --ramp, ≤ 0.1% failures and retransmissions,
# ≥ 99.9% of the offered rate answered in the step; SIPp: run.sh per step of $SIPP_SECS seconds,
# ≤ 0.1% failed calls and ≥ 98% of the offered rate achieved over its whole run, start-up
# included — a looser bar, which favours SIPp). With
# SERVER=kamailio both run against loadtest/kamailio/register.cfg instead (then Kamailio is the
# bottleneck and the run shows that both generators reach it).
# Loopback only; bounded (each step STEP_SECS seconds, at most MAX rate); stops what it started.
#
# Environment (defaults in brackets): SERVER_CORE [0] GEN_CORE [1] STEP_SECS [4] SIPP_SECS [8]
#   SIPLOAD_RAMP [50000:50000:800000] SIPP_RATES ["2500 5000 7500 10000 15000 20000 25000 30000
#   40000 50000 60000 80000 100000"] UAS [1000] SOURCES [10] SERVER [echo] NO_BUILD [unset] IDLE_WAIT [60]
#   OUT [target/vs-sipload]
set -euo pipefail
SCENARIO=${1:-register}
cd "$(dirname "$0")/../.."
ROOT=$PWD
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
STEP_SECS=${STEP_SECS:-4}
SIPP_SECS=${SIPP_SECS:-8}
SIPLOAD_RAMP=${SIPLOAD_RAMP:-50000:50000:800000}
SIPP_RATES=${SIPP_RATES:-2500 5000 7500 10000 15000 20000 25000 30000 40000 50000 60000 80000 100000}
UAS=${UAS:-1000}
SOURCES=${SOURCES:-10}
SERVER=${SERVER:-echo}
OUT=${OUT:-$ROOT/target/vs-sipload}
BIN=$ROOT/target/release
TARGET=127.0.40.3:5070
mkdir -p "$OUT"
SERVER_PID=""
TMP=$(mktemp -d)
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v sipp >/dev/null || apt-get install -y sip-tester >/dev/null
if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p sipload -p udp-echo
fi
ulimit -n "$(( UAS + 1024 ))" 2>/dev/null || true

# Waits (at most IDLE_WAIT seconds, default 60) until the rest of the machine is idle: below
# 0.3 cores busy over 3 s. Other load lands on the measured cores and skews everything.
busy_seconds() {
    awk -v tck="$(getconf CLK_TCK)" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/tck; exit}' /proc/stat
}
wait_idle() {
    local end=$(( $(date +%s) + ${IDLE_WAIT:-60} )) b0 b1
    while :; do
        b0=$(busy_seconds); sleep 3; b1=$(busy_seconds)
        if awk -v a="$b0" -v b="$b1" 'BEGIN{exit !((b-a)/3 < 0.3)}'; then return 0; fi
        if (( $(date +%s) >= end )); then
            echo "warning: the machine is still busy ($(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", (b-a)/3}') cores); measuring anyway"
            return 0
        fi
    done
}
wait_idle
echo "== machine: kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD), $(date -u +%FT%TZ), $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
case "$SERVER" in
    echo)
        "$BIN/udp-echo" --engine uring --sip-ok --addr "$TARGET" --pin "$SERVER_CORE" --duration 1800 \
            2>"$OUT/server.log" &
        ;;
    kamailio)
        command -v kamailio >/dev/null || apt-get install -y kamailio >/dev/null
        taskset -c "$SERVER_CORE" kamailio -f "$ROOT/loadtest/kamailio/register.cfg" -DD -E -m 4096 -M 64 \
            -l "udp:$TARGET" -Y "$TMP" >"$OUT/server.log" 2>&1 &
        ;;
esac
SERVER_PID=$!
sleep 1.5
kill -0 "$SERVER_PID" || { cat "$OUT/server.log"; exit 1; }

echo "== sipload $SCENARIO, one core (ramp $SIPLOAD_RAMP, $STEP_SECS s steps)"
taskset -c "$GEN_CORE" "$BIN/sipload" "$SCENARIO" --target "$TARGET" --uas "$UAS" --sources "$SOURCES" \
    --source-base 127.0.41.1 --pin "$GEN_CORE" --ramp "$SIPLOAD_RAMP" --step-seconds "$STEP_SECS" \
    --ramp-patience 2 --aors 5000000 --json >"$OUT/sipload.json"
python3 - "$OUT/sipload.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for p in r["phases"]:
    print(f"  offered {p['offered_rate']:>9.0f}/s: {p['achieved_rps']:>9.0f}/s answered, {p['failure_ratio']*100:.3f}% failed, "
          f"{p['retransmissions']} retx, p99 {p['latency_us']['p99']} µs, generator CPU {p['generator_cpu_s']:.2f} s {'ok' if p['sustained'] else 'NOT sustained'}")
print(f"  sipload highest sustained: {r['best_sustained_rate'] or 0:.0f}/s")
PY

wait_idle
echo "== SIPp $SCENARIO, one process (steps: $SIPP_RATES; $SIPP_SECS s each)"
best_sipp=0
misses=0
: >"$OUT/sipp.txt"
for rate in $SIPP_RATES; do
    line=$(RATE=$rate SECS=$SIPP_SECS PIN=$GEN_CORE LIMIT=100000 OUT=$OUT/sipp \
        "$ROOT/loadtest/sipp/run.sh" "$SCENARIO" "$TARGET" | tail -1) || true
    echo "  $line" | tee -a "$OUT/sipp.txt"
    ok=$(echo "$line" | sed -E 's/.* ([0-9]+) successful, ([0-9]+) failed, ([0-9.]+) s, ([0-9]+) calls\/s.*/\1 \2 \3 \4/')
    read -r succ fail el ach <<<"$ok"
    if awk -v s="$succ" -v f="$fail" -v a="$ach" -v r="$rate" \
        'BEGIN{exit !(f <= 0.001*(s+f) && a >= 0.98*r)}'; then
        best_sipp=$rate
        misses=0
    else
        misses=$((misses + 1))
        (( misses >= 2 )) && break
    fi
done
echo "  SIPp highest sustained: $best_sipp/s"
best_sl=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["best_sustained_rate"] or 0))' "$OUT/sipload.json")
echo "== result ($SCENARIO against $SERVER on core $SERVER_CORE, generators on core $GEN_CORE)"
echo "| generator | highest sustained $SCENARIO/s |"
echo "| --- | --- |"
echo "| sipload, 1 core | $best_sl |"
echo "| SIPp, 1 process | $best_sipp |"
awk -v a="$best_sl" -v b="$best_sipp" 'BEGIN{if (b > 0) printf "| ratio | %.1f× |\n", a/b}'
