//! Requests the edge originates itself (issue 18: `POST /api/v1/messages`; later the
//! in-dialog OPTIONS keepalive and the BYE on timeout): a request we build, sent as a
//! non-INVITE client transaction per target (RFC 3261 §17.1.2), whose final responses go to
//! a local consumer instead of upstream.
//!
//! Such a request lives in an ordinary relay cell ([`Cell`]) marked
//! [`Origin::Local`]: same slab, same caps (`[limits] max_transactions` / bytes), same Via
//! branch (shard, slot, generation, MAC — a response arriving on any shard reaches the
//! owner in one hop, a forged one is dropped), same timers E/F/K and the same response
//! matching (`proxy::response`). It has no server transaction: the cell stays in `Trying`
//! (no response ever goes on the wire for it) until every branch has its final, then the
//! finals are handed to the consumer ([`Originated::pop_done`]) and the cell goes
//! `Trying → Terminated` (the edge of "no target", `txn/LIFECYCLE.md`) and is freed once
//! its branches' timer K has run. Three hook lines in the relay lead here:
//! `offer_best` and `branch_gave_up` record a branch's final ([`RelayCx::local_final`]),
//! `check_complete` ends the cell ([`RelayCx::local_complete`]).
//!
//! | rule | source |
//! | --- | --- |
//! | Request-URI = the binding's contact, To = the AoR, From = given URI with our tag, a new Call-ID, CSeq 1, Max-Forwards 70 | RFC 3428 §4, RFC 3261 §8.1.1 |
//! | our Via with a MAC'd branch; sent to the binding's flow (its received source when NATed) on the socket it registered through | RFC 3261 §8.1.1.7, §18.1.1; issue 8 |
//! | a Path recorded at registration becomes the Route | RFC 3327 §5.3 |
//! | the body fits a UDP datagram (≤ [`MAX_BODY`] bytes), else 413 to the consumer | RFC 3428 §7, RFC 3261 §18.1.1 |
//! | no final in 64·T1 (timer F): 408 to the consumer, never on the wire | RFC 3261 §17.1.2.2, RFC 4320 §4.2 |
//! | a final per target; provisionals are absorbed | RFC 3261 §17.1.2.2 |

use std::collections::{HashMap, VecDeque};

use crate::proxy::forward::MAX_BRANCHES;
use crate::proxy::RelayCx;
use crate::shard::ShardId;
use crate::time::Millis;
use crate::txn::table::{Branch, Origin, Srv};

/// Bytes of body an originated request may carry at most: with its headers the datagram
/// stays under the 1500-byte path MTU (RFC 3428 §7: a MESSAGE over UDP whose request
/// would exceed the MTU must not be sent that way; we have no TCP client yet).
pub(crate) const MAX_BODY: usize = 1300;
/// Originated requests in flight on one shard, at most (each holds one relay cell).
pub(crate) const MAX_IN_FLIGHT: usize = 64;
/// Bytes of a reason phrase kept for the consumer, at most.
const MAX_REASON: usize = 64;

/// Who gets the finals of an originated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consumer {
    /// The admin API: the answer to the admin query with this token.
    Admin {
        /// The query's token (`Core::handle_admin`).
        token: u64,
    },
}

/// One target's final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetFinal {
    /// The contact the request went to (its Request-URI).
    pub contact: Vec<u8>,
    /// The final status (408: timer F, made here, never sent).
    pub code: u16,
    /// Its reason phrase (at most [`MAX_REASON`] bytes).
    pub reason: Vec<u8>,
}

/// An originated request whose every target answered (or timed out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finished {
    pub consumer: Consumer,
    pub results: Vec<TargetFinal>,
}

/// What to originate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRequest<'a> {
    /// The method (`MESSAGE`).
    pub method: &'a [u8],
    /// The AoR (any SIP URI of the user; canonicalised for the lookup, sent as To).
    pub aor: &'a [u8],
    /// The From URI (a tag is added).
    pub from: &'a [u8],
    /// Content-Type of the body (empty: no body).
    pub content_type: &'a [u8],
    pub body: &'a [u8],
}

/// Why nothing was originated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The AoR is not a `sip:`/`sips:` URI.
    NotAnAor,
    /// The AoR lives on another shard.
    NotOwner(ShardId),
    /// No current binding.
    NotRegistered,
    /// From is not a SIP URI, or Content-Type is not a media type (no header injection).
    BadRequest(&'static str),
    /// The body is above [`MAX_BODY`].
    TooLarge,
    /// [`MAX_IN_FLIGHT`] originations, or the transaction caps, are reached.
    Busy,
}

#[derive(Debug)]
struct Pending {
    gen: u32,
    consumer: Consumer,
    results: Vec<Option<TargetFinal>>,
}

