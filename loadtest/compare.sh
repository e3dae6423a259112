#!/usr/bin/env bash
# compare.sh SCENARIO — sipedge against Kamailio on one scenario, same generator, same core.
#
#   SCENARIO: options | register | refresh | register-auth | call | call-limits | keepalive
#
# call-limits (issue 16) is sipload's `call` with limits on every call: sipedge with the callees
# as [[users]] of one account and channels/cps on the users, the account and the server
# (never reached), Kamailio with loadtest/kamailio/call-limits.cfg (dialog + pipelimit on the
# same three keys). Compare its sipedge row with a `call` run for the >= 90 % target.
#
# Installs kamailio and sip-tester from Debian if missing, builds the release binaries, then for
# each server in turn (sipedge, then Kamailio): starts it pinned to core $SERVER_CORE with one
# worker (sipedge --shards 1, Kamailio children=1), runs sipload pinned to core $GEN_CORE, and
# stops it. A scenario sipedge does not support yet (probed with one flow) is run on Kamailio
# alone, and the table says so. Prints, per server and as a ratio:
#   highest sustained rate (ramp, ≤ 0.1% failures/timeouts), server CPU seconds per 100k flows
#   at that step (/proc/PID/stat, every process of the server), p99 latency at that step, and
#   memory per 100k bindings (Pss summed over the server's processes from /proc/PID/smaps_rollup,
#   so Kamailio's shared memory counts once; for one process Pss = RSS).
# keepalive has no ramp: it registers $AORS bindings, listens $KA_SECS seconds, and reports pings
# per binding per interval, the gap between pings, and server CPU seconds per 100k pings.
# Loopback only (sipedge 127.0.40.1, Kamailio 127.0.40.2, generator sources from 127.0.41.1);
# every run is bounded in time; everything started here is stopped on exit.
#
# Environment knobs (defaults in brackets):
#   SERVER_CORE [0] GEN_CORE [1] UAS [1000] SOURCES [10] STEP_SECS [3] PATIENCE [2]
#   RAMP [per scenario, START:STEP:MAX] AORS [100000: refresh, register-auth (users), keepalive] EXPIRES [3600]
#   KA_SECS [25] KA_INTERVAL [10] SERVERS ["sipedge kamailio"] NO_BUILD [unset]
#   KAMAILIO_SHM_MB [4096] IDLE_WAIT [60] AUTH_SHA256 [unset: register-auth challenges with MD5]
#   OUT [target/compare/SCENARIO]
#   SYNC [batch] (sipedge's [registrar.persistence] sync: "batch" or "every")
# SERVERS may also name `floor`: udp-echo --sip-ok on 127.0.40.3, sipedge-rt's engine answering
# every request with its own headers under "SIP/2.0 200 OK" and doing nothing else. It costs
# only the kernel's UDP receive + send, so Kamailio's CPU per flow over the floor's is the
# largest CPU ratio any UDP server could reach against Kamailio on this machine.
set -euo pipefail

SCENARIO=${1:-}
case "$SCENARIO" in
    options | register | refresh | register-auth | call | call-limits | keepalive) ;;
    *) echo "usage: $0 options|register|refresh|register-auth|call|call-limits|keepalive" >&2; exit 2 ;;
esac
# The sipload scenario (call-limits is a server configuration of `call`).
SL_SCENARIO=$SCENARIO
[[ $SCENARIO == call-limits ]] && SL_SCENARIO=call

cd "$(dirname "$0")/.."
ROOT=$PWD
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
UAS=${UAS:-1000}
SOURCES=${SOURCES:-10}
STEP_SECS=${STEP_SECS:-3}
PATIENCE=${PATIENCE:-2}
AORS=${AORS:-100000}
EXPIRES=${EXPIRES:-3600}
KA_SECS=${KA_SECS:-25}
KA_INTERVAL=${KA_INTERVAL:-10}
SERVERS=${SERVERS:-sipedge kamailio}
KAMAILIO_SHM_MB=${KAMAILIO_SHM_MB:-4096}
OUT=${OUT:-$ROOT/target/compare/$SCENARIO}
SYNC=${SYNC:-batch}
BIN=$ROOT/target/release
SIPEDGE_IP=${SIPEDGE_IP:-127.0.40.1}
KAMAILIO_IP=${KAMAILIO_IP:-127.0.40.2}
FLOOR_IP=${FLOOR_IP:-127.0.40.3}
PORT=5070
SOURCE_BASE=${SOURCE_BASE:-127.0.41.1}
case "$SCENARIO" in
    options) DEF_RAMP=20000:20000:600000 ;;
    register | refresh) DEF_RAMP=10000:10000:400000 ;;
    register-auth) DEF_RAMP=5000:5000:200000 ;;
    call | call-limits) DEF_RAMP=2000:2000:100000 ;;
    keepalive) DEF_RAMP=- ;;
