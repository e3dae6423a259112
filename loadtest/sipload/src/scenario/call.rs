//! `call`: UAC INVITE → 180/200 → ACK → BYE → 200, through the edge, to UAS instances of the
//! same run (RFC 3261 §13, §15).
//!
//! The first half of the UAs are callees: the setup registers `sip:uas<k>@<domain>` from UA `k`
//! (Contact = that UA's address). The other half are callers: each measured flow is one call
//! from a caller to a callee (rotating), sent to the edge, which finds the callee with its
//! location service and relays. Callees answer INVITE with 180 and 200 (To tag, Contact), ACK
//! with nothing, BYE with 200. The caller ACKs the 2xx (§13.2.2.4) and hangs up at once: a BYE
//! to the callee's Contact, again via the edge (the generator always sends to `--target`, as a
//! phone whose outbound proxy is the edge does). The BYE's 200 ends the flow.
//!
//! Simplifications for a load test: no SDP answer, the callee does not retransmit its 2xx
//! (loopback loses nothing unless a socket overflows, and then the INVITE's own timers show it).
//!
//! Record-Route is honoured: the callee copies it into its responses and the caller's ACK and
//! BYE carry the route set as Route (§12.1), so a record-routing edge sees them.

use sipedge_msg::{HeaderName, Message, Method};

use super::sip::{self, aor_of_call_id, push_reg_call_id, push_u64, ReplyExtras};
use super::{Params, Scenario, UaCtx, Verdict};

/// A small SDP offer, so INVITEs have a realistic size.
const SDP: &str = "v=0\r\no=sipload 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

/// The call scenario.
#[derive(Debug)]
pub(crate) struct Call {
    callees: usize,
    domain: String,
    expires: u32,
    run_id: u32,
    in_setup: bool,
    /// Per UA: flows started.
    turns: Vec<u64>,
    /// This phase's BYEs: written (one per established call), answered (any final), 2xx.
    byes: ByeCounts,
}

/// The hang-ups of a phase, reported in its `scenario` object: every established call's
/// BYE answered is what an overload run must show (issue 17); a BYE without a final
/// response is in `written - answered`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ByeCounts {
    written: u64,
    answered: u64,
    ok: u64,
}

impl Call {
    pub(crate) fn new(p: &Params) -> Call {
        Call {
            callees: (p.uas / 2).max(1),
            domain: p.domain.clone(),
            expires: p.expires,
            run_id: p.run_id,
            in_setup: true,
            turns: vec![0; p.uas],
            byes: ByeCounts::default(),
        }
    }

    fn write_register(&self, ua: &UaCtx<'_>, out: &mut Vec<u8>) {
        let k = ua.index as u64;
        let local = ua.local.to_string();
        let d = &self.domain;
        out.extend_from_slice(
            format!(
                "REGISTER sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch={b}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:uas{k}@{d}>;tag=r{k}\r\nTo: <sip:uas{k}@{d}>\r\n\
                 Call-ID: ",
                b = ua.branch
            )
            .as_bytes(),
        );
        push_reg_call_id(out, k, self.run_id);
        out.extend_from_slice(
            format!(
                "\r\nCSeq: 1 REGISTER\r\nContact: <sip:uas{k}@{local}>\r\nExpires: {e}\r\n\
                 User-Agent: sipload\r\nContent-Length: 0\r\n\r\n",
                e = self.expires
            )
            .as_bytes(),
        );
    }

    fn write_invite(&mut self, ua: &UaCtx<'_>, out: &mut Vec<u8>) {
        let i = ua.index;
        let n = self.turns[i];
        self.turns[i] = n + 1;
        // Caller i's successive calls rotate over the callees, each caller from its own offset.
        let callee = ((i - self.callees) as u64 + n) % self.callees as u64;
        let local = ua.local.to_string();
        let d = &self.domain;
        out.extend_from_slice(
            format!(
                "INVITE sip:uas{callee}@{d} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch={b}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:uac{i}@{d}>;tag=c{n:x}\r\nTo: <sip:uas{callee}@{d}>\r\n\
                 Call-ID: c{i}.{n:x}.{r:x}@sipload\r\nCSeq: 1 INVITE\r\nContact: <sip:uac{i}@{local}>\r\n\
                 User-Agent: sipload\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{SDP}",
                b = ua.branch,
                r = self.run_id,
                len = SDP.len()
            )
            .as_bytes(),
        );
    }
}

