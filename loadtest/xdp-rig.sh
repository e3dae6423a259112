#!/usr/bin/env bash
# xdp-rig.sh — issue 21's measurement rig: a veth pair between two network namespaces
# (server: x21-srv/x21s 198.18.21.11, generator: x21-gen/x21g 198.18.21.12), the server pinned
# to $SERVER_CORE, sipload to $GEN_CORE, and the server's CPU per flow (one request/response
# pair; two for register-auth: REGISTER → 401 → REGISTER → 200) for every server:
#   echo-udp-gen-udp   udp-echo (io_uring socket) ← sipload on sockets (io_uring)
#   echo-udp-gen-xdp   udp-echo (io_uring socket) ← sipload on AF_XDP
#   echo-xdp-gen-udp   udp-echo on AF_XDP         ← sipload on sockets
#   echo-xdp-gen-xdp   udp-echo on AF_XDP         ← sipload on AF_XDP   (the floor of issue 21)
#   sipedge-uring-gen-xdp  sipedge --shards 1, io = "uring"
#   sipedge-xdp-gen-xdp    sipedge --shards 1, io = "xdp"
#   kamailio-gen-xdp       Kamailio 5.6, one worker (loadtest/kamailio/*.cfg, as compare.sh)
# sipedge and Kamailio run every scenario of $SCENARIOS (options, refresh, register = a new
# binding per flow, register-auth = digest-authenticated new registrations); the echoes answer
# OPTIONS. Each once closed loop ($WINDOW in flight: "high rate") and once paced at $RATE/s.
# Every (server, scenario) starts a fresh server. On veth the receive work of a packet is
# billed to the sender, so the generator's mode changes the server's bill (issue 21): compare
# rows with the same generator mode. Ends with one table (also in $OUT/table.md).
# Needs root, iproute2, python3 (and kamailio for its rows). Everything started here is
# stopped, and the namespaces deleted, on exit.
#
# Knobs: SERVER_CORE [0] GEN_CORE [1] UAS [200] WINDOW [128] SECS [5] RATE [20000]
#        CASES [all of the above] SCENARIOS [options refresh register register-auth]
#        AORS [10000: register-auth users] OUT [target/xdp-rig] POLL_US [200] BUSY_POLL_US [0]
#        KAMAILIO_SHM_MB [1024] NO_BUILD [unset]
# Example (the lead's quiet pass): sudo loadtest/xdp-rig.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
UAS=${UAS:-200}
WINDOW=${WINDOW:-128}
SECS=${SECS:-5}
RATE=${RATE:-20000}
POLL_US=${POLL_US:-200}
BUSY_POLL_US=${BUSY_POLL_US:-0}
AORS=${AORS:-10000}
KAMAILIO_SHM_MB=${KAMAILIO_SHM_MB:-1024}
OUT=${OUT:-$ROOT/target/xdp-rig}
CASES=${CASES:-echo-udp-gen-udp echo-udp-gen-xdp echo-xdp-gen-udp echo-xdp-gen-xdp sipedge-uring-gen-xdp sipedge-xdp-gen-xdp kamailio-gen-xdp}
SCENARIOS=${SCENARIOS:-options refresh register register-auth}
BIN=$ROOT/target/release
SRV=x21-srv GEN=x21-gen
SIP=198.18.21.11
mkdir -p "$OUT"
rm -f "$OUT"/*.json
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
del_rig() { ip netns del $SRV 2>/dev/null || true; ip netns del $GEN 2>/dev/null || true; }
cleanup() { stop_server; del_rig; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${NO_BUILD:-}" ]]; then
    echo "== building release binaries"
    cargo build --release -p sipload -p udp-echo
    cargo build --release
fi
if [[ " $CASES " == *" kamailio-"* ]] && ! command -v kamailio >/dev/null; then
    echo "kamailio is not installed: its rows are skipped (apt-get install kamailio)"
    CASES=$(echo " $CASES " | sed 's/ kamailio-[a-z-]*//g')
fi