esac
RAMP=${RAMP:-$DEF_RAMP}

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

need_pkg() { # $1 = command, $2 = Debian package
    command -v "$1" >/dev/null && return 0
    echo "== installing $2 from Debian"
    if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install $2" >&2; exit 1; fi
    apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
}
need_pkg kamailio kamailio
need_pkg sipp sip-tester

if [[ -z "${NO_BUILD:-}" ]]; then
    echo "== building release binaries"
    cargo build --release -p sipload
    [[ " $SERVERS " == *" floor "* ]] && cargo build --release -p udp-echo
    cargo build --release
fi
ulimit -n "$(( UAS + 1024 ))" 2>/dev/null || echo "warning: could not raise ulimit -n for $UAS UAs"

echo "== machine"
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty tree)'), $(date -u +%FT%TZ), $(kamailio -v | head -1)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Every process of the server: the PID and its children (Kamailio forks its workers).
server_pids() {
    { echo "$SERVER_PID"; ps -o pid= --ppid "$SERVER_PID" 2>/dev/null || true; } | tr -d ' ' | paste -sd, -
}
# Pss in kB summed over the server's processes.
server_pss_kb() {
    local sum=0 p v
    for p in $(server_pids | tr , ' '); do
        v=$(awk '/^Pss:/{print $2; exit}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        sum=$(( sum + ${v:-0} ))
    done
    echo "$sum"
}

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

sl() { # the generator, pinned; arguments go to sipload
    timeout 1800 taskset -c "$GEN_CORE" "$BIN/sipload" "$@" --pin "$GEN_CORE" \
        --source-base "$SOURCE_BASE" --domain localhost
}

answers() { # $1 = target: true when it answers OPTIONS
    "$BIN/sipload" options --target "$1" --uas 1 --rate 1000 --duration 0.05 --drain-ms 200 \
        --source-base "$SOURCE_BASE" --json 2>/dev/null | grep -q '"successes": [1-9]'
}

start_server() { # $1 = sipedge | kamailio | floor; sets SERVER_PID, TARGET
    case "$1" in
        floor)
            TARGET=$FLOOR_IP:$PORT
            answers "$TARGET" && { echo "$TARGET is already in use"; exit 1; }
            taskset -c "$SERVER_CORE" "$BIN/udp-echo" --addr "$TARGET" --engine uring --sip-ok \
                --pin "$SERVER_CORE" 2>"$OUT/floor.server.log" &
            ;;
        sipedge)
            TARGET=$SIPEDGE_IP:$PORT
            cat >"$TMP/sipedge.toml" <<EOF
[server]
listen = ["udp:$TARGET"]
domains = ["localhost"]
workers = 1
io = "uring"
recv_buffer_bytes = 16777216
send_buffer_bytes = 4194304
max_message_bytes = 65535

[admin]
listen = "$SIPEDGE_IP:9170"

[log]
level = "warn"

[registrar.persistence]
# A fresh journal per run (durable, as the default config is): nothing left from an earlier run.
path = "$TMP/journal-$RANDOM"
sync = "$SYNC"
EOF
            if [[ $SCENARIO == register-auth ]]; then
                # sipload's generated users sl0… with its default password; MD5 offered first,
                # as Kamailio's config challenges with MD5 unless AUTH_SHA256 is set.
                { echo "username,password"; for ((i = 0; i < AORS; i++)); do echo "sl$i,sipload"; done; } >"$TMP/users.csv"
                local algs='"MD5", "SHA-256"'
                [[ -n "${AUTH_SHA256:-}" ]] && algs='"SHA-256", "MD5"'
                cat >>"$TMP/sipedge.toml" <<EOF

[auth]
register = "digest"
algorithms = [$algs]
users_file = "$TMP/users.csv"
EOF
            fi
            if [[ $SCENARIO == call-limits ]]; then
                # Issue 16: the callees (sipload's uas0..., the first half of the UAs) are users
                # of account acme; limits on the user, the account and the server, never reached.
                { echo "username,password,account,channels,cps"
                  for ((i = 0; i < UAS; i++)); do echo "uas$i,sipload,acme,100000,100000000"; done; } >"$TMP/users.csv"
                cat >>"$TMP/sipedge.toml" <<EOF

[auth]
register = "none"
invite = "none"
users_file = "$TMP/users.csv"

[[accounts]]
name = "acme"
channels = 4000000000
cps = 100000000

[limits]
channels = 100000000
cps = 100000000
EOF
            fi
            if [[ $SCENARIO == keepalive ]]; then
                # As loadtest/kamailio/keepalive.cfg: every binding NATed (setbflag), OPTIONS
                # pings every KA_INTERVAL seconds.
                cat >>"$TMP/sipedge.toml" <<EOF

