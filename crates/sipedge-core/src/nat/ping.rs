//! The keepalive pinger: a sweep over the shard's binding slots, one slice per wheel tick.
//!
//! **Scheduling** (ARCHITECTURE.md §4; Kamailio's nathelper walks a hash partition of usrloc
//! per timer tick the same way). With an interval of `I` ticks, slot `s` has the phase
//! `(s mod I)·K mod I` for a fixed `K` coprime with `I` (near `0.618·I`, so a small table
//! is spread over the whole interval too), and tick `t` visits exactly the slots of phase
//! `t mod I`: `s₀ = (t mod I)·K⁻¹ mod I`, then `s₀ + I`, `s₀ + 2I`, … The slab is dense (a
//! free list reuses removed slots), so every tick visits `capacity / I` slots and the send
//! rate stays flat. Nothing is stored per binding for scheduling: a binding is pinged once
//! per interval for as long as it occupies its slot, a refresh changes nothing, a removal
//! vacates the slot. When the shell calls late, every missed tick is swept, so no ping is
//! later than the turn after its tick — up to [`MAX_CATCH_UP_TICKS`]: after a longer stall
//! (or when the pinger wakes up with its first pingable binding) the older ticks are
//! skipped rather than sent as one burst; their slots wait one interval, which never
//! counts as a miss.
//!
//! **Stateless OPTIONS.** The branch (after `z9hG4bK`) is `np` + 44 hex digits: shard (4),
//! slot (8), slot generation (8), send time in ms mod 2³² (8) and a 64-bit MAC of those
//! (16) — SipHash-2-4 under the node secret ([`crate::secret`], issue 13: never a table
//! seed); the From tag and Call-ID repeat it. A response is recognised by the prefix on
//! any shard, its MAC checked there (every shard has the secret; a forged one counts as
//! stale and is never handed off), handed to the owner shard over the mesh, checked again
//! with the live slot of that generation and gives the RTT as `now − send time`: no table
//! of outstanding pings. Any final response counts as an answer (a 404 or 405 proves the
//! pinhole is open as well as a 200).
//!
//! **Timeout mode.** A ping still outstanding at the binding's next slot, with nothing heard
//! from the contact since (a REGISTER refresh or [`Core::note_alive`]), is a miss; at
//! `ping_failures_max` misses in a row the binding is removed instead of pinged again —
//! `ping_interval × ping_failures_max` after the first unanswered ping. The removal is
//! journalled like any other, counted and reported as [`CoreEvent::PingTimeout`].

use std::net::{IpAddr, SocketAddr};

use hdrhistogram::Histogram;
use sipedge_msg::branch::BranchLayout;
use sipedge_msg::{Message, Uri, Via};

use super::{
    host_ip, is_private, NatMode, NatState, PingEvent, PingMethod, PingMode, PingStep, RequestNat,
};
use crate::bindings::TICK_MILLIS;
use crate::io::{CoreEvent, Io};
use crate::location::Location;
use crate::location::Transport;
use crate::output::LocalId;
use crate::shard::{ShardId, ShardMsg};
use crate::stateless::IpText;
use crate::time::Millis;

pub use crate::stats::RTT_BUCKETS_MS;

/// Our ping branches (the codec is `sipedge-msg`'s): mark `np`, then shard, slot,
/// generation, send time and the MAC, in hex digits.
const LAYOUT: BranchLayout<5> = BranchLayout::new(*b"np", [4, 8, 8, 8, 16]);
const TOKEN_LEN: usize = LAYOUT.token_len();
/// An answer claiming an RTT above this (ms) is not one of ours.
const MAX_RTT_MS: u32 = 3_600_000;
/// Most past ticks swept in one call (one second): see the module docs.
const MAX_CATCH_UP_TICKS: u64 = 1000 / TICK_MILLIS;
/// Ticks between refreshes of the published histogram buckets (one second).
const BUCKET_REFRESH_TICKS: u64 = 1000 / TICK_MILLIS;

pub use crate::stats::NatStats;

