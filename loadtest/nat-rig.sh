#!/usr/bin/env bash
# Whole calls through a real NAT (issue 15): a network-namespace rig around one sipedge.
#
#   phones (10.15.0.2) ──lan── nat (10.15.0.1 | 198.18.15.1, iptables MASQUERADE) ──┐
#                                                                       bridge "wan" ├── edge (198.18.15.2:5060, sipedge)
#                                                                                    └── public UA (198.18.15.3)
#
# The NAT box forwards wan→lan only for established flows (a real NAT: a private address is
# not reachable from outside). The edge's OUTPUT chain counts — and drops — every datagram
# to a private address (10/8, 172.16/12, 192.168/16): the rig's "leaks" counter.
#
#   nat-rig.sh up TAG       create the namespaces sn<TAG>{w,n,p,e,u} (TAG: 1-3 chars)
#   nat-rig.sh down TAG     remove them (idempotent)
#   nat-rig.sh leaks TAG    datagrams the edge sent to a private address
#   nat-rig.sh to-nat TAG   datagrams the edge sent to the NAT's public address
#   nat-rig.sh run [CALLS] [RATE]
#                           the measurement: build target/debug/sipedge unless SIPEDGE is
#                           set, bring the rig up (TAG "l"), run CALLS calls (default 1000,
#                           RATE/s default 50) of each of four kinds — NATed caller → public
#                           callee and public caller → NATed callee, each with the caller and
#                           with the callee ending the call — then print the counts.
# Needs root, iproute2, iptables, sipp. Subnets are private to the namespaces.
#
# Environment (defaults in brackets), so several rigs can coexist: RIG_NS, the prefix of
# every namespace and interface name [sn]; RIG_LAN, the first three octets of the private
# /24 [10.15.0]; RIG_WAN, those of the public /24 [198.18.15]. The hosts keep their last
# octet (NAT .1 on both sides, phone .2, edge .2, public UA .3).
set -euo pipefail

P=${RIG_NS:-sn}
LAN=${RIG_LAN:-10.15.0}
WAN=${RIG_WAN:-198.18.15}
LAN_NET=$LAN.0/24
NAT_LAN=$LAN.1
PHONE=$LAN.2
NAT_WAN=$WAN.1
EDGE=$WAN.2
PUB=$WAN.3

ns() { echo "$P$1$2"; }
x() { ip netns exec "$1" "${@:2}"; }

up() {
    local t=$1 w n p e u
    w=$(ns "$t" w) n=$(ns "$t" n) p=$(ns "$t" p) e=$(ns "$t" e) u=$(ns "$t" u)
    down "$t"
    for s in "$w" "$n" "$p" "$e" "$u"; do
        ip netns add "$s"
        x "$s" ip link set lo up
    done
    # The public segment: one bridge, one port per public host.
    x "$w" ip link add "${P}${t}br" type bridge
    x "$w" ip link set "${P}${t}br" up
    for h in n e u; do
        ip link add "${P}${t}${h}0" netns "$(ns "$t" "$h")" type veth peer name "${P}${t}w${h}" netns "$w"
        x "$w" ip link set "${P}${t}w${h}" master "${P}${t}br" up
        x "$(ns "$t" "$h")" ip link set "${P}${t}${h}0" up
    done
    x "$n" ip addr add "$NAT_WAN/24" dev "${P}${t}n0"
    x "$e" ip addr add "$EDGE/24" dev "${P}${t}e0"
    x "$u" ip addr add "$PUB/24" dev "${P}${t}u0"
    # The private segment: phones ↔ NAT.
    ip link add "${P}${t}p0" netns "$p" type veth peer name "${P}${t}n1" netns "$n"
    x "$p" ip addr add "$PHONE/24" dev "${P}${t}p0"
    x "$p" ip link set "${P}${t}p0" up
    x "$p" ip route add default via "$NAT_LAN"
    x "$n" ip addr add "$NAT_LAN/24" dev "${P}${t}n1"
    x "$n" ip link set "${P}${t}n1" up
    x "$n" sysctl -qw net.ipv4.ip_forward=1
    x "$n" iptables -t nat -A POSTROUTING -s "$LAN_NET" -o "${P}${t}n0" -j MASQUERADE
    x "$n" iptables -A FORWARD -i "${P}${t}n0" -o "${P}${t}n1" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    x "$n" iptables -A FORWARD -i "${P}${t}n0" -o "${P}${t}n1" -j DROP
    # The edge and the public UA route everything else via the NAT box (their "internet"),
    # so a datagram to a private address would leave — and is counted and dropped first.
    x "$e" ip route add default via "$NAT_WAN"
    x "$u" ip route add default via "$NAT_WAN"
    for net in 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16; do
        x "$e" iptables -A OUTPUT -d "$net" -j DROP
    done
    x "$e" iptables -A OUTPUT -d "$NAT_WAN" -j ACCEPT
}

down() {
    local t=$1
    for h in w n p e u; do
        ip netns del "$(ns "$t" "$h")" 2>/dev/null || true
    done
}

