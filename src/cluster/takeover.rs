//! `[cluster] takeover = true` (issue 20 item 5, floating-address deployments): when a node
//! this edge saw alive loses its liveness key, ONE survivor adopts its bindings.
//!
//! 1. **Claim**: `SET sipedge:takeover:<dead> <me> NX PX 60000` — the winner adopts, the
//!    others do nothing (a dead node is claimed once a minute at most).
//! 2. **Read**: `SCAN sipedge:b:*` on every master (bounded batches: [`SCAN_COUNT`] keys a
//!    step, one pipelined `HGETALL` per step, at most [`MAX_ADOPT`] bindings in all), keeping
//!    the live (not expired, not tombstoned) fields whose node is the dead one.
//! 3. **Hand over**: each goes to its AoR's owner shard ([`ClusterClient::adopt`], a
//!    bounded inbox drained each turn), which stores it on this edge's listen socket whose
//!    address is the dead edge's `home` (the floating address, now ours) or else the first
//!    UDP socket, with the phone's NAT source address from the store: this edge's NAT
//!    pinger pings it and calls are delivered on it. The shard journals it like a
//!    REGISTER, so the write-behind rewrites it as this node's (home = our address), with
//!    the adoption time as its version: the dead node's older writes cannot win.
//!
//! Bindings written by a build that did not share the source address are adopted with
//! the Contact's address as source (the best there is).
//!
//! Limits (as built): the adoption runs on the lookup thread, so lookups wait while a big
//! keyspace is scanned; a node is taken over only when this edge saw it alive and then
//! gone (not one already dead when this edge started); a winner that dies mid-adoption
//! leaves the rest unadopted (the claim stands 60 s and nothing retries it); a dead edge
//! that comes back keeps its own copies locally (its writes lose to the adopter's newer
//! versions in Redis, but nothing removes them from its table).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use redis::{IntoConnectionInfo, Value};

use super::store::Conn;
use super::value::{self, KEY_PREFIX};
use super::{unix_ms, ClusterClient, Settings};

/// Keys asked per `SCAN` step (and `HGETALL`s per pipeline).
pub const SCAN_COUNT: usize = 256;
/// Bindings adopted per takeover at most.
pub const MAX_ADOPT: usize = 1_000_000;
/// `SCAN` steps per master at most (a hostile or huge keyspace stays bounded).
pub const MAX_SCAN_STEPS: usize = 100_000;
/// 1 ms waits for a full shard inbox before a binding is dropped (counted in
/// `sipedge_cluster_dropped_total`).
pub const ADOPT_RETRIES: u32 = 1000;
/// How long a claim stands, ms.
pub const CLAIM_MS: u64 = 60_000;

/// One binding handed to a shard for adoption (owned: it crosses threads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopt {
    pub aor: Box<[u8]>,
    pub contact: Box<str>,
    pub call_id: Box<str>,
    pub instance: Box<[u8]>,
    pub reg_id: u32,
    pub path: Box<str>,
    pub cseq: u32,
    pub q: u16,
    pub expires_unix_ms: u64,
    /// The version to write it with: the adoption time (or the stored one, if later).
    pub registered_unix_ms: u64,
    pub source: SocketAddr,
    /// The dead edge's SIP address (a floating address this edge now listens on, maybe).
    pub home: SocketAddr,
}

/// `sipedge:takeover:<dead>`.
pub fn claim_key(dead: &str) -> String {
    format!("sipedge:takeover:{dead}")
}

