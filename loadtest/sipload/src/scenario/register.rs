//! `register`, `refresh` and `register-auth` (RFC 3261 §10.2).
//!
//! AoR `k` is `sip:<user k>@<domain>`; it is always registered from UA `k mod U` (U = UAs), so
//! its Contact (`sip:<user k>@<that UA's address>`) never changes and a refresh renews the same
//! binding instead of adding one. Each AoR keeps one Call-ID for the whole run and a CSeq that
//! grows by one per request (§10.2.4), and the Call-ID carries `k`, so a response names its AoR
//! without any lookup table.
//!
//! * `register`: every flow registers an AoR not used before in this run (`--aors N` makes the
//!   AoRs wrap, turning later flows into refreshes).
//! * `refresh`: the setup registers `--aors` AoRs once; measured flows re-register them round
//!   robin.
//! * `register-auth`: a REGISTER without credentials; the 401 (or 407) challenge is answered
//!   with digest credentials (MD5 or SHA-256, qop=auth, §22.4) in a second REGISTER with the
//!   next CSeq; its 200 ends the flow. A second challenge is a failure.

use std::fs;
use std::io;
use std::path::Path;

use sipedge_msg::{HeaderName, Message};

use super::digest::{self, Answer, Challenge};
use super::sip::{aor_of_call_id, push_reg_call_id, push_u64};
use super::{Params, Scenario, UaCtx, Verdict};

/// Password of the generated users when no `--users` file is given.
pub(crate) const DEFAULT_PASSWORD: &str = "sipload";

/// Who the AoRs are: generated (`sl<k>`, one password) or read from a file.
#[derive(Debug, Clone)]
pub(crate) struct Users {
    /// `(user, password)`; empty: generated users.
    list: Vec<(String, String)>,
    password: String,
}

impl Default for Users {
    fn default() -> Self {
        Users::generated(DEFAULT_PASSWORD)
    }
}

impl Users {
    /// Users `sl0`, `sl1`, … all with `password`.
    pub(crate) fn generated(password: &str) -> Users {
        Users {
            list: Vec::new(),
            password: password.to_string(),
        }
    }

    /// Reads a user list: one `user password` per line (whitespace separated); blank lines and
    /// lines starting with `#` are skipped.
    pub(crate) fn from_file(path: &Path) -> io::Result<Users> {
        Users::from_text(&fs::read_to_string(path)?).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    pub(crate) fn from_text(text: &str) -> Result<Users, String> {
        let mut list = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut f = line.split_whitespace();
            match (f.next(), f.next(), f.next()) {
                (Some(u), Some(p), None) => list.push((u.to_string(), p.to_string())),
                _ => return Err(format!("line {}: expected `user password`", n + 1)),
            }
        }
        if list.is_empty() {
            return Err("no users".into());
        }
        Ok(Users {
            list,
            password: String::new(),
        })
    }

    /// How many distinct users the list has (`None`: generated, unbounded).
    pub(crate) fn len(&self) -> Option<u64> {
        (!self.list.is_empty()).then_some(self.list.len() as u64)
    }

    /// Appends AoR `aor`'s user part.
    fn push_user(&self, out: &mut Vec<u8>, aor: u64) {
        if self.list.is_empty() {
            out.extend_from_slice(b"sl");
            push_u64(out, aor);
        } else {
            let i = (aor % self.list.len() as u64) as usize;
            out.extend_from_slice(self.list[i].0.as_bytes());
        }
    }

    fn password(&self, aor: u64) -> &str {
        if self.list.is_empty() {
            &self.password
        } else {
            &self.list[(aor % self.list.len() as u64) as usize].1
        }
    }
}

/// Which of the three registration scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegMode {
    New,
    Refresh,
    Auth,
}

/// Per-AoR state.
#[derive(Debug, Clone, Copy, Default)]
struct AorState {
    cseq: u32,
    /// The last request sent carried credentials.
    with_credentials: bool,
    /// Client nonces written so far (cnonce uniqueness).
    uses: u32,
}

/// The registration scenarios.
#[derive(Debug)]
pub(crate) struct Register {
    mode: RegMode,
    uas: u64,
    /// Bound on AoRs; `None`: unbounded (a new one per flow).
    aors: Option<u64>,
    domain: String,
    ruri: String,
    expires: u32,
    run_id: u32,
    users: Users,
    /// Per UA: flows started (selects the UA's next AoR).
    turns: Vec<u64>,
    state: Vec<AorState>,
    in_setup: bool,
    scratch: Vec<u8>,
    /// Per UA: its address as text (Via sent-by, Contact host), rendered once.
    local_text: Vec<String>,
}

