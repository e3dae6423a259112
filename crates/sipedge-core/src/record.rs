//! Binding-change records for the journal and snapshots: a versioned, compact byte encoding
//! that decodes without panicking whatever the input (the journal crate frames and checks
//! them with a CRC; this layer still treats them as untrusted).
//!
//! ```text
//! record  = version:u8(=1) kind:u8 body
//! kind 1  = upsert: aor contact call_id instance path user_agent   (each: varint len, bytes)
//!           cseq:u32 reg_id:u32 q:u16 expires_unix_ms:u64 registered_unix_ms:u64
//!           family:u8(4|6) ip:4|16 bytes port:u16 local:u16 transport:u8 arrival:u16
//!           branch:u32
//! kind 2  = remove: aor contact instance reg_id:u32
//! kind 3  = create: an upsert (the same body) of a binding that did not exist before
//! ```
//!
//! Kind 3 lets the cluster write-behind skip its refresh thinning for a first write (a new
//! binding is always written, so there is nothing to look up). It was added within version
//! 1: every record an older build wrote still reads the same (as a kind 1 upsert, "not known
//! to be new"); an older build refuses kind 3 records, so a journal is not downgradable.
//!
//! Integers are little-endian; varints are LEB128 (at most 3 bytes: fields are < 64 KiB).
//! `q = 0xffff` means "no q given"; `reg_id = 0` means none. The AoR is canonical
//! (`scheme:user@host`), so `record_owner` can route a record by it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::aor::{owner_of, MAX_AOR_BYTES};
use crate::location::{Transport, MAX_FIELD_BYTES};
use crate::output::ShardId;

/// The record format version written by this build.
pub const RECORD_VERSION: u8 = 1;
const KIND_UPSERT: u8 = 1;
const KIND_REMOVE: u8 = 2;
const KIND_CREATE: u8 = 3;

/// Why a record could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The version byte is not one this build reads.
    #[error("unsupported record version {0}")]
    Version(u8),
    /// The record is cut short, has trailing bytes, or a field is out of range.
    #[error("malformed binding record")]
    Malformed,
    /// The record's AoR belongs to another shard (route it with `record_owner` first).
    #[error("record belongs to shard {0:?}")]
    NotOwner(ShardId),
}

/// One decoded record, borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Upsert(Upsert<'a>),
    Remove {
        aor: &'a [u8],
        contact: &'a [u8],
        instance: &'a [u8],
        reg_id: u32,
    },
}

/// A binding as a record carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Upsert<'a> {
    pub(crate) aor: &'a [u8],
    pub(crate) contact: &'a [u8],
    pub(crate) call_id: &'a [u8],
    pub(crate) instance: &'a [u8],
    pub(crate) path: &'a [u8],
    pub(crate) user_agent: &'a [u8],
    pub(crate) cseq: u32,
    pub(crate) reg_id: u32,
    pub(crate) q: Option<u16>,
    pub(crate) expires_unix_ms: u64,
    pub(crate) registered_unix_ms: u64,
    pub(crate) source: SocketAddr,
    pub(crate) local: u16,
    pub(crate) transport: Transport,
    pub(crate) arrival: u16,
    pub(crate) branch: u32,
    /// The change created the binding (kind 3); false for a refresh, a snapshot's state or
    /// a record of an older build.
    pub(crate) created: bool,
}

impl Record<'_> {
    pub(crate) fn aor(&self) -> &[u8] {
        match self {
            Record::Upsert(u) => u.aor,
            Record::Remove { aor, .. } => aor,
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if b.len() < 0x80 {
        // One varint byte: most fields.
        out.push(b.len() as u8);
        out.extend_from_slice(b);
        return;
    }
    let mut len = [0u8; 5];
    let mut at = 0;
    let mut n = b.len() as u32;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            len[at] = byte;
            at += 1;
            break;
        }
        len[at] = byte | 0x80;
        at += 1;
    }
    out.extend_from_slice(&len[..at]);
    out.extend_from_slice(b);
}

