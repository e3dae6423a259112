#!/usr/bin/env python3
"""cluster-probe.py — the small SIP endpoints of loadtest/cluster.sh's restart phase (issue 20).

  uas --bind IP:PORT --edge IP:PORT --aor USER@DOMAIN [--secs S]
      Registers AoR on the edge from its own socket (Contact = that socket, Expires 3600),
      then answers every INVITE with "486 Probe Busy" (a final response only a routed call
      can get: the edges never say it themselves), ACK with nothing, OPTIONS/BYE with 200,
      until --secs pass (default 600) or it is killed. Prints "registered" once the 200 came.

  serving --edge IP:PORT --via IP:PORT --ref-bind IP:PORT --ref-aor USER@DOMAIN
          --call-bind IP:PORT --callee USER@DOMAIN [--t0-ns NS] [--secs S] [--first]
      The restart test. --first: registers --ref-aor on --edge from --ref-bind (CSeq 1) and
      exits. Otherwise, every 50 ms until both succeed (or --secs, default 30, pass):
        * REGISTER refresh of --ref-aor to --edge from --ref-bind (same Call-ID, next CSeq,
          RFC 3261 §10.2.4) — done at its first 200;
        * INVITE of --callee through --via (another edge) from --call-bind — done at the first
          486 Probe Busy (the call reached the uas above, routed by its home edge).
      Prints `register_ok_s=… call_ok_s=…` (seconds since --t0-ns, the restarted edge's exec;
      "never" when it did not happen in time) and the other final codes it saw.

Loopback only; no dependencies beyond the Python standard library.
"""
import argparse
import ipaddress
import random
import socket
import sys
import time


def addr(s):
    host, port = s.rsplit(":", 1)
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"{s} is not a loopback address")
    return host, int(port)


def hp(a):
    return f"{a[0]}:{a[1]}"


def headers(data):
    """(first line, {lower-case name: [values]}) of a SIP message."""
    text = data.decode("utf-8", "replace")
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    h = {}
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            h.setdefault(k.strip().lower(), []).append(v.strip())
    return head[0], h


def status(first):
    parts = first.split(" ", 2)
    if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isdigit():
        return int(parts[1]), parts[2] if len(parts) > 2 else ""
    return None, ""


def register(sock, edge, aor, call_id, cseq, expires=3600):
    local = hp(sock.getsockname())
    branch = f"z9hG4bKpr{random.getrandbits(48):x}"
    user, domain = aor.split("@", 1)
    msg = (
        f"REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch={branch}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{aor}>;tag=p{cseq}\r\nTo: <sip:{aor}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{local}>\r\n"
        f"Expires: {expires}\r\nContent-Length: 0\r\n\r\n"
    )
    sock.sendto(msg.encode(), edge)
    return branch


