//! The write-behind's connections and pipelines: one plain `redis::Connection` per master
//! (a Redis Cluster's from `CLUSTER SLOTS`, or the one server), and each batch's script
//! calls written as RESP by hand into one reused buffer per master, sent with
//! `send_packed_command`, the replies only checked for errors.
//!
//! Why not the crate's `Cmd` and cluster pipeline for this one command: per AoR they cost a
//! `Cmd` (its own argument vectors), the cluster pipeline's routing (the command name
//! upper-cased, the key's slot, the node's address cloned into a map), a copy into a
//! per-node pipeline buffer of a fresh 100+ kB each batch (which the allocator returns to
//! the kernel and faults in again), and a `Vec<Value>` reordered back — about a third of an
//! edge's CPU per new binding in cluster mode (issue 20, PERFORMANCE.md). The crate still
//! makes every connection (URL, credentials, TLS, timeouts) and parses every reply.
//!
//! Topology changes: a reply `MOVED`/`ASK`/`CLUSTERDOWN` (or any other error reply) fails
//! the batch; the writer puts it back and reconnects, which reads `CLUSTER SLOTS` again.
//! Writes are versioned (`store::WRITE_SCRIPT`), so a batch written twice in part is
//! harmless.

use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo, RedisResult, Value};

use super::backlog::Pending;
use super::store::WRITE_SCRIPT;
use super::value::{INVALIDATION_CHANNEL, KEY_PREFIX};

/// Hash slots of a Redis Cluster.
pub const SLOTS: usize = 16_384;
/// Masters used at most (a slot map naming more is refused).
pub const MAX_NODES: usize = 1024;
const NO_NODE: u16 = u16::MAX;

/// CRC16-CCITT (XMODEM) of every byte value, for [`crc16`]'s table-driven loop.
const CRC16_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// CRC16-CCITT (XMODEM), Redis Cluster's key hash (cluster spec, "Key distribution model"),
/// a table lookup per byte (bit by bit, it was a third of the writer's own CPU: every AoR
/// written is routed by it, issue 20).
fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// A key's hash slot: the CRC16 of its hash tag (the bytes between the first `{` and the
/// first `}` after it, when not empty), else of the whole key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tag = key.iter().position(|&c| c == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&c| c == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tag.unwrap_or(key)) % SLOTS as u16
}

/// One RESP bulk string.
fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    push_num(out, b.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// A decimal number's digits, without allocating: (buffer, index of the first digit).
fn digits(mut n: u64) -> ([u8; 20], usize) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return (d, i);
        }
    }
}

/// A decimal number, without allocating. Written in place: a fixed-size append (inlined
/// stores) then the digits, then the tail cut — a variable-length `extend_from_slice` of a
/// few bytes is a libc `memcpy` call, which the writer made ~10 times per change (a fifth
/// of its time, issue 20).
pub fn push_num(out: &mut Vec<u8>, mut n: u64) {
    // Most numbers written are small (RESP lengths, address octets, ports): one or two
    // digits without a loop; the rest two digits per division (`push_num` was ~10 % of
    // the writer's CPU, issue 20).
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    if n < 100 {
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
        return;
    }
    let len = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    let start = out.len();
    out.extend_from_slice(&[b'0'; 20]);
    let digits = &mut out[start..start + len];
    let mut i = len;
    while n >= 100 {
        let r = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
    }
    if n >= 10 {
        let r = n as usize * 2;
        digits[i - 2..i].copy_from_slice(&PAIRS[r..r + 2]);
    } else {
        digits[i - 1] = b'0' + n as u8;
    }
    out.truncate(start + len);
}

/// "00" to "99", for [`push_num`].
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `EVALSHA <sha> 1 sipedge:b:{<aor>} <now> <aor> <field> <value>…` as RESP.
pub fn write_call(out: &mut Vec<u8>, sha: &[u8], now: u64, p: &Pending) {
    let aor = p.aor();
    out.push(b'*');
    push_num(out, 6 + 2 * p.field_count() as u64);
    out.extend_from_slice(b"\r\n");
    bulk(out, b"EVALSHA");
    bulk(out, sha);
    bulk(out, b"1");
    out.push(b'$');
    push_num(out, (KEY_PREFIX.len() + aor.len() + 1) as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(KEY_PREFIX.as_bytes());
    out.extend_from_slice(aor);
    out.extend_from_slice(b"}\r\n");
    let (d, i) = digits(now);
    bulk(out, &d[i..]);
    bulk(out, aor);
    for (f, v) in p.fields() {
        bulk(out, f);
        bulk(out, v);
    }
}

/// The writer's connections: every master, and which serves each slot.
pub struct Nodes {
    conns: Vec<redis::Connection>,
    /// Slot → index in `conns`; empty for a single server (everything to `conns[0]`).
    slot_node: Vec<u16>,
    bufs: Vec<Vec<u8>>,
    counts: Vec<usize>,
    /// Replies owed per connection by commands sent without waiting (the invalidation's
    /// `PUBLISH`), read before the next reply there.
    unread: Vec<usize>,
    key: Vec<u8>,
    sha: String,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes")
            .field("masters", &self.conns.len())
            .finish_non_exhaustive()
    }
}