/// Bytes of the fixed-size fields after an upsert's strings, at most (IPv6 source).
const UPSERT_TAIL_MAX: usize = 4 + 4 + 2 + 8 + 8 + 1 + 16 + 2 + 2 + 1 + 2 + 4;

/// Appends the encoding of `u` to `out`.
pub(crate) fn encode_upsert(out: &mut Vec<u8>, u: &Upsert<'_>) {
    let strings = [
        u.aor,
        u.contact,
        u.call_id,
        u.instance,
        u.path,
        u.user_agent,
    ];
    // One reservation for the record (3 varint bytes per string at most).
    out.reserve(2 + strings.iter().map(|b| 3 + b.len()).sum::<usize>() + UPSERT_TAIL_MAX);
    let kind = if u.created { KIND_CREATE } else { KIND_UPSERT };
    out.extend_from_slice(&[RECORD_VERSION, kind]);
    for b in strings {
        put_bytes(out, b);
    }
    // The fixed fields, assembled on the stack and appended once.
    let mut tail = [0u8; UPSERT_TAIL_MAX];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        tail[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&u.cseq.to_le_bytes());
    put(&u.reg_id.to_le_bytes());
    put(&u.q.unwrap_or(u16::MAX).to_le_bytes());
    put(&u.expires_unix_ms.to_le_bytes());
    put(&u.registered_unix_ms.to_le_bytes());
    match u.source.ip() {
        IpAddr::V4(v4) => {
            put(&[4]);
            put(&v4.octets());
        }
        IpAddr::V6(v6) => {
            put(&[6]);
            put(&v6.octets());
        }
    }
    put(&u.source.port().to_le_bytes());
    put(&u.local.to_le_bytes());
    put(&[u.transport as u8]);
    put(&u.arrival.to_le_bytes());
    put(&u.branch.to_le_bytes());
    out.extend_from_slice(&tail[..at]);
}

/// Appends a removal record to `out`.
pub(crate) fn encode_remove(
    out: &mut Vec<u8>,
    aor: &[u8],
    contact: &[u8],
    instance: &[u8],
    reg_id: u32,
) {
    out.push(RECORD_VERSION);
    out.push(KIND_REMOVE);
    put_bytes(out, aor);
    put_bytes(out, contact);
    put_bytes(out, instance);
    out.extend_from_slice(&reg_id.to_le_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RestoreError> {
        if self.b.len() < n {
            return Err(RestoreError::Malformed);
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, RestoreError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RestoreError> {
        self.take(N)?
            .try_into()
            .map_err(|_| RestoreError::Malformed)
    }
    fn u16(&mut self) -> Result<u16, RestoreError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, RestoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, RestoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self, max: usize) -> Result<&'a [u8], RestoreError> {
        let mut n: usize = 0;
        for shift in [0, 7, 14] {
            let byte = self.u8()?;
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if n > max {
                    return Err(RestoreError::Malformed);
                }
                return self.take(n);
            }
        }
        Err(RestoreError::Malformed)
    }
}

