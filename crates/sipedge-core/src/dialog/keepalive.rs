//! In-dialog keepalives (issue 16 item 1; Kamailio's dialog `ka_timer`): every
//! `[dialogs] keepalive_secs` the owner shard of a confirmed call sends an OPTIONS inside
//! the dialog to both ends ([`super::ends`]). An end that answers nothing within 64·T1
//! (RFC 3261 §17.1.2.2, timer F), or answers 481 (§12.2.2: no such dialog) or 408, is gone:
//! the call is ended with a BYE to both sides ([`super::end`]) and its channels released.
//!
//! **Stateless pings with a MAC'd branch**, not client transactions: the branch (after
//! `z9hG4bK`) is `dk` · dialog key (16 hex) · kind (`a`/`b`: OPTIONS toward A/B, `A`/`B`:
//! BYE) · round start in ms mod 2³² (8 hex) · SipHash of those under the node secret
//! (16 hex). A response is recognised by the prefix on any shard, its MAC checked there, and
//! handed to the dialog's owner (`key % shards`) as [`super::DialogMsg::Alive`] — no
//! per-ping table, no transaction cell: what a round costs is 2 bits and 4 bytes in the
//! dialog's block. Instead of timer E's doubling retransmissions, a side still silent at
//! 32·T1 is sent the OPTIONS once more; at 64·T1 it is gone.
//!
//! **Scheduling** uses two FIFO queues instead of wheel entries (the same choice as the
//! max-duration queue): every dialog's next round is `period` after the previous, every
//! check `32·T1` after it was queued, so each queue stays sorted by construction. Stale
//! entries (a dialog that ended) are skipped when they come up and compacted when a queue
//! outgrows twice the table. A round is not restarted while one is outstanding.

use sipedge_msg::fmt::{get_hex, push_hex};
use std::net::SocketAddr;

use sipedge_msg::{Message, Validated};

use super::ends::{self, Ends, Own, Side};
use super::{DialogCx, Dialogs};
use crate::output::LocalId;
use crate::secret::Purpose;
use crate::shard::{DialogMsg, ShardId, ShardMsg};
use crate::time::Millis;

const COOKIE: &[u8] = b"z9hG4bK";
const PREFIX: &[u8] = b"dk";
/// Branch token after the cookie: prefix, key, kind, sent, MAC.
const TOKEN_LEN: usize = 2 + 16 + 1 + 8 + 16;

/// A decoded branch of one of our in-dialog requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ping {
    pub key: u64,
    pub own: Own,
    pub side: Side,
    pub sent: u32,
    pub mac: u64,
}

fn kind_char(own: Own, side: Side) -> u8 {
    match (own, side) {
        (Own::Options, Side::A) => b'a',
        (Own::Options, Side::B) => b'b',
        (Own::Bye, Side::A) => b'A',
        (Own::Bye, Side::B) => b'B',
    }
}

impl Ping {
    /// The branch (cookie included).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(COOKIE);
        out.extend_from_slice(PREFIX);
        push_hex(out, self.key, 16);
        out.push(kind_char(self.own, self.side));
        push_hex(out, u64::from(self.sent), 8);
        push_hex(out, self.mac, 16);
    }

    /// A branch of our exact shape (MAC not checked).
    pub(crate) fn decode(branch: &[u8]) -> Option<Ping> {
        let t = branch.strip_prefix(COOKIE)?.strip_prefix(PREFIX)?;
        if t.len() != TOKEN_LEN - PREFIX.len() {
            return None;
        }
        let (own, side) = match t[16] {
            b'a' => (Own::Options, Side::A),
            b'b' => (Own::Options, Side::B),
            b'A' => (Own::Bye, Side::A),
            b'B' => (Own::Bye, Side::B),
            _ => return None,
        };
        Some(Ping {
            key: get_hex(&t[..16])?,
            own,
            side,
            sent: get_hex(&t[17..25])? as u32,
            mac: get_hex(&t[25..41])?,
        })
    }
}

impl Dialogs {
    /// Starts the keepalive schedule of the new dialog `key`, first round `period` from now.
    pub(crate) fn schedule_keepalive(&mut self, key: u64, now: Millis, period_ms: u64) {
        self.ka_due.push_back((key, now.plus(period_ms)));
        if self.ka_due.len() > 2 * self.table.len() + 1024 {
            let table = &self.table;
            self.ka_due.retain(|(k, _)| table.contains_key(k));
        }
    }