[nat]
mode = "force"
ping_interval_secs = $KA_INTERVAL
EOF
            fi
            answers "$TARGET" && { echo "$TARGET is already in use"; exit 1; }
            taskset -c "$SERVER_CORE" "$BIN/sipedge" --config "$TMP/sipedge.toml" --shards 1 \
                2>"$OUT/sipedge.server.log" &
            ;;
        kamailio)
            TARGET=$KAMAILIO_IP:$PORT
            local cfg=$ROOT/loadtest/kamailio/$SCENARIO.cfg defs=()
            [[ $SCENARIO == refresh ]] && cfg=$ROOT/loadtest/kamailio/register.cfg
            [[ $SCENARIO == keepalive ]] && defs=(-A "NATPING_INTERVAL=$KA_INTERVAL")
            [[ -n "${AUTH_SHA256:-}" && $SCENARIO == register-auth ]] && defs=(-A AUTH_SHA256)
            answers "$TARGET" && { echo "$TARGET is already in use"; exit 1; }
            mkdir -p "$TMP/kamailio"
            taskset -c "$SERVER_CORE" kamailio -f "$cfg" -DD -E -m "$KAMAILIO_SHM_MB" -M 64 \
                -l "udp:$TARGET" -Y "$TMP/kamailio" "${defs[@]}" 2>"$OUT/kamailio.server.log" &
            ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$1: server exited:"; tail "$OUT/$1.server.log"; exit 1; }
        answers "$TARGET" && return 0
        sleep 0.2
    done
    echo "$1: server never answered"; exit 1
}

supports() { # true when the server completes one flow of the scenario
    sl "$SL_SCENARIO" --target "$TARGET" --uas 4 --aors 4 --rate 100 --duration 0.05 \
        --max-requests 2 --t1-ms 100 --drain-ms 2000 --json 2>/dev/null \
        | python3 -c 'import json,sys
r = json.load(sys.stdin)
# keepalive only listens once registered: its setup is the probe.
p = r["setup"] if r["scenario"] == "keepalive" else r["phases"][0]
sys.exit(0 if p and p["successes"] > 0 and p["failures"] == 0 else 1)'
}

for server in $SERVERS; do
    echo "== $server: $SCENARIO"
    rm -f "$OUT/$server.json" "$OUT/$server.mem" "$OUT/$server.unsupported"
    start_server "$server"
    if ! supports; then
        echo "$server does not support $SCENARIO yet (one probe flow did not succeed)"
        touch "$OUT/$server.unsupported"
        stop_server
        continue
    fi
    stop_server # the probe left bindings behind: start clean
    wait_idle
    start_server "$server"
    PIDS=$(server_pids)
    mem0=$(server_pss_kb)
    case "$SCENARIO" in
        keepalive)
            sl keepalive --target "$TARGET" --uas "$UAS" --sources "$SOURCES" --aors "$AORS" \
                --expires "$EXPIRES" --ping-interval "$KA_INTERVAL" --duration "$KA_SECS" \
                --outstanding 512 --server-pid "$PIDS" --json >"$OUT/$server.json"
            ;;
        *)
            extra=()
            [[ $SCENARIO == refresh || $SCENARIO == register-auth ]] && extra=(--aors "$AORS")
            sl "$SL_SCENARIO" --target "$TARGET" --uas "$UAS" --sources "$SOURCES" \
                --expires "$EXPIRES" --ramp "$RAMP" --step-seconds "$STEP_SECS" \
                --ramp-patience "$PATIENCE" --outstanding 512 --server-pid "$PIDS" \
                "${extra[@]}" --json >"$OUT/$server.json"
            ;;
    esac
    mem1=$(server_pss_kb)
    echo "$mem0 $mem1" >"$OUT/$server.mem"
    stop_server
done

echo "== results ($SCENARIO)"
python3 - "$OUT" "$SCENARIO" "$RAMP" "$STEP_SECS" <<'PY' | tee "$OUT/table.md"
import json, os, sys
out, scen, ramp, step = sys.argv[1:5]
servers = ["sipedge", "kamailio", "floor"]
def load(s):
    try:
        return json.load(open(f"{out}/{s}.json"))
    except (OSError, ValueError):
        return None
def mem(s):
    try:
        a, b = map(int, open(f"{out}/{s}.mem").read().split())
        return a, b
    except (OSError, ValueError):
        return None
def bindings(r):
    if scen == "options" or r is None:
        return 0
    setup = r.get("setup") or {}
    if scen in ("register", "register-auth"):
        return sum(p["successes"] for p in r["phases"])
    return setup.get("successes", 0)
