//! The `/api/v1` registration and user endpoints (issue 18). Every question about a binding
//! goes to the shard that owns it, through its control inbox (`admin_ctl.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sipedge_core::admin::{
    aor_owner, AdminQuery, AdminReply, OutgoingMessage, MAX_MESSAGE_BODY, MAX_PAGE,
};
use sipedge_core::{LookupContact, ShardId, Transport};

use crate::admin::{AdminState, ApiError};
use crate::admin_ctl::{Answer, Ask};

/// Default `limit` of a listing page.
const DEFAULT_PAGE: u32 = 100;
/// Queries one listing request sends to the shards at most; past it the page ends early
/// with a cursor. Each query is one round trip to a shard, which answers it with up to the
/// page's remaining `limit` bindings from consecutive slices, one slice per shard turn
/// (at most `admin_ctl::MAX_SLICES_PER_LIST` slices of `sipedge_core::admin::MAX_SCAN_SLOTS`
/// slots): a page of a dense table is one query per shard it spans, and a page whose
/// prefix matches little looks at 32 × 64 × 1024 = 2M slots at most.
const MAX_QUERIES_PER_PAGE: usize = 32;

type ApiResult = Result<Response, ApiError>;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

/// `alice@example.com` → `sip:alice@example.com`; a URI with a scheme is kept.
fn aor_uri(text: &str) -> String {
    let t = text.trim();
    if t.starts_with("sip:") || t.starts_with("sips:") {
        t.to_string()
    } else {
        format!("sip:{t}")
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn transport(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
        Transport::Ws => "ws",
        Transport::Wss => "wss",
    }
}

/// One binding as JSON; `expires_in` in seconds from now.
fn contact_json(st: &AdminState, c: &LookupContact, owner: ShardId) -> Value {
    let now = st.epoch.elapsed().as_millis() as u64;
    json!({
        "contact": lossy(&c.uri),
        "expires_in": c.expires_at.0.saturating_sub(now) / 1000,
        "registered_ago": now.saturating_sub(c.registered_at.0) / 1000,
        "source": c.source.to_string(),
        "nat": c.received.is_some(),
        "received": c.received.map(|r| r.to_string()),
        "transport": transport(c.transport),
        "user_agent": lossy(&c.user_agent),
        "call_id": lossy(&c.call_id),
        "cseq": c.cseq,
        "q": c.q.map(|q| f64::from(q) / 1000.0),
        "instance": (!c.instance.is_empty()).then(|| lossy(&c.instance)),
        "reg_id": c.reg_id,
        "path": (!c.path.is_empty()).then(|| lossy(&c.path)),
        "rtt_ms": c.rtt_ms,
        "srtt_ms": c.srtt_ms,
        "shard": owner.0,
        "arrival_shard": c.arrival.0,
    })
}

/// Asks the owner of `aor` `query`.
async fn ask_owner(st: &AdminState, aor: &str, query: AdminQuery) -> Result<AdminReply, ApiError> {
    let shards = st.ports.len() as u16;
    let owner = aor_owner(aor.as_bytes(), st.case_sensitive, shards)
        .ok_or_else(|| bad(format!("`{aor}` is not a sip: address of record")))?;
    match st.ask(owner.0 as usize, Ask::Query(query)).await? {
        Answer::Reply(Some(AdminReply::NotAnAor)) => {
            Err(bad(format!("`{aor}` is not a sip: address of record")))
        }
        Answer::Reply(Some(r)) => Ok(r),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shard busy, retry",
        )),
    }
}

/// The contacts of one AoR (`None`: not registered).
async fn contacts_of(
    st: &AdminState,
    aor: &str,
) -> Result<(ShardId, Vec<LookupContact>), ApiError> {
    let q = AdminQuery::Aor {
        aor: aor.as_bytes().to_vec(),
    };
    match ask_owner(st, aor, q).await? {
        AdminReply::Contacts { owner, contacts } => Ok((owner, contacts)),
        other => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected shard answer {other:?}"),
        )),
    }
}