/// Decodes one record. Never panics; rejects trailing bytes.
pub(crate) fn decode(rec: &[u8]) -> Result<Record<'_>, RestoreError> {
    let mut r = Reader { b: rec };
    let version = r.u8()?;
    if version != RECORD_VERSION {
        return Err(RestoreError::Version(version));
    }
    let record = match r.u8()? {
        kind @ (KIND_UPSERT | KIND_CREATE) => {
            let aor = r.bytes(MAX_AOR_BYTES)?;
            let contact = r.bytes(MAX_FIELD_BYTES)?;
            let call_id = r.bytes(MAX_FIELD_BYTES)?;
            let instance = r.bytes(MAX_FIELD_BYTES)?;
            let path = r.bytes(MAX_FIELD_BYTES)?;
            let user_agent = r.bytes(MAX_FIELD_BYTES)?;
            let cseq = r.u32()?;
            let reg_id = r.u32()?;
            let q = r.u16()?;
            let expires_unix_ms = r.u64()?;
            let registered_unix_ms = r.u64()?;
            let ip = match r.u8()? {
                4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
                6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
                _ => return Err(RestoreError::Malformed),
            };
            let port = r.u16()?;
            let local = r.u16()?;
            let transport = Transport::from_u8(r.u8()?).ok_or(RestoreError::Malformed)?;
            let arrival = r.u16()?;
            let branch = r.u32()?;
            if aor.is_empty() || contact.is_empty() || (q != u16::MAX && q > 1000) {
                return Err(RestoreError::Malformed);
            }
            Record::Upsert(Upsert {
                aor,
                contact,
                call_id,
                instance,
                path,
                user_agent,
                cseq,
                reg_id,
                q: (q != u16::MAX).then_some(q),
                expires_unix_ms,
                registered_unix_ms,
                source: SocketAddr::new(ip, port),
                local,
                transport,
                arrival,
                branch,
                created: kind == KIND_CREATE,
            })
        }
        KIND_REMOVE => {
            let aor = r.bytes(MAX_AOR_BYTES)?;
            let contact = r.bytes(MAX_FIELD_BYTES)?;
            let instance = r.bytes(MAX_FIELD_BYTES)?;
            let reg_id = r.u32()?;
            if aor.is_empty() {
                return Err(RestoreError::Malformed);
            }
            Record::Remove {
                aor,
                contact,
                instance,
                reg_id,
            }
        }
        _ => return Err(RestoreError::Malformed),
    };
    if !r.b.is_empty() {
        return Err(RestoreError::Malformed);
    }
    Ok(record)
}

/// The owner shard of a record under `shards` shards (for re-routing a journal after the
/// shard count changed), or `None` if the record does not decode.
pub fn record_owner(rec: &[u8], shards: u16) -> Option<ShardId> {
    decode(rec).ok().map(|r| owner_of(r.aor(), shards))
}

/// The shard that owns the canonical AoR `aor` among `shards` (where a record or an
/// adopted binding of it must go).
pub fn aor_owner(aor: &[u8], shards: u16) -> ShardId {
    owner_of(aor, shards)
}

/// A binding change as the cluster thread reads it from the journal stream (issue 20): the
/// public, read-only view of a decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingChange<'a> {
    /// A binding created or refreshed.
    Upsert {
        /// Canonical AoR (`scheme:user@host`).
        aor: &'a [u8],
        /// The Contact URI as registered.
        contact: &'a [u8],
        /// `+sip.instance` (RFC 5626), empty when none.
        instance: &'a [u8],
        /// `reg-id` (RFC 5626), 0 when none.
        reg_id: u32,
        /// The Path (RFC 3327), empty when none.
        path: &'a [u8],
        /// Call-ID and CSeq of the REGISTER (RFC 3261 §10.3 step 7 ordering).
        call_id: &'a [u8],
        cseq: u32,
        /// `q` × 1000, `None` when absent.
        q: Option<u16>,
        /// Expiry and registration (last refresh) times, UNIX ms.
        expires_unix_ms: u64,
        registered_unix_ms: u64,
        /// Where the REGISTER came from (the NAT's public address, RFC 3581 `received`/
        /// `rport`): where requests and NAT pings go. The cluster shares it so a surviving
        /// edge can adopt the binding (`[cluster] takeover`).
        source: SocketAddr,
        /// This change created the binding (it did not exist on this edge before): the
        /// write-behind writes it without looking it up in its refresh thinning. False when
        /// not known (a refresh, or a record of an older build).
        created: bool,
    },
    /// A binding removed by a REGISTER (or evicted).
    Remove {
        aor: &'a [u8],
        contact: &'a [u8],
        instance: &'a [u8],
        reg_id: u32,
    },
}