/// The relay's originated requests in flight (owned by [`crate::proxy::Relay`]).
#[derive(Debug, Default)]
pub(crate) struct Originated {
    /// By cell slot (at most [`MAX_IN_FLIGHT`]).
    pending: HashMap<u32, Pending>,
    /// Finished, for the consumer to take (at most [`MAX_IN_FLIGHT`]: one per cell).
    done: VecDeque<Finished>,
    /// Counts originations, for unique Call-IDs.
    counter: u64,
}

impl Originated {
    /// The next finished request.
    pub(crate) fn pop_done(&mut self) -> Option<Finished> {
        self.done.pop_front()
    }

    /// Originated requests not yet finished.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

/// A From/To value or media type: printable, no CR/LF/NUL, nothing that ends a header.
fn header_safe(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 256 && v.iter().all(|&c| (0x20..0x7f).contains(&c))
}

fn is_sip_uri(v: &[u8]) -> bool {
    header_safe(v)
        && !v.contains(&b'<')
        && !v.contains(&b'>')
        && sipedge_msg::Uri::parse(v).is_ok_and(|u| {
            matches!(
                u.scheme(),
                sipedge_msg::Scheme::Sip | sipedge_msg::Scheme::Sips
            )
        })
}

/// RFC 2045 §5.1 `type "/" subtype *(";" parameter)`, restricted to token characters
/// (parameters may be quoted).
fn is_media_type(v: &[u8]) -> bool {
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&c);
    let main = v.split(|&c| c == b';').next().unwrap_or_default();
    let mut parts = main.split(|&c| c == b'/');
    let ok = |p: Option<&[u8]>| {
        p.map(<[u8]>::trim_ascii)
            .is_some_and(|p| !p.is_empty() && p.iter().all(|&c| token(c)))
    };
    header_safe(v) && ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

fn hex16(out: &mut Vec<u8>, v: u64) {
    for i in (0..16).rev() {
        out.push(b"0123456789abcdef"[((v >> (4 * i)) & 0xf) as usize]);
    }
}

impl RelayCx<'_> {
    /// Originates `req` to every current binding of its AoR (at most 16, highest q
    /// first), one non-INVITE client transaction each; `consumer` gets the finals once
    /// every target has one. Returns the number of targets.
    pub(crate) fn originate(
        &mut self,
        now: Millis,
        req: &NewRequest<'_>,
        consumer: Consumer,
    ) -> Result<usize, Refused> {
        if !is_sip_uri(req.from) {
            return Err(Refused::BadRequest("`from` must be a sip: or sips: URI"));
        }
        if !req.body.is_empty() && !is_media_type(req.content_type) {
            return Err(Refused::BadRequest(
                "`content_type` must be a media type (type/subtype)",
            ));
        }
        if req.body.len() > MAX_BODY {
            return Err(Refused::TooLarge);
        }
        if self.relay.originated.pending.len() >= MAX_IN_FLIGHT {
            return Err(Refused::Busy);
        }
        let targets = match self.local_targets(now, req.aor) {
            Ok(t) if t.is_empty() => return Err(Refused::NotRegistered),
            // Issue 19: a contact on a transport we do not serve is not reachable.
            Ok(t) => t
                .into_iter()
                .take(MAX_BRANCHES)
                .filter_map(|t| {
                    let hop = self.binding_destination(&t.uri, t.source, t.local, t.nated);
                    hop.map(|h| (h, t))
                })
                .collect::<smallvec::SmallVec<[_; 2]>>(),
            Err(crate::lookup::LookupError::NotAnAor) => return Err(Refused::NotAnAor),
            Err(crate::lookup::LookupError::NotOwner(s)) => return Err(Refused::NotOwner(s)),
        };
        if targets.is_empty() {
            return Err(Refused::NotRegistered);
        }
        // The canonical AoR is what the lookup used; it is sent as To (RFC 3428 §4).
        let to = std::mem::take(&mut self.relay.aor_buf);
        let built = self.build(now, req, &to);
        self.relay.aor_buf = to;
        let (key, bytes) = built;
        if self.relay.txns.has_room(bytes.len()).is_err() {
            return Err(Refused::Busy);
        }
        let idx = self.relay.txns.insert(key);
        let c = self.relay.txns.cell_mut(idx);
        c.origin = Origin::Local;
        c.invite = false;
        c.req = bytes;
        c.loop_hash = key as u32;
        c.up_local = targets[0].1.local;
        // Never used: a Local cell sends nothing upstream.
        c.up_dest = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let gen = c.gen;
        let mut contacts = 0;
        for ((local, dest), t) in targets {
            // RFC 3327 §5.3: the Path recorded at registration becomes the Route.
            let route_edit = !t.path.is_empty();
            let mut branch = Branch::new(local, dest, (t.uri, t.path, route_edit), now);
            branch.pinned = t.nated || dest == t.source;
            self.relay.txns.cell_mut(idx).branches.push(branch);
            contacts += 1;
        }
        self.relay.originated.pending.insert(
            idx,
            Pending {
                gen,
                consumer,
                results: vec![None; contacts],
            },
        );
        for b in 0..contacts {
            self.send_branch(now, idx, b);
        }
        Ok(contacts)
    }