/// A cluster node's address, reached as the seed was (TLS and its settings, or plain TCP).
pub(super) fn node_addr(seed: &ConnectionAddr, host: String, port: u16) -> ConnectionAddr {
    match seed.clone() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            tls_params,
        },
        _ => ConnectionAddr::Tcp(host, port),
    }
}

fn open(info: redis::ConnectionInfo, timeout: Duration) -> RedisResult<redis::Connection> {
    let c = redis::Client::open(info)?.get_connection_with_timeout(timeout)?;
    c.set_read_timeout(Some(timeout))?;
    c.set_write_timeout(Some(timeout))?;
    Ok(c)
}

/// `CLUSTER SLOTS` → the masters' (host, port) and each slot's master. A master announced
/// with an empty host is the server asked (`default_host`).
/// The masters' (host, port), and each slot's index among them.
type SlotMap = (Vec<(String, u16)>, Vec<u16>);

fn slot_map(reply: &Value, default_host: &str) -> Option<SlotMap> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut addrs: Vec<(String, u16)> = Vec::new();
    let mut slot_node = vec![NO_NODE; SLOTS];
    for range in ranges {
        let Value::Array(r) = range else { continue };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(m))) =
            (r.first(), r.get(1), r.get(2))
        else {
            continue;
        };
        let (Some(Value::BulkString(host)), Some(Value::Int(port))) = (m.first(), m.get(1)) else {
            continue;
        };
        let (Ok(host), Ok(port)) = (std::str::from_utf8(host), u16::try_from(*port)) else {
            continue;
        };
        let host = if host.is_empty() || host == "?" {
            default_host
        } else {
            host
        };
        let (Ok(start), Ok(end)) = (usize::try_from(*start), usize::try_from(*end)) else {
            continue;
        };
        if start > end || end >= SLOTS {
            continue;
        }
        let idx = match addrs.iter().position(|(h, p)| h == host && *p == port) {
            Some(i) => i,
            None if addrs.len() < MAX_NODES => {
                addrs.push((host.to_owned(), port));
                addrs.len() - 1
            }
            None => return None,
        };
        let idx = u16::try_from(idx).ok()?;
        slot_node[start..=end].fill(idx);
    }
    (!addrs.is_empty()).then_some((addrs, slot_node))
}