impl Register {
    pub(crate) fn new(mode: RegMode, p: &Params) -> Register {
        let aors = match mode {
            RegMode::Refresh => Some(p.aors.unwrap_or(p.uas as u64)),
            RegMode::New | RegMode::Auth => p.aors.or(p.users.len()),
        };
        Register {
            mode,
            uas: p.uas as u64,
            aors,
            ruri: p
                .ruri
                .clone()
                .unwrap_or_else(|| format!("sip:{}", p.domain)),
            domain: p.domain.clone(),
            expires: p.expires,
            run_id: p.run_id,
            users: p.users.clone(),
            turns: vec![0; p.uas],
            state: Vec::new(),
            in_setup: mode == RegMode::Refresh,
            scratch: Vec::with_capacity(64),
            local_text: vec![String::new(); p.uas],
        }
    }

    /// The AoR UA `ua` registers next, or `None` if it owns none.
    fn next_aor(&mut self, ua: usize) -> Option<u64> {
        let u = ua as u64;
        let j = self.turns[ua];
        let aor = match self.aors {
            None => u + self.uas * j,
            Some(a) => {
                let owned = a.saturating_sub(u).div_ceil(self.uas);
                if owned == 0 {
                    return None;
                }
                u + self.uas * (j % owned)
            }
        };
        self.turns[ua] = j + 1;
        Some(aor)
    }

    fn state(&mut self, aor: u64) -> &mut AorState {
        let i = aor as usize;
        if self.state.len() <= i {
            self.state.resize(i + 1, AorState::default());
        }
        &mut self.state[i]
    }

    /// Writes REGISTER for `aor` with the next CSeq; `credentials` answers a challenge.
    fn write(
        &mut self,
        ua: &UaCtx<'_>,
        aor: u64,
        out: &mut Vec<u8>,
        credentials: Option<&Challenge>,
    ) {
        let st = self.state(aor);
        // CSeq numbers stay below 2^31 (RFC 3261 §8.1.1.5).
        st.cseq = st.cseq % 0x7fff_ffff + 1;
        st.with_credentials = credentials.is_some();
        st.uses = st.uses.wrapping_add(1);
        let (cseq, uses) = (st.cseq, st.uses);
        let mut user = std::mem::take(&mut self.scratch);
        user.clear();
        self.users.push_user(&mut user, aor);
        if self.local_text[ua.index].is_empty() {
            self.local_text[ua.index] = ua.local.to_string();
        }
        let local = self.local_text[ua.index].as_bytes();
        out.extend_from_slice(b"REGISTER ");
        out.extend_from_slice(self.ruri.as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/UDP ");
        out.extend_from_slice(local);
        out.extend_from_slice(b";rport;branch=");
        out.extend_from_slice(ua.branch.as_bytes());
        out.extend_from_slice(b"\r\nMax-Forwards: 70\r\nFrom: <sip:");
        out.extend_from_slice(&user);
        out.push(b'@');
        out.extend_from_slice(self.domain.as_bytes());
        out.extend_from_slice(b">;tag=r");
        push_u64(out, aor);
        out.extend_from_slice(b"\r\nTo: <sip:");
        out.extend_from_slice(&user);
        out.push(b'@');
        out.extend_from_slice(self.domain.as_bytes());
        out.extend_from_slice(b">\r\nCall-ID: ");
        push_reg_call_id(out, aor, self.run_id);
        out.extend_from_slice(b"\r\nCSeq: ");
        push_u64(out, u64::from(cseq));
        out.extend_from_slice(b" REGISTER\r\nContact: <sip:");
        out.extend_from_slice(&user);
        out.push(b'@');
        out.extend_from_slice(local);
        out.extend_from_slice(b">\r\nExpires: ");
        push_u64(out, u64::from(self.expires));
        if let Some(ch) = credentials {
            let cnonce = format!("{aor:x}.{uses:x}.{:x}", self.run_id);
            out.extend_from_slice(b"\r\nAuthorization: ");
            let a = Answer {
                user: &user,
                password: self.users.password(aor).as_bytes(),
                method: b"REGISTER",
                uri: self.ruri.as_bytes(),
                cnonce: cnonce.as_bytes(),
                nc: 1,
            };
            digest::push_credentials(out, ch, &a);
        }
        out.extend_from_slice(b"\r\nUser-Agent: sipload\r\nContent-Length: 0\r\n\r\n");
        self.scratch = user;
    }
}

impl Scenario for Register {
    fn name(&self) -> &'static str {
        match self.mode {
            RegMode::New => "register",
            RegMode::Refresh => "refresh",
            RegMode::Auth => "register-auth",
        }
    }

