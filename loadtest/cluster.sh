#!/usr/bin/env bash
# cluster.sh — issue 20's "Must reach" numbers: sipedge edges sharing registrations through a
# three-master Redis Cluster, on loopback, in one run. Prints one table.
#
#   1. Rates per edge, cluster vs standalone: one edge (--shards 1) pinned to core $EDGE_CORE
#      and, the whole process (shard, cluster writer and lookup threads, admin), under one
#      cgroup CPU quota of $EDGE_QUOTA CPU (the same in both modes), so the edge saturates
#      first and the generator (core $GEN_CORE) and Redis ($REDIS_CPUS) have headroom: the
#      rate measures the edge, not the rig. Redis runs on the generator's core, not the
#      edge's: in production Redis is on other hosts, and on the edge's core its cache
#      pollution and context switches were charged to the edge in cluster mode only (the
#      bottleneck row shows whether the generator + Redis still keep up: the edge must be
#      the one throttled at its quota). Noise: one standalone run moved 0.51–0.67 s of edge
#      CPU per 100k from run to run (other jobs' cache and CPU on the shared cores, page
#      faults of a growing table, frequency), as wide as the effect measured, so the modes
#      run $REPEAT times each, alternately in ABBA order (standalone, cluster, cluster,
#      standalone, standalone, cluster, ...: a drift over the run hits both modes alike), and
#      the ratio is of the medians per mode (every run is printed too). `sipload register` (new AoRs, closed loop) then
#      `sipload refresh` (re-REGISTER of existing AoRs, closed loop), first with [cluster]
#      mode = "standalone", then mode = "cluster". Ratio cluster/standalone (target >= 80 %),
#      and who was the bottleneck: CPU seconds per 100k replies of the edge (during the
#      measured phase, and from the start of the run until its write-behind drained), of the
#      generator and of the three Redis masters (whole sipload run: for refresh, its setup
#      too), with the periods the edge was throttled at its quota. Then the edge's
#      sipedge_cluster_backlog / writes_total / write_errors_total / dropped_total after each
#      run, with how long the write-behind took to drain.
#   2. Calling a user registered on another edge: edges A and B in cluster mode. sipload
#      `call` registers $CALLEES callees on A (--register-target) and places $CALL_RATE calls/s
#      for $CALL_SECS s, first through A itself, then through B (B looks the callee up in
#      Redis and relays to A, its home edge). p50/p99 INVITE -> 200 through B minus through A
#      (target p99 added <= 2 ms), and B's cache hit ratio from /metrics. Every callee is
#      called CALL_RATE*CALL_SECS/CALLEES times; its first lookup is necessarily a miss, so
#      the ratio for "a callee called again within its expiry" is
#      hits / (hits + misses - callees) (target >= 99 %); the raw ratio is printed too.
#   3. 3 edges x $N bindings in one Redis Cluster: `sipload register` of N new AoRs on each
#      edge (domains e1.test, e2.test, e3.test), wait for every backlog to drain, Redis
#      used_memory summed over the masters before/after / 3N = bytes per binding, and
#      MEMORY USAGE sampled over $SAMPLE_KEYS keys. Then edge 3 is killed (-9) and started
#      again on its journal: seconds from exec to serving = the first 200 to a REGISTER
#      refresh of an AoR registered before the kill (sent to edge 3) AND the first call
#      through edge 2 to a user of edge 3 that reaches that user (cluster-probe.py).
#
# Loopback 127.0.47.0/24 only: Redis 127.0.47.1-3 ports 7101-7103 (bus 17101-17103), edges
# 127.0.47.11-13 port 5060 (admin :9170), generator sources from 127.0.47.100, probes on
# 127.0.47.200. Redis runs with --save "" --appendonly no. Every step is bounded in time;
# everything started here is stopped on exit.
#
# Environment knobs (defaults in brackets):
#   NET [127.0.47] (the /24 used)  PHASES ["1 2 3"] EDGE_CORE [0] EDGE_CPUS [$EDGE_CORE] GEN_CORE [1] NO_BUILD [unset]
#   EDGE_QUOTA [0.3] (CPUs the edge process may use in phase 1, cgroup cpu.max /
#   cfs_quota_us over a 10 ms period; 0 = no quota) REDIS_CPUS [$GEN_CORE] (where the Redis
#   masters run) REPEAT [3] (phase-1 runs per mode, ABBA order)
#   BIN [target/release]  PERF [unset] (set: `perf record -g` of the edge during each phase-1
#   run, into $OUT/perf-MODE-KIND.data)
#   OUT [target/cluster]  SYNC [batch] (journal sync)  DRAIN_SECS [300] (longest wait for a
#   write-behind backlog to drain)
#   phase 1: DURATION [10] OUTSTANDING [1024] UAS [1000] SOURCES [10] AORS [100000] (refresh
#            bindings) SETTLE_MS [5000] (pause between refresh's setup and its measured run,
#            both modes, so the setup's writes are not measured)
#   phase 2: CALLEES [200] CALL_RATE [200] CALL_SECS [10]
#   phase 3: N [1000000] (per edge) RATE3 [20000] (registrations/s per edge) SHARDS3 [1]
#            SAMPLE_KEYS [1000]
# Smoke run (debug binaries, small):
#   NO_BUILD=1 BIN=target/debug DURATION=3 AORS=5000 N=20000 RATE3=10000 CALL_SECS=3 \
#     loadtest/cluster.sh
set -euo pipefail
OVERLOAD=${OVERLOAD:-false}
cd "$(dirname "$0")/.."
ROOT=$PWD
PHASES=${PHASES:-1 2 3}
EDGE_CORE=${EDGE_CORE:-0}
# Cores the edge process may use (taskset). Default: its core only, so the cluster thread
# (Redis client) and the admin thread share the shard's core, and cluster mode's CPU counts
# against the edge. EDGE_CPUS=0,1 lets them float onto the generator's core instead.
EDGE_CPUS=${EDGE_CPUS:-$EDGE_CORE}
GEN_CORE=${GEN_CORE:-1}
# Phase 1's CPU quota for the edge process (CPUs). 0.3: at ~0.6 s of edge CPU per 100k new
# bindings the edge then answers ~50k/s, which the generator (~0.35 of a core) and the three
# Redis masters (~0.5 of a core for 50k script calls/s) carry with room on two cores.
EDGE_QUOTA=${EDGE_QUOTA:-0.3}
QUOTA_PERIOD_US=10000
# Redis on the generator's core (see the header: not charged to the edge).
REDIS_CPUS=${REDIS_CPUS:-$GEN_CORE}
REPEAT=${REPEAT:-3}
BIN=${BIN:-$ROOT/target/release}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
OUT=${OUT:-$ROOT/target/cluster}
[[ $OUT == /* ]] || OUT=$ROOT/$OUT
SYNC=${SYNC:-batch}
DRAIN_SECS=${DRAIN_SECS:-300}
DURATION=${DURATION:-10}
OUTSTANDING=${OUTSTANDING:-1024}
UAS=${UAS:-1000}
SOURCES=${SOURCES:-10}
AORS=${AORS:-100000}
SETTLE_MS=${SETTLE_MS:-5000}
CALLEES=${CALLEES:-200}
CALL_RATE=${CALL_RATE:-200}
CALL_SECS=${CALL_SECS:-10}
N=${N:-1000000}
# 20k/s per edge: the three edges share core $EDGE_CORE, their writers and Redis too; at
# 50k/s the run's window ended with 1.17M of the 3M stored. The window is twice the paced
# time (sending stops at N), so a slower edge still gets all N.
RATE3=${RATE3:-20000}
SHARDS3=${SHARDS3:-1}
SAMPLE_KEYS=${SAMPLE_KEYS:-1000}

NET=${NET:-127.0.47}
REDIS_IPS=($NET.1 $NET.2 $NET.3)
REDIS_PORTS=(7101 7102 7103)
EDGE_IPS=($NET.11 $NET.12 $NET.13)
SIP_PORT=5060
ADMIN_PORT=9170
SOURCE_BASE=$NET.100
PROBE_IP=$NET.200

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/results.txt
TMP=$(mktemp -d)
REDIS_PIDS=()
declare -A EDGE_PID=()
PROBE_PID=""
CG=""

stop_pid() { # $1 = pid: TERM, then KILL after 5 s
    local p=$1
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
stop_edge() { # $1 = edge index (0..2)
    local p=${EDGE_PID[$1]:-}
    [[ -n "$p" ]] && stop_pid "$p"
    EDGE_PID[$1]=""
}
cleanup() {
    [[ -n "$PROBE_PID" ]] && stop_pid "$PROBE_PID"
    for i in "${!EDGE_PID[@]}"; do stop_edge "$i"; done
    for p in "${REDIS_PIDS[@]}"; do stop_pid "$p"; done
    cg_remove
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for b in redis-server redis-cli curl python3 bc; do
    command -v "$b" >/dev/null || { echo "missing $b (apt-get install redis-server redis-tools curl python3 bc)" >&2; exit 1; }
done
if [[ -z "${NO_BUILD:-}" ]]; then
    echo "== building release binaries"
    cargo build --release -p sipedge -p sipload
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== machine"
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty tree)'), $(date -u +%FT%TZ), $(redis-server --version | cut -d' ' -f1-3), binaries $BIN"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

result() { echo "$1=$2" >>"$OUT/results.txt"; } # key=value for the final table

# ---------------------------------------------------------------- the edge's CPU quota
# (loadtest/cgroup.sh: cg_quota, cg_throttled, cg_remove)
source "$ROOT/loadtest/cgroup.sh"
cg_create() { # $1 = name; sets CG (empty: no quota)
    CG=""
    [[ $EDGE_QUOTA == 0 ]] && return 0
    local q
    q=$(echo "$EDGE_QUOTA * $QUOTA_PERIOD_US / 1" | bc)
    (( q >= 1000 )) || { echo "EDGE_QUOTA=$EDGE_QUOTA is below 1 ms per 10 ms period" >&2; exit 1; }
    cg_quota "$1" "$q" "$QUOTA_PERIOD_US"
}
cpu_of() { # pids...: CPU seconds (utime + stime, all threads) summed
    local p sum=0 tck
    tck=$(getconf CLK_TCK)
    for p in "$@"; do
        sum=$(( sum + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0) ))
    done
    echo "scale=2; $sum / $tck" | bc
}
now_s() { date +%s.%N; }
since() { echo "scale=1; ($(now_s) - $1) / 1" | bc; }

# ---------------------------------------------------------------- Redis Cluster
rcli() { # $1 = master index, then redis-cli arguments
    local i=$1; shift
    timeout 30 redis-cli -h "${REDIS_IPS[$i]}" -p "${REDIS_PORTS[$i]}" "$@"
}
redis_sum() { # $1 = INFO field (used_memory) or "dbsize": summed over the masters
    local sum=0 v i
    for i in 0 1 2; do
        if [[ $1 == dbsize ]]; then v=$(rcli "$i" DBSIZE); else
            v=$(rcli "$i" INFO memory | tr -d '\r' | awk -F: -v k="$1" '$1 == k {print $2}')
        fi
        sum=$(( sum + ${v:-0} ))
    done
    echo "$sum"
}
redis_flush() { local i; for i in 0 1 2; do rcli "$i" FLUSHALL >/dev/null; done; }
start_redis() {
    local i dir hostports=()
    for i in 0 1 2; do
        if rcli "$i" PING >/dev/null 2>&1; then echo "${REDIS_IPS[$i]}:${REDIS_PORTS[$i]} is already in use" >&2; exit 1; fi
        dir=$TMP/redis$i; mkdir -p "$dir"
        (cd "$dir" && exec taskset -c "$REDIS_CPUS" redis-server --port "${REDIS_PORTS[$i]}" \
            --bind "${REDIS_IPS[$i]}" --save "" --appendonly no --protected-mode no --dir "$dir" \
            --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
            --cluster-announce-ip "${REDIS_IPS[$i]}" >"$OUT/redis$i.log" 2>&1) &
        REDIS_PIDS+=($!)
        hostports+=("${REDIS_IPS[$i]}:${REDIS_PORTS[$i]}")
    done
    for i in 0 1 2; do
        for _ in $(seq 100); do [[ $(rcli "$i" PING 2>/dev/null) == PONG ]] && break; sleep 0.1; done
        [[ $(rcli "$i" PING 2>/dev/null) == PONG ]] || { echo "redis $i did not start" >&2; tail "$OUT/redis$i.log"; exit 1; }
    done
    # `--cluster create` waits for the join forever otherwise.
    timeout 60 redis-cli --cluster create "${hostports[@]}" --cluster-replicas 0 --cluster-yes \
        >"$OUT/redis-create.log" 2>&1 || { echo "redis-cli --cluster create failed" >&2; tail "$OUT/redis-create.log"; exit 1; }
    for _ in $(seq 200); do
        local ok=1
        for i in 0 1 2; do rcli "$i" CLUSTER INFO | grep -q cluster_state:ok || ok=0; done
        (( ok )) && return 0
        sleep 0.1
    done
    echo "the Redis Cluster did not reach cluster_state:ok" >&2; exit 1
}

# ---------------------------------------------------------------- edges
redis_urls() { local i s=""; for i in 0 1 2; do s+="${s:+, }\"redis://${REDIS_IPS[$i]}:${REDIS_PORTS[$i]}\""; done; echo "$s"; }
write_conf() { # $1 = edge index, $2 = mode, $3 = journal dir, $4 = domains (TOML list body)
    local i=$1 ip=${EDGE_IPS[$1]} peers="" j
    for j in 0 1 2; do [[ $j != "$i" ]] && peers+="${peers:+, }\"${EDGE_IPS[$j]}\""; done
    cat >"$TMP/edge$i.toml" <<EOF
[server]
listen = ["udp:$ip:$SIP_PORT"]
domains = [$4]
workers = 1
io = "uring"
recv_buffer_bytes = 16777216
send_buffer_bytes = 4194304

[admin]
listen = "$ip:$ADMIN_PORT"

[log]
level = "warn"

[registrar.persistence]
path = "$3"
sync = "$SYNC"

[cluster]
mode = "$2"
node = "edge-$((i + 1))"
redis = [$(redis_urls)]
peers = [$peers]

[overload]
# Capacity runs measure the server, not issue 17's shedding: closed loop with 1024 in flight
# fills the queue past the kernel filter's 1 % target, and a REGISTER shed there comes back
# only as a retransmission 500 ms later (OVERLOAD=true keeps the default).
enabled = $OVERLOAD
EOF
}
answers() { # $1 = ip:port answers OPTIONS
    timeout 10 "$BIN/sipload" options --target "$1" --uas 1 --rate 1000 --duration 0.05 \
        --drain-ms 200 --source-base "$PROBE_IP" --json 2>/dev/null | grep -q '"successes": [1-9]'
}
start_edge() { # $1 = edge index, $2 = shards; the config written by write_conf
    local i=$1 t=${EDGE_IPS[$1]}:$SIP_PORT
    [[ -n "${EDGE_PID[$i]:-}" ]] && { echo "edge $i is running" >&2; exit 1; }
    answers "$t" && { echo "$t is already in use" >&2; exit 1; }
    # In the cgroup ($CG, when set) before exec, so every thread it starts is under the quota.
    sh -c '[ -z "$0" ] || echo $$ >"$0/cgroup.procs"; exec "$@"' "$CG" \
        taskset -c "$EDGE_CPUS" "$BIN/sipedge" --config "$TMP/edge$i.toml" --shards "$2" \
        2>>"$OUT/edge$((i + 1)).log" &
    EDGE_PID[$i]=$!
}
wait_answering() { # $1 = edge index; prints seconds since $2 (date +%s.%N) or fails
    local i=$1 t0=$2
    for _ in $(seq 600); do
        kill -0 "${EDGE_PID[$i]}" 2>/dev/null || { echo "edge $((i + 1)) exited:" >&2; tail "$OUT/edge$((i + 1)).log" >&2; exit 1; }
        answers "${EDGE_IPS[$i]}:$SIP_PORT" && { since "$t0"; return 0; }
        sleep 0.05
    done
    echo "edge $((i + 1)) never answered" >&2; exit 1
}
metric() { # $1 = edge index, $2 = metric name: summed over its series
    curl -s --max-time 5 "http://${EDGE_IPS[$1]}:$ADMIN_PORT/metrics" \
        | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%d\n", s}'
}
shed_metrics() { # $1 = edge index: the non-zero overload/shedding counters (what a 503 came from)
    curl -s --max-time 5 "http://${EDGE_IPS[$1]}:$ADMIN_PORT/metrics" \
        | awk '$1 !~ /^#/ && $1 ~ /overload_|table_full/ && $1 !~ /permille|level|queue/ && $2 + 0 > 0 {printf "%s %s; ", $1, $2}'
}
cluster_metrics() { # $1 = edge index: one line
    local i=$1 m out=""
    for m in backlog writes_total write_errors_total dropped_total resyncs_total redis_up; do
        out+="$m=$(metric "$i" "sipedge_cluster_$m") "
    done
    echo "$out"
}
wait_drained() { # edge indexes...: until every backlog is 0 and writes stop moving; prints seconds
    local t0 i b w prev="" still
    t0=$(now_s)
    while :; do
        still=0; w=""
        for i in "$@"; do
            b=$(metric "$i" sipedge_cluster_backlog)
            (( b > 0 )) && still=1
            w+="$(metric "$i" sipedge_cluster_writes_total),"
        done
        if (( still == 0 )) && [[ "$w" == "$prev" ]]; then since "$t0"; return 0; fi
        prev=$w
        if (( $(echo "$(now_s) - $t0 > $DRAIN_SECS" | bc) )); then echo "not-drained-after-${DRAIN_SECS}s"; return 0; fi
        sleep 0.5
    done
}

GEN_TIME=/dev/null
sl() { # the generator, pinned; arguments go to sipload; its CPU "user sys" (s) to $GEN_TIME
    timeout 3600 /usr/bin/time -o "$GEN_TIME" -f '%U %S' \
        taskset -c "$GEN_CORE" "$BIN/sipload" "$@" --pin "$GEN_CORE" --source-base "$SOURCE_BASE"
}
summary() { # $1 = sipload JSON: one line about its measured phase
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p, s = r["phases"][0], r.get("setup") or {}
line = (f"{p['successes'] / p['send_seconds']:,.0f} ok/s, sent {p['sent']}, ok {p['successes']}, failures {p['failures']}, "
        f"timeouts {p['timeouts']}, unfinished {p['unfinished']}, codes {p['codes']}")
if s:
    line += f"; setup ok {s['successes']}"
print(line)
PY
}
registered() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["phases"][0]["successes"])' "$1"; }

result edge_quota "$EDGE_QUOTA"
echo "== Redis Cluster: 3 masters on ${REDIS_IPS[*]} (cores $REDIS_CPUS)"
start_redis

# ---------------------------------------------------------------- phase 1
if [[ " $PHASES " == *" 1 "* ]]; then
    P1=$(now_s)
    p1_run() { # $1 = mode, $2 = kind (register|refresh), $3 = run (1..REPEAT), then sipload arguments
        local mode=$1 kind=$2 r=$3 e0 r0 t0 d=0
        shift 3
        e0=$(cpu_of "$pid"); r0=$(cpu_of "${REDIS_PIDS[@]}"); t0=$(cg_throttled)
        local perf_pid=""
        if [[ -n "${PERF:-}" ]]; then # the edge's profile during this run (cpu-clock, call graphs)
            perf record -q -e cpu-clock -g -p "$pid" -o "$OUT/perf-$mode-$kind-$r.data" >/dev/null 2>&1 &
            perf_pid=$!
        fi
        GEN_TIME=$TMP/gen-time sl "$@" --server-pid "$pid" --json >"$OUT/p1-$mode-$kind-$r.json"
        if [[ -n "$perf_pid" ]]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true; fi
        result "p1_${mode}_${kind}_${r}_gen_cpu" "$(awk '{print $1 + $2}' "$TMP/gen-time")"
        result "p1_${mode}_${kind}_${r}_redis_cpu" "$(echo "$(cpu_of "${REDIS_PIDS[@]}") - $r0" | bc)"
        echo "$kind: $(summary "$OUT/p1-$mode-$kind-$r.json")"
        if [[ $mode == cluster ]]; then
            echo "after $kind: $(cluster_metrics 0)"
            d=$(wait_drained 0); echo "write-behind drained after ${d} s: $(cluster_metrics 0)"
            result "p1_${kind}_${r}_drain_s" "$d"
            result "p1_${kind}_${r}_metrics" "$(cluster_metrics 0)"
        fi
        # The edge's CPU from the start of the run until its write-behind drained (the
        # writer's work after the generator stopped is part of what the rate cost).
        result "p1_${mode}_${kind}_${r}_edge_cpu_all" "$(echo "$(cpu_of "$pid") - $e0" | bc)"
        result "p1_${mode}_${kind}_${r}_throttled" "$(awk -v a="$t0" -v b="$(cg_throttled)" \
            'BEGIN {split(a, x, " "); split(b, y, " "); printf "%d %.2f", y[1] - x[1], y[2] - x[2]}')"
    }
    # ABBA: standalone, cluster, cluster, standalone, standalone, cluster, ...
    declare -A NRUN=()
    for ((k = 0; k < 2 * REPEAT; k++)); do
        case $((k % 4)) in 0 | 3) mode=standalone ;; *) mode=cluster ;; esac
        r=$(( ${NRUN[$mode]:-0} + 1 )); NRUN[$mode]=$r
        echo "== phase 1, run $r of $REPEAT: one edge, mode = $mode (edge on core $EDGE_CORE, quota $EDGE_QUOTA CPU; sipload on core $GEN_CORE; Redis on $REDIS_CPUS)"
        redis_flush
        write_conf 0 "$mode" "$TMP/journal-p1" '"localhost", "new.test", "ref.test"'
        cg_create "sipedge-cluster-p1-$mode-$r-$$"
        start_edge 0 1
        wait_answering 0 "$(now_s)" >/dev/null
        pid=${EDGE_PID[0]}
        p1_run "$mode" register "$r" register --target "${EDGE_IPS[0]}:$SIP_PORT" --domain new.test --rate 0 \
            --outstanding "$OUTSTANDING" --duration "$DURATION" --uas "$UAS" --sources "$SOURCES"
        [[ $mode == cluster ]] && result "p1_register_${r}_redis_keys" "$(redis_sum dbsize)"
        p1_run "$mode" refresh "$r" refresh --target "${EDGE_IPS[0]}:$SIP_PORT" --domain ref.test --aors "$AORS" --rate 0 \
            --outstanding "$OUTSTANDING" --duration "$DURATION" --uas "$UAS" --sources "$SOURCES" \
            --setup-pause-ms "$SETTLE_MS"
        echo "edge shedding counters (non-zero): $(shed_metrics 0)"
        stop_edge 0
        cg_remove
        rm -rf "$TMP/journal-p1" # each run starts on an empty journal (and the disk is small)
    done
    result p1_secs "$(since "$P1")"
fi

# ---------------------------------------------------------------- phase 2
if [[ " $PHASES " == *" 2 "* ]]; then
    P2=$(now_s)
    echo "== phase 2: edges A (${EDGE_IPS[0]}) and B (${EDGE_IPS[1]}) in cluster mode; $CALLEES callees on A, $CALL_RATE calls/s for $CALL_SECS s"
    redis_flush
    for i in 0 1; do
        write_conf "$i" cluster "$TMP/journal-p2-$i" '"localhost", "direct.test", "cross.test"'
        start_edge "$i" 1
    done
    for i in 0 1; do wait_answering "$i" "$(now_s)" >/dev/null; done
    A=${EDGE_IPS[0]}:$SIP_PORT
    B=${EDGE_IPS[1]}:$SIP_PORT
    # Through A itself (callees in their own domain, so the second run's AoRs are new).
    sl call --target "$A" --register-target "$A" --domain direct.test --uas $(( 2 * CALLEES )) \
        --rate "$CALL_RATE" --duration "$CALL_SECS" --setup-pause-ms 1000 --json >"$OUT/p2-direct.json"
    h0=$(metric 1 sipedge_cluster_cache_hits_total); m0=$(metric 1 sipedge_cluster_cache_misses_total)
    u0=$(metric 1 sipedge_cluster_unavailable_total)
    # Through B: registered on A; the pause lets A's write-behind reach Redis first.
    sl call --target "$B" --register-target "$A" --domain cross.test --uas $(( 2 * CALLEES )) \
        --rate "$CALL_RATE" --duration "$CALL_SECS" --setup-pause-ms 2000 --json >"$OUT/p2-via-b.json"
    h1=$(metric 1 sipedge_cluster_cache_hits_total); m1=$(metric 1 sipedge_cluster_cache_misses_total)
    u1=$(metric 1 sipedge_cluster_unavailable_total)
    result p2_hits $(( h1 - h0 ))
    result p2_misses $(( m1 - m0 ))
    result p2_unavailable $(( u1 - u0 ))
    echo "B: cache hits $(( h1 - h0 )), misses $(( m1 - m0 )), unavailable $(( u1 - u0 )); A: $(cluster_metrics 0)"
    for f in direct via-b; do
        echo "$f: $(summary "$OUT/p2-$f.json")"
    done
    stop_edge 0; stop_edge 1
    result p2_secs "$(since "$P2")"
fi

# ---------------------------------------------------------------- phase 3
if [[ " $PHASES " == *" 3 "* ]]; then
    P3=$(now_s)
    echo "== phase 3: 3 edges x $N bindings (edges on core $EDGE_CORE, --shards $SHARDS3)"
    redis_flush
    sleep 1
    mem0=$(redis_sum used_memory)
    for i in 0 1 2; do
        write_conf "$i" cluster "$TMP/journal-p3-$i" '"e1.test", "e2.test", "e3.test"'
        start_edge "$i" "$SHARDS3"
    done
    for i in 0 1 2; do wait_answering "$i" "$(now_s)" >/dev/null; done
    for i in 0 1 2; do
        t=$(now_s)
        sl register --target "${EDGE_IPS[$i]}:$SIP_PORT" --domain "e$((i + 1)).test" \
            --rate "$RATE3" --max-requests "$N" --duration $(( 2 * N / RATE3 + 5 )) --uas 2000 \
            --sources 20 --expires 3600 --drain-ms 5000 --json >"$OUT/p3-register-$((i + 1)).json"
        echo "edge $((i + 1)): $(summary "$OUT/p3-register-$((i + 1)).json") in $(since "$t") s; $(cluster_metrics "$i")"
        result "p3_registered_$((i + 1))" "$(registered "$OUT/p3-register-$((i + 1)).json")"
    done
    result p3_register_secs "$(since "$P3")"
    # The restart probes: a user of edge 3 that answers calls, and an AoR to refresh.
    timeout 3600 python3 loadtest/cluster-probe.py uas --bind "$PROBE_IP:6000" \
        --edge "${EDGE_IPS[2]}:$SIP_PORT" --aor probe@e3.test --secs 3000 >"$TMP/uas.out" 2>&1 &
    PROBE_PID=$!
    for _ in $(seq 300); do grep -q registered "$TMP/uas.out" && break; sleep 0.1; done
    grep -q registered "$TMP/uas.out" || { echo "the probe UAS did not register:" >&2; cat "$TMP/uas.out" >&2; exit 1; }
    PROBE=(python3 loadtest/cluster-probe.py serving --edge "${EDGE_IPS[2]}:$SIP_PORT" \
        --ref-bind "$PROBE_IP:6001" --ref-aor probe-ref@e3.test)
    "${PROBE[@]}" --first >/dev/null
    d=$(wait_drained 0 1 2)
    echo "write-behind drained after ${d} s"
    result p3_drain_s "$d"
    keys=$(redis_sum dbsize)
    sleep 1
    mem1=$(redis_sum used_memory)
    result p3_keys "$keys"
    result p3_mem0 "$mem0"
    result p3_mem1 "$mem1"
    for i in 0 1 2; do result "p3_metrics_$((i + 1))" "$(cluster_metrics "$i")"; done
    # MEMORY USAGE over a sample of binding keys, a third from each master (SCAN order).
    per=$(( (SAMPLE_KEYS + 2) / 3 ))
    for i in 0 1 2; do
        rcli "$i" --scan --pattern 'sipedge:b:*' | head -n "$per" \
            | sed 's/^/MEMORY USAGE /' | rcli "$i" >>"$TMP/usage.txt" || true
    done
    result p3_usage "$(awk '$1 ~ /^[0-9]+$/ {s += $1; n++} END {printf "%d %.0f\n", n, n ? s / n : 0}' "$TMP/usage.txt")"
    result p3_usage_min_max "$(sort -n "$TMP/usage.txt" | awk '$1 ~ /^[0-9]+$/ {a[n++] = $1} END {print a[0], a[int(n/2)], a[n-1]}')"
    CALLP=(--via "${EDGE_IPS[1]}:$SIP_PORT" --call-bind "$PROBE_IP:6002" --callee probe@e3.test)
    echo "before the restart: $("${PROBE[@]}" "${CALLP[@]}" --secs 10 || true)"
    sleep 1 # the journal's batch reaches the disk
    echo "== kill -9 edge 3, start it again on its journal"
    kill -KILL "${EDGE_PID[2]}"; wait "${EDGE_PID[2]}" 2>/dev/null || true; EDGE_PID[2]=""
    t0ns=$(date +%s%N)
    start_edge 2 "$SHARDS3"
    serving=$("${PROBE[@]}" "${CALLP[@]}" --t0-ns "$t0ns" --secs 30 || true)
    echo "after the restart (s from exec): $serving"
    result p3_restart "$serving"
    wait_answering 2 "$(now_s)" >/dev/null # still up
    result p3_restart_bindings "$(metric 2 sipedge_bindings)"
    echo "edge 3 restored $(metric 2 sipedge_bindings) bindings; $(cluster_metrics 2)"
    d=$(wait_drained 2)
    echo "edge 3's resync drained after ${d} s: $(cluster_metrics 2)"
    result p3_resync_drain_s "$d"
    result p3_secs "$(since "$P3")"
fi

# ---------------------------------------------------------------- the table
echo "== results"
python3 - "$OUT" "$CALLEES" "$N" "$REPEAT" <<'PY' | tee "$OUT/table.md"
import json, os, sys
out, callees, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
res = {}
if os.path.exists(f"{out}/results.txt"):
    for line in open(f"{out}/results.txt"):
        k, _, v = line.rstrip("\n").partition("=")
        res[k] = v
def load(name):
    try:
        return json.load(open(f"{out}/{name}.json"))
    except (OSError, ValueError):
        return None
def ph(r):
    return r["phases"][0] if r and r.get("phases") else None
def pct(a, b):
    return "-" if not a or not b else f"{100 * a / b:.0f} %"
rows = []
def row(*c):
    rows.append("| " + " | ".join(str(x) for x in c) + " |")
print("| measurement | value | target |\n| --- | --- | --- |")
# Phase 1: every run (ABBA order), then the medians per mode and their ratio.
from statistics import median
order, seen = [], {"standalone": 0, "cluster": 0}
for k in range(2 * repeat):
    m = "standalone" if k % 4 in (0, 3) else "cluster"
    seen[m] += 1
    order.append((m, seen[m]))
short = {"standalone": "S", "cluster": "C"}
for kind in ("register", "refresh"):
    what = "new bindings" if kind == "register" else "refreshes"
    runs = {}
    for m, r in order:
        p = ph(load(f"p1-{m}-{kind}-{r}"))
        if p and p.get("send_seconds") and p.get("replies"):
            runs[(m, r)] = p
    if not runs:
        continue
    ok = lambda p: p["successes"] / p["send_seconds"]
    def per(m, r, key):
        v, p = res.get(f"p1_{m}_{kind}_{r}_{key}"), runs.get((m, r))
        return float(v) * 1e5 / p["replies"] if v and p else None
    cpu = lambda p: p["server_cpu_s"] * 1e5 / p["replies"] if p.get("server_cpu_s") else None
    f2 = lambda v: "-" if v is None else f"{v:.2f}"
    cells = []
    for m, r in order:
        p = runs.get((m, r))
        if p:
            thr = res.get(f"p1_{m}_{kind}_{r}_throttled", "- -").split()
            cells.append(f"{short[m]}{r} {ok(p):,.0f}/s, edge {f2(cpu(p))}, gen {f2(per(m, r, 'gen_cpu'))}, Redis {f2(per(m, r, 'redis_cpu'))}, "
                         f"throttled {thr[0]}, fail {p['failures'] + p['timeouts']}")
    row(f"1. {what}, each run in order (rate; CPU s per 100k replies of the edge in the phase, generator, Redis; periods the edge was throttled; non-2xx + timeouts)",
        "<br>".join(cells), "")
    def med(m, f):
        v = [x for x in (f(m, r) for mm, r in order if mm == m) if x is not None]
        return median(v) if v else None
    rate = lambda m: med(m, lambda m, r: ok(runs[(m, r)]) if (m, r) in runs else None)
    ecpu = lambda m: med(m, lambda m, r: cpu(runs[(m, r)]) if (m, r) in runs else None)
    rs, rc = rate("standalone"), rate("cluster")
    cs, cc = ecpu("standalone"), ecpu("cluster")
    if rs and rc:
        row(f"1. {what} (200 OK)/s, one edge (1 shard), median of {repeat} runs per mode: standalone → cluster",
            f"{rs:,.0f} → {rc:,.0f} = **{pct(rc, rs)}** (edge CPU s/100k replies, medians: {f2(cs)} → {f2(cc)}"
            + (f" = {cc / cs:.2f}×" if cs and cc else "") + ")", "≥ 80 %")
        allm = lambda m, key: f2(med(m, lambda m, r: per(m, r, key)))
        row(f"1. {what}: who was the bottleneck (medians, CPU s per 100k replies, standalone → cluster)",
            f"edge until drained {allm('standalone', 'edge_cpu_all')} → {allm('cluster', 'edge_cpu_all')}; "
            f"generator {allm('standalone', 'gen_cpu')} → {allm('cluster', 'gen_cpu')}; "
            f"Redis (3 masters) {allm('standalone', 'redis_cpu')} → {allm('cluster', 'redis_cpu')}; "
            f"edge quota {res.get('edge_quota', '-')} CPU (throttled periods per run above: the edge is the bottleneck when they are many)", "the edge")
    for m, r in order:
        if m == "cluster" and f"p1_{kind}_{r}_metrics" in res:
            row(f"1. write-behind after {kind} run C{r}", f"drained in {res.get(f'p1_{kind}_{r}_drain_s')} s; {res[f'p1_{kind}_{r}_metrics'].strip()}", "keeps up, no errors/drops")
# Phase 2
d, b = ph(load("p2-direct")), ph(load("p2-via-b"))
if d and b:
    di, bi = d.get("invite_latency_us") or {}, b.get("invite_latency_us") or {}
    if di and bi:
        row("2. INVITE→200 p50 through A / through B (µs)", f"{di['p50']} / {bi['p50']}: added **{bi['p50'] - di['p50']} µs**", "")
        row("2. INVITE→200 p99 through A / through B (µs)", f"{di['p99']} / {bi['p99']}: added **{bi['p99'] - di['p99']} µs**", "≤ 2000 µs")
    row("2. calls ok through A / through B", f"{d['successes']}/{d['sent']} / {b['successes']}/{b['sent']} (codes {b['codes']}, timeouts {b['timeouts']})", "all")
    h, m = int(res.get("p2_hits", 0)), int(res.get("p2_misses", 0))
    again = h + m - callees
    row("2. B's cache hit ratio, callees called again", f"**{pct(h, again)}** ({h} hits / ({h} + {m} misses − {callees} first calls)); raw {pct(h, h + m)}; unavailable {res.get('p2_unavailable')}", "≥ 99 %")
# Phase 3
if "p3_mem1" in res:
    m0, m1 = int(res["p3_mem0"]), int(res["p3_mem1"])
    regs = sum(int(res.get(f"p3_registered_{i}", 0) or 0) for i in (1, 2, 3))
    row(f"3. bindings registered (3 edges × {n:,})", f"{regs:,}; Redis keys {int(res['p3_keys']):,}; registering took {res.get('p3_register_secs')} s, drain {res.get('p3_drain_s')} s", "")
    row("3. Redis used_memory, 3 masters, before → after", f"{m0 / 2**20:,.1f} → {m1 / 2**20:,.1f} MiB = **{(m1 - m0) / max(regs, 1):,.0f} B per binding**", "reported")
    u = res.get("p3_usage", "").split()
    mm = res.get("p3_usage_min_max", "").split()
    if u:
        row("3. MEMORY USAGE per key, sample", f"n = {u[0]}, mean {u[1]} B" + (f", min/median/max {'/'.join(mm)} B" if len(mm) == 3 else ""), "reported")
    for i in (1, 2, 3):
        if f"p3_metrics_{i}" in res:
            row(f"3. edge {i} write-behind", res[f"p3_metrics_{i}"].strip(), "no errors/drops")
    if "p3_restart" in res:
        row("3. edge 3 kill -9 → serving (s from exec)", f"{res['p3_restart']}; restored {res.get('p3_restart_bindings')} bindings; resync drained {res.get('p3_resync_drain_s')} s", "≤ 5 s (both)")
print("\n".join(rows))
secs = [f"phase {k[1]} {res[k]} s" for k in ("p1_secs", "p2_secs", "p3_secs") if k in res]
if secs:
    print("\ntime per phase: " + ", ".join(secs))
PY
echo "JSON and logs: $OUT/"