# Packets matched by the edge's OUTPUT rules for $2 (a CIDR list, space separated).
counted() {
    x "$(ns "$1" e)" iptables -L OUTPUT -v -x -n | awk -v nets="$2" '
        BEGIN { split(nets, a, " "); for (i in a) want[a[i]] = 1 }
        ($9 in want) { s += $1 } END { print s + 0 }'
}
leaks() { counted "$1" "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16"; }
to_nat() { counted "$1" "$NAT_WAN"; }

run() {
    local calls=${1:-1000} rate=${2:-50} t=l dir sipedge scen
    scen="$(cd "$(dirname "$0")/.." && pwd)/tests/sipp"
    if [[ -z ${SIPEDGE:-} ]]; then
        (cd "$(dirname "$0")/.." && cargo build -q --bin sipedge)
        sipedge="$(cd "$(dirname "$0")/.." && pwd)/target/debug/sipedge"
    else
        sipedge=$SIPEDGE
    fi
    dir=$(mktemp -d /tmp/nat-rig.XXXXXX)
    trap 'kill ${UPID:-} ${EPID:-} 2>/dev/null || true; down '"$t"'; rm -rf "'"$dir"'"' EXIT
    up "$t"
    cat >"$dir/sipedge.toml" <<TOML
[server]
listen = ["udp:$EDGE:5060"]
domains = ["edge.test"]

[admin]
listen = "127.0.137.1:5061"

[log]
level = "warn"

[registrar]
persistence = false

[nat]
ping = "disabled"

[protect]
# Both SIPp ends are load generators: hundreds of requests a second from one address (the
# NAT's) would be a pike ban otherwise (issue 17; README "Protection").
trusted = ["$WAN.0/24"]
TOML
    # `ip netns exec` execs the program: $! is sipedge itself (the EXIT trap stops it).
    ip netns exec "$(ns $t e)" "$sipedge" --config "$dir/sipedge.toml" --shards 2 &
    EPID=$!
    local fails=0 kind caller_ns caller_ip callee_ns callee_ip user port=5070 start end
    for kind in nat-caller public-caller; do
        for ends in caller callee; do
            if [[ $kind == nat-caller ]]; then
                caller_ns=$(ns $t p) caller_ip=$PHONE callee_ns=$(ns $t u) callee_ip=$PUB
            else
                caller_ns=$(ns $t u) caller_ip=$PUB callee_ns=$(ns $t p) callee_ip=$PHONE
            fi
            user="u$port"
            x "$callee_ns" sipp -sf "$scen/relay_register.xml" -s "$user" -i "$callee_ip" -p $((port + 1)) \
                -m 1 -nostdin -timeout 15s -timeout_error "$EDGE:5060" >/dev/null
            ip netns exec "$callee_ns" sipp -sf "$scen/nat_${ends}_ends_uas.xml" -s "$user" -i "$callee_ip" -p $((port + 1)) \
                -m "$calls" -nostdin -timeout 300s -timeout_error -trace_stat -stf "$dir/$kind-$ends-uas.csv" \
                >"$dir/$kind-$ends-uas.out" 2>&1 &
            UPID=$!
            sleep 0.3
            start=$(date +%s.%N)
            if ! x "$caller_ns" sipp -sf "$scen/nat_${ends}_ends_uac.xml" -s "$user" -i "$caller_ip" -p "$port" \
                -m "$calls" -r "$rate" -l 2000 -nostdin -timeout 300s -timeout_error \
                -trace_stat -stf "$dir/$kind-$ends-uac.csv" "$EDGE:5060" >"$dir/$kind-$ends-uac.out" 2>&1; then
                echo "FAIL: $kind, $ends ends: caller"; tail -40 "$dir/$kind-$ends-uac.out"; fails=$((fails + 1))
            fi
            end=$(date +%s.%N)
            if ! wait "$UPID"; then
                echo "FAIL: $kind, $ends ends: callee"; tail -40 "$dir/$kind-$ends-uas.out"; fails=$((fails + 1))
            fi
            printf '%-14s %-6s ends: caller %s, callee %s, %.1f s\n' "$kind" "$ends" \
                "$(grep -o 'Successful call.*' "$dir/$kind-$ends-uac.out" | tail -1 | tr -s ' |')" \
                "$(grep -o 'Successful call.*' "$dir/$kind-$ends-uas.out" | tail -1 | tr -s ' |')" \
                "$(echo "$end - $start" | bc)"
            port=$((port + 10))
        done
    done
    echo "edge counters (sum over shards):"
    x "$(ns $t e)" bash -c 'exec 3<>/dev/tcp/127.0.137.1/5061
        printf "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n" >&3; timeout 5 cat <&3' |
        awk '/^sipedge_relay_[a-z_]*_total/ { sub(/\{.*\}/, "", $1); s[$1] += $2 }
             END { for (k in s) if (s[k] > 0) printf "  %-48s %d\n", k, s[k] }' | sort
    echo "datagrams from the edge to a private address: $(leaks $t)"
    echo "datagrams from the edge to the NAT's public address: $(to_nat $t)"
    [[ $fails -eq 0 && $(leaks $t) -eq 0 ]]
}

case ${1:-} in
    up) up "${2:?TAG}" ;;
    down) down "${2:?TAG}" ;;
    leaks) leaks "${2:?TAG}" ;;
    to-nat) to_nat "${2:?TAG}" ;;
    run) run "${@:2}" ;;
    *) sed -n '2,25p' "$0"; exit 2 ;;
esac
