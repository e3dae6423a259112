//! The shard's transaction cells: a slab with a free list plus a hash index from the
//! server-transaction key (RFC 3261 §17.2.3) to the slot.
//!
//! Every cell is paid for: the table counts its live cells and the bytes they hold (the
//! capacity of every buffer of the cell and of its branches) against [`TxnLimits`], and
//! [`Table::has_room`] tells the relay whether a new transaction fits (if not it answers
//! 503, `proxy::limits`). The bytes of a cell are recounted whenever the relay has held it
//! mutably ([`Table::cell_mut`], [`Table::get_mut`], [`Table::insert`]): the recount of
//! the last such cell is settled at the next table call that needs an exact total, so
//! the count lags by at most one cell and never drifts. A freed cell keeps at most
//! [`RETAINED_BUFFER_BYTES`] per buffer (one large message must not pin 64 KiB per slot
//! for the life of the process).

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;

use crate::output::LocalId;
use crate::time::Millis;
use crate::txn::GEN_MASK;

pub(crate) use super::state::{Cancel, Cli, Srv};

/// One client transaction: the request forwarded to one target.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    /// Changed only by [`Cell::set_branch`] (the legal edges, `txn::state`).
    state: Cli,
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
    /// Changed only by [`Cell::set_cancel`].
    cancel: Cancel,
    pub cancel_interval_ms: u64,
    /// Timer C deadline (lazily re-armed).
    pub timer_c_at: Millis,
    /// The destination is a binding's registered flow (its NAT source, or the address it
    /// registered from): the request stays on the binding's socket and transport — no
    /// RFC 3261 §18.1.1 switch to TCP (issue 19).
    pub pinned: bool,
}

/// Who is waiting for a cell's final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A request we relay: the server transaction answers upstream (RFC 3261 §16.7).
    Upstream,
    /// A request the edge originated itself (`proxy::originate`): there is no server
    /// transaction; the branches' finals go to a local consumer, nothing goes upstream.
    Local,
}

/// A proxied request: its server transaction and its branches.
#[derive(Debug)]
pub(crate) struct Cell {
    pub gen: u32,
    pub live: bool,
    pub key: u64,
    pub invite: bool,
    /// Set at insert ([`Origin::Upstream`]); `proxy::originate` makes it `Local`.
    pub origin: Origin,
    /// Changed only by [`Cell::set_state`] (the legal edges, `txn::state`).
    state: Srv,
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
    /// With `lookup_pending`: the lookup is the cluster's (issue 20, `proxy::remote`), not
    /// another shard's.
    pub remote: bool,
    pub branches: Vec<Branch>,
    /// Illegal edges taken by this slot's cells, ever (release builds; see `txn::state`).
    illegal_edges: u64,
}

impl Branch {
    /// A new client transaction in Calling (Trying for a non-INVITE), no CANCEL wanted.
    pub(crate) fn new(
        local: LocalId,
        dest: SocketAddr,
        (uri, route, route_edit): (Vec<u8>, Vec<u8>, bool),
        now: Millis,
    ) -> Branch {
        Branch {
            state: Cli::Calling,
            local,
            dest,
            uri,
            route,
            route_edit,
            interval_ms: 0,
            cancel: Cancel::None,
            cancel_interval_ms: 0,
            timer_c_at: now,
            pinned: false,
        }
    }

    pub(crate) fn state(&self) -> Cli {
        self.state
    }

    pub(crate) fn cancel(&self) -> Cancel {
        self.cancel
    }
}

impl Cell {
    fn empty(gen: u32) -> Cell {
        Cell {
            gen,
            live: false,
            key: 0,
            invite: false,
            origin: Origin::Upstream,
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
            remote: false,
            branches: Vec::new(),
            illegal_edges: 0,
        }
    }

    pub(crate) fn state(&self) -> Srv {
        self.state
    }

    /// The server transaction moves to `to` (edges: [`Srv::legal`]).
    pub(crate) fn set_state(&mut self, to: Srv) {
        let from = self.state;
        self.note_edge(from.legal(to, self.invite), "server", &from, &to);
        self.state = to;
    }