/// The adoptions in one `HGETALL` reply of AoR `aor`: live fields of node `dead`.
pub fn adoptions(aor: &[u8], reply: &Value, dead: &str, now: u64, out: &mut Vec<Adopt>) {
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Map(p) => p.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(items) => items.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        _ => return,
    };
    for (f, v) in pairs.into_iter().take(super::lookup::MAX_BINDINGS_PER_AOR) {
        let (Value::BulkString(f), Value::BulkString(v)) = (f, v) else {
            continue;
        };
        let Some(d) = value::decode(v) else {
            continue;
        };
        if d.tombstone || *d.binding.node != *dead || d.binding.expires_at_unix_ms <= now {
            continue;
        }
        let Some((instance, reg_id)) = value::parse_field(f) else {
            continue;
        };
        let Some(source) = d.source.or_else(|| contact_addr(&d.binding.contact)) else {
            continue;
        };
        out.push(Adopt {
            aor: aor.into(),
            contact: d.binding.contact.clone(),
            call_id: d.call_id.into(),
            instance: instance.into(),
            reg_id,
            path: d.path.into(),
            cseq: d.version.1,
            q: d.binding.q,
            expires_unix_ms: d.binding.expires_at_unix_ms,
            registered_unix_ms: d.version.0.max(now),
            source,
            home: d.binding.home,
        });
    }
}

/// `ip:port` of a Contact URI whose host is an IP address (port 5060 when none).
fn contact_addr(contact: &str) -> Option<SocketAddr> {
    let u = sipedge_msg::Uri::parse(contact.as_bytes()).ok()?;
    let host = std::str::from_utf8(u.host()).ok()?;
    let ip: std::net::IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, u.port().unwrap_or(5060)))
}

/// The AoR of a `sipedge:b:{<aor>}` key.
fn aor_of_key(key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(KEY_PREFIX.as_bytes())?.strip_suffix(b"}")
}

