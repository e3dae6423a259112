//! The admin HTTP server (issue 18), on its own thread with a current-thread tokio runtime,
//! off the data path: `GET /healthz`, `GET /readyz`, `GET /metrics` and the JSON API under
//! `/api/v1` (`admin_api.rs`; bans: `admin_bans.rs`), which needs `Authorization: Bearer <[admin] token>` when a
//! token is configured.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tokio::sync::oneshot;

use crate::admin_ctl::{Answer, Ask, AskError, ShardPort};
use crate::metrics::{render, ShardMetrics};

/// How long a shard gets to answer one admin request.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a shard gets to show it turns (`/readyz`).
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// `POST /api/v1/reload`: the SIGHUP reload; `Ok(summary)` or `Err(the validation error)`.
pub type ReloadFn = Box<dyn Fn() -> Result<String, String> + Send + Sync>;

/// What the handlers share.
pub struct AdminState {
    pub metrics: Vec<Arc<ShardMetrics>>,
    pub ports: Vec<ShardPort>,
    pub token: Option<String>,
    /// `[admin] read_token`: good for `GET` only.
    pub read_token: Option<String>,
    /// Every shard started and its journal recovered (set by `main`).
    pub started: AtomicBool,
    pub reload: ReloadFn,
    pub tables: Arc<crate::shard::SharedTables>,
    pub case_sensitive: bool,
    /// The shards' clock origin (their `Millis`).
    pub epoch: Instant,
    /// How long `POST /api/v1/messages` waits for every contact's final response: timer
    /// F (64·T1, `[sip] t1_ms`) plus [`ASK_TIMEOUT`].
    pub message_timeout: Duration,
    /// The shared ban list (issue 17; `/api/v1/bans`, `admin_bans.rs`).
    pub bans: Arc<crate::bans::BanRegistry>,
    /// `[cluster]` counters (issue 20; `None`: standalone).
    pub cluster: Option<Arc<crate::cluster::ClusterStats>>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("shards", &self.ports.len())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// Asks shard `shard` and waits (bounded) for its answer.
    pub async fn ask(&self, shard: usize, ask: Ask) -> Result<Answer, ApiError> {
        self.ask_within(shard, ask, ASK_TIMEOUT).await
    }

    /// [`AdminState::ask`], waiting at most `within`.
    pub async fn ask_within(
        &self,
        shard: usize,
        ask: Ask,
        within: Duration,
    ) -> Result<Answer, ApiError> {
        let port = self
            .ports
            .get(shard)
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "no such shard"))?;
        let rx: oneshot::Receiver<Answer> = port.ask(ask).map_err(|e| match e {
            AskError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shard busy, retry"),
            AskError::Gone => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shard stopped"),
        })?;
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(a)) => Ok(a),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("shard {shard} did not answer within {within:?}"),
            )),
        }
    }
}

/// An error answer: a status and `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// A running admin server.
pub struct Admin {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    state: Arc<AdminState>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Binds `addr` (now, so a taken port fails the start) and serves until [`Admin::stop`].
    pub fn start(addr: SocketAddr, state: AdminState) -> Result<Admin, String> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let state = Arc::new(state);
        let app = router(Arc::clone(&state));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())?;
        let thread = std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "admin: cannot serve");
                            return;
                        }
                    };
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = stopped.await;
                    });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "admin server failed");
                    }
                });
            })
            .map_err(|e| e.to_string())?;
        Ok(Admin {
            shutdown: Some(shutdown),
            thread: Some(thread),
            state,
        })
    }

    /// Every shard started (and recovered its journal): `/readyz` may say so.
    pub fn set_started(&self) {
        self.state.started.store(true, Ordering::Release);
    }

    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(state: Arc<AdminState>) -> Router {
    let api = Router::new()
        .route("/registrations", get(crate::admin_api::registrations))
        .route(
            "/registrations/{aor}",
            delete(crate::admin_api::remove_registration),
        )
        .route("/users/{user}", get(crate::admin_api::user))
        .route("/reload", post(reload))
        .route("/messages", post(crate::admin_api::message))
        // Issue 17: the shared ban list (`admin_bans.rs`).
        .route(
            "/bans",
            get(crate::admin_bans::list).post(crate::admin_bans::add),
        )
        .route("/bans/{ip}", delete(crate::admin_bans::remove))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            authorize,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
        .with_state(state)
}

/// `[admin] token`: `Authorization: Bearer <token>` on every `/api/v1` request (compared in
/// constant time), 401 otherwise; `[admin] read_token` is enough for a `GET` (403 on a
/// change).
async fn authorize(
    State(st): State<Arc<AdminState>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if let Some(token) = &st.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let full = same_secret(given.as_bytes(), token.as_bytes());
        let read = st
            .read_token
            .as_ref()
            .is_some_and(|r| same_secret(given.as_bytes(), r.as_bytes()));
        if read && !full && req.method() != axum::http::Method::GET {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "the read-only token cannot change anything",
            )
            .into_response();
        }
        if !full && !read {
            let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"sipedge\""),
            );
            return r;
        }
    }
    next.run(req).await
}

/// Equal bytes, in time that depends on the lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(st): State<Arc<AdminState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = render(&st.metrics);
            // Issue 16: the shared call-limit counters (not per shard).
            crate::metrics_dialogs::render_shared_limits(&mut text, &st.tables, st.epoch);
            if let Some(c) = &st.cluster {
                c.render(&mut text);
            }
            text
        },
    )
        .into_response()
}

/// Ready: every shard started (journal recovered) and each answers a ping through its
/// control inbox, which only a turning loop does.
async fn readyz(State(st): State<Arc<AdminState>>) -> Response {
    if !st.started.load(Ordering::Acquire) {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    }
    let mut waits = Vec::new();
    for (i, p) in st.ports.iter().enumerate() {
        match p.ask(Ask::Ping) {
            Ok(rx) => waits.push((i, rx)),
            Err(_) => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("shard {i} is not answering"),
                )
                .into_response()
            }
        }
    }
    for (i, rx) in waits {
        if !matches!(
            tokio::time::timeout(READY_TIMEOUT, rx).await,
            Ok(Ok(Answer::Pong))
        ) {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("shard {i} did not turn within {READY_TIMEOUT:?}"),
            )
            .into_response();
        }
    }
    Json(serde_json::json!({ "ready": true, "shards": st.ports.len() })).into_response()
}

/// `POST /api/v1/reload`: what SIGHUP does; a refused file is a 400 naming the fault.
async fn reload(State(st): State<Arc<AdminState>>) -> Response {
    match (st.reload)() {
        Ok(summary) => {
            Json(serde_json::json!({ "reloaded": true, "summary": summary })).into_response()
        }
        Err(e) => ApiError::new(StatusCode::BAD_REQUEST, e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_whole() {
        assert!(super::same_secret(b"abc", b"abc"));
        assert!(!super::same_secret(b"abc", b"abd"));
        assert!(!super::same_secret(b"ab", b"abc"));
    }
}
