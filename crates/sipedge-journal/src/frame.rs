//! The on-disk framing: file header, records, snapshot trailer, and a reader that tells a torn
//! tail from damage in the middle.
//!
//! ```text
//! file     = header record* [trailer]          (trailer: snapshots only)
//! header   = "SEJ1" version:u16 kind:u8 0:u8 shard:u16 0:u16 generation:u64 crc:u32   (24 bytes)
//! record   = len:u32 crc:u32 payload[len]       1 <= len <= max_record_bytes
//! trailer  = 0xFFFF_FFFF crc:u32 count:u64      (16 bytes; crc covers the count's bytes)
//! ```
//!
//! All integers are little-endian; every CRC is CRC-32 (IEEE, `crc32fast`). The header's CRC
//! covers its first 20 bytes. A record's CRC covers its payload. A zero length is never
//! written, so a zero-filled tail (what some file systems show after a crash) is never a record.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// First bytes of every journal and snapshot file.
pub const MAGIC: [u8; 4] = *b"SEJ1";
/// Version of the format written by this crate.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Bytes of a record header (length + CRC).
pub const RECORD_HEADER_LEN: usize = 8;
/// Bytes of the snapshot trailer.
pub const TRAILER_LEN: usize = 16;
/// Default largest record payload, bytes (1 MiB): far above any binding, small enough that a
/// corrupt length cannot make recovery allocate gigabytes.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;
/// The length value that marks the snapshot trailer.
const TRAILER_MARKER: u32 = u32::MAX;
/// Read buffer of the recovery reader, bytes.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `shard-S-G.snap`: every live record of the shard when generation G began.
    Snapshot = 1,
    /// `shard-S-G.log`: changes appended during generation G.
    Journal = 2,
}

/// The decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub(crate) kind: FileKind,
    pub(crate) shard: u16,
    pub(crate) generation: u64,
}

impl FileHeader {
    pub(crate) fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut h = [0u8; FILE_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[6] = self.kind as u8;
        h[8..10].copy_from_slice(&self.shard.to_le_bytes());
        h[12..20].copy_from_slice(&self.generation.to_le_bytes());
        let crc = crc32fast::hash(&h[0..20]);
        h[20..24].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub(crate) fn decode(h: &[u8; FILE_HEADER_LEN]) -> Result<Self, &'static str> {
        if h[0..4] != MAGIC {
            return Err("not a journal file (bad magic)");
        }
        if crc32fast::hash(&h[0..20]) != le32(&h[20..24]) {
            return Err("file header CRC mismatch");
        }
        if u16::from_le_bytes([h[4], h[5]]) != FORMAT_VERSION {
            return Err("unknown format version");
        }
        let kind = match h[6] {
            1 => FileKind::Snapshot,
            2 => FileKind::Journal,
            _ => return Err("unknown file kind"),
        };
        Ok(Self {
            kind,
            shard: u16::from_le_bytes([h[8], h[9]]),
            generation: u64::from_le_bytes(h[12..20].try_into().expect("8-byte slice")),
        })
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4-byte slice"))
}

/// Appends one framed record to `out`. The caller has checked `1 <= rec.len() <= max`.
pub(crate) fn encode_record(out: &mut Vec<u8>, rec: &[u8]) {
    let len = u32::try_from(rec.len()).expect("record length checked against the maximum");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(rec).to_le_bytes());
    out.extend_from_slice(rec);
}

/// The snapshot trailer for `count` records.
pub(crate) fn encode_trailer(count: u64) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    let c = count.to_le_bytes();
    t[0..4].copy_from_slice(&TRAILER_MARKER.to_le_bytes());
    t[4..8].copy_from_slice(&crc32fast::hash(&c).to_le_bytes());
    t[8..16].copy_from_slice(&c);
    t
}

/// Checks a payload length against the framing's rules.
pub(crate) fn check_len(len: usize, max: usize) -> Result<(), crate::JournalError> {
    if len == 0 || len > max || len > u32::MAX as usize - 1 {
        return Err(crate::JournalError::RecordSize { len, max });
    }
    Ok(())
}

/// A record the reader could not accept. Reading of the file stops there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadRecord {
    /// Byte offset of the bad record in the file.
    pub(crate) offset: u64,
    /// True when the damage reaches the end of the file as far as the framing can tell (a
    /// write cut short by a crash); false when valid-looking data follows (corruption).
    pub(crate) torn: bool,
    /// What was wrong.
    pub(crate) reason: &'static str,
}