    fn queue_check(&mut self, key: u64, at: Millis) {
        self.ka_check.push_back((key, at));
        if self.ka_check.len() > 2 * self.table.len() + 1024 {
            let table = &self.table;
            self.ka_check.retain(|(k, _)| table.contains_key(k));
        }
    }

    /// The next keepalive event.
    pub(crate) fn next_keepalive(&self) -> Option<Millis> {
        let a = self.ka_due.front().map(|&(_, at)| at);
        let b = self.ka_check.front().map(|&(_, at)| at);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Our `host:port` on socket `local`, as the relay writes it in its Via (issue 15: the
/// advertised name when set, else the advertised address, else the first socket's).
fn write_sent_by(out: &mut String, cfg: &crate::config::ProxyConfig, local: LocalId) {
    use std::fmt::Write as _;
    let i = usize::from(local.0);
    if let Some(name) = cfg.advertise_names.get(i).filter(|n| !n.is_empty()) {
        out.push_str(name);
        return;
    }
    let addr = cfg
        .advertise
        .get(i)
        .or(cfg.advertise.first())
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
    let _ = write!(out, "{addr}");
}

impl DialogCx<'_> {
    fn ping_mac(&self, key: u64, own: Own, side: Side, sent: u32) -> u64 {
        self.io.mac.digest(
            Purpose::DialogPing,
            &[
                &key.to_be_bytes(),
                &[kind_char(own, side)],
                &sent.to_be_bytes(),
            ],
        )
    }

    /// Writes our request `own` for dialog `key` toward `side` and queues it to that end's
    /// flow; `sent` goes in the branch.
    pub(crate) fn send_own(
        &mut self,
        key: u64,
        block: &[u8],
        (own, side): (Own, Side),
        sent: u32,
        reason: &[u8],
    ) {
        let e = Ends(block);
        let Some(flow) = e.flow(side) else {
            return;
        };
        let mac = self.ping_mac(key, own, side, sent);
        let mut branch = Vec::with_capacity(COOKIE.len() + TOKEN_LEN);
        Ping {
            key,
            own,
            side,
            sent,
            mac,
        }
        .write(&mut branch);
        let mut via = String::with_capacity(64);
        via.push_str(self.io.cfg.proxy.transport_of(flow.local).via_prefix());
        write_sent_by(&mut via, &self.io.cfg.proxy, flow.local);
        let mut out = Vec::with_capacity(512);
        ends::write_request(&mut out, e, own, side, (via.as_bytes(), &branch), reason);
        self.io.out.push(flow.local, flow.addr, &out);
        match own {
            Own::Options => self.dialogs.stats.keepalives_sent += 1,
            Own::Bye => self.dialogs.stats.byes_sent += 1,
        }
    }

    /// `[dialogs] keepalive_secs`: due rounds sent, due checks made (a second OPTIONS to a
    /// silent side at 32·T1, the call ended at 64·T1).
    pub(crate) fn keepalive_timeout(&mut self, now: Millis) {
        let period = u64::from(self.io.cfg.dialogs.keepalive_secs) * 1000;
        let half = 32 * self.io.cfg.sip.t1_ms;
        while let Some(&(key, at)) = self.dialogs.ka_check.front() {
            if at > now {
                break;
            }
            self.dialogs.ka_check.pop_front();
            let Some(block) = self.dialogs.table.get(&key).and_then(|e| e.ends.as_deref()) else {
                continue;
            };
            let (waiting, sent) = (ends::awaiting(block), ends::sent(block));
            let elapsed = (at.0 as u32).wrapping_sub(sent);
            if waiting == 0 {
                continue;
            }
            if u64::from(elapsed) == half {
                // 32·T1 without an answer: once more to the silent sides.
                let block = block.to_vec();
                for side in [Side::A, Side::B] {
                    if waiting & side.bit() != 0 {
                        self.send_own(key, &block, (Own::Options, side), sent, b"");
                    }
                }
                self.dialogs.queue_check(key, at.plus(half));
            } else if u64::from(elapsed) == 2 * half {
                self.dialogs.stats.keepalive_timeouts += 1;
                self.end_call(now, key, super::end::Cause::KeepaliveTimeout);
            }
        }
        if period == 0 {
            self.dialogs.ka_due.clear();
            return;
        }
        while let Some(&(key, at)) = self.dialogs.ka_due.front() {
            if at > now {
                break;
            }
            self.dialogs.ka_due.pop_front();
            let Some(entry) = self.dialogs.table.get_mut(&key) else {
                continue;
            };
            // A stale entry of an earlier dialog with this key is off its phase.
            if at.0 <= entry.created.0 || (at.0 - entry.created.0) % period != 0 {
                continue;
            }
            let Some(block) = entry.ends.as_deref_mut() else {
                continue;
            };
            // The next round keeps the phase, past `now` after a stall.
            let behind = (now.0 - at.0) / period;
            self.dialogs
                .ka_due
                .push_back((key, at.plus((behind + 1) * period)));
            if ends::awaiting(block) != 0 {
                continue; // a round is outstanding: its checks decide
            }
            let sent = now.0 as u32;
            ends::set_round(block, Side::A.bit() | Side::B.bit(), sent);
            let block = block.to_vec();
            for side in [Side::A, Side::B] {
                self.send_own(key, &block, (Own::Options, side), sent, b"");
            }
            self.dialogs.queue_check(key, now.plus(half));
        }
    }

    /// A response whose top Via branch is one of our in-dialog requests: handled (true), or
    /// not ours (false). Its MAC is checked here; an OPTIONS answer goes to the dialog's
    /// owner. Answers to our BYEs are absorbed.
    pub(crate) fn ka_response(
        &mut self,
        now: Millis,
        msg: &Message<'_>,
        v: &Validated<'_>,
    ) -> bool {
        let Some(p) = v.top_via.branch().and_then(Ping::decode) else {
            return false;
        };
        let genuine = crate::secret::tags_equal(self.ping_mac(p.key, p.own, p.side, p.sent), p.mac);
        let code = msg.status().unwrap_or(0);
        if !genuine {
            self.dialogs.stats.keepalive_answers_stale += 1;
            return true;
        }
        if p.own == Own::Bye || code < 200 {
            return true; // a BYE's answer, or a provisional: nothing to do
        }
        let owner = ShardId((p.key % u64::from(self.io.cfg.shards.max(1))) as u16);
        if owner != self.io.cfg.shard {
            self.dialogs.stats.handed_off += 1;
            self.io.shard_out.push_back((
                owner,
                ShardMsg::Dialog(DialogMsg::Alive {
                    key: p.key,
                    b_side: p.side == Side::B,
                    sent: p.sent,
                    code,
                }),
            ));
            return true;
        }
        self.answered(now, p.key, p.side, p.sent, code);
        true
    }

    /// The final answer `code` of `side` to the round started at `sent` of dialog `key`
    /// (on its owner): 481 or 408 ends the call, anything else clears the side.
    pub(crate) fn answered(&mut self, now: Millis, key: u64, side: Side, sent: u32, code: u16) {
        let Some(block) = self
            .dialogs
            .table
            .get_mut(&key)
            .and_then(|e| e.ends.as_deref_mut())
        else {
            self.dialogs.stats.keepalive_answers_stale += 1;
            return;
        };
        if ends::sent(block) != sent || ends::awaiting(block) & side.bit() == 0 {
            self.dialogs.stats.keepalive_answers_stale += 1;
            return;
        }
        if code == 481 || code == 408 {
            self.dialogs.stats.keepalive_gone += 1;
            self.end_call(now, key, super::end::Cause::Gone(code));
            return;
        }
        self.dialogs.stats.keepalives_answered += 1;
        ends::answered(block, side);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_round_trip() {
        let p = Ping {
            key: 0x0123_4567_89ab_cdef,
            own: Own::Bye,
            side: Side::B,
            sent: 0xdead_beef,
            mac: 42,
        };
        let mut b = Vec::new();
        p.write(&mut b);
        assert_eq!(Ping::decode(&b), Some(p));
        b[12] = b'X';
        assert_eq!(Ping::decode(&b), None);
        assert_eq!(Ping::decode(b"z9hG4bKnp1234"), None);
    }
}