    /// Branch `b`'s client transaction moves to `to` (edges: [`Cli::legal`]).
    pub(crate) fn set_branch(&mut self, b: usize, to: Cli) {
        let from = self.branches[b].state;
        self.note_edge(from.legal(to, self.invite), "client", &from, &to);
        self.branches[b].state = to;
    }

    /// Branch `b`'s CANCEL moves to `to` (edges: [`Cancel::legal`]).
    pub(crate) fn set_cancel(&mut self, b: usize, to: Cancel) {
        let from = self.branches[b].cancel;
        self.note_edge(from.legal(to), "CANCEL", &from, &to);
        self.branches[b].cancel = to;
    }

    /// An illegal edge is a bug: it stops a debug build and is counted in release.
    fn note_edge(&mut self, ok: bool, machine: &str, from: &dyn Debug, to: &dyn Debug) {
        debug_assert!(
            ok,
            "illegal {machine} transaction edge {from:?} -> {to:?} (INVITE: {})",
            self.invite
        );
        if !ok {
            self.illegal_edges = self.illegal_edges.saturating_add(1);
        }
    }

    /// Every branch has its final answer (or gave up).
    pub(crate) fn all_final(&self) -> bool {
        self.branches
            .iter()
            .all(|b| matches!(b.state, Cli::Completed | Cli::Terminated))
    }
}

/// Default `[limits] max_transactions`, all shards together: live transactions (relay
/// cells). 500 000 is ~15 s of 30 000 new transactions/s, longer than non-INVITE cells
/// live (timer J/K) at the rates a 2-core box reaches.
pub const DEFAULT_MAX_TRANSACTIONS: u64 = 500_000;
/// Default `[limits] max_transaction_bytes`, all shards together: bytes held by live
/// transactions (requests, responses, branch URIs): 1 GiB, ~300 000 typical INVITEs with
/// SDP and their responses.
pub const DEFAULT_MAX_TRANSACTION_BYTES: u64 = 1 << 30;
/// Capacity a freed cell keeps per buffer (a typical INVITE with SDP and its response fit,
/// so steady state allocates nothing; a 64 KiB message's buffer is released).
pub const RETAINED_BUFFER_BYTES: usize = 4096;
/// Branches a freed cell keeps room for.
const RETAINED_BRANCHES: usize = 4;

/// One shard's caps on its transaction table (its share of `[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnLimits {
    /// Live transactions, at most.
    pub max_transactions: usize,
    /// Bytes held by live transactions, at most.
    pub max_bytes: usize,
}

impl Default for TxnLimits {
    fn default() -> Self {
        Self {
            max_transactions: DEFAULT_MAX_TRANSACTIONS as usize,
            max_bytes: DEFAULT_MAX_TRANSACTION_BYTES as usize,
        }
    }
}

impl TxnLimits {
    /// The share of one shard among `shards` of the edge-wide `transactions` and `bytes`
    /// (rounded up; at least one transaction).
    pub fn per_shard(transactions: u64, bytes: u64, shards: u16) -> TxnLimits {
        let n = u64::from(shards.max(1));
        TxnLimits {
            max_transactions: usize::try_from(transactions.div_ceil(n).max(1))
                .unwrap_or(usize::MAX),
            max_bytes: usize::try_from(bytes.div_ceil(n)).unwrap_or(usize::MAX),
        }
    }
}

impl Cell {
    /// Bytes this cell holds: its struct, every buffer's capacity, its branches'.
    fn footprint(&self) -> usize {
        let branches: usize = self
            .branches
            .iter()
            .map(|b| b.uri.capacity() + b.route.capacity())
            .sum();
        std::mem::size_of::<Cell>()
            + self.req.capacity()
            + self.resp.capacity()
            + self.best.capacity()
            + self.branches.capacity() * std::mem::size_of::<Branch>()
            + branches
    }

