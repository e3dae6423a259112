#!/usr/bin/env bash
# overload.sh — issue 17's 10× overload run, on a rig where 10× can really be offered: the
# server (one sipedge shard, then Kamailio with pike: loadtest/kamailio/overload.cfg) runs
# under a CPU quota (cgroup `cpu.max` / `cpu.cfs_quota_us`, default 1 ms every 10 ms: one
# shard = a tenth of a core), so its sustained rate is a small fraction of what one
# generator core can send and count (a quarter core gave sipedge ~40k/s: 10× was beyond
# the generator, which reaches ~250k/s on an idle core).
#
# Per server, all under the same quota:
#   1. RATE: its sustained new-REGISTER rate, measured closed loop (sipload register --rate 0,
#      --outstanding OUTSTANDING, MEASURE_SECS) — or RATE=… to give it;
#   2. for SECS seconds at the same time:
#      * the flood: sipload flood (prebuilt new REGISTERs, replies counted by status code) at
#        FACTOR × RATE − MEASURED_RATE from UAS sockets over SOURCES addresses of the trusted
#        generator prefix (127.0.40.0/22: [protect] trusted / pike skipped, so the density
#        rule does not simply ban the generator);
#      * the measured side: sipload register at MEASURED_RATE (new AoRs, latencies recorded;
#        --t1-ms 60000: a request shed in the kernel is not retried, so the p99 is the
#        latency of admitted requests);
#      * calls: CALLS calls (sipload call, 100 UAs: INVITE, 200, ACK) set up at CALL_RATE
#        before the flood starts (CALL_LEAD s ahead), held (--hold-ms) and hung up (BYE)
#        in the middle of the flood: the Must-reach asks that in-dialog BYEs of established
#        calls are all answered (the table's "BYEs answered / sent").
# and prints: achieved offered rate (a flood below 95 % of the asked rate is not a result and
# the row says so), REGISTERs completed per second (flood + measured 200 OKs, vs RATE: the
# Must-reach is ≥ 90 %), refused (503), shed in the kernel, dropped stale (sipedge: new
# requests read and dropped behind a late queue, [overload] max_queue_delay_ms),
# unanswered, p99 of admitted, calls established before the flood / their BYEs answered
# (any final response) of those sent during it, Pss before → after, and for sipedge the
# shed counters, kernel drops and the controller's last share.
#
# On loopback the kernel's receive work for a datagram (the socket filter's shed included)
# runs in the sender's softirq, so it is billed to the generator, not to the quota: the
# quota measures the server's own work (read, parse, serve or refuse, send), which is what
# a kernel shed saves. Loopback only (sipedge 127.0.40.1, Kamailio 127.0.40.2); every
# process and cgroup started is stopped and removed.
#
# Environment knobs: QUOTA ["1000 10000": quota and period, µs; v1 needs a quota ≥ 1000] FACTOR [10] SECS [10]
#   MEASURE_SECS [5] OUTSTANDING [256] RATE [measured per server] MEASURED_RATE [1000]
#   CALLS [500] CALL_RATE [250] CALL_LEAD [5 s: the calls are up before the flood] UAS [200] SOURCES [10] SERVER_CORE [0] GEN_CORE [1]
#   SIDE_CORE [$SERVER_CORE: measured register + calls] SERVERS ["sipedge kamailio"]
#   PREFAULT [true: sipedge's [registrar] prefault] NO_BUILD [unset] OUT [target/overload] BIN [target/release] TRACE_EVERY [1 s: sipedge's
#   queue / shed share / level trace in OUT/sipedge.trace] SIPEDGE_OVERLOAD [extra [overload]
#   lines, e.g. "kernel_shed_queue_percent = 2"] FLOOD_METHOD [register; invite: the flood is
#   new INVITEs to unregistered users (each final error ACKed) at FACTOR × RATE, RATE still
#   the REGISTER rate unless given; "completed" then counts the flood's non-503 finals (404)]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
QUOTA=${QUOTA:-1000 10000}
SIPEDGE_OVERLOAD=${SIPEDGE_OVERLOAD:-}
FACTOR=${FACTOR:-10}
SECS=${SECS:-10}
MEASURE_SECS=${MEASURE_SECS:-5}
OUTSTANDING=${OUTSTANDING:-1024}
MEASURED_RATE=${MEASURED_RATE:-1000}
CALLS=${CALLS:-500}
CALL_RATE=${CALL_RATE:-250}
CALL_LEAD=${CALL_LEAD:-5}
UAS=${UAS:-200}
SOURCES=${SOURCES:-10}
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
SIDE_CORE=${SIDE_CORE:-$SERVER_CORE}
SERVERS=${SERVERS:-sipedge kamailio}
FLOOD_METHOD=${FLOOD_METHOD:-register}
OUT=${OUT:-$ROOT/target/overload}
BIN=${BIN:-$ROOT/target/release}
PORT=5070
FLOOD_BASE=127.0.41.1
CALL_BASE=127.0.42.1
MEASURED_BASE=127.0.43.1
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.rate "$OUT"/*.flood_cpu_us "$OUT"/*.mem "$OUT"/*.metrics "$OUT"/*.metrics.all "$OUT"/*.throttled "$OUT"/*.trace "$OUT"/*.threads
TMP=$(mktemp -d)
SERVER_PID=""
CG=""

# The CPU quota (loadtest/cgroup.sh: cg_quota, cg_throttled, cg_remove).
source "$ROOT/loadtest/cgroup.sh"
cg_usage_us() { # the server's CPU time so far, µs: its threads' schedstat run times (ns)
    local p sum=0 t
    for p in $(server_pids | tr , ' '); do
        for t in /proc/"$p"/task/*/schedstat; do
            read -r t _ 2>/dev/null <"$t" || continue
            sum=$(( sum + t / 1000 ))
        done
    done
    echo "$sum"
}
thread_cpu() { # per thread name so far: "name CPU-µs voluntary-switches involuntary-switches"
    local p t n v vol inv
    for p in $(server_pids | tr , ' '); do
        for t in /proc/"$p"/task/*; do
            read -r n 2>/dev/null <"$t/comm" || continue
            read -r v _ 2>/dev/null <"$t/schedstat" || continue
            vol=$(awk '/^voluntary_ctxt/{print $2}' "$t/status" 2>/dev/null)
            inv=$(awk '/^nonvoluntary_ctxt/{print $2}' "$t/status" 2>/dev/null)
            echo "$n $(( v / 1000 )) ${vol:-0} ${inv:-0}"
        done
    done
}
thread_delta() { # $1 = an earlier thread_cpu's file: what each thread took since
    thread_cpu | awk 'NR==FNR{a[$1]+=$2; v[$1]+=$3; i[$1]+=$4; next} {b[$1]+=$2; w[$1]+=$3; j[$1]+=$4}
        END{for (n in b) if (b[n] > a[n]) printf "%s %.1f ms (%d voluntary + %d involuntary switches)\n", n, (b[n]-a[n])/1000, w[n]-v[n], j[n]-i[n]}' "$1" - | sort
}
cg_create() { # $1 = name; sets CG
    local q p
    read -r q p <<<"$QUOTA"
    cg_quota "$1" "$q" "$p"
}

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    cg_remove
}
cleanup() { stop_server; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p sipload
    cargo build --release
fi
ulimit -n "$(( 2 * UAS + 4096 ))" 2>/dev/null || true
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ), $(kamailio -v 2>/dev/null | head -1)"
echo "quota: $QUOTA (µs quota, period) per server; offered: FACTOR $FACTOR × RATE for $SECS s (of it $MEASURED_RATE/s measured); $CALLS calls set up at $CALL_RATE/s ${CALL_LEAD} s before, hung up during it"

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

start_server() { # $1 = sipedge | kamailio, $2 = sipedge's [overload] enabled; sets SERVER_PID, TARGET
    cg_create "sipedge-overload-$1-$$"
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
# Sized at start for a million bindings, as Kamailio's usrloc is (overload.cfg hash_size):
# no table growth during the flood (a growth step under a tenth of a core is a long turn).
expected_bindings = 1000000
# …and faulted in at start, as an operator sizing a box for a storm sets it (PREFAULT):
# a first touch costs 3–9 µs per 4 KiB page on these VMs, a 2 MiB huge page longer than
# the whole 1 ms quota period, and requests queued behind it go stale.
prefault = ${PREFAULT:-true}

[protect]
trusted = ["127.0.40.0/22"]

[overload]
enabled = ${2:-true}
$SIPEDGE_OVERLOAD
EOF2
            sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" taskset -c "$SERVER_CORE" \
                "$BIN/sipedge" --config "$TMP/sipedge.toml" --shards 1 2>"$OUT/sipedge.server.log" &
            ;;
        kamailio)
            TARGET=127.0.40.2:$PORT
            mkdir -p "$TMP/kamailio"
            sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" taskset -c "$SERVER_CORE" \
                kamailio -f "$ROOT/loadtest/kamailio/overload.cfg" -DD -E -m 4096 -M 64 \
                -l "udp:$TARGET" -Y "$TMP/kamailio" 2>"$OUT/kamailio.server.log" &
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
    rate=${RATE:-}
    if [[ -z "$rate" ]]; then
        # The capacity: closed loop, as many in flight as keep the server busy through its
        # throttled periods; sipedge with [overload] off (its shedding would refuse part of
        # a load it can carry when a throttled turn looks long).
        start_server "$server" false
        PIDS=$(server_pids)
        # Warm, as the flood's server is (a just-started server under the quota still
        # takes turns of ~60 ms: measured cold, RATE understated the shard by a few %).
        sleep 2
        thread_cpu >"$TMP/threads0"
        taskset -c "$GEN_CORE" "$BIN/sipload" register --target "$TARGET" --uas "$UAS" \
            --sources "$SOURCES" --source-base "$FLOOD_BASE" --domain localhost --rate 0 \
            --outstanding "$OUTSTANDING" --duration "$MEASURE_SECS" --pin "$GEN_CORE" \
            --server-pid "$PIDS" --json >"$OUT/$server.rate.json" 2>"$OUT/$server.rate.log"
        rate=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["phases"][0]; print(int(p["successes"]/p["send_seconds"]))' "$OUT/$server.rate.json")
        thread_delta "$TMP/threads0" >"$OUT/$server.rate.threads"
        # RATE is the server's rate only if the quota, not the generator, was the limit:
        # its CPU over the measure must be (nearly) all the quota allowed.
        python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["phases"][0]; q,per=map(float,sys.argv[2].split()); cap=p["send_seconds"]*q/per; c=p.get("server_cpu_s") or 0; k=p.get("server_cpu_s_per_m_replies") or 0; print(f"RATE check: server CPU {c:.2f} s of {cap:.2f} s the quota allowed ({100*c/cap:.0f} %), {k:.2f} s per million replies" + ("" if c >= 0.9*cap else " — BELOW 90 %: the generator, not the server, set RATE"))' "$OUT/$server.rate.json" "$QUOTA" || true
        stop_server
    fi
    start_server "$server"
    PIDS=$(server_pids)
    echo "$rate" >"$OUT/$server.rate"
    flood_rate=$(( rate * FACTOR - MEASURED_RATE ))
    echo "RATE $rate/s under the quota; flood $flood_rate/s + measured $MEASURED_RATE/s"
    sleep 2 # a just-started server under the quota still takes turns of ~60 ms (seen)
    mem0=$(server_pss_kb)
    thr0=$(cg_throttled | cut -d" " -f1)
    if [[ $server == sipedge ]]; then
        # The controller's trace from the calls' setup on: queue bytes, kernel shed per mille,
        # level, stale drops, queue wait, longest turn, turns and datagrams read, every TRACE_EVERY s (1: each
        # scrape costs the admin thread ~0.2 ms of the quota; every 0.2 s, that was 2 % of it).
        ( end=$(( $(date +%s) + CALL_LEAD + SECS + 2 ))
          while (( $(date +%s) < end )); do
              curl -s "127.0.40.1:9170/metrics" | awk -v t="$(date +%s.%N)" \
                  '/^sipedge_(overload_(queue_bytes|kernel_shed_permille|pressure_level|queue_wait_ms|stale_dropped_total|shed_new_total)|shard_longest_turn_seconds|loop_turns_total|recv_batch_datagrams_total)/{v=v" "$1"="$2} END{print t v}'
              sleep "${TRACE_EVERY:-1}"
          done ) >"$OUT/sipedge.trace" 2>/dev/null &
    fi
    # The calls: set up before the flood, their BYEs in the middle of it (the hold runs
    # from each call's 200; the INVITEs take CALLS / CALL_RATE s). The callees register 4 at
    # a time: all 50 at once, a server just started under the quota took a turn ≥ 50 ms,
    # went to level 1 and refused some of them 503 (new AoRs), and their calls got 404.
    call_secs=$(python3 -c "print($CALLS / $CALL_RATE)")
    hold_ms=$(python3 -c "print(int(1000 * ($CALL_LEAD + $SECS / 2 - $call_secs / 2)))")
    timeout $(( SECS + CALL_LEAD + 600 )) taskset -c "$SIDE_CORE" "$BIN/sipload" call --target "$TARGET" \
        --uas 100 --rate "$CALL_RATE" --duration "$call_secs" --max-requests "$CALLS" \
        --hold-ms "$hold_ms" --source-base "$CALL_BASE" --outstanding 4 \
        --domain localhost --json >"$OUT/$server.calls.json" 2>"$OUT/$server.calls.log" &
    CALLS_PID=$!
    sleep "$CALL_LEAD"
    timeout $(( SECS + 600 )) taskset -c "$SIDE_CORE" "$BIN/sipload" register --target "$TARGET" \
        --uas 100 --source-base "$MEASURED_BASE" --domain localhost --rate "$MEASURED_RATE" \
        --duration "$SECS" --t1-ms 60000 --drain-ms 2000 --json \
        >"$OUT/$server.measured.json" 2>"$OUT/$server.measured.log" &
    MEASURED=$!
    cpu0=$(cg_usage_us)
    thread_cpu >"$TMP/threads0"
    timeout $(( SECS + 600 )) taskset -c "$GEN_CORE" "$BIN/sipload" flood --target "$TARGET" \
        --uas "$UAS" --sources "$SOURCES" --source-base "$FLOOD_BASE" --domain localhost \
        --rate "$flood_rate" --duration "$SECS" --drain-ms 2000 --pin "$GEN_CORE" \
        --flood-method "$FLOOD_METHOD" \
        --server-pid "$PIDS" --json >"$OUT/$server.flood.json" 2>"$OUT/$server.flood.log" || true
    # The server's CPU over the flood and its drain: what it got of the quota (a host busy
    # elsewhere can take some), and per completion against the RATE measure's per reply.
    echo $(( $(cg_usage_us) - cpu0 )) >"$OUT/$server.flood_cpu_us"
    # …and per thread (the shard's, the admin listener's serving the trace, …).
    thread_delta "$TMP/threads0" >"$OUT/$server.threads"
    wait "$CALLS_PID" || true
    wait "$MEASURED" || true
    echo $(( $(cg_throttled | cut -d" " -f1) - thr0 )) >"$OUT/$server.throttled"
    mem1=$(server_pss_kb)
    echo "$mem0 $mem1" >"$OUT/$server.mem"
    if [[ $server == sipedge ]]; then
        curl -s "127.0.40.1:9170/metrics" | grep -v '^#' >"$OUT/sipedge.metrics.all" || true
        grep -E '^sipedge_(overload_|kernel_drops|protect_)' "$OUT/sipedge.metrics.all" \
            >"$OUT/sipedge.metrics" || true
    fi
    stop_server
done

python3 - "$OUT" "$SERVERS" "$FACTOR" "$FLOOD_METHOD" <<'PY' | tee "$OUT/table.md"
import json, re, sys
out, servers, factor = sys.argv[1], sys.argv[2].split(), float(sys.argv[3])
invite = sys.argv[4] == "invite"
print(f"flood: new {'INVITE' if invite else 'REGISTER'}s")
print("| server | RATE/s (quota) | offered/s asked → achieved | completed/s | % of RATE "
      "| 503 | kernel shed | dropped stale | unanswered | p99 admitted ms "
      "| calls up / BYEs answered of sent | Pss MiB before → after |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for s in servers:
    try:
        rate = float(open(f"{out}/{s}.rate").read())
        f = json.load(open(f"{out}/{s}.flood.json"))
        m = json.load(open(f"{out}/{s}.measured.json"))["phases"][0]
        c = json.load(open(f"{out}/{s}.calls.json"))["phases"][0]
        m0, m1 = map(int, open(f"{out}/{s}.mem").read().split())
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"| {s} | (no result: {e}) |")
        continue
    asked = f["offered_rate"] + (m.get("offered_rate") or 0)
    # The flood's datagrams sent include the ACKs of its INVITEs' finals: not requests.
    flood_sent = f["sent"] - (f.get("acks") or 0)
    achieved = flood_sent / (f["send_seconds"] or 1) + m["sent"] / (m["send_seconds"] or 1)
    if not f["valid"]:
        print(f"| {s} | {rate:,.0f} | {asked:,.0f} → {achieved:,.0f} | (no result: the generator "
              f"offered < 95 % of the asked rate) |")
        continue
    # 200s received while sending (whole seconds), not the drain's: what was served in time.
    whole = max(1, int(f["send_seconds"]))
    # INVITEs to unregistered users complete with a final error (404/480), not a 200.
    per_second = f["done_per_second"] if invite else f["ok_per_second"]
    done = sum(per_second[:whole]) / whole + m["successes"] / (m["send_seconds"] or 1)
    shed = stale = 0
    try:
        for line in open(f"{out}/{s}.metrics"):
            if line.startswith("sipedge_overload_kernel_shed_total"):
                shed += int(float(line.split()[-1]))
            if line.startswith("sipedge_overload_stale_dropped_total"):
                stale += int(float(line.split()[-1]))
    except OSError:
        pass
    sent = flood_sent + m["sent"]
    flood_done = f["ok"] + (f["other"] if invite else 0)
    refused = f["unavailable"] + (0 if invite else f["other"]) + m["failures"]
    unanswered = max(0, sent - flood_done - m["successes"] - refused - shed - stale)
    b = c.get("scenario") or {}
    byes = f"{b.get('byes_sent', 0):,} / {b.get('byes_answered', 0):,} of {b.get('byes_sent', 0):,}"
    print(f"| {s} | {rate:,.0f} | {asked:,.0f} → {achieved:,.0f} | {done:,.0f} | {100 * done / rate:.0f} % "
          f"| {refused:,} | {shed:,} | {stale:,} | {unanswered:,} | {m['latency_us']['p99'] / 1000:.1f} "
          f"| {byes} | {m0 / 1024:.0f} → {m1 / 1024:.0f} |")
PY
for s in $SERVERS; do
    [[ -f "$OUT/$s.throttled" ]] && echo "$s: $(cat "$OUT/$s.throttled") throttled periods during the run"
    [[ -f "$OUT/$s.flood_cpu_us" && -f "$OUT/$s.flood.json" ]] && python3 -c '
import json, sys
out, s, quota = sys.argv[1], sys.argv[2], sys.argv[3]
q, per = map(float, quota.split())
f = json.load(open(f"{out}/{s}.flood.json"))
cpu = int(open(f"{out}/{s}.flood_cpu_us").read()) / 1e6
secs = f["send_seconds"] + 2.0  # the flood and its drain
done = f["ok"] + ((f.get("other") or 0) if f.get("acks") else 0)
try:
    done += json.load(open(f"{out}/{s}.measured.json"))["phases"][0]["successes"]
except (OSError, KeyError, ValueError, IndexError):
    pass
line = f"{s}: CPU over the flood + drain {cpu:.2f} s of {secs * q / per:.2f} s the quota allowed ({100 * cpu * per / (secs * q):.0f} %)"
try:
    r = json.load(open(f"{out}/{s}.rate.json"))["phases"][0]
    per_reply = r["server_cpu_s"] / r["successes"] * 1e6
    line += f"; {1e6 * cpu / max(done, 1):.2f} µs per flood completion (all work included) vs {per_reply:.2f} µs per reply measuring RATE"
except (OSError, KeyError, ValueError, ZeroDivisionError):
    pass
print(line)' "$OUT" "$s" "$QUOTA" || true
    [[ -f "$OUT/$s.rate.threads" ]] && echo "$s: per thread measuring RATE: $(paste -sd, "$OUT/$s.rate.threads")"
    [[ -f "$OUT/$s.threads" ]] && echo "$s: per thread over the flood + drain: $(paste -sd, "$OUT/$s.threads")"
    [[ -f "$OUT/$s.flood.json" ]] && python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); print(sys.argv[2]+": flood 200/s per second:", f["ok_per_second"], "non-503 finals/s:", f.get("done_per_second"))' "$OUT/$s.flood.json" "$s" || true
done
if [[ " $SERVERS " == *" sipedge "* && -f "$OUT/sipedge.metrics" ]]; then
    echo; echo "sipedge counters:"; grep -vE ' 0$' "$OUT/sipedge.metrics" || true
fi