impl Nodes {
    /// Connects to `urls` (one: a single server; several: seeds of a Redis Cluster, the first
    /// that answers `CLUSTER SLOTS` is used) and loads the write script on every master.
    pub fn connect(urls: &[String], timeout: Duration) -> RedisResult<Self> {
        let (conns, slot_node) = if let [url] = urls {
            (
                vec![open(url.as_str().into_connection_info()?, timeout)?],
                Vec::new(),
            )
        } else {
            let mut last = None;
            let mut found = None;
            for url in urls {
                match Self::cluster(url, timeout) {
                    Ok(c) => {
                        found = Some(c);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            match (found, last) {
                (Some(c), _) => c,
                (None, Some(e)) => return Err(e),
                (None, None) => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "no Redis URL",
                    )))
                }
            }
        };
        let n = conns.len();
        let mut nodes = Self {
            conns,
            slot_node,
            bufs: vec![Vec::new(); n],
            counts: vec![0; n],
            unread: vec![0; n],
            key: Vec::new(),
            sha: redis::Script::new(WRITE_SCRIPT).get_hash().to_string(),
        };
        for c in &mut nodes.conns {
            let _: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(WRITE_SCRIPT)
                .query(c)?;
        }
        Ok(nodes)
    }

    fn cluster(seed: &str, timeout: Duration) -> RedisResult<(Vec<redis::Connection>, Vec<u16>)> {
        let info = seed.into_connection_info()?;
        let mut c = open(info.clone(), timeout)?;
        let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut c)?;
        let seed_host = match info.addr() {
            ConnectionAddr::Tcp(h, _) | ConnectionAddr::TcpTls { host: h, .. } => h.clone(),
            _ => String::new(),
        };
        let Some((addrs, slot_node)) = slot_map(&reply, &seed_host) else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "CLUSTER SLOTS named no master",
            )));
        };
        let mut conns = Vec::with_capacity(addrs.len());
        for (host, port) in addrs {
            let addr = node_addr(info.addr(), host, port);
            conns.push(open(info.clone().set_addr(addr), timeout)?);
        }
        Ok((conns, slot_node))
    }

    fn node_of(&mut self, key_aor: &[u8]) -> Option<usize> {
        if self.slot_node.is_empty() {
            return Some(0);
        }
        self.key.clear();
        self.key.extend_from_slice(KEY_PREFIX.as_bytes());
        self.key.extend_from_slice(key_aor);
        self.key.push(b'}');
        let n = *self.slot_node.get(usize::from(key_slot(&self.key)))?;
        (n != NO_NODE).then_some(usize::from(n))
    }

    /// One command (the heartbeat's), to the master of `key`.
    pub fn command(&mut self, key: &[u8], cmd: &redis::Cmd) -> RedisResult<Value> {
        let node = if self.slot_node.is_empty() {
            Some(0)
        } else {
            self.slot_node
                .get(usize::from(key_slot(key)))
                .filter(|&&n| n != NO_NODE)
                .map(|&n| usize::from(n))
        };
        let Some(n) = node.filter(|&n| n < self.conns.len()) else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "slot not covered",
            )));
        };
        if self.read_unread(n).is_err() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "invalidation refused",
            )));
        }
        match cmd.query::<Value>(&mut self.conns[n])? {
            Value::ServerError(e) => Err(e.into()),
            v => Ok(v),
        }
    }

    /// Reads the replies owed on connection `n` (see `unread`).
    fn read_unread(&mut self, n: usize) -> Result<(), Option<redis::RedisError>> {
        let c = &mut self.conns[n];
        while self.unread[n] > 0 {
            match c.recv_response() {
                Ok(Value::ServerError(_)) => return Err(None),
                Ok(_) => self.unread[n] -= 1,
                Err(e) if e.is_io_error() || e.is_timeout() => return Err(Some(e)),
                Err(_) => return Err(None),
            }
        }
        Ok(())
    }

    /// `PUBLISH sipedge:inv <aor>\n<aor>…` for `batch`, sent without waiting: its reply is
    /// read before the next one on that connection (no round trip of its own: under a CPU
    /// quota each round trip can cost the writer a scheduling period).
    fn publish(&mut self, batch: &[Pending]) -> Result<(), Option<redis::RedisError>> {
        let Some(c) = self.conns.first_mut() else {
            return Ok(());
        };
        let out = &mut self.bufs[0];
        out.clear();
        let len = batch
            .iter()
            .map(|p| p.aor().len() + 1)
            .sum::<usize>()
            .saturating_sub(1);
        out.extend_from_slice(b"*3\r\n");
        bulk(out, b"PUBLISH");
        bulk(out, INVALIDATION_CHANNEL.as_bytes());
        out.push(b'$');
        push_num(out, len as u64);
        out.extend_from_slice(b"\r\n");
        for (i, p) in batch.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(p.aor());
        }
        out.extend_from_slice(b"\r\n");
        c.send_packed_command(out).map_err(Some)?;
        self.unread[0] += 1;
        Ok(())
    }

    /// Writes `batch` (one script call per AoR) in one pipeline per master. `Err(Some)`:
    /// Redis failed (connection, timeout); `Err(None)`: an error reply (`MOVED`,
    /// `NOSCRIPT`…) — reconnect. Either way none of the batch counts as written.
    pub fn write(&mut self, now: u64, batch: &[Pending]) -> Result<(), Option<redis::RedisError>> {
        for b in &mut self.bufs {
            b.clear();
        }
        self.counts.fill(0);
        for p in batch {
            let Some(n) = self.node_of(p.aor()) else {
                tracing::warn!(target: "sip::cluster", "cluster write: a slot no master serves; reconnecting");
                return Err(None);
            };
            write_call(&mut self.bufs[n], self.sha.as_bytes(), now, p);
            self.counts[n] += 1;
        }
        for (i, c) in self.conns.iter_mut().enumerate() {
            if self.counts[i] > 0 {
                c.send_packed_command(&self.bufs[i]).map_err(Some)?;
            }
        }
        let mut refused = false;
        for i in 0..self.conns.len() {
            // The last invalidation's reply comes first (read even when this batch has no
            // call there: replies owed never pile up).
            match self.read_unread(i) {
                Err(Some(e)) => return Err(Some(e)),
                Err(None) => refused = true,
                Ok(()) => {}
            }
            let c = &mut self.conns[i];
            for _ in 0..self.counts[i] {
                match c.recv_response() {
                    Ok(Value::ServerError(e)) => {
                        if !refused {
                            tracing::warn!(target: "sip::cluster", reply = ?e, "cluster write refused; reconnecting");
                        }
                        refused = true;
                    }
                    Ok(_) => {}
                    Err(e) if e.is_io_error() || e.is_timeout() => return Err(Some(e)),
                    Err(e) => {
                        if !refused {
                            tracing::warn!(target: "sip::cluster", error = %e, "cluster write refused; reconnecting");
                        }
                        refused = true;
                    }
                }
            }
        }
        if refused {
            return Err(None);
        }
        // Every call was answered: the batch's AoRs in one invalidation (`\n`-separated; an
        // AoR never holds one), to one master (a Redis Cluster relays it to the others).
        // After the writes, so a reader that drops its entry reads what they wrote.
        self.publish(batch)?;
        // A buffer grown by a burst is not kept (the allocator gets it back).
        for b in &mut self.bufs {
            if b.capacity() > 4 << 20 {
                *b = Vec::new();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            4_294_967_295,
            1_700_000_000_123,
            u64::MAX,
        ] {
            let mut out = b"x".to_vec();
            push_num(&mut out, n);
            assert_eq!(out, format!("x{n}").as_bytes());
        }
        for n in (0..100_000).chain((0..64).map(|s| 1u64 << s)) {
            let mut out = Vec::new();
            push_num(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn slots_match_redis_cluster() {
        // Cluster spec: CRC16("123456789") = 0x31C3.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        for key in [
            &b"sipedge:b:{sip:alice@example.com}"[..],
            b"sipedge:b:{sip:a}b@x}",
            b"sipedge:b:{}",
            b"foo{}{bar}",
            b"plain",
            b"{user1000}.following",
        ] {
            // The crate's `Slot` shows its number only through `Debug`.
            assert_eq!(
                format!("Slot({})", key_slot(key)),
                format!("{:?}", redis::cluster_routing::Slot::for_key(key)),
                "{key:?}"
            );
        }
    }

    #[test]
    fn a_script_call_is_the_resp_the_crate_would_send() {
        let mut p = Pending::new(Vec::new(), b"sip:a@x");
        for (part, second) in [(&b"c:sip:a@h"[..], false), (&b"1:2:3:u\nx"[..], true)] {
            let at = p.begin_part();
            p.buf_mut().extend_from_slice(part);
            assert!(p.end_part(at, second));
        }
        let mut out = Vec::new();
        write_call(&mut out, b"abc", 1_700_000_000_123, &p);
        let expected = redis::cmd("EVALSHA")
            .arg("abc")
            .arg(1)
            .arg("sipedge:b:{sip:a@x}")
            .arg(1_700_000_000_123u64)
            .arg("sip:a@x")
            .arg(&b"c:sip:a@h"[..])
            .arg(&b"1:2:3:u\nx"[..])
            .get_packed_command();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_slot_map_covers_each_range_and_skips_junk() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                Value::Array(vec![b("127.0.47.1"), Value::Int(7101), b("id")]),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                Value::Array(vec![b(""), Value::Int(7102)]),
            ]),
            Value::Array(vec![
                Value::Int(9),
                Value::Int(99_999),
                Value::Array(vec![]),
            ]),
            b("junk"),
        ]);
        let (addrs, map) = slot_map(&reply, "10.0.0.1").expect("map");
        assert_eq!(
            addrs,
            vec![("127.0.47.1".into(), 7101), ("10.0.0.1".into(), 7102)]
        );
        assert_eq!((map[0], map[5460], map[5461], map[16383]), (0, 0, 1, 1));
        assert_eq!(slot_map(&Value::Array(vec![]), "h"), None);
    }
}
