//! REGISTER builders and reply readers shared by the registrar tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, LocalId, Millis};
use sipedge_msg::{HeaderName, Message};

pub const DOMAIN: &str = "edge.example.com";
pub const PHONE: &str = "192.0.2.50:40123";

pub fn config() -> CoreConfig {
    CoreConfig {
        domains: vec![DOMAIN.into(), "127.0.0.1".into()],
        ..CoreConfig::default()
    }
}

/// A REGISTER, built field by field.
#[derive(Debug, Clone)]
pub struct Reg {
    pub ruri: String,
    pub to: String,
    pub contacts: Vec<String>,
    pub expires: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub branch: String,
    pub extra: String,
}

/// `REGISTER sip:edge.example.com` for alice, no Contact, Call-ID `c1`, CSeq 1.
pub fn reg() -> Reg {
    Reg {
        ruri: format!("sip:{DOMAIN}"),
        to: format!("<sip:alice@{DOMAIN}>"),
        contacts: Vec::new(),
        expires: None,
        call_id: "c1@192.0.2.50".into(),
        cseq: 1,
        branch: String::new(),
        extra: String::new(),
    }
}

impl Reg {
    pub fn contact(mut self, c: &str) -> Reg {
        self.contacts.push(c.into());
        self
    }
    pub fn expires(mut self, e: &str) -> Reg {
        self.expires = Some(e.into());
        self
    }
    pub fn cseq(mut self, n: u32) -> Reg {
        self.cseq = n;
        self
    }
    pub fn call_id(mut self, c: &str) -> Reg {
        self.call_id = c.into();
        self
    }
    pub fn to(mut self, t: &str) -> Reg {
        self.to = t.into();
        self
    }
    pub fn ruri(mut self, r: &str) -> Reg {
        self.ruri = r.into();
        self
    }
    pub fn branch(mut self, b: &str) -> Reg {
        self.branch = b.into();
        self
    }
    pub fn extra(mut self, h: &str) -> Reg {
        self.extra.push_str(h);
        self.extra.push_str("\r\n");
        self
    }
    pub fn bytes(&self) -> Vec<u8> {
        let branch = if self.branch.is_empty() {
            format!("z9hG4bK-{}-{}", self.call_id.len(), self.cseq)
        } else {
            self.branch.clone()
        };
        let mut s = format!(
            "REGISTER {} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50:40123;branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: {};tag=f1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\nUser-Agent: TestPhone/1.0\r\n",
            self.ruri, self.to, self.to, self.call_id, self.cseq
        );
        for c in &self.contacts {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = &self.expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        s.push_str(&self.extra);
        s.push_str("Content-Length: 0\r\n\r\n");
        s.into_bytes()
    }
}

/// What the edge answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub to: SocketAddr,
    pub local: LocalId,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn msg(&self) -> Message<'_> {
        let m = Message::parse(&self.bytes).unwrap();
        m.validate().unwrap();
        m
    }
    pub fn status(&self) -> u16 {
        self.msg().status().unwrap()
    }
    pub fn reason(&self) -> String {
        String::from_utf8_lossy(self.msg().reason().unwrap()).into_owned()
    }
    /// Every Contact value of the reply, as written.
    pub fn contacts(&self) -> Vec<String> {
        self.msg()
            .header_items(HeaderName::Contact)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.msg()
            .header_named(name.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Sends `req` from [`PHONE`] at `now` and returns every reply.
pub fn send_at(core: &mut Core, now: u64, req: &Reg) -> Vec<Answer> {
    core.handle_datagram(
        Millis(now),
        LocalId(0),
        PHONE.parse().unwrap(),
        &req.bytes(),
    );
    drain(core)
}

pub fn drain(core: &mut Core) -> Vec<Answer> {
    let mut out = Vec::new();
    while let Some(t) = core.poll_transmit() {
        out.push(Answer {
            to: t.remote,
            local: t.local,
            bytes: t.data.to_vec(),
        });
    }
    out
}

/// Sends `req` and returns the one reply.
pub fn answer_at(core: &mut Core, now: u64, req: &Reg) -> Answer {
    let mut r = send_at(core, now, req);
    assert_eq!(r.len(), 1, "one reply expected");
    r.remove(0)
}

/// The contact URIs alice has on `core` at `now`.
pub fn bindings(core: &Core, now: u64, aor: &str) -> Vec<String> {
    core.lookup(Millis(now), aor.as_bytes())
        .unwrap()
        .into_iter()
        .map(|c| String::from_utf8(c.uri).unwrap())
        .collect()
}
