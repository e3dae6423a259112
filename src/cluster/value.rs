//! The Redis schema's byte encodings (see the module docs of `cluster`): the AoR's hash
//! key, a binding's field, and a binding's value — built from journal records, parsed back
//! into [`RemoteBinding`]s. Pure functions; every input from Redis is untrusted (another
//! edge, or anyone with access to the store, wrote it): a value that does not parse is
//! skipped, never a panic.

use std::net::SocketAddr;

use sipedge_core::cluster::RemoteBinding;

#[cfg(test)]
use super::backlog::Pending;
use super::pipe::push_num;
use sipedge_core::BindingChange;

/// Prefix of the per-AoR hash keys: `sipedge:b:{<aor>}` (the AoR is the hash tag, so one
/// AoR is one slot).
pub const KEY_PREFIX: &str = "sipedge:b:{";
/// The pub/sub channel every write publishes the changed AoR on.
pub const INVALIDATION_CHANNEL: &str = "sipedge:inv";
/// The set of node names that ever wrote (liveness is checked for each).
pub const NODES_KEY: &str = "sipedge:nodes";
/// Prefix of the liveness keys `sipedge:node:<name>` (value: the node's SIP address).
pub const NODE_KEY_PREFIX: &str = "sipedge:node:";
/// How long a tombstone is kept at least, ms (raised by the script to the expiry of the
/// binding it replaces): a write older than the removal that arrives while it stands is
/// refused.
pub const TOMBSTONE_MS: u64 = 32_000;

/// `sipedge:b:{<aor>}`.
pub fn aor_key(aor: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(KEY_PREFIX.len() + aor.len() + 1);
    k.extend_from_slice(KEY_PREFIX.as_bytes());
    k.extend_from_slice(aor);
    k.push(b'}');
    k
}

/// `sipedge:node:<name>`.
pub fn node_key(node: &str) -> String {
    format!("{NODE_KEY_PREFIX}{node}")
}

/// A binding's field in its AoR's hash: `i:<instance>;<reg-id>` when the binding has a
/// `+sip.instance` (RFC 5626 §6: the same instance and reg-id is the same flow), else
/// `c:<contact>` (RFC 3261 §10.3 step 7: bindings are compared by Contact URI), appended.
fn push_field(out: &mut Vec<u8>, contact: &[u8], instance: &[u8], reg_id: u32) {
    if instance.is_empty() {
        out.extend_from_slice(b"c:");
        out.extend_from_slice(contact);
    } else {
        out.extend_from_slice(b"i:");
        out.extend_from_slice(instance);
        out.push(b';');
        push_num(out, u64::from(reg_id));
    }
}

/// One change ready for the write script: the AoR, the field and the value.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub aor: Box<[u8]>,
    pub field: Vec<u8>,
    pub value: Vec<u8>,
}

/// Encodes a journal change as written by `node` (reached at `home`; `node_home` is
/// [`node_home`]'s) into `out` (a backlog
/// entry for its AoR, with the field and the value); `now_unix_ms` is
/// when the change happened (a removal's version). `None` for a record with a newline in
/// a field (it cannot be encoded safely; the core never stores one). Written in place, no
/// temporaries: this runs once per change written.
///
/// Value: `<version ms>:<cseq>:<expires ms>:<u|t>\n<node>\n<home>\n<q>\n<contact>\n<path>`,
/// and for an upsert `\n<source>\n<call-id>` (the phone's NAT address and the REGISTER's
/// Call-ID, what a surviving edge needs to adopt the binding; a reader that knows only the
/// six lines takes them as part of the path, which it ignores).
/// The version orders writes (RFC 3261 §10.3 step 7): an upsert's is its registration
/// (last refresh) time and CSeq; a removal's (`t`, a tombstone) is the time it happened
/// with CSeq 0.
#[cfg(test)]
pub fn encode_into(
    change: &BindingChange<'_>,
    node_home: &[u8],
    now_unix_ms: u64,
    mut out: Vec<u8>,
) -> Option<Pending> {
    out.clear();
    let aor_len = encode_append(change, node_home, now_unix_ms, &mut out)?;
    Some(Pending::encoded(out, aor_len))
}