echo "== rig"
del_rig
ip netns add $SRV
ip netns add $GEN
ip link add x21s type veth peer name x21g
ip link set x21s netns $SRV
ip link set x21g netns $GEN
ip -n $SRV addr add $SIP/24 dev x21s
ip -n $GEN addr add 198.18.21.12/24 dev x21g
for ns in $SRV $GEN; do ip -n $ns link set lo up; done
ip -n $SRV link set x21s up
ip -n $GEN link set x21g up
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)'), $(date -u +%FT%TZ)$(command -v kamailio >/dev/null && echo ", $(kamailio -v | head -1)")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Every process of the server (Kamailio forks its workers).
server_pids() {
    { echo "$SERVER_PID"; ps -o pid= --ppid "$SERVER_PID" 2>/dev/null || true; } | tr -d ' ' | paste -sd, -
}
answers() { # true when $TARGET answers OPTIONS (from the generator's namespace)
    ip netns exec $GEN "$BIN/sipload" options --target "$TARGET" --allow-non-loopback \
        --source-base 198.18.21.12 --uas 1 --rate 1000 --duration 0.05 --drain-ms 200 --json \
        ${COUNT_ANY:+--count-any-reply} 2>/dev/null | grep -q '"successes": [1-9]'
}
wait_answering() { # $1 = name
    for _ in $(seq 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "   $1: server exited:"; tail -3 "$TMP/server.log"; return 1; }
        answers && return 0
        sleep 0.2
    done
    echo "   $1: server never answered"; tail -3 "$TMP/server.log"; return 1
}
start_echo() { # $1 = uring | xdp
    TARGET=$SIP:7000 COUNT_ANY=1
    ip netns exec $SRV taskset -c "$SERVER_CORE" "$BIN/udp-echo" --addr $TARGET --engine "$1" \
        --xdp-interface x21s --xdp-poll-us "$POLL_US" --pin "$SERVER_CORE" 2>"$TMP/server.log" &
    SERVER_PID=$!
    wait_answering "echo-$1"
}
start_sipedge() { # $1 = uring | xdp, $2 = scenario
    TARGET=$SIP:5060 COUNT_ANY=
    cat >"$TMP/sipedge.toml" <<EOF
[server]
listen = ["udp:$TARGET"]
domains = ["localhost"]
io = "$1"
xdp_interface = "x21s"
xdp_poll_us = $POLL_US
xdp_busy_poll_us = $BUSY_POLL_US
recv_buffer_bytes = 16777216
send_buffer_bytes = 4194304

[admin]
listen = "$SIP:9065"
# Not loopback: the edge refuses to start without a token (issue 18).
token = "xdp-rig-token-0123456789"

[log]
level = "warn"

[registrar]
persistence = false

[protect]
# The generator is a load generator: its rate would be a pike ban otherwise (issue 17).
trusted = ["198.18.21.12/32"]
EOF
    if [[ $2 == register-auth ]]; then
        # sipload's generated users sl0… with its default password, MD5 as Kamailio's config.
        { echo "username,password"; for ((i = 0; i < AORS; i++)); do echo "sl$i,sipload"; done; } >"$TMP/users.csv"
        printf '\n[auth]\nregister = "digest"\nalgorithms = ["MD5", "SHA-256"]\nusers_file = "%s"\n' \
            "$TMP/users.csv" >>"$TMP/sipedge.toml"
    fi
    ip netns exec $SRV taskset -c "$SERVER_CORE" "$BIN/sipedge" --config "$TMP/sipedge.toml" --shards 1 \
        2>"$TMP/server.log" &
    SERVER_PID=$!
    wait_answering "sipedge-$1"
}
start_kamailio() { # $1 = scenario
    TARGET=$SIP:5060 COUNT_ANY=
    local cfg=$ROOT/loadtest/kamailio/$1.cfg
    [[ $1 == refresh ]] && cfg=$ROOT/loadtest/kamailio/register.cfg
    mkdir -p "$TMP/kamailio"
    ip netns exec $SRV taskset -c "$SERVER_CORE" kamailio -f "$cfg" -DD -E -m "$KAMAILIO_SHM_MB" -M 64 \
        -l "udp:$TARGET" -Y "$TMP/kamailio" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    wait_answering kamailio
}
gen() { # $1 = name, $2 = gen io (uring|xdp), $3 = scenario, rest = sipload flags
    local name=$1 io=$2 scen=$3; shift 3
    local extra=()
    [[ $scen == register-auth ]] && extra=(--aors "$AORS")
    [[ -n "$COUNT_ANY" ]] && extra+=(--count-any-reply)
    ip netns exec $GEN taskset -c "$GEN_CORE" "$BIN/sipload" "$scen" --target "$TARGET" \
        --allow-non-loopback --source-base 198.18.21.12 --domain localhost --io "$io" --xdp-interface x21g \
        --xdp-poll-us "$POLL_US" --uas "$UAS" --pin "$GEN_CORE" --server-pid "$(server_pids)" --json \
        "${extra[@]}" "$@" >"$OUT/$name.json" 2>"$TMP/gen.log" || { echo "   $name: sipload failed"; tail -3 "$TMP/gen.log"; }
    python3 - "$OUT/$name.json" "$name" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"   {sys.argv[2]}: no report ({e})"); sys.exit(0)
