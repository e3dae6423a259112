//! The shard loop's side of the cluster (issue 20): each turn, the core's remote lookups go
//! to the cluster thread and its answers come back to the core. No protocol decision is
//! made here (the core's `proxy::remote` makes them).
//!
//! The cluster thread (`src/cluster/`, `ClusterClient`) implements [`ClusterPort`]; until it
//! is connected a shard has no port, and a lookup the core asks anyway (a core configured
//! with the cluster on) is answered `Unavailable` at once — 480, never a transaction left
//! waiting for its timer.

use sipedge_core::cluster::{ClusterCoreConfig, RemoteAnswer, RemoteLookup};
use sipedge_core::{Core, Millis};

/// What a shard needs from the cluster thread. `ClusterClient` implements it by calling
/// its own `lookup(shard, l)` and `drain_answers(shard, f)`; the shard is woken through its
/// `sipedge_rt::Waker` when answers arrive, so `drain_answers` is called on the next turn.
pub trait ClusterPort: Send + Sync + std::fmt::Debug {
    /// Queues a lookup for shard `shard`; `Err` hands it back (queue full, thread gone).
    fn lookup(&self, shard: usize, lookup: RemoteLookup) -> Result<(), RemoteLookup>;
    /// Calls `f(token, answer)` for every answer waiting for shard `shard`.
    fn drain_answers(&self, shard: usize, f: &mut dyn FnMut(u64, RemoteAnswer));
}

/// One turn's exchange: answers in first (a waiting call moves on this turn), then every
/// lookup the core asked out; a lookup the port refuses, or with no port at all, is
/// answered `Unavailable` at once. Call it before the turn's outputs are drained, so the
/// relayed requests and 480s leave in this turn's submission.
pub fn turn(core: &mut Core, now: Millis, shard: usize, port: Option<&dyn ClusterPort>) {
    if let Some(port) = port {
        port.drain_answers(shard, &mut |token, answer| {
            core.handle_remote_answer(now, token, answer);
        });
    }
    while let Some(l) = core.poll_remote_lookup() {
        let refused = match port {
            Some(port) => port.lookup(shard, l).err(),
            None => Some(l),
        };
        if let Some(l) = refused {
            core.handle_remote_answer(now, l.token, RemoteAnswer::Unavailable);
        }
    }
}

/// Stores one binding adopted from a dead edge (`[cluster] takeover`): on the UDP socket
/// bound to its old home address (the floating address, now this edge's), else on the
/// first UDP socket (`udp_addrs`: address and LocalId of each); counted when stored.
pub fn adopt(
    core: &mut Core,
    now: Millis,
    udp_addrs: &[(std::net::SocketAddr, u16)],
    client: &crate::cluster::ClusterClient,
    a: &crate::cluster::takeover::Adopt,
) {
    let Some(&(_, local)) = udp_addrs
        .iter()
        .find(|(addr, _)| *addr == a.home)
        .or_else(|| udp_addrs.first())
    else {
        tracing::warn!(target: "sip::cluster", "takeover: no UDP socket to serve an adopted binding on");
        return;
    };
    let b = sipedge_core::AdoptedBinding {
        aor: &a.aor,
        contact: a.contact.as_bytes(),
        call_id: a.call_id.as_bytes(),
        instance: &a.instance,
        reg_id: a.reg_id,
        path: a.path.as_bytes(),
        cseq: a.cseq,
        q: Some(a.q),
        expires_unix_ms: a.expires_unix_ms,
        registered_unix_ms: a.registered_unix_ms,
        source: a.source,
        local: sipedge_core::LocalId(local),
    };
    match core.adopt_binding(now, &b) {
        Ok(true) => {
            client
                .stats()
                .adopted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(target: "sip::cluster", error = %e, "takeover: binding not adopted");
        }
    }
}