/// `GET /api/v1/registrations?aor=…` (one AoR; 404 when not registered) or
/// `?prefix=…&limit=…&cursor=…` (a page; `next_cursor` is `null` after the last).
pub async fn registrations(
    State(st): State<Arc<AdminState>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    if let Some(aor) = q.get("aor") {
        let aor = aor_uri(aor);
        let (owner, contacts) = contacts_of(&st, &aor).await?;
        if contacts.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("{aor} is not registered"),
            ));
        }
        let list: Vec<_> = contacts
            .iter()
            .map(|c| contact_json(&st, c, owner))
            .collect();
        return Ok(Json(json!({ "aor": aor, "shard": owner.0, "contacts": list })).into_response());
    }
    let prefix = q.get("prefix").map(String::as_str).unwrap_or("");
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| bad(format!("`limit` must be 1..={MAX_PAGE}")))?,
    };
    let (mut shard, mut slot) = match q.get("cursor") {
        None => (0usize, 0u32),
        Some(c) => parse_cursor(c).ok_or_else(|| bad("`cursor` must be <shard>.<slot>"))?,
    };
    let mut out = Vec::new();
    let mut queries = 0;
    while shard < st.ports.len() && out.len() < limit as usize && queries < MAX_QUERIES_PER_PAGE {
        queries += 1;
        let query = AdminQuery::List {
            prefix: prefix.as_bytes().to_vec(),
            from_slot: slot,
            limit: limit - out.len() as u32,
        };
        match st.ask(shard, Ask::Query(query)).await? {
            Answer::Reply(Some(AdminReply::Page {
                bindings,
                next_slot,
            })) => {
                for b in bindings {
                    let mut v = contact_json(&st, &b.contact, ShardId(shard as u16));
                    v["aor"] = Value::String(lossy(&b.aor));
                    out.push(v);
                }
                match next_slot {
                    Some(n) => slot = n,
                    None => (shard, slot) = (shard + 1, 0),
                }
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shard busy, retry",
                ))
            }
        }
    }
    let next = (shard < st.ports.len()).then(|| format!("{shard}.{slot}"));
    Ok(Json(json!({ "registrations": out, "next_cursor": next })).into_response())
}

/// `<shard>.<slot>`.
fn parse_cursor(c: &str) -> Option<(usize, u32)> {
    let (a, b) = c.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// `DELETE /api/v1/registrations/{aor}` (all its contacts) or `?contact=<uri>` (that one);
/// journalled like any change. 404 when nothing matched.
pub async fn remove_registration(
    State(st): State<Arc<AdminState>>,
    Path(aor): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let aor = aor_uri(&aor);
    let query = AdminQuery::Remove {
        aor: aor.as_bytes().to_vec(),
        contact: q.get("contact").map(|c| c.as_bytes().to_vec()),
    };
    match ask_owner(&st, &aor, query).await? {
        AdminReply::Removed { removed: 0, .. } => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{aor}: no such registration"),
        )),
        AdminReply::Removed { owner, removed } => {
            tracing::info!(target: "sipedge::admin", aor, removed, "registrations removed by the admin API");
            Ok(Json(json!({ "aor": aor, "removed": removed, "shard": owner.0 })).into_response())
        }
        other => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected shard answer {other:?}"),
        )),
    }
}

/// `GET /api/v1/users/{user}` (`user@domain` or a domain-less `user`): the account from the
/// auth tables in force (never the HA1s) and the bindings of `sip:user@domain`.
pub async fn user(State(st): State<Arc<AdminState>>, Path(user): Path<String>) -> ApiResult {
    let (name, domain) = match user.rsplit_once('@') {
        Some((u, d)) => (u.to_string(), d.to_ascii_lowercase()),
        None => (user.clone(), String::new()),
    };
    let db = st.tables.current().auth.clone();
    let account = db
        .find_user(domain.as_bytes(), name.as_bytes())
        .and_then(|i| db.user(i))
        .map(|u| {
            let acct = u.account.and_then(|a| db.account(a));
            json!({
                "username": u.spec.username,
                "domain": u.spec.domain,
                "account": acct.map(|a| a.name.clone()),
                "channels": u.spec.channels.or(acct.and_then(|a| a.channels)),
                "cps": u.spec.cps.or(acct.and_then(|a| a.cps)),
                "ip_whitelist": u.spec.ip_whitelist.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        });
    let bindings = if domain.is_empty() {
        Vec::new()
    } else {
        let aor = aor_uri(&format!("{name}@{domain}"));
        let (owner, contacts) = contacts_of(&st, &aor).await?;
        contacts
            .iter()
            .map(|c| contact_json(&st, c, owner))
            .collect()
    };
    if account.is_none() && bindings.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{user}: no such user and no registration"),
        ));
    }
    Ok(Json(json!({ "user": user, "auth": account, "registrations": bindings })).into_response())
}

