#!/usr/bin/env python3
"""A SIP-over-WebSocket phone (RFC 7118) for sipedge's tests, on Debian's python3-websockets
(10.x, asyncio API): registers over ws:// or wss:// with `Sec-WebSocket-Protocol: sip`,
prints `registered`, then receives one call — answers the INVITE with 180 and 200, gets the
ACK and the caller's BYE, answers the BYE — printing `invite`, `ack`, `bye` as each
arrives, and exits 0. Anything else (a refusal, a timeout, a message out of order) is
printed on stderr and exits 1.

    ws_phone.py --url ws://127.0.61.10:26070 --user wsbob [--ca ca.pem] [--timeout 10]

Run by tests/edge/ws_phone.rs (Debian's /usr/bin/python3: `apt-get install
python3-websockets`).
"""

import argparse
import asyncio
import random
import ssl
import string
import sys

import websockets

DOMAIN = "edge.test"


def token(n=10):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def parse(text):
    """(start line, [(name, value)], body) of one SIP message."""
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers, body


COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact"}


def named(headers, name):
    name = name.lower()
    return [v for (n, v) in headers if COMPACT.get(n.lower(), n.lower()) == name]


def reply(request_headers, status, to_tag, contact):
    """A UAS response to a request (RFC 3261 §8.2.6.2): Via, From, To, Call-ID, CSeq and
    Record-Route copied, To tagged."""
    out = [f"SIP/2.0 {status}"]
    for n, v in request_headers:
        key = COMPACT.get(n.lower(), n.lower())
        if key in ("via", "record-route", "from", "call-id", "cseq"):
            out.append(f"{n}: {v}")
        elif key == "to":
            out.append(f"To: {v}" if "tag=" in v else f"To: {v};tag={to_tag}")
    if contact:
        out.append(f"Contact: {contact}")
    out.append("Content-Length: 0")
    return "\r\n".join(out) + "\r\n\r\n"


async def recv_request(ws, timeout, want):
    """The next request; a response or another method fails."""
    msg = await asyncio.wait_for(ws.recv(), timeout)
    if isinstance(msg, bytes):
        msg = msg.decode()
    start, headers, _ = parse(msg)
    method = start.split(" ", 1)[0]
    if method != want:
        raise RuntimeError(f"expected {want}, got: {start}")
    return headers


async def run(args):
    host = token() + ".invalid"  # RFC 7118 §5.2: a WS client has no reachable address
    url = args.url
    transport = "wss" if url.startswith("wss:") else "ws"
    ctx = None
    if transport == "wss":
        ctx = ssl.create_default_context(cafile=args.ca)
    contact = f"<sip:{args.user}@{host};transport={transport}>"
    async with websockets.connect(url, subprotocols=["sip"], ssl=ctx) as ws:
        if ws.subprotocol != "sip":
            raise RuntimeError(f"the server chose subprotocol {ws.subprotocol!r}, not sip")
        via_t = transport.upper()
        register = (
            f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/{via_t} {host};branch=z9hG4bK{token()}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{args.user}@{DOMAIN}>;tag={token()}\r\n"
            f"To: <sip:{args.user}@{DOMAIN}>\r\n"
            f"Call-ID: {token(16)}\r\n"
            "CSeq: 1 REGISTER\r\n"
            f"Contact: {contact};expires=600\r\n"
            "Supported: path\r\n"
            "User-Agent: sipedge-ws-phone\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        await ws.send(register)
        answer = await asyncio.wait_for(ws.recv(), args.timeout)
        if isinstance(answer, bytes):
            answer = answer.decode()
        start, _, _ = parse(answer)
        if not start.startswith("SIP/2.0 200"):
            raise RuntimeError(f"REGISTER refused: {start}")
        print("registered", flush=True)

        invite = await recv_request(ws, args.timeout, "INVITE")
        print("invite", flush=True)
        tag = token()
        await ws.send(reply(invite, "180 Ringing", tag, contact))
        await ws.send(reply(invite, "200 OK", tag, contact))
        await recv_request(ws, args.timeout, "ACK")
        print("ack", flush=True)
        bye = await recv_request(ws, args.timeout, "BYE")
        await ws.send(reply(bye, "200 OK", tag, None))
        print("bye", flush=True)
        # Let the 200 leave before the close.
        await asyncio.sleep(0.2)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--ca", help="CA file to trust for wss://")
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    try:
        asyncio.run(run(args))
    except Exception as e:  # noqa: BLE001 - any failure is the test's failure
        print(f"ws_phone: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
