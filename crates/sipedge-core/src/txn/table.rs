//! The shard's transaction cells: a slab with a free list plus a hash index from the
//! server-transaction key (RFC 3261 §17.2.3) to the slot.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;

use crate::output::LocalId;
use crate::time::Millis;
use crate::txn::GEN_MASK;

/// Server transaction states (RFC 3261 §17.2; Accepted from RFC 6026 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Srv {
    /// Nothing sent upstream beyond 100 (INVITE: Proceeding; non-INVITE: Trying).
    Trying,
    /// A provisional response other than 100 was sent.
    Proceeding,
    /// A final response (INVITE: non-2xx) was sent; absorbing retransmissions.
    Completed,
    /// INVITE: the ACK for our non-2xx arrived (timer I running).
    Confirmed,
    /// INVITE: a 2xx was forwarded (timer L running; 2xx retransmissions still pass).
    Accepted,
    /// Done; the cell is freed once every branch is done too.
    Terminated,
}

/// Client transaction states (RFC 3261 §17.1; Calling is Trying for a non-INVITE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cli {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// A CANCEL for a branch (RFC 3261 §9.1, §16.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    None,
    /// Wanted, but no provisional response yet: sent when one arrives (§9.1).
    Pending,
    /// Sent; retransmitted until answered.
    Sent,
    /// Answered or given up.
    Done,
}

/// One client transaction: the request forwarded to one target.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub state: Cli,
    pub local: LocalId,
    pub dest: SocketAddr,
    /// The Request-URI sent (empty: the received one).
    pub uri: Vec<u8>,
    /// When `route_edit`: the Route value sent instead of the received Route headers
    /// (empty: none).
    pub route: Vec<u8>,
    pub route_edit: bool,
    /// Current retransmit interval (A or E), ms.
    pub interval_ms: u64,
    pub cancel: Cancel,
    pub cancel_interval_ms: u64,
    /// Timer C deadline (lazily re-armed).
    pub timer_c_at: Millis,
}

/// A proxied request: its server transaction and its branches.
#[derive(Debug)]
pub(crate) struct Cell {
    pub gen: u32,
    pub live: bool,
    pub key: u64,
    pub invite: bool,
    pub state: Srv,
    /// Where responses go upstream (the request's source, §18.2.2 / RFC 3581).
    pub up_local: LocalId,
    pub up_dest: SocketAddr,
    /// The request as received.
    pub req: Vec<u8>,
    /// The last response sent upstream (a retransmitted request gets it again).
    pub resp: Vec<u8>,
    /// The best final response so far, our Via removed (§16.7 step 6); empty with
    /// `best_code != 0`: one we generate (408, 487).
    pub best: Vec<u8>,
    pub best_code: u16,
    pub g_interval_ms: u64,
    pub canceled: bool,
    pub record_route: bool,
    pub loop_hash: u32,
    /// A location lookup on another shard is outstanding.
    pub lookup_pending: bool,
    pub branches: Vec<Branch>,
}

impl Cell {
    fn empty(gen: u32) -> Cell {
        Cell {
            gen,
            live: false,
            key: 0,
            invite: false,
            state: Srv::Terminated,
            up_local: LocalId(0),
            up_dest: SocketAddr::from(([0, 0, 0, 0], 0)),
            req: Vec::new(),
            resp: Vec::new(),
            best: Vec::new(),
            best_code: 0,
            g_interval_ms: 0,
            canceled: false,
            record_route: false,
            loop_hash: 0,
            lookup_pending: false,
            branches: Vec::new(),
        }
    }

    /// Every branch has its final answer (or gave up).
    pub(crate) fn all_final(&self) -> bool {
        self.branches
            .iter()
            .all(|b| matches!(b.state, Cli::Completed | Cli::Terminated))
    }
}

/// Identity hasher for keys that are already seeded hashes.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The slab and its index.
#[derive(Debug, Default)]
pub(crate) struct Table {
    cells: Vec<Cell>,
    free: Vec<u32>,
    index: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
    live: usize,
    /// Generation given to a slot's first tenant (from the seed, so a restarted edge does
    /// not take an old response for a new transaction).
    first_gen: u32,
}

impl Table {
    pub(crate) fn new(seed: u64) -> Table {
        Table {
            first_gen: (seed as u32 ^ (seed >> 32) as u32) & GEN_MASK,
            ..Table::default()
        }
    }

    /// Live cells.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Every live cell with its slot (invariant checks).
    pub(crate) fn live_cells(&self) -> impl Iterator<Item = (u32, &Cell)> + '_ {
        (0u32..).zip(&self.cells).filter(|(_, c)| c.live)
    }

    /// The cell for a server-transaction key.
    pub(crate) fn find(&self, key: u64) -> Option<u32> {
        self.index.get(&key).copied()
    }

    /// The live cell at `idx` whose generation matches `gen` (masked).
    pub(crate) fn get(&self, idx: u32, gen: u32) -> Option<&Cell> {
        self.cells
            .get(idx as usize)
            .filter(|c| c.live && (c.gen & GEN_MASK) == (gen & GEN_MASK))
    }

    pub(crate) fn get_mut(&mut self, idx: u32, gen: u32) -> Option<&mut Cell> {
        self.cells
            .get_mut(idx as usize)
            .filter(|c| c.live && (c.gen & GEN_MASK) == (gen & GEN_MASK))
    }

    /// The live cell at `idx` (an index the caller just found or created).
    pub(crate) fn cell(&self, idx: u32) -> &Cell {
        &self.cells[idx as usize]
    }

    pub(crate) fn cell_mut(&mut self, idx: u32) -> &mut Cell {
        &mut self.cells[idx as usize]
    }

    /// A new live cell under `key`, reusing a freed slot (and its buffers) when there is one.
    pub(crate) fn insert(&mut self, key: u64) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.cells.push(Cell::empty(self.first_gen));
                (self.cells.len() - 1) as u32
            }
        };
        let c = &mut self.cells[idx as usize];
        c.live = true;
        c.key = key;
        c.state = Srv::Trying;
        c.req.clear();
        c.resp.clear();
        c.best.clear();
        c.best_code = 0;
        c.canceled = false;
        c.record_route = false;
        c.lookup_pending = false;
        c.branches.clear();
        self.index.insert(key, idx);
        self.live += 1;
        idx
    }

    /// Frees `idx`: its generation moves on, so every timer and branch naming it is stale.
    pub(crate) fn free(&mut self, idx: u32) {
        let c = &mut self.cells[idx as usize];
        if !c.live {
            return;
        }
        c.live = false;
        c.gen = c.gen.wrapping_add(1);
        let key = c.key;
        if self.index.get(&key) == Some(&idx) {
            self.index.remove(&key);
        }
        self.free.push(idx);
        self.live -= 1;
    }
}
