//! The steps of the grammar that build messages: REGISTER, INVITE, responses, in-call
//! requests, mutations.

use sipedge_msg::Message;

use super::msgs::*;
use super::{finding, Call, Finding, Input, Sim};

impl Sim {
    pub(super) fn op_register(&mut self, inp: &mut Input<'_>, star: bool) -> Result<(), Finding> {
        let user = usize::from(inp.u8()) % USERS.len();
        let src = Self::source(inp);
        let local = u16::from(inp.u8() % 2);
        let name = USERS[user].0;
        let mut extra = String::new();
        if star {
            extra.push_str("Contact: *\r\n");
        } else {
            let mut ks = [0u8; 4];
            for _ in 0..inp.u8() % 5 {
                let (shape, k, e, q) = (inp.u8(), inp.u8(), inp.u8(), inp.u8());
                if matches!(shape % 8, 1 | 2) {
                    ks[usize::from(k % 4)] |= 1 << (shape % 8);
                    if self.skip_known && ks[usize::from(k % 4)] == 6 {
                        // Known: both can match one stored `sip:u@10.0.0.k` (README F-C1).
                        return Err(finding("known-double-match", String::new()));
                    }
                }
                let mut c = contact(shape, name, k, src);
                if let Some(e) = expires(e) {
                    c.push_str(&format!(";expires={e}"));
                }
                if q % 4 == 0 {
                    c.push_str(";q=0.5");
                }
                extra.push_str(&format!("Contact: {c}\r\n"));
            }
        }
        if let Some(e) = expires(inp.u8()) {
            extra.push_str(&format!("Expires: {e}\r\n"));
        }
        let call = inp.u8() % 2;
        let stale = inp.u8().is_multiple_of(8);
        let cseq = if stale { self.cseq } else { self.fresh_cseq() };
        let uri = format!("sip:{DOMAIN}");
        extra.push_str(&self.auth_header(inp, user, "REGISTER", &uri, "Authorization"));
        let aor = format!("<sip:{name}@{DOMAIN}>");
        let bytes = request(
            "REGISTER",
            &uri,
            src,
            &format!("z9hG4bK-r{cseq}"),
            &format!("{aor};tag=r{call}"),
            &aor,
            &format!("reg-{name}-{call}"),
            cseq,
            70,
            &extra,
        );
        self.deliver(local, src, &bytes)
    }

    pub(super) fn op_invite(&mut self, inp: &mut Input<'_>) -> Result<(), Finding> {
        let from = usize::from(inp.u8()) % USERS.len();
        let to = USERS[usize::from(inp.u8()) % USERS.len()].0;
        let ruri = match inp.u8() % 5 {
            0 | 1 => format!("sip:{to}@{DOMAIN}"),
            2 => format!("sip:nobody@{DOMAIN}"),
            3 => "sip:x@198.18.0.66".to_string(),
            _ => format!("sip:{to}@192.0.2.1"),
        };
        let src = Self::source(inp);
        let local = u16::from(inp.u8() % 2);
        let slot = usize::from(inp.u8() % 4);
        let mf = [70, 0, 1][usize::from(inp.u8() % 3)];
        let foreign = inp.u8().is_multiple_of(4);
        let cseq = self.fresh_cseq();
        let mut extra = format!("Contact: <sip:{}@{}>\r\n", USERS[from].0, sent_by(src));
        extra.push_str(&self.auth_header(inp, from, "INVITE", &ruri, "Proxy-Authorization"));
        let domain = if foreign { "evil.example" } else { DOMAIN };
        let call = Call {
            src,
            local,
            branch: format!("z9hG4bK-i{cseq}"),
            cseq,
            ruri: ruri.clone(),
            from: format!("<sip:{}@{domain}>;tag=f{cseq}", USERS[from].0),
            to: format!("<sip:{to}@{DOMAIN}>"),
            call_id: format!("call-{cseq}"),
        };
        let bytes = request(
            "INVITE",
            &ruri,
            src,
            &call.branch,
            &call.from,
            &call.to,
            &call.call_id,
            cseq,
            mf,
            &extra,
        );
        self.calls[slot] = Some(call);
        self.deliver(local, src, &bytes)
    }

    pub(super) fn op_respond(&mut self, inp: &mut Input<'_>) -> Result<(), Finding> {
        const CODES: [u16; 10] = [100, 180, 183, 200, 200, 486, 487, 503, 603, 302];
        let sel = usize::from(inp.u8());
        let code = CODES[usize::from(inp.u8()) % CODES.len()];
        let other = inp.u8();
        let local = u16::from(inp.u8() % 2);
        if self.edge_reqs.is_empty() {
            return Ok(());
        }
        let (dest, req) = self.edge_reqs[sel % self.edge_reqs.len()].clone();
        let Some(mut resp) = respond(&req, code, "callee1") else {
            return Ok(());
        };
        if other % 8 == 1 {
            // A response with a branch of ours (seen earlier) whose next Via names a victim.
            resp = forge_next_via(&resp);
        }
        // Usually from where the request went; sometimes from a peer that never saw it.
        let src = if other.is_multiple_of(4) {
            addr(SOURCES[usize::from(other / 4) % 6])
        } else {
            dest
        };
        self.deliver(local, src, &resp)
    }