/// Claims `dead` and, when this edge wins, adopts its bindings. Returns how many were
/// handed to the shards, or `None` when another survivor holds the claim.
pub(crate) fn take_over(
    conn: &mut Conn,
    s: &Settings,
    client: &ClusterClient,
    dead: &str,
) -> redis::RedisResult<Option<usize>> {
    let mut claim = redis::cmd("SET");
    claim
        .arg(claim_key(dead))
        .arg(&s.node)
        .arg("NX")
        .arg("PX")
        .arg(CLAIM_MS);
    if !matches!(conn.query(&claim)?, Value::Okay) {
        tracing::info!(target: "sip::cluster", dead, "node gone; another survivor adopts its bindings");
        return Ok(None);
    }
    client.stats().takeovers.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(target: "sip::cluster", dead, "node gone; this edge adopts its bindings (takeover)");
    let mut handed = 0usize;
    let mut found = Vec::new();
    let mut step = |c: &mut Conn, keys: &[Vec<u8>]| -> redis::RedisResult<()> {
        let aors: Vec<&[u8]> = keys.iter().filter_map(|k| aor_of_key(k)).collect();
        let cmds = aors
            .iter()
            .map(|a| {
                let mut c = redis::cmd("HGETALL");
                c.arg(value::aor_key(a));
                c
            })
            .collect();
        let replies = c.pipeline(cmds)?;
        let now = unix_ms();
        for (a, r) in aors.iter().zip(&replies) {
            adoptions(a, r, dead, now, &mut found);
        }
        for a in found.drain(..) {
            let mut a = Box::new(a);
            if handed >= MAX_ADOPT {
                break;
            }
            // A full inbox: wait for the shard to drain it (bounded), then drop, counted.
            let mut tries = 0;
            loop {
                match client.adopt(a) {
                    Ok(()) => {
                        handed += 1;
                        break;
                    }
                    Err(back) if tries < ADOPT_RETRIES => {
                        a = back;
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(_) => {
                        client.stats().dropped.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        Ok(())
    };
    match conn {
        Conn::Single(_) => scan(conn, &mut step)?,
        Conn::Cluster(_) => {
            for mut m in masters(conn, &s.redis)? {
                scan(&mut m, &mut step)?;
            }
        }
    }
    tracing::warn!(target: "sip::cluster", dead, adopted = handed, "takeover: bindings handed to the shards");
    Ok(Some(handed))
}

/// What a scan does with each step's keys.
type Step<'a> = dyn FnMut(&mut Conn, &[Vec<u8>]) -> redis::RedisResult<()> + 'a;

/// `SCAN 0 MATCH sipedge:b:* COUNT n` to the end (or [`MAX_SCAN_STEPS`]) on one server.
fn scan(conn: &mut Conn, step: &mut Step<'_>) -> redis::RedisResult<()> {
    let mut cursor = b"0".to_vec();
    for _ in 0..MAX_SCAN_STEPS {
        let mut c = redis::cmd("SCAN");
        c.arg(&cursor[..])
            .arg("MATCH")
            .arg(format!("{KEY_PREFIX}*"))
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let Value::Array(parts) = conn.query(&c)? else {
            return Ok(());
        };
        let [Value::BulkString(next), Value::Array(keys)] = &parts[..] else {
            return Ok(());
        };
        let keys: Vec<Vec<u8>> = keys
            .iter()
            .filter_map(|k| match k {
                Value::BulkString(b) => Some(b.clone()),
                _ => None,
            })
            .collect();
        if !keys.is_empty() {
            step(conn, &keys)?;
        }
        if next[..] == b"0"[..] {
            return Ok(());
        }
        cursor.clone_from(next);
    }
    Ok(())
}

/// One plain connection per master of a Redis Cluster (`CLUSTER SLOTS`), with the first
/// seed's settings (credentials, TLS) and the master's address.
fn masters(conn: &mut Conn, seeds: &[String]) -> redis::RedisResult<Vec<Conn>> {
    let Value::Array(slots) = conn.query(&redis::cmd("CLUSTER").arg("SLOTS").clone())? else {
        return Ok(Vec::new());
    };
    let mut addrs: Vec<(String, u16)> = Vec::new();
    for range in &slots {
        let Value::Array(r) = range else { continue };
        let Some(Value::Array(m)) = r.get(2) else {
            continue;
        };
        let (Some(Value::BulkString(ip)), Some(Value::Int(port))) = (m.first(), m.get(1)) else {
            continue;
        };
        let (Ok(ip), Ok(port)) = (String::from_utf8(ip.clone()), u16::try_from(*port)) else {
            continue;
        };
        if !addrs.contains(&(ip.clone(), port)) {
            addrs.push((ip, port));
        }
    }
    let Some(seed) = seeds.first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (host, port) in addrs {
        let info = seed.as_str().into_connection_info()?;
        let addr = super::pipe::node_addr(info.addr(), host, port);
        let client = redis::Client::open(info.set_addr(addr))?;
        let c = client.get_connection_with_timeout(std::time::Duration::from_secs(2))?;
        c.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        out.push(Conn::Single(c));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dead_nodes_live_bindings_are_adopted() {
        let v = |node: &str, exp: u64, kind: &str| {
            Value::BulkString(
                format!("5:7:{exp}:{kind}\n{node}\n127.0.66.11:5060\n1000\nsip:a@127.0.66.31:5070\n\n127.0.66.31:5070\ncid").into_bytes(),
            )
        };
        let f = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![
            f("c:sip:a@127.0.66.31:5070"),
            v("edge-a", 100, "u"),
            f("c:sip:b"),
            v("edge-b", 100, "u"),
            f("c:sip:c"),
            v("edge-a", 5, "u"),
            f("c:sip:d"),
            v("edge-a", 100, "t"),
            f("bad"),
            v("edge-a", 100, "u"),
        ]);
        let mut out = Vec::new();
        adoptions(b"sip:a@x", &reply, "edge-a", 10, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(a.source, "127.0.66.31:5070".parse().expect("addr"));
        assert_eq!(
            (a.cseq, a.registered_unix_ms),
            (7, 10),
            "versioned at adoption"
        );
        assert_eq!(&*a.call_id, "cid");
        assert_eq!(aor_of_key(b"sipedge:b:{sip:a@x}"), Some(&b"sip:a@x"[..]));
    }
}
