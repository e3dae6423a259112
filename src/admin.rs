//! The admin HTTP endpoint, on its own thread, off the data path: `GET /metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::metrics::{render, ShardMetrics};

/// Appends to the metrics text what is not per shard.
pub type Extra = Box<dyn Fn(&mut String) + Send>;

/// A running admin server.
pub struct Admin {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Binds `addr` and serves until [`Admin::stop`].
    /// `extra` appends what is not per shard (issue 16: the shared limit counters).
    pub fn start(
        addr: SocketAddr,
        shards: Vec<Arc<ShardMetrics>>,
        extra: Option<Extra>,
    ) -> Result<Admin, String> {
        let server = tiny_http::Server::http(addr).map_err(|e| e.to_string())?;
        let server = Arc::new(server);
        let srv = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                for req in srv.incoming_requests() {
                    let resp = match (req.method(), req.url()) {
                        (tiny_http::Method::Get, "/metrics") => {
                            let header = tiny_http::Header::from_bytes(
                                &b"Content-Type"[..],
                                &b"text/plain; version=0.0.4; charset=utf-8"[..],
                            )
                            .unwrap_or_else(|_| unreachable!("static header is valid"));
                            let mut text = render(&shards);
                            if let Some(f) = &extra {
                                f(&mut text);
                            }
                            tiny_http::Response::from_string(text).with_header(header)
                        }
                        _ => tiny_http::Response::from_string("not found\n").with_status_code(404),
                    };
                    let _ = req.respond(resp);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Admin {
            server,
            thread: Some(thread),
        })
    }

    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