/// The pinger's per-shard state (no per-binding state: see the module docs).
#[derive(Debug)]
pub(crate) struct NatRuntime {
    /// The last tick swept.
    last_tick: Option<u64>,
    /// The interval in ticks (≥ 1).
    interval: u64,
    /// `K⁻¹ mod interval` (the spreading multiplier's inverse).
    inv: u64,
    /// Whether any binding may be pinged (`[nat]` and the per-user overrides).
    pub(crate) active: bool,
    /// The per-user overrides this shard applied last (`nat/reload.rs`).
    pub(crate) applied: std::sync::Arc<super::NatUserTable>,
    hist: Histogram<u64>,
    hist_dirty: bool,
    aor: Vec<u8>,
}

impl NatRuntime {
    /// The RTT (ms) at quantile `q` (0.0..=1.0) over every answered ping of this shard.
    pub(crate) fn rtt_quantile_ms(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    /// When the pinger wants `handle_timeout`: the next tick, while some binding has
    /// keepalives on (`pinging`: the store's counts of pinged plain and NATed bindings).
    pub(crate) fn poll_timeout(
        &self,
        pinging: [usize; 2],
        cfg: &super::NatConfig,
    ) -> Option<Millis> {
        let [plain, nated] = pinging;
        let any = nated > 0 || (!cfg.ping_nated_only && plain > 0);
        if !self.active || !any {
            return None;
        }
        let next = self.last_tick.map_or(0, |t| t + 1);
        Some(Millis(next * TICK_MILLIS))
    }

    pub(crate) fn new(cfg: &super::NatConfig) -> NatRuntime {
        let interval = (u64::from(cfg.ping_interval_secs) * 1000 / TICK_MILLIS).max(1);
        let (_, inv) = spreading(interval);
        let applied = std::sync::Arc::clone(cfg.users.table());
        NatRuntime {
            last_tick: None,
            interval,
            inv,
            active: cfg.pings_possible(&applied),
            applied,
            hist: Histogram::new_with_max(u64::from(MAX_RTT_MS), 2).expect("valid bounds"),
            hist_dirty: false,
            aor: Vec::with_capacity(64),
        }
    }
}

/// The spreading multiplier `K` for an interval of `i` ticks and its inverse mod `i`.
pub(crate) fn spreading(i: u64) -> (u64, u64) {
    if i <= 1 {
        return (0, 0);
    }
    let mut k = (i * 618 / 1000).max(1);
    while gcd(k, i) != 1 {
        k += 1;
    }
    (k, mod_inverse(k, i))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `k⁻¹ mod m` for `gcd(k, m) = 1` (extended Euclid).
fn mod_inverse(k: u64, m: u64) -> u64 {
    let (mut r0, mut r1) = (m as i128, k as i128);
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(m as i128) as u64
}

/// The decoded branch token of one of our pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    shard: u16,
    slot: u32,
    gen: u32,
    sent: u32,
    mac: u64,
}

impl Token {
    fn encode(&self) -> [u8; TOKEN_LEN] {
        let mut t = [0u8; TOKEN_LEN];
        let fields = [
            u64::from(self.shard),
            u64::from(self.slot),
            u64::from(self.gen),
            u64::from(self.sent),
            self.mac,
        ];
        let written = LAYOUT.encode_token(&fields, &mut t);
        debug_assert!(written);
        t
    }

    /// The token of a branch, when it has our exact shape.
    fn decode(branch: &[u8]) -> Option<Token> {
        let [shard, slot, gen, sent, mac] = LAYOUT.decode(branch)?;
        Some(Token {
            shard: shard as u16,
            slot: slot as u32,
            gen: gen as u32,
            sent: sent as u32,
            mac,
        })
    }
}

/// The keepalive pinger (`nat/LIFECYCLE.md`): its runtime, the location store whose
/// bindings it pings, and the shard's sink, lent by the dispatcher. It names no other
/// subsystem.
pub(crate) struct NatPinger<'a> {
    pub(crate) io: &'a mut Io,
    pub(crate) loc: &'a mut Location,
    pub(crate) nat: &'a mut NatRuntime,
}

