#!/usr/bin/env python3
"""Memory per active INVITE transaction of a running SIP server (sipedge or Kamailio).

  loadtest/txn-memory.py N SERVER_PID   (env: EDGE_IP, EDGE_PORT, CALLEE_IP, CALLER_IP)

Registers sip:bob@edge.test from a socket that never answers, then sends N INVITEs (each its
own Call-ID and branch, SDP body, ~700 bytes) to the AoR and reads the 100 Trying replies; every
INVITE leaves one transaction open (timer B / fr_timer is 32 s, the run takes ~10 s). Prints
the growth of Pss summed over the server's processes (Kamailio's shared memory counted once)
divided by N. Loopback only; bounded by N.
"""
import os, socket, sys, time
N = int(sys.argv[1]); pid = int(sys.argv[2]); edge = (os.environ.get("EDGE_IP","127.0.90.1"), int(os.environ.get("EDGE_PORT","25600")))
def procs(root):
    out=[root]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st=open(f"/proc/{p}/stat").read().split(") ")[1].split()
                if int(st[1])==root: out += procs(int(p))
            except Exception: pass
    return out
def rss():
    t=0
    for p in set(procs(pid)):
        try:
            for l in open(f"/proc/{p}/smaps_rollup"):
                if l.startswith("Pss:"): t+=int(l.split()[1]); break
        except Exception: pass
    return t
bob = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); bob.bind((os.environ.get("CALLEE_IP","127.0.90.3"), 25680))
CALLEE = os.environ.get("CALLEE_IP","127.0.90.3"); CALLER = os.environ.get("CALLER_IP","127.0.90.2")
bob.sendto(f"REGISTER sip:edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {CALLEE}:25680;branch=z9hG4bKr1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@edge.test>;tag=r\r\nTo: <sip:bob@edge.test>\r\nCall-ID: reg-bob\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{CALLEE}:25680>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n".encode(), edge)
bob.settimeout(2); bob.recv(65535)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind((os.environ.get("CALLER_IP","127.0.90.2"), 25670)); c.setblocking(False)
sdp = "v=0\r\no=- 3912 3912 IN IP4 10.20.0.5\r\ns=-\r\nc=IN IP4 10.20.0.5\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
time.sleep(0.5); before = rss()
got = 0
for i in range(N):
    m = (f"INVITE sip:bob@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER}:25670;branch=z9hG4bK{i:x}a7f3;rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice{i}@edge.test>;tag={i:x}9c1\r\nTo: <sip:bob@edge.test>\r\nCall-ID: {i:016x}b2e4@10.20.0.5\r\nCSeq: 1 INVITE\r\nContact: <sip:alice{i}@{CALLER}:25670>\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()
    c.sendto(m, edge)
    if i % 200 == 199:
        time.sleep(0.01)
        try:
            while True: c.recv(65535); got += 1
        except BlockingIOError: pass
time.sleep(1.0)
try:
    while True: c.recv(65535); got += 1
except BlockingIOError: pass
after = rss()
print(f"N={N} 100-Trying received={got} pss before={before} KiB after={after} KiB per txn={(after-before)*1024/N:.0f} B")
