#!/usr/bin/env python3
"""A headless PJSIP (pjsua2) user agent for tests/interop/pjsua.rs.

It registers USER with digest through the edge (outbound proxy, no DNS) and then, by role:

  register  exit 0 once the REGISTER got its 200
  callee    answer the first incoming call with 200, wait for its BYE, exit 0
  caller    call TARGET, wait until the call is confirmed (200 + ACK), hang up (BYE),
            wait for the BYE's answer, exit 0

Every step is bounded by --timeout seconds; one line per event goes to stdout
("REGISTERED 200", "CALL CONFIRMED", "CALL DISCONNECTED 200 ...") and any failure exits
non-zero with a line saying what did not happen. No sound card: the null audio device.

Install: python3 -m venv VENV && VENV/bin/pip install pjsua2-python (a manylinux wheel).
"""

import argparse
import os
import sys
import time

import pjsua2 as pj

OK, FAILED, TIMEOUT = 0, 1, 2


def say(line):
    print(line, flush=True)


class Call(pj.Call):
    def __init__(self, acc, call_id=pj.PJSUA_INVALID_ID):
        pj.Call.__init__(self, acc, call_id)
        self.confirmed = False
        self.disconnected = False
        self.last_code = 0
        self.last_reason = ""

    def onCallState(self, prm):
        ci = self.getInfo()
        say(f"CALL {ci.stateText} {ci.lastStatusCode} {ci.lastReason}")
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed = True
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
            self.last_code = ci.lastStatusCode
            self.last_reason = ci.lastReason


class Account(pj.Account):
    def __init__(self):
        pj.Account.__init__(self)
        self.reg_code = 0
        self.incoming = None

    def onRegState(self, prm):
        say(f"REGISTER {prm.code} {prm.reason}")
        # pjsua answers a challenge itself and reports only the outcome: a 401 here is
        # a second challenge to an answered one (wrong password), final.
        self.reg_code = prm.code

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId)
        self.incoming = call
        say("INCOMING")
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)


def run(ep, args, until, what):
    """Polls pjsua until `until()` holds or the timeout passes."""
    deadline = time.monotonic() + args.timeout
    while not until():
        if time.monotonic() > deadline:
            say(f"TIMEOUT waiting for {what}")
            return False
        ep.libHandleEvents(20)
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["register", "callee", "caller"], required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--proxy", required=True, help="the edge, host:port")
    p.add_argument("--ip", required=True, help="local address for SIP and RTP")
    p.add_argument("--port", type=int, required=True, help="local SIP port")
    p.add_argument("--rtp-port", type=int, required=True)
    p.add_argument("--target", help="caller: the SIP URI to call")
    p.add_argument("--hold", type=float, default=1.0, help="caller: seconds in call")
    p.add_argument("--timeout", type=float, default=15.0)
    args = p.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = "pjsua2-test"
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    cfg.medConfig.noVad = True
    ep.libInit(cfg)

    tcfg = pj.TransportConfig()
    tcfg.port = args.port
    tcfg.boundAddress = args.ip
    tcfg.publicAddress = args.ip
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.user}@{args.domain}"
    acfg.regConfig.registrarUri = f"sip:{args.domain}"
    acfg.regConfig.timeoutSec = 600
    acfg.sipConfig.proxies.append(f"sip:{args.proxy};lr")
    acfg.sipConfig.authCreds.append(
        pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
    )
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.sdpNatRewriteUse = 0
    acfg.mediaConfig.transportConfig.boundAddress = args.ip
    acfg.mediaConfig.transportConfig.publicAddress = args.ip
    acfg.mediaConfig.transportConfig.port = args.rtp_port
    acfg.mediaConfig.transportConfig.portRange = 10
    acc = Account()
    acc.create(acfg)

    status = OK
    call = None
    try:
        if not run(ep, args, lambda: acc.reg_code != 0, "the REGISTER's final"):
            status = TIMEOUT
        elif acc.reg_code != 200:
            say(f"NOT REGISTERED {acc.reg_code}")
            status = FAILED
        else:
            say("REGISTERED 200")
            if args.role == "callee":
                status = callee(ep, args, acc)
            elif args.role == "caller":
                call = Call(acc)
                status = caller(ep, args, call)
    finally:
        # Let the last answers (the 200 to a BYE) leave before the stack goes.
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            ep.libHandleEvents(20)
        say(f"EXIT {status}")
        sys.stdout.flush()
        # pjsua2 objects must go before the library (their destructors call into it).
        del call
        acc.incoming = None
        acc.shutdown()
        # Quit without unregistering: the bindings are the edge's to show.
        ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
    # Skip Python's own finalization of whatever SWIG still holds.
    os._exit(status)


def callee(ep, args, acc):
    if not run(ep, args, lambda: acc.incoming is not None, "an incoming call"):
        return TIMEOUT
    call = acc.incoming
    if not run(ep, args, lambda: call.disconnected, "the caller's BYE"):
        return TIMEOUT
    if not call.confirmed:
        say("CALL NEVER CONFIRMED")
        return FAILED
    return OK


def caller(ep, args, call):
    call.makeCall(args.target, pj.CallOpParam(True))
    if not run(ep, args, lambda: call.confirmed or call.disconnected, "the call's answer"):
        return TIMEOUT
    if not call.confirmed:
        say(f"CALL FAILED {call.last_code} {call.last_reason}")
        return FAILED
    end = time.monotonic() + args.hold
    while time.monotonic() < end and not call.disconnected:
        ep.libHandleEvents(20)
    if call.disconnected:
        say("CALL DROPPED before the hang-up")
        return FAILED
    call.hangup(pj.CallOpParam())
    if not run(ep, args, lambda: call.disconnected, "the BYE's answer"):
        return TIMEOUT
    return OK


if __name__ == "__main__":
    sys.exit(main())
