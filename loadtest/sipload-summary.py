#!/usr/bin/env python3
"""One line from a sipload --json report's last phase, in streamload's key=value shape."""
import json
import sys

r = json.load(open(sys.argv[1]))
p = r["phases"][-1]
cpu = p.get("server_cpu_s") or 0.0
ok = p["successes"]
print(
    f"refresh transport=udp uas={r['uas']} secs={p['send_seconds']:.1f} refreshes={ok} "
    f"rate={p['achieved_rps']:.0f}/s server_cpu_s={cpu:.2f} "
    f"server_us_per_op={(cpu * 1e6 / ok) if ok else 0:.2f} p99_us={p['latency_us']['p99']} "
    f"failed={p['failures']} timeouts={p['timeouts']}"
)