    /// The request without Via and Max-Forwards (the branch adds our Via and
    /// `Max-Forwards: 70`, RFC 3261 §16.6 step 3 with none present), and its index key.
    fn build(&mut self, now: Millis, req: &NewRequest<'_>, to: &[u8]) -> (u64, Vec<u8>) {
        let o = &mut self.relay.originated;
        o.counter = o.counter.wrapping_add(1);
        let parts: [&[u8]; 4] = [
            &self.io.cfg.seed.to_le_bytes(),
            &self.io.cfg.shard.0.to_le_bytes(),
            &o.counter.to_le_bytes(),
            &self.io.unix_of(now).to_le_bytes(),
        ];
        let mac = &self.io.mac;
        let id_hi = mac.digest(
            crate::secret::Purpose::Originate,
            &[b"call-id", &parts.concat()],
        );
        let id_lo = mac.digest(
            crate::secret::Purpose::Originate,
            &[b"call-id2", &parts.concat()],
        );
        let tag = mac.digest(
            crate::secret::Purpose::Originate,
            &[b"from-tag", &parts.concat()],
        );
        let key = mac.digest(
            crate::secret::Purpose::Originate,
            &[b"key", &parts.concat()],
        );
        let mut out = Vec::with_capacity(256 + req.body.len());
        out.extend_from_slice(req.method);
        out.push(b' ');
        out.extend_from_slice(to);
        out.extend_from_slice(b" SIP/2.0\r\nFrom: <");
        out.extend_from_slice(req.from);
        out.extend_from_slice(b">;tag=");
        hex16(&mut out, tag);
        out.extend_from_slice(b"\r\nTo: <");
        out.extend_from_slice(to);
        out.extend_from_slice(b">\r\nCall-ID: ");
        hex16(&mut out, id_hi);
        hex16(&mut out, id_lo);
        out.extend_from_slice(b"\r\nCSeq: 1 ");
        out.extend_from_slice(req.method);
        out.extend_from_slice(b"\r\nUser-Agent: ");
        out.extend_from_slice(self.io.cfg.server_name.as_bytes());
        out.extend_from_slice(b"\r\n");
        if !req.body.is_empty() {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(req.content_type);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(req.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(req.body);
        (key, out)
    }

    /// **Hook** (`offer_best`, `branch_gave_up`): branch `b` of cell `idx` has its final.
    /// For a [`Origin::Local`] cell it is kept for the consumer (the first final only) and
    /// `true` is returned; for a relayed cell, `false` (the relay ranks it, §16.7).
    pub(crate) fn local_final(&mut self, idx: u32, b: usize, code: u16, reason: &[u8]) -> bool {
        let c = self.relay.txns.cell(idx);
        if c.origin != Origin::Local {
            return false;
        }
        let gen = c.gen;
        let contact = c
            .branches
            .get(b)
            .map(|br| br.uri.clone())
            .unwrap_or_default();
        if let Some(p) = self
            .relay
            .originated
            .pending
            .get_mut(&idx)
            .filter(|p| p.gen == gen)
        {
            if let Some(slot @ None) = p.results.get_mut(b) {
                let reason = &reason[..reason.len().min(MAX_REASON)];
                *slot = Some(TargetFinal {
                    contact,
                    code,
                    reason: reason.to_vec(),
                });
            }
        }
        true
    }

    /// **Hook** (`check_complete`): for a [`Origin::Local`] cell, once every branch has its
    /// final the results go to the consumer and the cell ends (freed once the branches'
    /// timer K has run); nothing is sent. `false` for a relayed cell.
    pub(crate) fn local_complete(&mut self, idx: u32) -> bool {
        let c = self.relay.txns.cell(idx);
        if c.origin != Origin::Local {
            return false;
        }
        if c.state() == Srv::Trying && c.all_final() {
            let gen = c.gen;
            let o = &mut self.relay.originated;
            if let Some(p) = o.pending.remove(&idx).filter(|p| p.gen == gen) {
                let results = p.results.into_iter().flatten().collect();
                o.done.push_back(Finished {
                    consumer: p.consumer,
                    results,
                });
            }
            self.relay.txns.cell_mut(idx).set_state(Srv::Terminated);
        }
        self.maybe_free(idx);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_uris_and_media_types_reach_a_header() {
        assert!(is_sip_uri(b"sip:noc@example.com"));
        assert!(!is_sip_uri(b"sip:noc@example.com\r\nX-Evil: 1"));
        assert!(!is_sip_uri(b"sip:noc@example.com>;tag=x"));
        assert!(!is_sip_uri(b"tel:+123"));
        assert!(is_media_type(b"text/plain"));
        assert!(is_media_type(b"text/plain;charset=UTF-8"));
        assert!(!is_media_type(b"text"));
        assert!(!is_media_type(b"text/plain\r\nX: y"));
        assert!(!is_media_type(b"a/b/c"));
    }
}
