#!/usr/bin/env bash
# xdp-rig.sh — issue 21's measurement rig: a veth pair between two network namespaces
# (server: sxm-srv/sxms 198.18.21.11, generator: sxm-gen/sxmg 198.18.21.12), the server pinned
# to $SERVER_CORE, sipload to $GEN_CORE, and the server's CPU per request/response pair for:
#   echo-udp-gen-udp   udp-echo (io_uring socket) ← sipload on sockets (io_uring)
#   echo-udp-gen-xdp   udp-echo (io_uring socket) ← sipload on AF_XDP
#   echo-xdp-gen-udp   udp-echo on AF_XDP         ← sipload on sockets
#   echo-xdp-gen-xdp   udp-echo on AF_XDP         ← sipload on AF_XDP
#   sipedge-uring-*    sipedge --shards 1, io = "uring"   (options, refresh)
#   sipedge-xdp-*      sipedge --shards 1, io = "xdp"     (options, refresh)
# each closed loop ($WINDOW in flight) and open loop at $RATE/s. On veth the receive work of a
# packet is billed to the sender, so the generator's mode changes the server's bill (issue 21).
# Needs root and iproute2. Everything started here is stopped, and the namespaces deleted, on exit.
#
# Knobs: SERVER_CORE [0] GEN_CORE [1] UAS [200] WINDOW [128] SECS [5] RATE [20000]
#        CASES [see below] OUT [target/xdp-rig] POLL_US [200]
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
OUT=${OUT:-$ROOT/target/xdp-rig}
CASES=${CASES:-echo-udp-gen-udp echo-udp-gen-xdp echo-xdp-gen-udp echo-xdp-gen-xdp sipedge-uring-gen-xdp sipedge-xdp-gen-xdp}
BIN=$ROOT/target/release
SRV=sxm-srv GEN=sxm-gen
SIP=198.18.21.11
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
del_rig() { ip netns del $SRV 2>/dev/null || true; ip netns del $GEN 2>/dev/null || true; }
cleanup() { stop_server; del_rig; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building release binaries"
cargo build --release -p sipload -p udp-echo
cargo build --release

echo "== rig"
del_rig
ip netns add $SRV
ip netns add $GEN
ip link add sxms type veth peer name sxmg
ip link set sxms netns $SRV
ip link set sxmg netns $GEN
ip -n $SRV addr add $SIP/24 dev sxms
ip -n $GEN addr add 198.18.21.12/24 dev sxmg
for ns in $SRV $GEN; do ip -n $ns link set lo up; done
ip -n $SRV link set sxms up
ip -n $GEN link set sxmg up
echo "kernel $(uname -r), $(nproc) cores, commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)'), $(date -u +%FT%TZ)"

start_echo() { # $1 = uring | xdp
    ip netns exec $SRV taskset -c "$SERVER_CORE" "$BIN/udp-echo" --addr $SIP:7000 --engine "$1" \
        --xdp-interface sxms --xdp-poll-us "$POLL_US" --pin "$SERVER_CORE" 2>"$TMP/server.log" &
    SERVER_PID=$!
    TARGET=$SIP:7000
    sleep 1
}
start_sipedge() { # $1 = uring | xdp
    cat >"$TMP/sipedge.toml" <<EOF
[server]
listen = ["udp:$SIP:5060"]
domains = ["edge.test"]
io = "$1"
xdp_interface = "sxms"
xdp_poll_us = $POLL_US

[admin]
listen = "$SIP:9065"
# Not loopback: the edge refuses to start without a token (issue 18).
token = "xdp-rig-token-0123456789"

[log]
level = "warn"

[registrar]
persistence = false
EOF
    ip netns exec $SRV taskset -c "$SERVER_CORE" "$BIN/sipedge" --config "$TMP/sipedge.toml" --shards 1 \
        2>"$TMP/server.log" &
    SERVER_PID=$!
    TARGET=$SIP:5060
    sleep 1
}
gen() { # $1 = name, $2 = gen io (uring|xdp), $3 = scenario, rest = sipload flags
    local name=$1 io=$2 scen=$3; shift 3
    ip netns exec $GEN taskset -c "$GEN_CORE" "$BIN/sipload" "$scen" --target "$TARGET" \
        --allow-non-loopback --source-base 198.18.21.12 --domain edge.test --io "$io" --xdp-interface sxmg \
        --xdp-poll-us "$POLL_US" --uas "$UAS" --pin "$GEN_CORE" --server-pid "$SERVER_PID" --json "$@" \
        >"$OUT/$name.json" 2>"$TMP/gen.log" || { echo "   $name: sipload failed"; tail -3 "$TMP/gen.log"; }
    python3 - "$OUT/$name.json" "$name" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"   {sys.argv[2]}: no report ({e})"); sys.exit(0)
for p in r.get("phases", []):
    rep = p.get("replies") or 0
    srv = p.get("server_cpu_s") or 0
    secs = p.get("send_seconds") or 0
    us = srv / rep * 1e6 if rep else float("nan")
    print(f"   {sys.argv[2]:<34} replies {rep:>9}  {rep/secs if secs else 0:>9.0f}/s  server CPU {srv:6.2f} s  = {us:5.2f} µs/pair")
EOF
}

for case in $CASES; do
    echo "== $case"
    server=${case%%-gen-*}; genio=${case##*-gen-}
    [[ $genio == udp ]] && genio=uring
    case $server in
        echo-udp) start_echo uring; scen=options; extra=(--count-any-reply) ;;
        echo-xdp) start_echo xdp; scen=options; extra=(--count-any-reply) ;;
        sipedge-uring) start_sipedge uring ;;
        sipedge-xdp) start_sipedge xdp ;;
    esac
    if [[ $server == echo-* ]]; then
        gen "$case-closed" "$genio" options "${extra[@]}" --rate 0 --outstanding "$WINDOW" --duration "$SECS"
        gen "$case-$RATE" "$genio" options "${extra[@]}" --rate "$RATE" --duration "$SECS"
    else
        for scen in options refresh; do
            gen "$case-$scen-closed" "$genio" $scen --rate 0 --outstanding "$WINDOW" --duration "$SECS"
            gen "$case-$scen-$RATE" "$genio" $scen --rate "$RATE" --duration "$SECS"
        done
    fi
    grep -iE "xdp|engine" "$TMP/server.log" | head -3 | sed 's/^/   server: /' || true
    stop_server
done