/// Decodes a journal record into a [`BindingChange`]. Never panics.
pub fn decode_change(rec: &[u8]) -> Result<BindingChange<'_>, RestoreError> {
    Ok(match decode(rec)? {
        Record::Upsert(u) => BindingChange::Upsert {
            aor: u.aor,
            contact: u.contact,
            instance: u.instance,
            reg_id: u.reg_id,
            path: u.path,
            call_id: u.call_id,
            cseq: u.cseq,
            q: u.q,
            expires_unix_ms: u.expires_unix_ms,
            registered_unix_ms: u.registered_unix_ms,
            source: u.source,
            created: u.created,
        },
        Record::Remove {
            aor,
            contact,
            instance,
            reg_id,
        } => BindingChange::Remove {
            aor,
            contact,
            instance,
            reg_id,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Upsert<'static> {
        Upsert {
            aor: b"sip:alice@example.com",
            contact: b"sip:alice@192.0.2.1:5060;transport=udp",
            call_id: b"abc@192.0.2.1",
            instance: b"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>",
            path: b"<sip:p1.example.com;lr>",
            user_agent: b"Phone/1.0",
            cseq: 42,
            reg_id: 1,
            q: Some(700),
            expires_unix_ms: 1_800_000_000_000,
            registered_unix_ms: 1_799_999_000_000,
            source: "[2001:db8::5]:40000".parse().expect("addr"),
            local: 1,
            transport: Transport::Udp,
            arrival: 3,
            branch: 0xdead_beef,
            created: false,
        }
    }

    #[test]
    fn a_creation_is_kind_3_and_an_old_upsert_still_reads_as_not_created() {
        let mut buf = Vec::new();
        let created = Upsert {
            created: true,
            ..sample()
        };
        encode_upsert(&mut buf, &created);
        assert_eq!(&buf[..2], &[RECORD_VERSION, KIND_CREATE]);
        assert_eq!(decode(&buf), Ok(Record::Upsert(created)));
        assert!(matches!(
            decode_change(&buf),
            Ok(BindingChange::Upsert { created: true, .. })
        ));
        // A journal written before kind 3: the same bytes with kind 1 (what every older
        // build wrote for creations and refreshes alike) reads as a refresh.
        let mut old = buf.clone();
        old[1] = KIND_UPSERT;
        assert_eq!(decode(&old), Ok(Record::Upsert(sample())));
        assert!(matches!(
            decode_change(&old),
            Ok(BindingChange::Upsert { created: false, .. })
        ));
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        let u = sample();
        encode_upsert(&mut buf, &u);
        assert_eq!(decode(&buf), Ok(Record::Upsert(u)));
        let v4 = Upsert {
            source: "192.0.2.9:5060".parse().expect("addr"),
            q: None,
            instance: b"",
            path: b"",
            ..u
        };
        buf.clear();
        encode_upsert(&mut buf, &v4);
        assert_eq!(decode(&buf), Ok(Record::Upsert(v4)));
        buf.clear();
        encode_remove(&mut buf, u.aor, u.contact, u.instance, 1);
        assert_eq!(
            decode(&buf),
            Ok(Record::Remove {
                aor: u.aor,
                contact: u.contact,
                instance: u.instance,
                reg_id: 1
            })
        );
        assert_eq!(record_owner(&buf, 1), Some(ShardId(0)));
        assert_eq!(record_owner(&buf, 7), Some(owner_of(u.aor, 7)));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let mut buf = Vec::new();
        encode_upsert(&mut buf, &sample());
        // Every truncation, every trailing byte, every single-byte corruption.
        for n in 0..buf.len() {
            assert!(decode(&buf[..n]).is_err(), "truncated at {n}");
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(RestoreError::Malformed));
        for i in 0..buf.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                let mut b = buf.clone();
                b[i] = v;
                let _ = decode(&b);
            }
        }
        assert_eq!(decode(&[9, 1]), Err(RestoreError::Version(9)));
        assert_eq!(decode(&[1, 77]), Err(RestoreError::Malformed));
        assert_eq!(record_owner(b"", 4), None);
        // A pseudo-random soup.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let mut b = vec![1u8, (len % 3) as u8];
            b.extend_from_slice(&bytes);
            let _ = decode(&b);
        }
    }
}
