#!/usr/bin/env python3
# Measures how large a burst one shard absorbs for a given SO_RCVBUF: the edge is frozen
# (SIGSTOP), N OPTIONS are sent from 50 sockets, the edge resumes, answers are counted.
# Usage: python3 loadtest/burst-rcvbuf.py RCVBUF_BYTES BURST   (after cargo build --release)
# Loopback only (127.0.20.1:26060); bounded: one burst, 3 s of collecting.
import socket, subprocess, sys, time, os, signal
rcvbuf = int(sys.argv[1]); n = int(sys.argv[2]); ip = "127.0.20.1"; port = 26060
cfg = f"/tmp/sipedge-burst-cfg-{rcvbuf}.toml"
open(cfg, "w").write(f'[server]\nlisten = ["udp:{ip}:{port}"]\nworkers = 1\nrecv_buffer_bytes = {rcvbuf}\n[admin]\nlisten = "{ip}:{port+1}"\n[log]\nlevel = "warn"\n[registrar]\npersistence = false\n')
p = subprocess.Popen([os.environ.get("SIPEDGE", "target/release/sipedge"), "--config", cfg])
time.sleep(0.5)
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(50)]
for s in socks:
    s.bind(("127.0.20.2", 0)); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20); s.setblocking(False)
def opt(s, i):
    a = s.getsockname()
    return (f"OPTIONS sip:{ip}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {a[0]}:{a[1]};branch=z9hG4bK{i};rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:p@{a[0]}>;tag={i}\r\nTo: <sip:{ip}>\r\nCall-ID: b{i}@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
os.kill(p.pid, signal.SIGSTOP)
for i in range(n):
    s = socks[i % len(socks)]
    s.sendto(opt(s, i), (ip, port))
os.kill(p.pid, signal.SIGCONT)
got = 0; deadline = time.time() + 3
while time.time() < deadline:
    for s in socks:
        try:
            while True:
                s.recv(65536); got += 1
        except BlockingIOError:
            pass
    time.sleep(0.01)
p.send_signal(signal.SIGTERM); p.wait()
print(f"rcvbuf={rcvbuf} burst={n} answered={got} lost={n-got} size={len(opt(socks[0],0))}")