/// `POST /api/v1/messages` `{"to", "from", "body", "content_type"}`: a SIP MESSAGE
/// (RFC 3428) to every registered contact of `to`, sent by the shard that owns the AoR, one
/// client transaction per contact (NAT-aware: a NATed contact is reached at its flow). The
/// answer comes once every contact has its final response — at most timer F (64·T1) later,
/// a contact that never answered being listed with 408 —:
/// `{"to", "shard", "results": [{"contact", "code", "reason"}, …]}`. 404 when `to` has no
/// registered contact, 400 on bad input, 413 when the body does not fit one UDP datagram
/// (`sipedge_core::admin::MAX_MESSAGE_BODY` bytes), 503 when the shard is busy.
/// `from` defaults to `sip:noc@<the AoR's domain>`, `content_type` to `text/plain`.
pub async fn message(State(st): State<Arc<AdminState>>, body: axum::body::Bytes) -> ApiResult {
    let v: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("body: {e}")))?;
    let field = |k: &str| match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(format!("`{k}` must be a string"))),
    };
    let to = field("to")?.ok_or_else(|| bad("`to` (a user or AoR) is required"))?;
    let text = field("body")?.ok_or_else(|| bad("`body` is required"))?;
    if text.len() > MAX_MESSAGE_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "`body` is {} bytes; a MESSAGE over UDP carries at most {MAX_MESSAGE_BODY}",
                text.len()
            ),
        ));
    }
    let aor = aor_uri(to);
    let from = match field("from")? {
        Some(f) => f.to_string(),
        None => {
            let domain = aor.rsplit_once('@').map_or("localhost", |(_, d)| d);
            format!("sip:noc@{domain}")
        }
    };
    if !(from.starts_with("sip:") || from.starts_with("sips:")) {
        return Err(bad("`from` must be a sip: URI"));
    }
    let content_type = field("content_type")?.unwrap_or("text/plain");
    let query = AdminQuery::Message(OutgoingMessage {
        aor: aor.as_bytes().to_vec(),
        from: from.into_bytes(),
        content_type: content_type.as_bytes().to_vec(),
        body: text.as_bytes().to_vec(),
    });
    let owner = aor_owner(aor.as_bytes(), st.case_sensitive, st.ports.len() as u16)
        .ok_or_else(|| bad(format!("`{aor}` is not a sip: address of record")))?;
    let answer = st
        .ask_within(owner.0 as usize, Ask::Query(query), st.message_timeout)
        .await?;
    match answer {
        Answer::Reply(Some(AdminReply::Delivered { owner, results })) => {
            let results: Vec<Value> = results
                .iter()
                .map(|d| {
                    json!({
                        "contact": lossy(&d.contact),
                        "code": d.code,
                        "reason": lossy(&d.reason),
                    })
                })
                .collect();
            tracing::info!(target: "sipedge::admin", aor, contacts = results.len(), "MESSAGE sent by the admin API");
            Ok(Json(json!({ "to": aor, "shard": owner.0, "results": results })).into_response())
        }
        Answer::Reply(Some(AdminReply::NotRegistered)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{aor} is not registered"),
        )),
        Answer::Reply(Some(AdminReply::NotAnAor)) => {
            Err(bad(format!("`{aor}` is not a sip: address of record")))
        }
        Answer::Reply(Some(AdminReply::Refused { code, reason })) => Err(ApiError::new(
            StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            reason,
        )),
        Answer::Reply(None) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shard busy, retry",
        )),
        other => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected shard answer {other:?}"),
        )),
    }
}