rows = {}
for s in servers:
    r = load(s)
    if r is None:
        rows[s] = None
        continue
    m = mem(s)
    n = bindings(r)
    row = {}
    if scen == "keepalive":
        p = r["phases"][0]
        x = p.get("scenario") or {}
        pings = (x.get("options_pings") or 0) + (x.get("crlf_pings") or 0)
        row["rate"] = pings / p["send_seconds"] if p["send_seconds"] else None
        row["cpu"] = p["server_cpu_s"] * 1e5 / pings if pings and p["server_cpu_s"] is not None else None
        row["p99"] = (x.get("binding_gap_ms") or x.get("gap_ms") or {}).get("p99")
        row["per_binding"] = x.get("pings_per_binding_per_interval")
        row["never"] = x.get("uas_never_pinged")
    else:
        b = r.get("best")
        row["rate"] = r.get("best_sustained_rate")
        row["cpu"] = b["server_cpu_s"] * 1e5 / b["sent"] if b and b["sent"] and b["server_cpu_s"] is not None else None
        row["p99"] = b["latency_us"]["p99"] if b else None
        row["steps"] = [(p["offered_rate"], p["achieved_rps"], p["failure_ratio"], p["sustained"]) for p in r["phases"]]
    row["bindings"] = n
    row["mem"] = (m[1] - m[0]) * 1024 * 1e5 / n / 2**20 if m and n >= 10000 else None
    rows[s] = row
def f(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"
def ratio(a, b, higher_better):
    if a is None or b is None or a == 0 or b == 0:
        return "-"
    return f"{(a / b if higher_better else b / a):.2f}×"
unsupported = [s for s in servers if os.path.exists(f"{out}/{s}.unsupported")]
if scen == "keepalive":
    metrics = [("pings received /s", "rate", True, 0), ("server CPU s per 100k pings", "cpu", False, 3),
               ("p99 gap between two pings of a binding, ms", "p99", False, 0), ("pings per binding per interval", "per_binding", True, 2),
               ("UAs never pinged", "never", False, 0), ("memory MiB per 100k bindings", "mem", False, 1)]
    print(f"keepalive: bindings registered first, then {scen} listening; interval from KA_INTERVAL\n")
else:
    metrics = [("highest sustained rate /s (≤0.1% failed)", "rate", True, 0), ("server CPU s per 100k flows (at that step)", "cpu", False, 3),
               ("p99 latency µs (at that step)", "p99", False, 0), ("memory MiB per 100k bindings", "mem", False, 1),
               ("bindings created", "bindings", True, 0)]
    print(f"{scen}: --ramp {ramp} --step-seconds {step}; one flow = " + {
        "options": "one OPTIONS", "register": "one REGISTER of a new AoR", "refresh": "one re-REGISTER of an existing binding",
        "register-auth": "REGISTER, 401, REGISTER with digest, 200", "call": "INVITE/180/200/ACK/BYE/200 through the server", "call-limits": "the call, with channels/cps limits on user, account and server"}[scen] + "\n")
print("| metric | sipedge | Kamailio | sipedge advantage |")
print("| --- | --- | --- | --- |")
for name, key, hb, d in metrics:
    a = rows["sipedge"] and rows["sipedge"].get(key)
    b = rows["kamailio"] and rows["kamailio"].get(key)
    adv = ratio(a, b, hb) if key not in ("bindings", "never") else "-"
    print(f"| {name} | {'n/a (unsupported)' if 'sipedge' in unsupported else f(a, d)} | {'n/a' if 'kamailio' in unsupported else f(b, d)} | {adv} |")
if unsupported:
    print(f"\nnot measured: {', '.join(unsupported)} does not support {scen} yet.")
fl = rows.get("floor")
if fl and fl.get("cpu"):
    k = rows["kamailio"] and rows["kamailio"].get("cpu")
    print(f"\nzero-work floor (udp-echo --sip-ok, the kernel's UDP cost alone): {f(fl.get('rate'))} /s sustained, "
          f"{fl['cpu']:.3f} s CPU per 100k flows"
          + (f" → the largest CPU ratio any UDP server could reach against Kamailio here is {k / fl['cpu']:.2f}×" if k else "")
          + (" (per request/response pair; a register-auth flow is two pairs)" if scen == "register-auth" else ""))
print("\n(advantage > 1: sipedge is better — a higher rate, or less CPU / latency / memory.)")
for s in servers:
    row = rows[s]
    if row and row.get("steps"):
        print(f"\n{s} ramp: " + ", ".join(f"{o:.0f}→{a:.0f}{'' if ok else ' ✗'}" for o, a, fr, ok in row["steps"]))
PY
echo "JSON of every run: $OUT/"