def wait_final(sock, branch, until):
    """The first final status to `branch` before `until`, or None."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return None, ""
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            return None, ""
        first, h = headers(data)
        code, reason = status(first)
        if code is None or code < 200:
            continue
        if any(branch in v for v in h.get("via", [])[:1]):
            return code, reason


def uas(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(a.bind)
    cid = f"probe-uas-{a.aor}"
    for attempt in range(50):
        br = register(s, a.edge, a.aor, cid, attempt + 1)
        code, _ = wait_final(s, br, time.monotonic() + 0.5)
        if code == 200:
            break
    else:
        print("uas: registration failed", file=sys.stderr)
        return 1
    print("registered", flush=True)
    end = time.monotonic() + a.secs
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            data, src = s.recvfrom(65535)
        except socket.timeout:
            break
        first, h = headers(data)
        method = first.split(" ", 1)[0]
        if method in ("ACK", "SIP/2.0") or not h.get("via"):
            continue
        code = "486 Probe Busy" if method == "INVITE" else "200 OK"
        to = h.get("to", [""])[0]
        if method == "INVITE" and ";tag=" not in to:
            to += ";tag=probe"
        resp = "SIP/2.0 " + code + "\r\n"
        resp += "".join(f"Via: {v}\r\n" for v in h["via"])
        resp += f"From: {h.get('from', [''])[0]}\r\nTo: {to}\r\n"
        resp += f"Call-ID: {h.get('call-id', [''])[0]}\r\nCSeq: {h.get('cseq', [''])[0]}\r\n"
        resp += "Content-Length: 0\r\n\r\n"
        s.sendto(resp.encode(), src)
    return 0


def invite(sock, via, callee, n):
    local = hp(sock.getsockname())
    branch = f"z9hG4bKpi{random.getrandbits(48):x}"
    call_id = f"probe-call-{n}-{random.getrandbits(32):x}"
    msg = (
        f"INVITE sip:{callee} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch={branch}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:prober@{callee.split('@', 1)[1]}>;tag=pc{n}\r\n"
        f"To: <sip:{callee}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:prober@{local}>\r\nContent-Length: 0\r\n\r\n"
    )
    sock.sendto(msg.encode(), via)
    return branch, call_id


def ack(sock, via, callee, branch, call_id, n, to):
    local = hp(sock.getsockname())
    msg = (
        f"ACK sip:{callee} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch={branch}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:prober@{callee.split('@', 1)[1]}>;tag=pc{n}\r\n"
        f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    )
    sock.sendto(msg.encode(), via)


def serving(a):
    ref = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ref.bind(a.ref_bind)
    ref.setblocking(False)
    cid = f"probe-ref-{a.ref_aor}"
    if a.first:
        for attempt in range(50):
            br = register(ref, a.edge, a.ref_aor, cid, 1)
            code, _ = wait_final(ref, br, time.monotonic() + 0.5)
            if code == 200:
                print("registered")
                return 0
        print("serving --first: no 200", file=sys.stderr)
        return 1
    call = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    call.bind(a.call_bind)
    call.setblocking(False)
    t0 = a.t0_ns or time.time_ns()
    reg_ok = call_ok = None
    others = {}
    cseq = 1 + (time.time_ns() // 1_000_000) % 1_000_000_000  # above the --first CSeq 1
    n = 0
    regs, invs = {}, {}  # branch -> CSeq / (call_id, n)
    end = time.monotonic() + a.secs
    next_send = 0.0
    while time.monotonic() < end and (reg_ok is None or call_ok is None):
        now = time.monotonic()
        if now >= next_send:
            next_send = now + 0.05
            if reg_ok is None:
                cseq += 1
                regs[register(ref, a.edge, a.ref_aor, cid, cseq)] = cseq
            if call_ok is None:
                n += 1
                br, call_id = invite(call, a.via, a.callee, n)
                invs[br] = (call_id, n)
        for sock in (ref, call):
            while True:
                try:
                    data, _ = sock.recvfrom(65535)
                except (BlockingIOError, socket.timeout):
                    break
                first, h = headers(data)
                code, reason = status(first)
                if code is None or code < 200:
                    continue
                vias = h.get("via", [""])
                br = next((b for b in list(regs) + list(invs) if b in vias[0]), None)
                if br is None:
                    continue
                secs = (time.time_ns() - t0) / 1e9
                if br in regs:
                    if code == 200 and reg_ok is None:
                        reg_ok = secs
                    elif code != 200:
                        others[f"REGISTER {code}"] = others.get(f"REGISTER {code}", 0) + 1
                else:
                    call_id, k = invs[br]
                    ack(call, a.via, a.callee, br, call_id, k, h.get("to", [""])[0])
                    if code == 486 and "Probe" in reason and call_ok is None:
                        call_ok = secs
                    elif not (code == 486 and "Probe" in reason):
                        others[f"INVITE {code}"] = others.get(f"INVITE {code}", 0) + 1
        time.sleep(0.005)
    f = lambda x: "never" if x is None else f"{x:.3f}"
    print(f"register_ok_s={f(reg_ok)} call_ok_s={f(call_ok)} other_finals={others or '{}'}")
    return 0 if reg_ok is not None and call_ok is not None else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("uas")
    u.add_argument("--bind", type=addr, required=True)
    u.add_argument("--edge", type=addr, required=True)
    u.add_argument("--aor", required=True)
    u.add_argument("--secs", type=float, default=600)
    s = sub.add_parser("serving")
    s.add_argument("--edge", type=addr, required=True)
    s.add_argument("--via", type=addr)
    s.add_argument("--ref-bind", type=addr, required=True)
    s.add_argument("--ref-aor", required=True)
    s.add_argument("--call-bind", type=addr)
    s.add_argument("--callee")
    s.add_argument("--t0-ns", type=int, default=0)
    s.add_argument("--secs", type=float, default=30)
    s.add_argument("--first", action="store_true")
    a = p.parse_args()
    if a.cmd == "serving" and not a.first and not (a.via and a.call_bind and a.callee):
        p.error("serving needs --via, --call-bind and --callee (unless --first)")
    return uas(a) if a.cmd == "uas" else serving(a)


if __name__ == "__main__":
    sys.exit(main())
