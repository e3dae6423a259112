#!/usr/bin/env bash
# callgrind.sh [OUT] — instruction counts of the paths PERFORMANCE.md tracks, for the tree this
# script is in: REGISTER refresh and new binding (register_cost), the authenticated round trip
# (register_auth_profile), the relayed call (relay; and `relay calls N limits`, the same call
# with issue 16's user + account + server limits and dialog tracking) and a REGISTER handed to its owner shard
# (handoff_cost). Deterministic: compare two commits by running it in each (a worktree each).
# Per-operation counts = the printed inclusive Ir divided by 60,000 (refreshes), 20,000 (new
# bindings, auth round trips, calls); handoff_cost prints its own per-REGISTER figures.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/callgrind}
mkdir -p "$out"
nice -n 19 cargo build -q --release -p sipedge-core --example register_cost \
    --example register_auth_profile --example relay --example handoff_cost
E=${CARGO_TARGET_DIR:-target}/release/examples
cg() { nice -n 19 valgrind --tool=callgrind --callgrind-out-file="$out/$1.out" "${@:2}" >/dev/null 2>&1; }
cg reg "$E/register_cost" 20000 3
cg auth --toggle-collect='*round_trips*' "$E/register_auth_profile" 20000
cg relay "$E/relay" calls 20000
cg relay-limits "$E/relay" calls 20000 limits
nice -n 19 valgrind --tool=callgrind --callgrind-out-file="$out/handoff.out" \
    "$E/handoff_cost" 20000 3 > "$out/handoff.txt" 2>/dev/null
echo "== $(git rev-parse --short HEAD)"
callgrind_annotate --inclusive=yes "$out/reg.out" | grep -E 'register_cost::(new_bindings|refreshes) \['
callgrind_annotate "$out/auth.out" 2>/dev/null | grep -E 'PROGRAM TOTALS'
callgrind_annotate --inclusive=yes "$out/relay.out" | grep -E 'relay::feed \[' | head -1
echo "with limits:"
callgrind_annotate --inclusive=yes "$out/relay-limits.out" | grep -E 'relay::feed \[' | head -1
cat "$out/handoff.txt"