/// Writes an in-dialog request of the caller (ACK or BYE, §12.2.1.1) for the dialog a 2xx to
/// INVITE established: Request-URI = the callee's Contact, From/To/Call-ID from the response.
fn write_in_dialog(
    out: &mut Vec<u8>,
    method: &str,
    cseq: u32,
    branch: &str,
    ua: &UaCtx<'_>,
    ok: &Message<'_>,
) -> Option<()> {
    let target = ok.contacts().next()?.ok()?.addr()?.uri().raw();
    let from = ok.header(HeaderName::From)?;
    let to = ok.header(HeaderName::To)?;
    let call_id = ok.header(HeaderName::CallId)?;
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/UDP ");
    out.extend_from_slice(ua.local.to_string().as_bytes());
    out.extend_from_slice(b";rport;branch=");
    out.extend_from_slice(branch.as_bytes());
    // RFC 3261 §12.1.2: the route set is the 2xx's Record-Route, in reverse order.
    let rrs: Vec<&[u8]> = ok.header_items(HeaderName::RecordRoute).collect();
    for rr in rrs.iter().rev() {
        out.extend_from_slice(b"\r\nRoute: ");
        out.extend_from_slice(rr);
    }
    out.extend_from_slice(b"\r\nMax-Forwards: 70\r\nFrom: ");
    out.extend_from_slice(from);
    out.extend_from_slice(b"\r\nTo: ");
    out.extend_from_slice(to);
    out.extend_from_slice(b"\r\nCall-ID: ");
    out.extend_from_slice(call_id);
    out.extend_from_slice(b"\r\nCSeq: ");
    push_u64(out, u64::from(cseq));
    out.push(b' ');
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    Some(())
}

/// The ACK of a non-2xx final response to INVITE (§17.1.1.3): same branch and Request-URI as
/// the INVITE, To from the response.
fn write_error_ack(out: &mut Vec<u8>, ua: &UaCtx<'_>, resp: &Message<'_>) -> Option<()> {
    let _ = ua;
    error_ack(out, resp)
}