/// The core's part of `[cluster]`, from the pieces the shell's `[cluster]` section holds:
/// `mode` other than standalone turns it on; `peers` are the other edges' addresses (their
/// `[cluster] address`), trusted for relayed requests; `lookup_timeout_ms` and
/// `max_pending_lookups` per shard (0: the defaults).
pub fn core_config(
    enabled: bool,
    node: &str,
    peers: &[std::net::IpAddr],
    lookup_timeout_ms: u64,
    max_pending_lookups: usize,
) -> ClusterCoreConfig {
    let d = ClusterCoreConfig::default();
    let mut peer_ips: Vec<std::net::IpAddr> = peers.to_vec();
    peer_ips.sort_unstable();
    peer_ips.dedup();
    ClusterCoreConfig {
        enabled,
        node: node.into(),
        peers: peer_ips,
        lookup_timeout: if lookup_timeout_ms == 0 {
            d.lookup_timeout
        } else {
            Millis(lookup_timeout_ms)
        },
        max_pending_lookups: if max_pending_lookups == 0 {
            d.max_pending_lookups
        } else {
            max_pending_lookups
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A port that takes at most one lookup and answers what it was told to.
    #[derive(Debug, Default)]
    struct Fake {
        taken: Mutex<Vec<RemoteLookup>>,
        answers: Mutex<Vec<(u64, RemoteAnswer)>>,
    }

    impl ClusterPort for Fake {
        fn lookup(&self, _shard: usize, l: RemoteLookup) -> Result<(), RemoteLookup> {
            let mut t = self.taken.lock().unwrap_or_else(|e| e.into_inner());
            if t.is_empty() {
                t.push(l);
                Ok(())
            } else {
                Err(l)
            }
        }
        fn drain_answers(&self, _shard: usize, f: &mut dyn FnMut(u64, RemoteAnswer)) {
            let mut a = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            for (t, ans) in a.drain(..) {
                f(t, ans);
            }
        }
    }

    fn invite(call: &str) -> Vec<u8> {
        format!("INVITE sip:carol@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.64.9:5070;branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:carol@127.0.0.1>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").into_bytes()
    }

    fn statuses(core: &mut Core) -> Vec<u16> {
        let mut out = Vec::new();
        while let Some(t) = core.poll_transmit() {
            let m = sipedge_msg::Message::parse(t.data).unwrap_or_else(|e| panic!("{e:?}"));
            out.extend(m.status());
        }
        out
    }

    #[test]
    fn lookups_go_out_refusals_and_no_port_answer_480_at_once() {
        let cfg = sipedge_core::CoreConfig {
            cluster: core_config(true, "edge-b", &[], 0, 0),
            ..sipedge_core::CoreConfig::default()
        };
        let mut core = Core::new(cfg.clone());
        let from = "127.0.64.9:5070".parse().unwrap_or_else(|_| unreachable!());
        let local = sipedge_core::LocalId(0);
        let fake = Fake::default();
        for call in ["g1", "g2"] {
            core.handle_datagram(Millis(1), local, from, &invite(call));
        }
        assert_eq!(statuses(&mut core), [100, 100]);
        turn(&mut core, Millis(2), 0, Some(&fake));
        // The second was refused by the port: 480 now; the first waits.
        assert_eq!(statuses(&mut core), [480]);
        assert_eq!(core.remote_lookups_pending(), 1);
        let token = fake.taken.lock().map(|t| t[0].token).unwrap_or_default();
        fake.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((token, RemoteAnswer::NotFound));
        turn(&mut core, Millis(3), 0, Some(&fake));
        assert_eq!(statuses(&mut core), [480]);
        assert_eq!(core.remote_lookups_pending(), 0);
        // No port: answered at once.
        let mut core = Core::new(cfg);
        core.handle_datagram(Millis(1), local, from, &invite("g3"));
        turn(&mut core, Millis(2), 0, None);
        assert_eq!(statuses(&mut core), [100, 480]);
    }
}