    /// Gives back buffer capacity above the retained size.
    fn release(&mut self) {
        for buf in [&mut self.req, &mut self.resp, &mut self.best] {
            buf.clear();
            if buf.capacity() > RETAINED_BUFFER_BYTES {
                buf.shrink_to(RETAINED_BUFFER_BYTES);
            }
        }
        self.branches.clear();
        if self.branches.capacity() > RETAINED_BRANCHES {
            self.branches.shrink_to(RETAINED_BRANCHES);
        }
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
    /// Illegal edges of the cells freed so far (`free` moves a cell's count here).
    retired_illegal: u64,
    live: usize,
    limits: TxnLimits,
    /// Bytes held by live cells, as last counted (see [`Table::settle`]).
    held: usize,
    /// What each slot was last counted at (index = slot).
    charged: Vec<usize>,
    /// The cell last lent out mutably: its bytes are recounted at the next `settle`.
    touched: Option<u32>,
    /// Generation given to a slot's first tenant (from the seed, so a restarted edge does
    /// not take an old response for a new transaction).
    first_gen: u32,
}

impl Table {
    pub(crate) fn new(seed: u64) -> Table {
        Table {
            first_gen: (seed as u32 ^ (seed >> 32) as u32) & GEN_MASK,
            limits: TxnLimits::default(),
            ..Table::default()
        }
    }

    /// Sets the caps (`[limits]`, this shard's share).
    pub(crate) fn set_limits(&mut self, limits: TxnLimits) {
        self.limits = limits;
    }

    /// Bytes held by live cells (exact once settled).
    pub(crate) fn held_bytes(&mut self) -> usize {
        self.settle();
        self.held
    }

    /// Recounts the cell last lent out mutably.
    fn settle(&mut self) {
        let Some(idx) = self.touched.take() else {
            return;
        };
        let i = idx as usize;
        let Some(c) = self.cells.get(i) else { return };
        if !c.live {
            return;
        }
        let now = c.footprint();
        let was = std::mem::replace(&mut self.charged[i], now);
        self.held = self.held.saturating_sub(was).saturating_add(now);
    }

    /// Why a new transaction of `request_len` bytes does not fit, if it does not.
    pub(crate) fn has_room(&mut self, request_len: usize) -> Result<(), Full> {
        self.settle();
        if self.live >= self.limits.max_transactions {
            return Err(Full::Transactions);
        }
        let need = std::mem::size_of::<Cell>().saturating_add(request_len);
        if self.held.saturating_add(need) > self.limits.max_bytes {
            return Err(Full::Bytes);
        }
        Ok(())
    }

    /// Live cells.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Every live cell with its slot (invariant checks).
    pub(crate) fn live_cells(&self) -> impl Iterator<Item = (u32, &Cell)> + '_ {
        (0u32..).zip(&self.cells).filter(|(_, c)| c.live)
    }

    /// Illegal state edges taken, all cells ever (0 unless there is a bug; debug builds
    /// stop at the first).
    pub(crate) fn illegal_edges(&self) -> u64 {
        self.cells.iter().fold(self.retired_illegal, |n, c| {
            n.saturating_add(c.illegal_edges)
        })
    }

    /// Illegal state edges taken by the cells freed so far (the exported counter: a cell's
    /// edges are counted when it ends, in O(1)).
    pub(crate) fn retired_illegal_edges(&self) -> u64 {
        self.retired_illegal
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
        self.settle();
        let c = self
            .cells
            .get_mut(idx as usize)
            .filter(|c| c.live && (c.gen & GEN_MASK) == (gen & GEN_MASK))?;
        self.touched = Some(idx);
        Some(c)
    }

    /// The live cell at `idx` (an index the caller just found or created).
    pub(crate) fn cell(&self, idx: u32) -> &Cell {
        &self.cells[idx as usize]
    }

    pub(crate) fn cell_mut(&mut self, idx: u32) -> &mut Cell {
        self.settle();
        self.touched = Some(idx);
        &mut self.cells[idx as usize]
    }

