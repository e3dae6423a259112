//! [`Directory`]: which shard owns the connection of a flow `(listener, peer)`, and how many
//! connections each source IP holds, process-wide.
//!
//! Written only when a connection opens or closes, read when a shard must send down a
//! connection it does not own (it then hands the bytes to the owner over the mesh: RFC 5626
//! §5.3, a request to a flow goes down that flow's connection, never a new one). Mutex-striped
//! hash maps: no lock is taken on the UDP path, and opens on different stripes do not contend.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// Lock stripes (a power of two).
const STRIPES: usize = 64;

type Flow = (u16, SocketAddr);

/// The process-wide connection directory; one per edge, shared by every shard.
#[derive(Debug)]
pub struct Directory {
    flows: Box<[Mutex<HashMap<Flow, u16>>]>,
    ips: Box<[Mutex<HashMap<IpAddr, u32>>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Directory {
    fn default() -> Self {
        Directory::new()
    }
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Directory {
        Directory {
            flows: (0..STRIPES).map(|_| Mutex::default()).collect(),
            ips: (0..STRIPES).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn stripe<K: Hash>(&self, k: &K) -> usize {
        (self.hasher.hash_one(k) as usize) & (STRIPES - 1)
    }

    /// Records that `shard` owns the connection of `(local, remote)`.
    pub fn insert(&self, local: u16, remote: SocketAddr, shard: u16) {
        let k = (local, remote);
        let mut m = self.flows[self.stripe(&k)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.insert(k, shard);
    }

    /// Forgets the flow if `shard` still owns it.
    pub fn remove(&self, local: u16, remote: SocketAddr, shard: u16) {
        let k = (local, remote);
        let mut m = self.flows[self.stripe(&k)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if m.get(&k) == Some(&shard) {
            m.remove(&k);
        }
    }

    /// The shard owning the connection of `(local, remote)`, if any.
    pub fn owner(&self, local: u16, remote: SocketAddr) -> Option<u16> {
        let k = (local, remote);
        self.flows[self.stripe(&k)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&k)
            .copied()
    }

    /// Counts one more connection from `ip` unless it already holds `cap`; false: refused.
    pub fn try_open_ip(&self, ip: IpAddr, cap: u32) -> bool {
        let mut m = self.ips[self.stripe(&ip)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= cap {
            if *n == 0 {
                m.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// One connection from `ip` closed.
    pub fn close_ip(&self, ip: IpAddr) {
        let mut m = self.ips[self.stripe(&ip)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_forgotten_only_by_the_owner_and_ip_counts_are_capped() {
        let d = Directory::new();
        let a: SocketAddr = "10.0.0.1:5060".parse().unwrap();
        d.insert(1, a, 3);
        assert_eq!(d.owner(1, a), Some(3));
        assert_eq!(d.owner(0, a), None);
        d.remove(1, a, 2);
        assert_eq!(d.owner(1, a), Some(3), "another shard cannot remove it");
        d.remove(1, a, 3);
        assert_eq!(d.owner(1, a), None);
        assert!(d.try_open_ip(a.ip(), 2));
        assert!(d.try_open_ip(a.ip(), 2));
        assert!(!d.try_open_ip(a.ip(), 2), "third refused");
        d.close_ip(a.ip());
        assert!(d.try_open_ip(a.ip(), 2));
    }
}