/// [`encode_into`]'s bytes (a [`Pending`]'s: the AoR, then the field and the value, each
/// a `u32` little-endian length and its bytes) appended to `out`, which the shard's tee
/// sends as they are (`super::encode_teed`); the AoR's length. `None`: see
/// [`encode_into`] (`out` then holds part of it: the caller truncates).
pub fn encode_append(
    change: &BindingChange<'_>,
    node_home: &[u8],
    now_unix_ms: u64,
    out: &mut Vec<u8>,
) -> Option<usize> {
    // Version, CSeq and expiry of the head line.
    let (aor, (instance, reg_id), (ms, cseq, expires, kind), q, contact, path, tail) = match *change
    {
        BindingChange::Upsert {
            aor,
            contact,
            instance,
            reg_id,
            path,
            cseq,
            q,
            expires_unix_ms,
            registered_unix_ms,
            source,
            call_id,
            ..
        } => (
            aor,
            (instance, reg_id),
            (registered_unix_ms, cseq, expires_unix_ms, b'u'),
            q.unwrap_or(1000),
            contact,
            path,
            Some((source, call_id)),
        ),
        BindingChange::Remove {
            aor,
            contact,
            instance,
            reg_id,
        } => (
            aor,
            (instance, reg_id),
            (
                now_unix_ms,
                0,
                now_unix_ms.saturating_add(TOMBSTONE_MS),
                b't',
            ),
            1000,
            contact,
            &b""[..],
            None,
        ),
    };
    let call_id = tail.map_or(&b""[..], |(_, c)| c);
    if [aor, contact, path, call_id]
        .iter()
        .any(|b| b.contains(&b'\n'))
    {
        return None;
    }
    out.extend_from_slice(aor);
    let at = begin_part(out);
    push_field(out, contact, instance, reg_id);
    end_part(out, at)?;
    let at = begin_part(out);
    let value = &mut *out;
    push_num(value, ms);
    value.push(b':');
    push_num(value, u64::from(cseq));
    value.push(b':');
    push_num(value, expires);
    value.extend_from_slice(&[b':', kind, b'\n']);
    value.extend_from_slice(node_home);
    value.push(b'\n');
    push_num(value, u64::from(q));
    value.push(b'\n');
    value.extend_from_slice(contact);
    value.push(b'\n');
    value.extend_from_slice(path);
    if let Some((source, call_id)) = tail {
        value.push(b'\n');
        push_addr(value, source);
        value.push(b'\n');
        value.extend_from_slice(call_id);
    }
    end_part(out, at)?;
    Some(aor.len())
}

/// Starts a part: its length (written by [`end_part`]) comes first.
fn begin_part(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Ends the part begun at `at`; `None` for a part over 4 GiB.
fn end_part(out: &mut [u8], at: usize) -> Option<()> {
    let len = u32::try_from(out.len().checked_sub(at + 4)?).ok()?;
    out.get_mut(at..at + 4)?.copy_from_slice(&len.to_le_bytes());
    Some(())
}

/// [`encode_into`], as separate parts.
#[cfg(test)]
pub fn encode(
    change: &BindingChange<'_>,
    node: &str,
    home: SocketAddr,
    now_unix_ms: u64,
) -> Option<Encoded> {
    let p = encode_into(change, &node_home(node, home), now_unix_ms, Vec::new())?;
    let (field, value) = p.fields().next()?;
    Some(Encoded {
        aor: p.aor().into(),
        field: field.to_vec(),
        value: value.to_vec(),
    })
}

/// `<node>\n<home>`: the lines of every value this node writes that name it (computed
/// once, not per change), for [`encode_into`].
pub fn node_home(node: &str, home: SocketAddr) -> Vec<u8> {
    let mut out = node.as_bytes().to_vec();
    out.push(b'\n');
    push_addr(&mut out, home);
    out
}

/// An address as `Display` writes it (`1.2.3.4:5`, `[::1]:5`), appended.
fn push_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            for (i, o) in v4.ip().octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_num(out, u64::from(*o));
            }
            out.push(b':');
            push_num(out, u64::from(v4.port()));
        }
        SocketAddr::V6(_) => {
            use std::io::Write;
            let _ = write!(out, "{a}");
        }
    }
}

/// A value read back: its version, expiry, whether it is a tombstone, and the binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub version: (u64, u32),
    pub tombstone: bool,
    pub binding: RemoteBinding,
    /// The Path (RFC 3327), empty when none.
    pub path: String,
    /// The phone's NAT source address (`None`: written by a build that did not share it).
    pub source: Option<SocketAddr>,
    /// The REGISTER's Call-ID (empty when not shared).
    pub call_id: String,
}

/// A field's `+sip.instance` and `reg-id` (RFC 5626): `i:<instance>;<reg-id>`, or
/// `("", 0)` for a `c:<contact>` field; `None` when it is neither.
pub fn parse_field(field: &[u8]) -> Option<(&[u8], u32)> {
    if field.starts_with(b"c:") {
        return Some((&b""[..], 0));
    }
    let rest = field.strip_prefix(b"i:")?;
    let at = rest.iter().rposition(|&c| c == b';')?;
    let reg_id = std::str::from_utf8(&rest[at + 1..]).ok()?.parse().ok()?;
    let instance = &rest[..at];
    (!instance.is_empty()).then_some((instance, reg_id))
}

