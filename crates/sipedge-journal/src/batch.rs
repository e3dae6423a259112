//! [`RecordBatch`]: records held back-to-back in one buffer, e.g. recovered records routed to
//! the new shard that owns them, without one allocation per record.

/// Records stored contiguously (`u32` length + bytes each). Cheap to move between threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordBatch {
    buf: Vec<u8>,
    len: usize,
}

impl RecordBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a record (at most `u32::MAX` bytes, which the journal's maximum ensures).
    pub fn push(&mut self, rec: &[u8]) {
        let n = u32::try_from(rec.len()).expect("records are smaller than 4 GiB");
        self.buf.extend_from_slice(&n.to_le_bytes());
        self.buf.extend_from_slice(rec);
        self.len += 1;
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The records in the order they were pushed.
    pub fn iter(&self) -> RecordBatchIter<'_> {
        RecordBatchIter { rest: &self.buf }
    }
}

impl<'a> IntoIterator for &'a RecordBatch {
    type Item = &'a [u8];
    type IntoIter = RecordBatchIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over a [`RecordBatch`].
#[derive(Debug, Clone)]
pub struct RecordBatchIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RecordBatchIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (n, rest) = self.rest.split_first_chunk::<4>()?;
        let n = u32::from_le_bytes(*n) as usize;
        let (rec, rest) = rest.split_at(n);
        self.rest = rest;
        Some(rec)
    }
}
