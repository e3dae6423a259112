//! Reference-counted interned strings of the location table (AoR domains, User-Agents).

use hashbrown::HashTable;

use crate::aor::TableHasher;

/// Longest contact URI, Call-ID, instance or Path accepted (bytes, fits the u16 lengths).
pub(crate) const MAX_FIELD_BYTES: usize = 4096;

/// Reference-counted interned strings (AoR domains, User-Agents).
#[derive(Debug)]
pub(crate) struct Interner {
    index: HashTable<u32>,
    pub(super) strings: Vec<(Box<[u8]>, u32)>,
    free: Vec<u32>,
}

impl Interner {
    pub(super) fn new() -> Interner {
        Interner {
            index: HashTable::new(),
            strings: Vec::new(),
            free: Vec::new(),
        }
    }

    pub(crate) fn get(&self, id: u32) -> &[u8] {
        self.strings.get(id as usize).map_or(&[], |(s, _)| s)
    }

    pub(super) fn find(&self, h: &TableHasher, s: &[u8]) -> Option<u32> {
        let hash = h.hash(&[s]);
        self.index
            .find(hash, |&id| &*self.strings[id as usize].0 == s)
            .copied()
    }

    /// The id of `s`, with one more reference.
    pub(super) fn acquire(&mut self, h: &TableHasher, s: &[u8]) -> u32 {
        if let Some(id) = self.find(h, s) {
            self.strings[id as usize].1 += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.strings[id as usize] = (s.into(), 1);
                id
            }
            None => {
                self.strings.push((s.into(), 1));
                (self.strings.len() - 1) as u32
            }
        };
        let strings = &self.strings;
        self.index
            .insert_unique(h.hash(&[s]), id, |&i| h.hash(&[&strings[i as usize].0]));
        id
    }

    /// Drops one reference; true when that was the last and the id is free again.
    pub(super) fn release(&mut self, h: &TableHasher, id: u32) -> bool {
        let Some(entry) = self.strings.get_mut(id as usize) else {
            return false;
        };
        entry.1 -= 1;
        if entry.1 == 0 {
            let hash = h.hash(&[&entry.0]);
            if let Ok(e) = self.index.find_entry(hash, |&i| i == id) {
                e.remove();
            }
            self.strings[id as usize].0 = Box::default();
            self.free.push(id);
            return true;
        }
        false
    }
}