/// One step of [`FileReader::next`].
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A valid record.
    Record(&'a [u8]),
    /// A valid snapshot trailer; `at_eof` is false when bytes follow it.
    Trailer { count: u64, at_eof: bool },
    /// The file ends exactly after the last record.
    Eof,
    /// A record that failed its checks.
    Bad(BadRecord),
}

/// Sequential reader of one file, with a reused payload buffer.
pub(crate) struct FileReader {
    reader: BufReader<File>,
    file_len: u64,
    offset: u64,
    max: usize,
    buf: Vec<u8>,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("file_len", &self.file_len)
            .field("offset", &self.offset)
            .finish()
    }
}

/// Why a file was not read at all.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// Shorter than a header: created by a crash before its header was durable.
    Empty,
    /// The header is not ours or fails its CRC.
    BadHeader(&'static str),
    /// The OS refused.
    Io(io::Error),
}

impl FileReader {
    /// Opens `path` and decodes its header.
    pub(crate) fn open(path: &Path, max: usize) -> Result<(Self, FileHeader), OpenFailure> {
        let file = File::open(path).map_err(OpenFailure::Io)?;
        let file_len = file.metadata().map_err(OpenFailure::Io)?.len();
        if file_len < FILE_HEADER_LEN as u64 {
            return Err(OpenFailure::Empty);
        }
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let mut h = [0u8; FILE_HEADER_LEN];
        reader.read_exact(&mut h).map_err(OpenFailure::Io)?;
        let header = FileHeader::decode(&h).map_err(OpenFailure::BadHeader)?;
        Ok((
            Self {
                reader,
                file_len,
                offset: FILE_HEADER_LEN as u64,
                max,
                buf: Vec::new(),
            },
            header,
        ))
    }

    /// Bytes of the file consumed so far.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    fn bad(&self, torn: bool, reason: &'static str) -> io::Result<Step<'_>> {
        Ok(Step::Bad(BadRecord {
            offset: self.offset,
            torn,
            reason,
        }))
    }

    /// True when every byte from the current read position to the end of the file is zero.
    fn rest_is_zero(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.reader.read(&mut chunk)?;
            if n == 0 {
                return Ok(true);
            }
            if chunk[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
        }
    }

    /// The next record, the trailer, the end, or the first bad record.
    pub(crate) fn next(&mut self) -> io::Result<Step<'_>> {
        let remaining = self.file_len - self.offset;
        if remaining == 0 {
            return Ok(Step::Eof);
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            return self.bad(true, "record header cut short");
        }
        let mut hdr = [0u8; RECORD_HEADER_LEN];
        self.reader.read_exact(&mut hdr)?;
        let len = le32(&hdr[0..4]);
        let crc = le32(&hdr[4..8]);
        if len == TRAILER_MARKER {
            if remaining < TRAILER_LEN as u64 {
                return self.bad(true, "snapshot trailer cut short");
            }
            let mut c = [0u8; 8];
            self.reader.read_exact(&mut c)?;
            if crc32fast::hash(&c) != crc {
                let torn = remaining == TRAILER_LEN as u64;
                return self.bad(torn, "snapshot trailer CRC mismatch");
            }
            self.offset += TRAILER_LEN as u64;
            return Ok(Step::Trailer {
                count: u64::from_le_bytes(c),
                at_eof: self.offset == self.file_len,
            });
        }
        let len = len as usize;
        if len == 0 || len > self.max {
            let torn = hdr == [0u8; RECORD_HEADER_LEN] && self.rest_is_zero()?;
            let reason = if torn {
                "zero-filled tail"
            } else {
                "record length out of range"
            };
            return self.bad(torn, reason);
        }
        let end = (RECORD_HEADER_LEN + len) as u64;
        if end > remaining {
            return self.bad(true, "record cut short");
        }
        self.buf.resize(len, 0);
        self.reader.read_exact(&mut self.buf)?;
        if crc32fast::hash(&self.buf) != crc {
            let torn = end == remaining;
            return self.bad(torn, "record CRC mismatch");
        }
        self.offset += end;
        Ok(Step::Record(&self.buf))
    }
}