/// The ACK of a non-2xx final response `resp` to an INVITE whose Request-URI was the To
/// URI (§17.1.1.3), into `out` (also `flood --flood-method invite`).
pub(crate) fn error_ack(out: &mut Vec<u8>, resp: &Message<'_>) -> Option<()> {
    let via = resp.header(HeaderName::Via)?;
    let to = resp.to().ok()?;
    out.extend_from_slice(b"ACK ");
    out.extend_from_slice(to.uri().raw());
    out.extend_from_slice(b" SIP/2.0\r\nVia: ");
    out.extend_from_slice(via);
    out.extend_from_slice(b"\r\nMax-Forwards: 70\r\nFrom: ");
    out.extend_from_slice(resp.header(HeaderName::From)?);
    out.extend_from_slice(b"\r\nTo: ");
    out.extend_from_slice(resp.header(HeaderName::To)?);
    out.extend_from_slice(b"\r\nCall-ID: ");
    out.extend_from_slice(resp.header(HeaderName::CallId)?);
    out.extend_from_slice(b"\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    Some(())
}

impl Scenario for Call {
    fn name(&self) -> &'static str {
        "call"
    }

    fn setup_flows(&self) -> u64 {
        self.callees as u64
    }

    fn end_setup(&mut self) {
        self.in_setup = false;
    }

    fn write_request(&mut self, ua: &UaCtx<'_>, out: &mut Vec<u8>) -> bool {
        let callee = ua.index < self.callees;
        match (self.in_setup, callee) {
            (true, true) if self.turns[ua.index] == 0 => {
                self.turns[ua.index] = 1;
                self.write_register(ua, out);
                true
            }
            (false, false) => {
                self.write_invite(ua, out);
                true
            }
            _ => false,
        }
    }

    fn on_final(
        &mut self,
        ua: &UaCtx<'_>,
        msg: &Message<'_>,
        next: &mut Vec<u8>,
        extra: &mut Vec<u8>,
    ) -> Verdict {
        let Ok(cseq) = msg.cseq() else {
            return Verdict::Failure;
        };
        let ok = matches!(msg.status(), Some(200..=299));
        match cseq.method {
            Method::Register
                if ok && aor_of_call_id(msg.call_id().unwrap_or_default()).is_some() =>
            {
                Verdict::Success
            }
            Method::Invite if ok => {
                // ACK: a transaction of its own with a branch no reply will carry (§13.2.2.4).
                let ack_branch = format!("z9hG4bKack{}", ua.branch.get(7..).unwrap_or(ua.branch));
                let acked = write_in_dialog(extra, "ACK", 1, &ack_branch, ua, msg);
                let byed = write_in_dialog(next, "BYE", 2, ua.branch, ua, msg);
                if acked.is_some() && byed.is_some() {
                    self.byes.written += 1;
                    Verdict::Next
                } else {
                    extra.clear();
                    next.clear();
                    Verdict::Failure
                }
            }
            Method::Invite => {
                let _ = write_error_ack(extra, ua, msg);
                Verdict::Failure
            }
            Method::Bye => {
                self.byes.answered += 1;
                if ok {
                    self.byes.ok += 1;
                    Verdict::Success
                } else {
                    Verdict::Failure
                }
            }
            _ => Verdict::Failure,
        }
    }

    fn phase_extra(&mut self) -> Option<serde_json::Value> {
        let b = std::mem::take(&mut self.byes);
        Some(serde_json::json!({
            "byes_sent": b.written,
            "byes_answered": b.answered,
            "byes_ok": b.ok,
        }))
    }

    fn on_request(&mut self, ua: &UaCtx<'_>, msg: &Message<'_>, out: &mut Vec<Vec<u8>>) -> bool {
        let tag = format!("u{}", ua.index);
        let contact = format!("<sip:uas{}@{}>", ua.index, ua.local);
        let reply = |code, reason, contact: Option<&str>| {
            let extras = ReplyExtras {
                to_tag: Some(&tag),
                contact,
            };
            sip::response(msg, code, reason, extras)
        };
        match msg.method() {
            Some(Method::Invite) => {
                out.extend(reply(180, "Ringing", None));
                out.extend(reply(200, "OK", Some(&contact)));
                true
            }
            Some(Method::Ack) => true,
            Some(Method::Bye | Method::Options) => {
                out.extend(reply(200, "OK", None));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::testkit::{ctx, params, reply_to};

    #[test]
    fn callees_register_then_callers_invite_them() {
        let mut c = Call::new(&params(4));
        assert_eq!(c.setup_flows(), 2);
        let mut out = Vec::new();
        assert!(c.write_request(&ctx(0, "z9hG4bKsl0.0"), &mut out));
        let m = Message::parse(&out).expect("REGISTER parses");
        assert_eq!(m.method(), Some(Method::Register));
        assert_eq!(m.to().expect("To").uri().raw(), b"sip:uas0@localhost");
        out.clear();
        assert!(!c.write_request(&ctx(0, "b"), &mut out), "registered once");
        assert!(
            !c.write_request(&ctx(2, "b"), &mut out),
            "callers wait for the setup"
        );
        c.end_setup();
        assert!(
            !c.write_request(&ctx(1, "b"), &mut out),
            "callees never call"
        );
        assert!(c.write_request(&ctx(2, "z9hG4bKsl5.0"), &mut out));
        let m = Message::parse(&out).expect("INVITE parses");
        assert!(m.validate().is_ok(), "{:?}", m.validate());
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.request_uri_raw(), Some(&b"sip:uas0@localhost"[..]));
        assert_eq!(m.body().len(), SDP.len());
        let mut out2 = Vec::new();
        assert!(c.write_request(&ctx(2, "z9hG4bKsl6.0"), &mut out2));
        let m2 = Message::parse(&out2).expect("parses");
        assert_eq!(
            m2.request_uri_raw(),
            Some(&b"sip:uas1@localhost"[..]),
            "callees rotate"
        );
        assert_ne!(m.call_id().ok(), m2.call_id().ok());
    }

    #[test]
    fn a_whole_call_between_two_uas() {
        let mut c = Call::new(&params(2));
        c.end_setup();
        let mut invite = Vec::new();
        assert!(c.write_request(&ctx(1, "z9hG4bKsl1.0"), &mut invite));
        // The callee (UA 0) answers the INVITE the edge relayed to it.
        let relayed = String::from_utf8_lossy(&invite).replacen(
            "Via: ",
            "Via: SIP/2.0/UDP 127.0.40.1:5060;branch=z9hG4bKedge1\r\nVia: ",
            1,
        );
        let rm = Message::parse(relayed.as_bytes()).expect("relayed INVITE");
        let mut replies = Vec::new();
        assert!(c.on_request(&ctx(0, "-"), &rm, &mut replies));
        assert_eq!(replies.len(), 2);
        let ringing = Message::parse(&replies[0]).expect("180");
        assert_eq!(ringing.status(), Some(180));
        let ok = Message::parse(&replies[1]).expect("200");
        assert_eq!(ok.status(), Some(200));
        assert_eq!(
            ok.top_via().expect("via").branch(),
            Some(&b"z9hG4bKedge1"[..])
        );
        assert_eq!(ok.to().expect("To").tag(), Some(&b"u0"[..]));
        // The edge strips its Via; the caller gets the 200, ACKs and hangs up.
        let back = String::from_utf8_lossy(&replies[1]).replacen(
            "Via: SIP/2.0/UDP 127.0.40.1:5060;branch=z9hG4bKedge1\r\n",
            "",
            1,
        );
        let bm = Message::parse(back.as_bytes()).expect("200 at the caller");
        let (mut bye, mut ack) = (Vec::new(), Vec::new());
        assert_eq!(
            c.on_final(&ctx(1, "z9hG4bKsl2.0"), &bm, &mut bye, &mut ack),
            Verdict::Next
        );
        let am = Message::parse(&ack).expect("ACK parses");
        assert_eq!(am.method(), Some(Method::Ack));
        assert_eq!(
            am.request_uri_raw(),
            Some(&b"sip:uas0@127.0.41.1:4000"[..]),
            "to the Contact"
        );
        assert_eq!(am.cseq().expect("cseq").seq, 1);
        assert_eq!(am.to().expect("To").tag(), Some(&b"u0"[..]));
        let byem = Message::parse(&bye).expect("BYE parses");
        assert!(byem.validate().is_ok());
        assert_eq!(byem.method(), Some(Method::Bye));
        assert_eq!(byem.cseq().expect("cseq").seq, 2);
        assert_eq!(byem.call_id().ok(), bm.call_id().ok());
        assert_eq!(
            byem.top_via().expect("via").branch(),
            Some(&b"z9hG4bKsl2.0"[..])
        );
        // The callee answers the ACK with nothing and the BYE with 200; that 200 ends the call.
        let mut r = Vec::new();
        assert!(c.on_request(&ctx(0, "-"), &am, &mut r));
        assert!(r.is_empty());
        assert!(c.on_request(&ctx(0, "-"), &byem, &mut r));
        let bye_ok = Message::parse(&r[0]).expect("200 to BYE");
        assert_eq!(bye_ok.status(), Some(200));
        assert_eq!(bye_ok.cseq().expect("cseq").method, Method::Bye);
        let (mut n, mut e) = (Vec::new(), Vec::new());
        assert_eq!(
            c.on_final(&ctx(1, "x"), &bye_ok, &mut n, &mut e),
            Verdict::Success
        );
        assert_eq!(
            c.phase_extra(),
            Some(serde_json::json!({"byes_sent": 1, "byes_answered": 1, "byes_ok": 1}))
        );
    }

    #[test]
    fn a_rejected_invite_fails_and_is_acked() {
        let mut c = Call::new(&params(2));
        c.end_setup();
        let mut invite = Vec::new();
        assert!(c.write_request(&ctx(1, "z9hG4bKsl1.0"), &mut invite));
        let busy = reply_to(&invite, "486 Busy Here", &[]);
        let m = Message::parse(&busy).expect("486");
        let (mut n, mut ack) = (Vec::new(), Vec::new());
        assert_eq!(
            c.on_final(&ctx(1, "z9hG4bKsl2.0"), &m, &mut n, &mut ack),
            Verdict::Failure
        );
        let am = Message::parse(&ack).expect("ACK parses");
        assert_eq!(am.method(), Some(Method::Ack));
        assert_eq!(
            am.top_via().expect("via").branch(),
            Some(&b"z9hG4bKsl1.0"[..]),
            "INVITE's branch"
        );
        assert!(n.is_empty());
    }
}
