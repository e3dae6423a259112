//! The `sipedge` binary: CLI, configuration and the shard loop glue.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    println!("sipedge {}", env!("CARGO_PKG_VERSION"));
}
