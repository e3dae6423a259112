//! What an idle TLS connection costs (issue 19: ≤ 20 KiB each, rustls buffers included):
//! heap counted by a per-thread counting allocator, plus the codec's own size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use super::codec::StreamCodec;
use super::tests_tls::{client_config, pki, pump, server_config, OK, REGISTER};
use super::tls::TlsCodec;

/// The system allocator, counting the net bytes each thread holds.
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = HELD.try_with(|h| h.set(h.get() + delta));
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a const-initialised
// thread-local Cell that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn held() -> isize {
    HELD.with(|h| h.get())
}

/// 1000 server connections past their handshake, a REGISTER, a 12 KB message and a
/// 200 OK each, then idle:
/// the heap they keep, per connection, stays under 20 KiB (the budget; prints the
/// measure for PERFORMANCE.md).
#[test]
fn an_idle_tls_connection_keeps_under_20_kib() {
    const N: usize = 1000;
    let p = pki();
    let server_cfg = server_config(&p, false, rustls::ALL_VERSIONS);
    let client_cfg = client_config(&p, false, rustls::ALL_VERSIONS);
    let name = ServerName::try_from("localhost").expect("name");
    let big = vec![b'a'; 12_000];
    let mut conns: Vec<Box<dyn StreamCodec>> = Vec::with_capacity(N);
    // One connection first, so one-time allocations (session cache, provider tables) are
    // out of the count.
    let mut warm = None;
    let mut before = 0;
    for i in 0..=N {
        if i == 1 {
            before = held();
        }
        let mut server: Box<dyn StreamCodec> =
            Box::new(TlsCodec::server(server_cfg.clone(), 64 * 1024).expect("server"));
        let mut client = ClientConnection::new(client_cfg.clone(), name.clone()).expect("c");
        let (mut got, mut back) = (Vec::new(), Vec::new());
        client.writer().write_all(REGISTER).expect("w");
        // And a message of 12 KB (a large INVITE): a record bigger than rustls' 4 KiB read,
        // which must not leave a large receive buffer behind.
        client.writer().write_all(&big).expect("w");
        pump(
            &mut client,
            server.as_mut(),
            usize::MAX,
            &mut got,
            &mut back,
        )
        .expect("pump");
        assert_eq!(got.len(), REGISTER.len() + big.len());
        let mut wire = Vec::new();
        server.write(OK, &mut wire).expect("ok");
        drop((client, got, back, wire));
        if i == 0 {
            warm = Some(server);
        } else {
            conns.push(server);
        }
    }
    let per_conn = (held() - before) / N as isize;
    let total = per_conn + std::mem::size_of::<TlsCodec>() as isize;
    eprintln!(
        "idle TLS server connection: {per_conn} bytes of heap (size_of TlsCodec {} inline, {total} in all)",
        std::mem::size_of::<TlsCodec>()
    );
    assert!(total <= 20 * 1024, "{total} bytes per idle TLS connection");
    drop((warm, conns));
}
