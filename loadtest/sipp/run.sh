#!/usr/bin/env bash
# run.sh SCENARIO TARGET — runs one of the SIPp scenarios in this folder against any SIP server.
#
#   SCENARIO: options | register | register-auth | call
#   TARGET:   host:port (loopback unless ALLOW_REMOTE=1)
#
# register and register-auth use AoRs sipp<n>@$DOMAIN; call registers one callee
# (uas0@$DOMAIN, on $UAS_IP:$UAS_PORT) with register-uas.xml, starts uas.xml there, then runs
# uac.xml at the rate asked. Bounded: $CALLS calls (default RATE × SECS), at most $TIMEOUT s.
# Prints one line: scenario, offered rate, successful and failed calls, elapsed seconds,
# achieved calls/s, and SIPp's CPU seconds (from /proc). The statistics file of the run is kept
# in $OUT.
#
# Environment (defaults in brackets): PASSWORD [sipload, register-auth] RATE [1000] SECS [5] CALLS [RATE×SECS] LIMIT [10000,
# concurrent calls] DOMAIN [localhost] LOCAL_IP [127.0.42.1] UAS_IP [127.0.42.2] UAS_PORT [5099]
# PIN [unset: core to pin SIPp to] TIMEOUT [SECS×4+30] OUT [target/sipp]
set -euo pipefail
SCENARIO=${1:?usage: run.sh options|register|register-auth|call TARGET}
TARGET=${2:?usage: run.sh SCENARIO TARGET}
HERE=$(cd "$(dirname "$0")" && pwd)
RATE=${RATE:-1000}
SECS=${SECS:-5}
CALLS=${CALLS:-$(awk -v r="$RATE" -v s="$SECS" 'BEGIN{printf "%d", r*s}')}
LIMIT=${LIMIT:-10000}
DOMAIN=${DOMAIN:-localhost}
LOCAL_IP=${LOCAL_IP:-127.0.42.1}
UAS_IP=${UAS_IP:-127.0.42.2}
UAS_PORT=${UAS_PORT:-5099}
TIMEOUT=${TIMEOUT:-$(( ${SECS%.*} * 4 + 30 ))}
OUT=${OUT:-$(cd "$HERE/../.." && pwd)/target/sipp}
mkdir -p "$OUT"
command -v sipp >/dev/null || { echo "sipp is not installed (apt-get install sip-tester)" >&2; exit 1; }
host=${TARGET%:*}
if [[ -z "${ALLOW_REMOTE:-}" && ! $host =~ ^127\. && $host != localhost && $host != "[::1]" ]]; then
    echo "refusing non-loopback target $TARGET (ALLOW_REMOTE=1 to override)" >&2; exit 1
fi
pin=()
[[ -n "${PIN:-}" ]] && pin=(taskset -c "$PIN")
UAS_PID=""
cleanup() {
    if [[ -n "$UAS_PID" ]]; then kill "$UAS_PID" 2>/dev/null || true; wait "$UAS_PID" 2>/dev/null || true; fi
    return 0
}
trap cleanup EXIT

common=(-i "$LOCAL_IP" -r "$RATE" -rp 1000 -m "$CALLS" -l "$LIMIT" -nostdin -timeout "${TIMEOUT}s"
        -timeout_error -trace_stat -fd 1 -max_recv_loops 10000 -max_sched_loops 10000)
case "$SCENARIO" in
    options) sf=options.xml; svc=(-s "$DOMAIN") ;;
    register) sf=register.xml; svc=(-s "$DOMAIN") ;;
    register-auth)
        # -auth_uri: SIPp's digest uri is remote_ip:remote_port unless told; it must name the
        # Request-URI (sip:$DOMAIN), or sipedge answers 400 (RFC 7616 §3.4.6).
        sf=register-auth.xml; svc=(-s "$DOMAIN" -au sipp -ap "${PASSWORD:-sipload}" -auth_uri "$DOMAIN")
        ;;
    call)
        sf=uac.xml; svc=(-s uas0)
        sipp "$TARGET" -sf "$HERE/register-uas.xml" -s uas0 -i "$UAS_IP" -p "$UAS_PORT" -m 1 \
            -nostdin -timeout 10s -timeout_error >/dev/null 2>&1 \
            || { echo "the callee's REGISTER failed" >&2; exit 1; }
        sipp -sf "$HERE/uas.xml" -s uas0 -i "$UAS_IP" -p "$UAS_PORT" -nostdin \
            -timeout "${TIMEOUT}s" >/dev/null 2>&1 &
        UAS_PID=$!
        sleep 0.5
        ;;
    *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac
stf="$OUT/$SCENARIO-$RATE-$$.csv"
rm -f "$stf"
"${pin[@]}" sipp "$TARGET" -sf "$HERE/$sf" "${svc[@]}" "${common[@]}" -stf "$stf" \
    >"$OUT/$SCENARIO-$RATE-$$.log" 2>&1 &
pid=$!
cpu=0
while kill -0 "$pid" 2>/dev/null; do
    cpu=$(awk -v t="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12+$13)/t}' "/proc/$pid/stat" 2>/dev/null || echo "$cpu")
    sleep 0.2
done
wait "$pid" || true
python3 - "$stf" "$SCENARIO" "$RATE" "$cpu" <<'PY'
import csv, sys
path, scen, rate, cpu = sys.argv[1:5]
rows = list(csv.reader(open(path), delimiter=";"))
head, last = rows[0], rows[-1]
col = lambda name: last[head.index(name)]
epoch = lambda v: float(v.split("\t")[-1])  # "date<TAB>time<TAB>epoch"
ok, failed = int(col("SuccessfulCall(C)")), int(col("FailedCall(C)"))
el = epoch(col("CurrentTime")) - epoch(col("StartTime"))
print(f"sipp {scen}: offered {float(rate):.0f}/s, {ok} successful, {failed} failed, {el:.2f} s, "
      f"{ok / el if el else 0:.0f} calls/s, SIPp CPU {float(cpu):.2f} s")
PY