    /// A new live cell under `key`, reusing a freed slot (and its buffers) when there is one.
    /// The caller checks [`Table::has_room`] first.
    pub(crate) fn insert(&mut self, key: u64) -> u32 {
        self.settle();
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.cells.push(Cell::empty(self.first_gen));
                self.charged.push(0);
                (self.cells.len() - 1) as u32
            }
        };
        let c = &mut self.cells[idx as usize];
        c.live = true;
        c.key = key;
        c.origin = Origin::Upstream;
        // A new tenant: its server transaction starts in Trying (not an edge).
        c.state = Srv::Trying;
        c.req.clear();
        c.resp.clear();
        c.best.clear();
        c.best_code = 0;
        c.canceled = false;
        c.record_route = false;
        c.lookup_pending = false;
        c.remote = false;
        c.branches.clear();
        self.index.insert(key, idx);
        self.live += 1;
        let now = c.footprint();
        self.charged[idx as usize] = now;
        self.held = self.held.saturating_add(now);
        self.touched = Some(idx);
        idx
    }

    /// Frees `idx`: its generation moves on, so every timer and branch naming it is stale.
    /// Buffers above [`RETAINED_BUFFER_BYTES`] are given back.
    pub(crate) fn free(&mut self, idx: u32) {
        self.settle();
        let c = &mut self.cells[idx as usize];
        if !c.live {
            return;
        }
        c.release();
        self.retired_illegal = self
            .retired_illegal
            .saturating_add(std::mem::take(&mut c.illegal_edges));
        let was = std::mem::take(&mut self.charged[idx as usize]);
        self.held = self.held.saturating_sub(was);
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

/// Which cap a new transaction would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// `max_transactions`.
    Transactions,
    /// `max_transaction_bytes`.
    Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "illegal server transaction edge Terminated -> Trying")]
    fn an_illegal_edge_stops_a_debug_build() {
        let mut t = Table::new(1);
        let idx = t.insert(7);
        let c = t.cell_mut(idx);
        c.set_state(Srv::Completed);
        c.set_state(Srv::Terminated);
        c.set_state(Srv::Trying);
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn an_illegal_edge_is_counted_in_release() {
        let mut t = Table::new(1);
        let idx = t.insert(7);
        let c = t.cell_mut(idx);
        c.set_state(Srv::Completed);
        c.set_state(Srv::Confirmed);
        assert_eq!(
            t.illegal_edges(),
            1,
            "a non-INVITE cell has no Confirmed state"
        );
        assert_eq!(
            t.cell(idx).state(),
            Srv::Confirmed,
            "taken anyway, as before"
        );
        t.free(idx);
        assert_eq!(t.retired_illegal_edges(), 1, "exported once the cell ends");
        assert_eq!(t.illegal_edges(), 1, "not counted twice");
    }

    #[test]
    fn a_freed_cell_gives_back_large_buffers_and_its_bytes() {
        let mut t = Table::new(1);
        t.set_limits(TxnLimits {
            max_transactions: 10,
            max_bytes: 1 << 20,
        });
        let idx = t.insert(42);
        let base = t.held_bytes();
        let c = t.cell_mut(idx);
        c.req.extend_from_slice(&[b'x'; 60_000]);
        c.resp.extend_from_slice(&[b'y'; 60_000]);
        assert!(t.held_bytes() >= base + 120_000, "growth is counted");
        t.free(idx);
        assert_eq!(t.held_bytes(), 0, "a freed cell holds nothing on the books");
        let c = &t.cells[idx as usize];
        assert!(
            c.req.capacity() <= RETAINED_BUFFER_BYTES,
            "{}",
            c.req.capacity()
        );
        assert!(c.resp.capacity() <= RETAINED_BUFFER_BYTES);
    }

    #[test]
    fn room_is_refused_at_either_cap_and_comes_back() {
        let mut t = Table::new(1);
        t.set_limits(TxnLimits {
            max_transactions: 2,
            max_bytes: 100_000,
        });
        let a = t.insert(1);
        assert_eq!(t.has_room(100), Ok(()));
        let b = t.insert(2);
        assert_eq!(t.has_room(100), Err(Full::Transactions));
        t.free(b);
        t.cell_mut(a).req.resize(90_000, 0);
        assert_eq!(t.has_room(20_000), Err(Full::Bytes));
        t.free(a);
        assert_eq!(t.has_room(20_000), Ok(()));
    }
}
