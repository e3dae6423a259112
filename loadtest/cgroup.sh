# cgroup.sh — sourced by overload.sh and cluster.sh: a CPU quota for the process under test,
# cgroup v2 (`cpu.max`) where the cpu controller is there, else v1 (`cpu.cfs_quota_us`).
#   cg_quota NAME QUOTA_US PERIOD_US   creates the group, sets CG (put a process in it by
#                                      writing its pid to $CG/cgroup.procs)
#   cg_throttled                       "periods seconds" throttled so far ("0 0" without one)
#   cg_remove                          removes the group once its processes are gone

cg_quota() {
    local name=$1 q=$2 p=$3
    if [[ -r /sys/fs/cgroup/cgroup.controllers ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
        grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
        CG=/sys/fs/cgroup/$name
        mkdir -p "$CG"
        echo "$q $p" >"$CG/cpu.max"
    elif [[ -w /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
        CG=/sys/fs/cgroup/cpu/$name
        mkdir -p "$CG"
        echo "$p" >"$CG/cpu.cfs_period_us"
        echo "$q" >"$CG/cpu.cfs_quota_us"
    else
        echo "no cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us): cannot set a CPU quota" >&2
        exit 1
    fi
}

cg_throttled() { # v2 throttled_usec, v1 throttled_time (ns)
    [[ -n "${CG:-}" ]] || { echo "0 0"; return 0; }
    awk '/^nr_throttled/ {n = $2} /^throttled_usec/ {t = $2 / 1e6} /^throttled_time/ {t = $2 / 1e9}
         END {printf "%d %.2f\n", n, t}' "$CG/cpu.stat" 2>/dev/null || echo "0 0"
}

cg_remove() {
    if [[ -n "${CG:-}" && -d "$CG" ]]; then
        for _ in $(seq 50); do [[ -s "$CG/cgroup.procs" ]] || break; sleep 0.1; done
        rmdir "$CG" 2>/dev/null || echo "warning: $CG not removed (processes left?)" >&2
    fi
    CG=""
}
