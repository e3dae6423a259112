//! `/api/v1/bans` (issue 17 on the issue-18 admin API): the shared ban list
//! ([`crate::bans::BanRegistry`]) for the operator. `GET` lists the bans in force (any
//! token); `POST {"ip": "…", "secs": N}` bans a source and `DELETE /bans/{ip}` lifts a ban
//! (the write token only: the read token gets 403 from `admin::authorize`). A change reaches
//! every shard before its next turn (the shards are woken) and the kernel filter at once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::admin::{AdminState, ApiError};
use crate::bans::MAX_BAN_SECS;

type ApiResult = Result<Response, ApiError>;

/// The body of `POST /api/v1/bans`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// The source address (IPv4 or IPv6; an IPv4-mapped IPv6 address is its IPv4 one).
    ip: String,
    /// How long, seconds (1 ..= a year).
    secs: u64,
}

fn parse_ip(text: &str) -> Result<IpAddr, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{text}` is not an IP address"),
        )
    })
}

/// `GET /api/v1/bans`: `{"count", "bans": [{"ip", "reason", "remaining_secs", "until",
/// "kernel_dropped"}], "kernel_dropped_ended"}` — `until` in UNIX seconds; `reason` is
/// `density`, `scanner`, `guessing`, `user_guessing` or `operator`; `kernel_dropped` the
/// datagrams the eBPF filter dropped during this ban (`null` without the filter), and
/// `kernel_dropped_ended` those of bans already ended or lifted.
pub async fn list(State(st): State<Arc<AdminState>>) -> ApiResult {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let bans: Vec<_> = st
        .bans
        .list()
        .into_iter()
        .map(|b| {
            json!({
                "ip": b.ip.to_string(),
                "reason": b.reason,
                "remaining_secs": b.remaining_secs,
                "until": now.saturating_add(b.remaining_secs),
                "kernel_dropped": st.bans.kernel_dropped_for(b.ip),
            })
        })
        .collect();
    Ok(Json(json!({
        "count": bans.len(),
        "bans": bans,
        "kernel_dropped_ended": st.bans.kernel_dropped(),
    }))
    .into_response())
}

/// `POST /api/v1/bans`: bans `ip` for `secs` seconds, trusted sources included (the
/// operator's word is final). 400 for a bad address or duration.
pub async fn add(
    State(st): State<Arc<AdminState>>,
    body: Result<Json<BanRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(req) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"ip\": \"…\", \"secs\": 1..={MAX_BAN_SECS}}}: {e}"),
        )
    })?;
    let ip = parse_ip(&req.ip)?;
    st.bans
        .ban(ip, req.secs)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    tracing::info!(target: "sip::protect", %ip, secs = req.secs, "source banned by the operator");
    Ok(Json(json!({ "banned": ip.to_canonical().to_string(), "secs": req.secs })).into_response())
}

/// `DELETE /api/v1/bans/{ip}`: lifts the ban (every shard, the kernel filter); 404 when
/// `ip` was not banned (the shards are told anyway: one may hold a ban the list evicted).
pub async fn remove(State(st): State<Arc<AdminState>>, Path(ip): Path<String>) -> ApiResult {
    let ip = parse_ip(&ip)?;
    if !st.bans.unban(ip) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{ip} is not banned"),
        ));
    }
    tracing::info!(target: "sip::protect", %ip, "ban lifted by the operator");
    Ok(Json(json!({ "unbanned": ip.to_canonical().to_string() })).into_response())
}