for p in r.get("phases", []):
    flows = p.get("successes") or p.get("replies") or 0
    srv = p.get("server_cpu_s") or 0
    secs = p.get("send_seconds") or 0
    us = srv / flows * 1e6 if flows else float("nan")
    print(f"   {sys.argv[2]:<44} flows {flows:>9}  {flows/secs if secs else 0:>9.0f}/s  server CPU {srv:6.2f} s  = {us:5.2f} µs/flow")
EOF
}
measure() { # $1 = case, $2 = gen io, $3 = scenario
    gen "$1-$3-closed" "$2" "$3" --rate 0 --outstanding "$WINDOW" --duration "$SECS"
}
measure_paced() {
    gen "$1-$3-$RATE" "$2" "$3" --rate "$RATE" --duration "$SECS"
}

for case in $CASES; do
    server=${case%%-gen-*}; genio=${case##*-gen-}
    [[ $genio == udp ]] && genio=uring
    scens=$SCENARIOS
    [[ $server == echo-* ]] && scens=options
    for scen in $scens; do
        echo "== $case $scen"
        for pace in closed paced; do
            # A fresh server per run: new bindings and nonces from an earlier run do not count.
            case $server in
                echo-udp) start_echo uring ;;
                echo-xdp) start_echo xdp ;;
                sipedge-uring) start_sipedge uring "$scen" ;;
                sipedge-xdp) start_sipedge xdp "$scen" ;;
                kamailio) start_kamailio "$scen" ;;
            esac || { stop_server; continue; }
            if [[ $pace == closed ]]; then measure "$case" "$genio" "$scen"; else measure_paced "$case" "$genio" "$scen"; fi
            grep -iE "xdp|engine" "$TMP/server.log" | head -2 | sed 's/^/   server: /' || true
            stop_server
        done
    done
done

echo "== table: server CPU per flow (µs); closed loop also shows the rate reached"
python3 - "$OUT" "$RATE" "$CASES" "$SCENARIOS" <<'EOF' | tee "$OUT/table.md"
import json, sys
out, rate, cases, scens = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
def get(name):
    try:
        p = json.load(open(f"{out}/{name}.json"))["phases"][0]
    except Exception:
        return None
    flows = p.get("successes") or p.get("replies") or 0
    cpu, secs = p.get("server_cpu_s"), p.get("send_seconds") or 0
    if not flows or cpu is None:
        return None
    return cpu / flows * 1e6, flows / secs if secs else 0
def cell(v, with_rate):
    if v is None:
        return "–"
    return f"{v[0]:.2f} ({v[1]/1000:.0f}k/s)" if with_rate else f"{v[0]:.2f}"
print(f"| server ← generator | scenario | closed loop µs/flow (rate) | {rate}/s µs/flow |")
print("| --- | --- | --- | --- |")
rows = {}
for c in cases:
    for s in (["options"] if c.startswith("echo-") else scens):
        closed, paced = get(f"{c}-{s}-closed"), get(f"{c}-{s}-{rate}")
        rows[(c, s)] = (closed, paced)
        print(f"| {c} | {s} | {cell(closed, True)} | {cell(paced, False)} |")
# Issue 21's ratios (closed loop): xdp against uring, and against Kamailio.
x, u, k = "sipedge-xdp-gen-xdp", "sipedge-uring-gen-xdp", "kamailio-gen-xdp"
floor = rows.get(("echo-xdp-gen-xdp", "options"), (None, None))[0]
print()
print("Closed loop. 'Above the floor' subtracts the XDP echo's µs per pair (register-auth: two pairs")
print("per flow, so it subtracts two floors).")
print()
print("| scenario | xdp / uring | xdp above the XDP floor µs | Kamailio / xdp |")
print("| --- | --- | --- | --- |")
for s in scens:
    a, b, kk = (rows.get((n, s), (None, None))[0] for n in (x, u, k))
    r1 = f"{a[0]/b[0]:.2f}×" if a and b else "–"
    pairs = 2 if s == "register-auth" else 1
    above = f"{a[0]-pairs*floor[0]:.2f}" if a and floor else "–"
    r2 = f"{kk[0]/a[0]:.1f}×" if a and kk else "–"
    print(f"| {s} | {r1} | {above} | {r2} |")
EOF