impl NatPinger<'_> {
    /// The store and the sink, for a binding the pinger removes.
    pub(crate) fn store(&mut self) -> crate::bindings::Store<'_> {
        crate::bindings::Store {
            io: self.io,
            loc: self.loc,
        }
    }

    /// The user's NAT overrides (by canonical AoR) resolved against `[nat]`: the hook the
    /// `[[users]]` settings arrive through ([`super::NatConfig::users`]).
    /// The generation this shard applied is read (no atomic operation): a reload takes
    /// effect at the shard's next `handle_timeout`, for new REGISTERs and stored bindings
    /// alike.
    pub(crate) fn nat_user(&self, aor: &[u8]) -> (NatMode, PingMode) {
        self.io.cfg.nat.resolve(&self.nat.applied, aor)
    }

    /// NAT facts of a REGISTER from `source` for the canonical `aor`, worked out once.
    /// `top_via`: the request's, `None` when unreadable; `source_text`: `source`'s IP.
    pub(crate) fn nat_request(
        &self,
        top_via: Option<&Via<'_>>,
        source: SocketAddr,
        source_text: IpText,
        aor: &[u8],
    ) -> RequestNat {
        let (mode, ping) = self.nat_user(aor);
        RequestNat {
            via_differs: top_via
                .is_some_and(|v| super::via_differs_text(v, source, source_text.as_bytes())),
            source_private: is_private(source.ip()),
            source_text,
            mode,
            ping,
        }
    }

    /// After a REGISTER stored binding `idx` for `contact`: NATed or not, its ping mode,
    /// and the contact is alive (a request from it just arrived).
    pub(crate) fn nat_on_store(&mut self, idx: u32, req: &RequestNat, contact: &Uri<'_>) {
        let nated = req.nated(contact);
        self.io.stats.nat.nated_registrations += u64::from(nated);
        self.loc.set_nat(idx, nated, req.ping);
        self.loc.nat_mut(idx).next(PingEvent::Heard);
    }

    /// After a restore stored binding `idx` of `aor`. Records do not carry the NAT flag:
    /// it is worked out again from the user's mode and, in `auto`, from the contact
    /// against the source (a private contact host behind a public source, or a contact
    /// ip:port that is not the source). A Via-only detection is not repeated.
    pub(crate) fn nat_on_restore(&mut self, idx: u32, aor: &[u8]) {
        let (mode, ping) = self.nat_user(aor);
        let nated = match mode {
            NatMode::Force => true,
            NatMode::Disabled => false,
            NatMode::Auto => self.nated_by_record(idx),
        };
        self.loc.set_nat(idx, nated, ping);
        self.loc.nat_mut(idx).next(PingEvent::Heard);
    }

    /// `auto` detection from what a binding stores (no Via): a private contact host behind
    /// a public source, or a contact ip:port that is not the source.
    pub(crate) fn nated_by_record(&self, idx: u32) -> bool {
        let b = self.loc.get(idx);
        let source = b.source();
        Uri::parse(b.contact()).is_ok_and(|u| match host_ip(u.host()) {
            Some(ip) => {
                (is_private(ip) && !is_private(source.ip()))
                    || SocketAddr::new(ip, u.port().unwrap_or(5060)) != source
            }
            None => false,
        })
    }

    /// Hook for the relay: a request or response from `source` was seen for the AoR
    /// `aor_uri` (owned by this shard). Every binding of the AoR registered from `source`
    /// counts as alive (no miss at its next ping). Returns how many matched.
    pub(crate) fn note_alive(&mut self, aor_uri: &[u8], source: SocketAddr) -> usize {
        let Ok(uri) = Uri::parse(aor_uri) else {
            return 0;
        };
        self.note_alive_uri(&uri, source)
    }

    /// [`Self::note_alive`] for a URI already parsed (the From or To of a validated
    /// message: not parsed a second time per relayed message).
    pub(crate) fn note_alive_uri(&mut self, uri: &Uri<'_>, source: SocketAddr) -> usize {
        let mut aor = std::mem::take(&mut self.nat.aor);
        let mut n = 0;
        if crate::aor::canonical_aor(uri, self.io.cfg.registrar.case_sensitive, &mut aor).is_ok()
            && crate::aor::owner_of(&aor, self.io.cfg.shards) == self.io.cfg.shard
        {
            let (domain, user) = crate::aor::split_aor(&aor);
            let domain = self.loc.domain_id_cached(domain);
            let head = self.loc.head(domain, user);
            let mut cur = head;
            while cur != crate::location::NONE {
                let b = self.loc.get(cur);
                let next = b.next;
                if b.source() == source {
                    self.loc.nat_mut(cur).next(PingEvent::Heard);
                    n += 1;
                }
                cur = next;
            }
        }
        self.nat.aor = aor;
        n
    }

    /// Sweeps every tick from the last one swept up to `now` (at most one interval).
    pub(crate) fn nat_timeout(&mut self, now: Millis) {
        if !self.nat.active {
            return;
        }
        let now_tick = now.0 / TICK_MILLIS;
        let last = *self.nat.last_tick.get_or_insert(now_tick.saturating_sub(1));
        if now_tick <= last {
            return;
        }
        let span = self.nat.interval.min(MAX_CATCH_UP_TICKS);
        let first = (last + 1).max((now_tick + 1).saturating_sub(span));
        for t in first..=now_tick {
            self.nat_sweep_tick(now, t, now_tick - t);
        }
        self.nat.last_tick = Some(now_tick);
        if self.nat.hist_dirty && last / BUCKET_REFRESH_TICKS != now_tick / BUCKET_REFRESH_TICKS {
            self.refresh_rtt_buckets();
        }
    }

    /// Copies the hdrhistogram into the published Prometheus buckets.
    pub(crate) fn refresh_rtt_buckets(&mut self) {
        for (out, le) in self.io.stats.nat.rtt_buckets.iter_mut().zip(RTT_BUCKETS_MS) {
            *out = self.nat.hist.count_between(0, le);
        }
        self.nat.hist_dirty = false;
    }

    /// The slots whose phase is tick `t`'s.
    fn nat_sweep_tick(&mut self, now: Millis, t: u64, late: u64) {
        let i = self.nat.interval;
        let cap = self.loc.capacity() as u64;
        let mut s = (t % i) * self.nat.inv % i;
        let mut visited = false;
        while s < cap {
            visited |= self.nat_ping_slot(now, s as u32);
            s += i;
        }
        if visited && late > 1 {
            self.io.stats.nat.ping_late_sweeps += 1;
        }
        if visited && late > self.io.stats.nat.ping_max_late_ticks {
            self.io.stats.nat.ping_max_late_ticks = late;
        }
    }

    /// One slot's keepalive duty; true when a ping was sent or the binding removed.
    fn nat_ping_slot(&mut self, now: Millis, idx: u32) -> bool {
        let Some(b) = self.loc.slot(idx) else {
            return false;
        };
        let mut st = b.nat;
        let mode = st.mode();
        let cfg = &self.io.cfg.nat;
        if mode == PingMode::Disabled || (cfg.ping_nated_only && !st.nated()) {
            return false;
        }
        if b.transport() != Transport::Udp {
            // RFC 5626 §4.4.1: on a connection the client keeps the flow alive with its
            // CRLF keepalives; the server needs no pings (issue 19).
            self.io.stats.nat.pings_skipped_stream += 1;
            return false;
        }
        let options = cfg.method == PingMethod::Options;
        let deregister_at = (mode == PingMode::Timeout).then_some(cfg.ping_failures_max);
        match st.next(PingEvent::Slot {
            options,
            deregister_at,
        }) {
            PingStep::Deregister { misses } => {
                self.io.stats.nat.pings_timed_out += 1;
                self.nat_deregister(idx, misses);
                return true;
            }
            PingStep::Ping { missed } => self.io.stats.nat.pings_timed_out += u64::from(missed),
            PingStep::Nothing => {}
        }
        let dest = reach_addr(b.contact(), b.source(), st.nated());
        let local = LocalId(b.local);
        let gen = b.gen;
        if options {
            let mut scratch = std::mem::take(&mut self.io.scratch);
            self.write_ping(&mut scratch, now, idx, gen, local);
            self.io.out.push(local, dest, &scratch);
            self.io.scratch = scratch;
        } else {
            self.io.out.push(local, dest, b"\r\n\r\n");
        }
        *self.loc.nat_mut(idx) = st;
        self.io.stats.nat.pings_sent += 1;
        true
    }

    fn token(&self, slot: u32, gen: u32, sent: u32) -> Token {
        self.token_of(self.io.cfg.shard.0, slot, gen, sent)
    }

    /// The token of a ping of shard `shard` (MAC over every field).
    fn token_of(&self, shard: u16, slot: u32, gen: u32, sent: u32) -> Token {
        let mut f = [0u8; 14];
        f[..2].copy_from_slice(&shard.to_le_bytes());
        f[2..6].copy_from_slice(&slot.to_le_bytes());
        f[6..10].copy_from_slice(&gen.to_le_bytes());
        f[10..].copy_from_slice(&sent.to_le_bytes());
        let mac = self.io.mac.digest(crate::secret::Purpose::Ping, &[&f]);
        Token {
            shard,
            slot,
            gen,
            sent,
            mac,
        }
    }

    /// A stateless OPTIONS ping to binding `idx` (RFC 3261 §11: OPTIONS with the mandatory
    /// headers of §8.1.1) into `out`.
    fn write_ping(&self, out: &mut Vec<u8>, now: Millis, idx: u32, gen: u32, local: LocalId) {
        let tok = self.token(idx, gen, now.0 as u32).encode();
        let contact = self.loc.get(idx).contact();
        let adv: &[u8] = match self.io.cfg.nat.advertise.get(usize::from(local.0)) {
            Some(a) => a.as_bytes(),
            None => self
                .io
                .cfg
                .domains
                .first()
                .map_or(&b"invalid"[..], |d| d.as_bytes()),
        };
        out.clear();
        out.extend_from_slice(b"OPTIONS ");
        out.extend_from_slice(contact);
        out.extend_from_slice(b" SIP/2.0\r\nVia: ");
        // Pings go to UDP bindings only (`nat_ping_slot`); the Via still names the
        // socket's transport (RFC 3261 §18.1.1).
        let via = self.io.cfg.proxy.transport_of(local).via_prefix();
        out.extend_from_slice(via.as_bytes());
        out.extend_from_slice(adv);
        out.extend_from_slice(b";branch=z9hG4bK");
        out.extend_from_slice(&tok);
        out.extend_from_slice(b"\r\nMax-Forwards: 70\r\nFrom: <sip:keepalive@");
        out.extend_from_slice(adv);
        out.extend_from_slice(b">;tag=");
        out.extend_from_slice(&tok);
        out.extend_from_slice(b"\r\nTo: <");
        out.extend_from_slice(contact);
        out.extend_from_slice(b">\r\nCall-ID: ");
        out.extend_from_slice(&tok);
        out.extend_from_slice(b"\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    }

    /// Removes binding `idx` after `misses` unanswered pings: journalled, counted, logged.
    fn nat_deregister(&mut self, idx: u32, misses: u8) {
        let mut aor = std::mem::take(&mut self.nat.aor);
        let (head, source, local) = {
            let b = self.loc.get(idx);
            self.loc.aor_of(b, &mut aor);
            (self.loc.head(Some(b.domain), b.user()), b.source(), b.local)
        };
        // RFC 5626 §5.3: 430 from now on (`flows`).
        self.store().flow_failed(LocalId(local), source);
        self.store().remove_binding(&aor, head, idx);
        self.nat.aor = aor;
        self.io.stats.nat.ping_deregistrations += 1;
        self.io.event(CoreEvent::PingTimeout { source, misses });
    }

    /// A response whose top Via branch is one of our pings: handled (true) or not ours.
    pub(crate) fn nat_response(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &sipedge_msg::Validated<'_>,
    ) -> bool {
        let Some(tok) = v.top_via.branch().and_then(Token::decode) else {
            return false;
        };
        let genuine = crate::secret::tags_equal(
            self.token_of(tok.shard, tok.slot, tok.gen, tok.sent).mac,
            tok.mac,
        );
        if !genuine {
            // Our shape, not our MAC: forged (or from before a secret change). Counted as
            // stale, never handed off.
            self.io.stats.nat.ping_answers_stale += 1;
            return true;
        }
        if tok.shard != self.io.cfg.shard.0 {
            if tok.shard < self.io.cfg.shards {
                // ARCHITECTURE.md §1: the binding's owner handles the answer.
                self.io.stats.nat.ping_answers_forwarded += 1;
                self.io.shard_out.push_back((
                    ShardId(tok.shard),
                    ShardMsg::Datagram {
                        local,
                        remote,
                        arrived: now,
                        bytes: msg.as_bytes().to_vec(),
                        parsed: msg.detach(v).map(Box::new),
                    },
                ));
            } else {
                self.io.stats.nat.ping_answers_stale += 1;
            }
            return true;
        }
        if msg.status().is_some_and(|s| s < 200) {
            return true; // provisional: wait for the final response
        }
        let rtt = (now.0 as u32).wrapping_sub(tok.sent);
        if rtt > MAX_RTT_MS || self.loc.live(tok.slot, tok.gen).is_none() {
            self.io.stats.nat.ping_answers_stale += 1;
            return true;
        }
        self.loc
            .nat_mut(tok.slot)
            .next(PingEvent::Answered { rtt_ms: rtt });
        let s = &mut self.io.stats.nat;
        s.pings_answered += 1;
        s.rtt_count += 1;
        s.rtt_sum_ms += u64::from(rtt);
        self.nat.hist.saturating_record(u64::from(rtt));
        self.nat.hist_dirty = true;
        true
    }
}

/// Where a binding is reached: the source of its REGISTER when NATed (Kamailio's
/// `received`), else the contact's own ip:port when it is an IP literal (RFC 3263 name
/// resolution does not belong in the core: a host name falls back to the source).
pub(crate) fn reach_addr(contact: &[u8], source: SocketAddr, nated: bool) -> SocketAddr {
    if nated {
        return source;
    }
    Uri::parse(contact)
        .ok()
        .and_then(|u| {
            let ip: IpAddr = host_ip(u.host())?;
            Some(SocketAddr::new(ip, u.port().unwrap_or(5060)))
        })
        .unwrap_or(source)
}

impl NatState {
    /// For tests and lookups: the smoothed RTT in whole milliseconds.
    pub(crate) fn srtt_ms(&self) -> Option<u16> {
        self.srtt_8().map(|s| s.div_ceil(8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        let t = Token {
            shard: 3,
            slot: 0xdead_beef,
            gen: 7,
            sent: 123_456,
            mac: 0x0102_0304,
        };
        let mut branch = sipedge_msg::branch::MAGIC_COOKIE.to_vec();
        branch.extend_from_slice(&t.encode());
        assert_eq!(Token::decode(&branch), Some(t));
        assert_eq!(Token::decode(b"z9hG4bKnp00"), None);
        branch[10] = b'X';
        assert_eq!(Token::decode(&branch), None);
    }

    #[test]
    fn spreading_is_a_permutation() {
        for i in [1u64, 2, 100, 600, 6000, 6001] {
            let (k, inv) = spreading(i);
            let mut seen = vec![false; i as usize];
            for p in 0..i {
                let s = p * inv % i;
                assert_eq!(s * k % i, p % i.max(1), "interval {i}");
                seen[s as usize] = true;
            }
            assert!(seen.iter().all(|&x| x), "interval {i}");
        }
    }

    #[test]
    fn reach_address() {
        let src: SocketAddr = "203.0.113.9:40001".parse().expect("addr");
        assert_eq!(reach_addr(b"sip:a@10.0.0.2:5062", src, true), src);
        assert_eq!(
            reach_addr(b"sip:a@198.51.100.2:5062", src, false),
            "198.51.100.2:5062".parse().expect("addr")
        );
        assert_eq!(
            reach_addr(b"sip:a@[2001:db8::2]", src, false),
            "[2001:db8::2]:5060".parse().expect("addr")
        );
        assert_eq!(reach_addr(b"sip:a@phone.example", src, false), src);
    }
}