    fn setup_flows(&self) -> u64 {
        match self.mode {
            RegMode::Refresh => self.aors.unwrap_or(0),
            RegMode::New | RegMode::Auth => 0,
        }
    }

    fn end_setup(&mut self) {
        self.in_setup = false;
    }

    fn write_request(&mut self, ua: &UaCtx<'_>, out: &mut Vec<u8>) -> bool {
        let Some(aor) = self.next_aor(ua.index) else {
            return false;
        };
        self.write(ua, aor, out, None);
        true
    }

    fn on_final(
        &mut self,
        ua: &UaCtx<'_>,
        msg: &Message<'_>,
        next: &mut Vec<u8>,
        _extra: &mut Vec<u8>,
    ) -> Verdict {
        let Some(aor) = msg.call_id().ok().and_then(aor_of_call_id) else {
            return Verdict::Failure;
        };
        match msg.status() {
            // RFC 3261 §10.3 step 8: the 200 lists the AoR's bindings.
            Some(200..=299) if msg.header(HeaderName::Contact).is_some() => Verdict::Success,
            Some(code @ (401 | 407)) if self.mode == RegMode::Auth => {
                if self.state(aor).with_credentials {
                    return Verdict::Failure; // our credentials were refused
                }
                let name = if code == 401 {
                    HeaderName::WwwAuthenticate
                } else {
                    HeaderName::ProxyAuthenticate
                };
                let Some(ch) = msg.header_values(name).find_map(Challenge::parse) else {
                    return Verdict::Failure;
                };
                self.write(ua, aor, next, Some(&ch));
                if code == 407 {
                    // Same credentials, carried in the header a proxy reads (§22.3).
                    let text = String::from_utf8_lossy(next)
                        .replace("\r\nAuthorization: ", "\r\nProxy-Authorization: ");
                    *next = text.into_bytes();
                }
                Verdict::Next
            }
            _ => Verdict::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::testkit::{ctx, params, reply_to};
    use sipedge_msg::Method;

    fn reg(s: &mut Register, ua: usize) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(s.write_request(&ctx(ua, "z9hG4bKsl1.0"), &mut out));
        out
    }

    #[test]
    fn new_bindings_use_a_fresh_aor_per_flow_from_a_fixed_ua() {
        let mut s = Register::new(RegMode::New, &params(3));
        let reqs: Vec<Vec<u8>> = (0..6).map(|i| reg(&mut s, i % 3)).collect();
        let mut tos = Vec::new();
        for r in &reqs {
            let m = Message::parse(r).expect("our REGISTER parses");
            assert!(m.validate().is_ok(), "{:?}", m.validate());
            assert_eq!(m.method(), Some(Method::Register));
            assert_eq!(m.request_uri_raw(), Some(&b"sip:localhost"[..]));
            assert_eq!(m.expires().expect("Expires"), Some(3600));
            let to = m.to().expect("To");
            tos.push(String::from_utf8_lossy(to.uri().raw()).into_owned());
            let c = m.contacts().next().expect("Contact").expect("valid");
            assert_eq!(c.addr().expect("addr").uri().user(), to.uri().user());
            assert_eq!(m.cseq().expect("CSeq").seq, 1);
        }
        assert_eq!(tos[0], "sip:sl0@localhost");
        assert_eq!(tos[1], "sip:sl1@localhost");
        assert_eq!(tos[3], "sip:sl3@localhost", "UA 0's second AoR is 0 + 3");
        let mut uniq = tos.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 6);
    }

    #[test]
    fn refresh_keeps_call_id_and_contact_and_counts_cseq_up() {
        let mut p = params(2);
        p.aors = Some(3);
        let mut s = Register::new(RegMode::Refresh, &p);
        assert_eq!(s.setup_flows(), 3);
        // UA 0 owns AoRs 0 and 2, UA 1 owns AoR 1.
        let a = reg(&mut s, 0);
        let b = reg(&mut s, 0);
        let c = reg(&mut s, 0);
        let (ma, mb, mc) = (
            Message::parse(&a).expect("a"),
            Message::parse(&b).expect("b"),
            Message::parse(&c).expect("c"),
        );
        assert_eq!(ma.call_id().ok(), mc.call_id().ok(), "AoR 0 again");
        assert_ne!(ma.call_id().ok(), mb.call_id().ok());
        assert_eq!(ma.cseq().expect("cseq").seq, 1);
        assert_eq!(mc.cseq().expect("cseq").seq, 2);
        assert_eq!(
            ma.header(HeaderName::Contact),
            mc.header(HeaderName::Contact)
        );
        assert_eq!(mb.to().expect("To").uri().user(), Some(&b"sl2"[..]));
    }