    pub(super) fn op_in_call(&mut self, inp: &mut Input<'_>) -> Result<(), Finding> {
        let slot = usize::from(inp.u8() % 4);
        let kind = inp.u8() % 4;
        let Some(call) = self.calls[slot].clone() else {
            return Ok(());
        };
        // The latest response the caller got for this call: its To tag and Record-Route.
        let dialog = self
            .edge_resps
            .iter()
            .rev()
            .filter(|(_, b)| {
                Message::parse(b)
                    .ok()
                    .and_then(|m| m.call_id().ok().map(|c| c == call.call_id.as_bytes()))
                    == Some(true)
            })
            .find_map(|(_, b)| dialog_of(b));
        let to_tagged = dialog.as_ref().map_or(call.to.clone(), |d| d.1.clone());
        let bytes = match kind {
            0 => request(
                "ACK",
                &call.ruri,
                call.src,
                &call.branch,
                &call.from,
                &to_tagged,
                &call.call_id,
                call.cseq,
                70,
                "",
            ),
            1 => request(
                "CANCEL",
                &call.ruri,
                call.src,
                &call.branch,
                &call.from,
                &call.to,
                &call.call_id,
                call.cseq,
                70,
                "",
            ),
            _ => {
                let rr = dialog.map(|d| d.0).unwrap_or_default();
                let mut route: Vec<String> = rr.into_iter().rev().collect();
                if kind == 3 {
                    // Our Record-Route (with its dialog token) replayed toward a foreign IP.
                    route.push("<sip:198.18.0.66:5060;lr>".into());
                }
                let extra = if route.is_empty() {
                    String::new()
                } else {
                    format!("Route: {}\r\n", route.join(", "))
                };
                let cseq = self.fresh_cseq();
                request(
                    "BYE",
                    "sip:callee@203.0.113.9:5060",
                    call.src,
                    &format!("z9hG4bK-b{cseq}"),
                    &call.from,
                    &to_tagged,
                    &call.call_id,
                    cseq,
                    70,
                    &extra,
                )
            }
        };
        self.deliver(call.local, call.src, &bytes)
    }

    pub(super) fn op_mutate(&mut self, inp: &mut Input<'_>) -> Result<(), Finding> {
        let sel = usize::from(inp.u8());
        let from_edge = inp.u8().is_multiple_of(3);
        let src = Self::source(inp);
        let local = u16::from(inp.u8() % 2);
        let edits = 1 + inp.u8() % 4;
        let mut bytes = if from_edge {
            let pool: Vec<&Vec<u8>> = self
                .edge_reqs
                .iter()
                .chain(&self.edge_resps)
                .map(|(_, b)| b)
                .collect();
            if pool.is_empty() {
                return Ok(());
            }
            pool[sel % pool.len()].clone()
        } else {
            if self.ours.is_empty() {
                return Ok(());
            }
            self.ours[sel % self.ours.len()].2.clone()
        };
        for _ in 0..edits {
            let pos = usize::from(inp.u16()) % bytes.len().max(1);
            let (op, b) = (inp.u8() % 4, inp.u8());
            match op {
                0 if pos < bytes.len() => bytes[pos] = b,
                1 => bytes.insert(pos.min(bytes.len()), b),
                2 if pos < bytes.len() => {
                    bytes.remove(pos);
                }
                _ => {
                    let end = (pos + usize::from(b)).min(bytes.len());
                    let chunk = bytes[pos.min(end)..end].to_vec();
                    let at = pos.min(bytes.len());
                    bytes.splice(at..at, chunk);
                }
            }
        }
        bytes.truncate(MAX_MESSAGE_BYTES);
        self.tainted = true;
        self.deliver(local, src, &bytes)
    }
}

/// `resp` with every Via after the first replaced by one naming 198.18.0.99 (a victim).
fn forge_next_via(resp: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(resp);
    let mut out = String::new();
    let mut vias = 0;
    for line in text.split_inclusive("\r\n") {
        if line.starts_with("Via:") {
            vias += 1;
            if vias == 2 {
                out.push_str("Via: SIP/2.0/UDP 198.18.0.99:5060;branch=z9hG4bKvictim\r\n");
            }
            if vias >= 2 {
                continue;
            }
        }
        out.push_str(line);
    }
    out.into_bytes()
}