/// Parses a stored value; `None` when it is not one this build wrote.
pub fn decode(value: &[u8]) -> Option<Decoded> {
    let text = std::str::from_utf8(value).ok()?;
    let mut lines = text.splitn(8, '\n');
    let mut head = lines.next()?.split(':');
    let ms: u64 = head.next()?.parse().ok()?;
    let cseq: u32 = head.next()?.parse().ok()?;
    let expires: u64 = head.next()?.parse().ok()?;
    let tombstone = match head.next()? {
        "u" => false,
        "t" => true,
        _ => return None,
    };
    let node = lines.next()?;
    let home: SocketAddr = lines.next()?.parse().ok()?;
    let q: u16 = lines.next()?.parse().ok().filter(|q| *q <= 1000)?;
    let contact = lines.next()?;
    let path = lines.next()?;
    let source = lines.next().and_then(|s| s.parse().ok());
    let call_id = lines.next().unwrap_or("");
    if node.is_empty() || contact.is_empty() {
        return None;
    }
    Some(Decoded {
        version: (ms, cseq),
        tombstone,
        binding: RemoteBinding {
            node: node.into(),
            home,
            contact: contact.into(),
            expires_at_unix_ms: expires,
            q,
        },
        path: path.into(),
        source,
        call_id: call_id.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_and_tombstone_round_trip() {
        let home: SocketAddr = "127.0.63.11:5060".parse().expect("addr");
        let up = BindingChange::Upsert {
            aor: b"sip:alice@example.com",
            contact: b"sip:alice@192.0.2.1:5060",
            instance: b"",
            reg_id: 0,
            path: b"<sip:p.example.com;lr>",
            call_id: b"c1",
            cseq: 7,
            q: Some(500),
            expires_unix_ms: 2_000_000,
            registered_unix_ms: 1_000_000,
            source: "192.0.2.9:4000".parse().expect("addr"),
            created: false,
        };
        let e = encode(&up, "edge-a", home, 5).expect("encodes");
        assert_eq!(e.field, b"c:sip:alice@192.0.2.1:5060");
        assert_eq!(aor_key(&e.aor), b"sipedge:b:{sip:alice@example.com}");
        let d = decode(&e.value).expect("decodes");
        assert_eq!(d.version, (1_000_000, 7));
        assert!(!d.tombstone);
        assert_eq!(&*d.binding.node, "edge-a");
        assert_eq!(d.binding.home, home);
        assert_eq!(d.binding.q, 500);
        assert_eq!(d.binding.expires_at_unix_ms, 2_000_000);
        assert_eq!(d.source, Some("192.0.2.9:4000".parse().expect("addr")));
        assert_eq!(d.call_id, "c1");
        assert_eq!(d.path, "<sip:p.example.com;lr>");
        assert_eq!(parse_field(&e.field), Some((&b""[..], 0)));
        assert_eq!(
            parse_field(b"i:<urn:uuid:1>;2"),
            Some((&b"<urn:uuid:1>"[..], 2))
        );
        assert_eq!(parse_field(b"i:;2"), None);
        assert_eq!(parse_field(b"x:y"), None);
        let rm = BindingChange::Remove {
            aor: b"sip:alice@example.com",
            contact: b"sip:alice@192.0.2.1:5060",
            instance: b"<urn:uuid:1>",
            reg_id: 2,
        };
        let t = encode(&rm, "edge-a", home, 3_000_000).expect("encodes");
        assert_eq!(t.field, b"i:<urn:uuid:1>;2");
        let d = decode(&t.value).expect("decodes");
        assert!(d.tombstone);
        assert_eq!(d.version, (3_000_000, 0));
        assert_eq!(d.binding.expires_at_unix_ms, 3_000_000 + TOMBSTONE_MS);
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for a in [
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.2.30.4:5060",
            "[::1]:5060",
        ] {
            let a: SocketAddr = a.parse().expect("addr");
            let mut out = Vec::new();
            push_addr(&mut out, a);
            assert_eq!(out, a.to_string().as_bytes());
        }
    }

    #[test]
    fn hostile_values_are_skipped() {
        for v in [
            &b""[..],
            b"1:2:3:u",
            b"x:2:3:u\nn\n127.0.0.1:1\n1000\nsip:a\n",
            b"1:2:3:z\nn\n127.0.0.1:1\n1000\nsip:a\n",
            b"1:2:3:u\nn\nnot-an-addr\n1000\nsip:a\n",
            b"1:2:3:u\nn\n127.0.0.1:1\n1001\nsip:a\n",
            b"1:2:3:u\n\n127.0.0.1:1\n1000\nsip:a\n",
            b"\xff\xfe",
        ] {
            assert_eq!(decode(v), None, "{v:?}");
        }
        assert!(decode(b"1:2:3:u\nn\n127.0.0.1:1\n1000\nsip:a\n").is_some());
    }
}
