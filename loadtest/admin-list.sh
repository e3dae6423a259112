#!/usr/bin/env bash
# admin-list.sh — issue 18's Must-reach: listing 1M registrations page by page through the
# admin API while REGISTERs run at 50k/s must not make any shard turn longer than 10 ms, and
# the registration rate must stay within 5 % of the same run without listing.
#
# Registers N (1 000 000) bindings with `sipload refresh` (its setup), then runs the refresh
# load at RATE twice for SECS seconds: once alone, once while `sipedgectl reg list --all`
# pages through every binding (LIMIT a page) in a loop. For each run it prints the refreshes
# answered per second (sipload's report), the turns over 10 ms during the run (the
# sipedge_shard_turn_seconds histogram: count minus the le="0.01" bucket, deltas) and the
# longest turn, and for the listing run the pages and bindings listed and the time per pass.
# (sipload's second setup registers the AoRs again from new source ports, so the listing run
# holds up to 2N bindings until the first ones expire.) Loopback only (127.0.40.4), bounded; everything started here is stopped on exit.
#
# Environment knobs: N [1000000] RATE [50000] SECS [30] SHARDS [2] LIMIT [1000] NO_BUILD [unset]
#   BIN [target/release] (a smoke run: NO_BUILD=1 BIN=target/debug N=2000 RATE=500 SECS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${N:-1000000}
RATE=${RATE:-50000}
SECS=${SECS:-30}
SHARDS=${SHARDS:-2}
LIMIT=${LIMIT:-1000}
IP=127.0.40.4
PORT=5070
ADMIN=$IP:9172
BIN=${BIN:-$ROOT/target/release}
TMP=$(mktemp -d)
PID=""
LISTER=""
cleanup() {
    [[ -n "$LISTER" ]] && kill "$LISTER" 2>/dev/null
    [[ -n "$PID" ]] && kill -KILL "$PID" 2>/dev/null
    rm -rf "$TMP"
}
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

[registrar]
persistence = false
expected_bindings = $N
TOML
"$BIN/sipedge" --config "$TMP/sipedge.toml" --shards "$SHARDS" 2>>"$TMP/sipedge.log" &
PID=$!
for _ in $(seq 200); do curl -sf "http://$ADMIN/readyz" >/dev/null && break; sleep 0.05; done

export SIPEDGE_ADMIN=$ADMIN
slow_turns() { # turns over 10 ms so far, all shards
    curl -s "http://$ADMIN/metrics" | awk '
        /^sipedge_shard_turn_seconds_count/ {c += $2}
        /^sipedge_shard_turn_seconds_bucket\{.*le="0.01"\}/ {b += $2}
        END {print c - b}'
}
longest() { curl -s "http://$ADMIN/metrics" | awk '/^sipedge_shard_longest_turn_seconds/ {if ($2 > m) m = $2} END {print m * 1000 " ms"}'; }

run() { # $1 = label; sipload refresh at RATE for SECS (its setup registers N bindings)
    local before after
    before=$(slow_turns)
    "$BIN/sipload" refresh --target "$IP:$PORT" --aors "$N" --uas 2000 --sources 20 \
        --source-base 127.0.41.1 --rate "$RATE" --duration "$SECS" --setup-seconds 600 \
        --drain-ms 2000 >"$TMP/$1.txt" 2>&1
    after=$(slow_turns)
    echo "== $1: turns over 10 ms during the run: $(( after - before )); longest turn since start: $(longest)"
    tail -n 5 "$TMP/$1.txt"
}

run alone
(
    pass=0
    while true; do
        t0=$(date +%s%N)
        n=$("$BIN/sipedgectl" --json reg list --all --limit "$LIMIT" 2>/dev/null | \
            python3 -c 'import sys, json; print(sum(len(json.loads(l)["registrations"]) for l in sys.stdin))' 2>/dev/null) || break
        pass=$((pass + 1))
        echo "listing pass $pass: $n bindings in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >>"$TMP/lister.log"
    done
) &
LISTER=$!
run listing
kill "$LISTER" 2>/dev/null || true; LISTER=""
cat "$TMP/lister.log" 2>/dev/null || echo "(no listing pass finished)"
