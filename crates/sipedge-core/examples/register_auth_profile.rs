//! A deterministic authenticated-registration loop for instruction-count profiling: the
//! same core and requests as `register_auth/round_trip` in `benches/digest.rs` (REGISTER
//! without credentials → 401, REGISTER with SHA-256 credentials → 200, 10 000 users), with
//! no clock and no randomness, so two runs execute the same instructions.
//!
//! The measured part is the function `round_trips` only; collect just it:
//!
//! ```text
//! nice -n 19 cargo build --release -p sipedge-core --example register_auth_profile
//! nice -n 19 valgrind --tool=callgrind --toggle-collect='*round_trips*' \
//!     --callgrind-out-file=/tmp/rt.out target/release/examples/register_auth_profile 20000
//! callgrind_annotate /tmp/rt.out | head -40
//! ```
//!
//! Instructions per round trip = the total `Ir` / the count given (default 20 000). Note that
//! valgrind hides SHA-NI from `cpuid`, so SHA-256 runs its portable code under callgrind and
//! weighs more there than on the machine.

use std::hint::black_box;
use std::net::SocketAddr;

use sipedge_core::auth::{Algorithm, NonceKey};
use sipedge_core::{Core, LocalId, Millis};

#[path = "../benches/support/digest.rs"]
mod support;
use support::{core, creds, register, REALM, SECRET, USERS};

#[inline(never)]
fn round_trips(core: &mut Core, remote: SocketAddr, pairs: &[(Vec<u8>, Vec<u8>)]) -> usize {
    let mut bytes = 0;
    for (first, second) in pairs {
        core.handle_datagram(Millis(1), LocalId(0), remote, black_box(first));
        while let Some(t) = core.poll_transmit() {
            bytes += t.data.len();
        }
        core.handle_datagram(Millis(1), LocalId(0), remote, black_box(second));
        while let Some(t) = core.poll_transmit() {
            bytes += t.data.len();
        }
    }
    bytes
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a count"))
        .unwrap_or(20_000);
    let mut core = core();
    let remote: SocketAddr = "10.1.2.3:5060".parse().expect("addr");
    let key = NonceKey::new(SECRET, 7);
    let uri = format!("sip:{REALM}");
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (1..=n)
        .map(|counter| {
            let name = format!("user{:07}", counter % USERS);
            let nonce = String::from_utf8(key.issue(0, counter, 1).to_vec()).expect("hex");
            let a = creds(Algorithm::Sha256, &name, &nonce, 1, "REGISTER", &uri);
            (
                register(&name, 2 * counter, None),
                register(&name, 2 * counter + 1, Some(&a)),
            )
        })
        .collect();
    let bytes = round_trips(&mut core, remote, &pairs);
    assert_eq!(
        core.auth_stats().digest_ok,
        u64::from(n),
        "every REGISTER passed"
    );
    println!("{n} round trips, {bytes} reply bytes");
}