    #[test]
    fn ok_with_contacts_is_success_anything_else_failure() {
        let mut s = Register::new(RegMode::New, &params(1));
        let req = reg(&mut s, 0);
        let (mut next, mut extra) = (Vec::new(), Vec::new());
        let ok = reply_to(
            &req,
            "200 OK",
            &["Contact: <sip:sl0@127.0.41.1:4000>;expires=3600"],
        );
        let m = Message::parse(&ok).expect("parses");
        assert_eq!(
            s.on_final(&ctx(0, "b"), &m, &mut next, &mut extra),
            Verdict::Success
        );
        let bare = reply_to(&req, "200 OK", &[]);
        let m = Message::parse(&bare).expect("parses");
        assert_eq!(
            s.on_final(&ctx(0, "b"), &m, &mut next, &mut extra),
            Verdict::Failure,
            "no Contact list"
        );
        let chal = reply_to(
            &req,
            "401 Unauthorized",
            &["WWW-Authenticate: Digest realm=\"x\", nonce=\"n\""],
        );
        let m = Message::parse(&chal).expect("parses");
        assert_eq!(
            s.on_final(&ctx(0, "b"), &m, &mut next, &mut extra),
            Verdict::Failure,
            "no auth in `register`"
        );
        assert!(next.is_empty() && extra.is_empty());
    }

    #[test]
    fn a_challenge_is_answered_once_with_a_valid_digest() {
        let mut p = params(1);
        p.users = Users::from_text("# users\nalice s3cret\n\nbob hunter2\n").expect("valid list");
        let mut s = Register::new(RegMode::Auth, &p);
        let req = reg(&mut s, 0);
        let m = Message::parse(&req).expect("parses");
        assert_eq!(m.from().expect("From").uri().user(), Some(&b"alice"[..]));
        assert_eq!(m.authorization().count(), 0);
        let chal = reply_to(
            &req,
            "401 Unauthorized",
            &["WWW-Authenticate: Digest realm=\"localhost\", nonce=\"abc123\", qop=\"auth\", algorithm=SHA-256"],
        );
        let cm = Message::parse(&chal).expect("parses");
        let (mut next, mut extra) = (Vec::new(), Vec::new());
        assert_eq!(
            s.on_final(&ctx(0, "z9hG4bKsl2.0"), &cm, &mut next, &mut extra),
            Verdict::Next
        );
        let n = Message::parse(&next).expect("the authenticated REGISTER parses");
        assert!(n.validate().is_ok());
        assert_eq!(n.call_id().ok(), m.call_id().ok(), "same Call-ID");
        assert_eq!(n.cseq().expect("cseq").seq, 2, "next CSeq");
        assert_eq!(
            n.top_via().expect("via").branch(),
            Some(&b"z9hG4bKsl2.0"[..]),
            "new branch"
        );
        let cred = n
            .authorization()
            .next()
            .expect("credentials")
            .expect("valid");
        let ch = Challenge::parse(
            br#"Digest realm="localhost", nonce="abc123", qop="auth", algorithm=SHA-256"#,
        )
        .expect("challenge");
        let cnonce: Vec<u8> = cred.cnonce.expect("cnonce").unescaped().collect();
        let want = digest::response(
            &ch,
            &Answer {
                user: b"alice",
                password: b"s3cret",
                method: b"REGISTER",
                uri: b"sip:localhost",
                cnonce: &cnonce,
                nc: 1,
            },
        );
        assert!(cred.response.expect("response").eq_bytes(want.as_bytes()));
        // The authenticated request challenged again: the flow fails.
        let again = reply_to(
            &next,
            "401 Unauthorized",
            &["WWW-Authenticate: Digest realm=\"localhost\", nonce=\"n2\""],
        );
        let am = Message::parse(&again).expect("parses");
        let mut next2 = Vec::new();
        assert_eq!(
            s.on_final(&ctx(0, "b"), &am, &mut next2, &mut extra),
            Verdict::Failure
        );
        // A second user comes from the next line of the list.
        let r2 = reg(&mut s, 0);
        let m2 = Message::parse(&r2).expect("parses");
        assert_eq!(m2.from().expect("From").uri().user(), Some(&b"bob"[..]));
    }

    #[test]
    fn user_lists_reject_malformed_lines() {
        assert!(Users::from_text("alice").is_err());
        assert!(Users::from_text("a b c").is_err());
        assert!(Users::from_text("# only comments\n").is_err());
        assert_eq!(Users::from_text("a b\nc d").expect("ok").len(), Some(2));
    }
}
