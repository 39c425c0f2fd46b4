//! What arrives for the agent: appends from the bridge and the webhooks (an internal route the
//! Worker calls after it checked the platform's signature), and the pending-inbound query a
//! runtime asks when it starts.
//!
//! Inbound messages never wait for a runtime: they are appended at once and stay in the log. A
//! connected runtime sees them on the live tail; one that starts later asks
//! `GET /v1/sessions/{key}/inbound`, which without `after` answers everything the bridge and
//! the webhooks appended since the runtime last appended anything (its last reply or action).

use moltlog_core::codec;
use moltlog_core::event::{Actor, EventHeader};
use moltlog_core::store::LogStore;
use serde_json::json;
use worker::{Request, Response};

use super::bridge_store as store;
use super::deliver::sql_err;
use super::read::record_json;
use super::{SessionDO, append};
use crate::bridge::DiscordInteraction;
use crate::http::{ApiError, param};
use crate::rt;

/// The Worker-to-object path of inbound appends. Outside `/v1`, so no client route reaches it:
/// the Worker forwards only `/v1/sessions/…` requests to session objects.
pub const INTERNAL_PATH: &str = "/__internal/inbound";
/// Carries a Discord interaction's reply credentials (JSON) to the session with its message.
pub const INTERACTION_HEADER: &str = "x-moltlog-discord-interaction";

/// Events the runtime scan looks back over to find its last append.
const RUNTIME_SCAN_MAX: u64 = 50_000;
const PAGE: u32 = 500;

pub(super) async fn internal(so: &SessionDO, req: &mut Request) -> Result<Response, ApiError> {
    let actor = req
        .headers()
        .get(rt::ACTOR_HEADER)?
        .and_then(|a| Actor::from_name(&a))
        .filter(|a| matches!(a, Actor::Bridge | Actor::Webhook))
        .ok_or_else(|| ApiError::internal("inbound append without a bridge or webhook actor"))?;
    if let Some(h) = req.headers().get(INTERACTION_HEADER)? {
        let v: serde_json::Value = serde_json::from_str(&h)
            .map_err(|e| ApiError::internal(format!("bad interaction header: {e}")))?;
        let i = DiscordInteraction {
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            application_id: v["application_id"].as_str().unwrap_or_default().to_owned(),
            token: v["token"].as_str().unwrap_or_default().to_owned(),
        };
        // Stored before the message is appended: a reply can only follow the message.
        store::put_interaction(&so.state.storage().sql(), &i, rt::now_ms()).map_err(sql_err)?;
    }
    let body = crate::http::body::read(req, so.cfg.max_request_bytes).await?;
    append::append_json(so, actor, &body).await
}

fn actor_of(header: &[u8]) -> Result<Actor, ApiError> {
    let h: EventHeader =
        codec::decode(header).map_err(|e| ApiError::new(500, "corrupt_log", e.to_string()))?;
    Ok(h.actor)
}

/// The seq of the runtime's newest append, looking back at most `RUNTIME_SCAN_MAX` events.
fn last_runtime_seq(so: &SessionDO, head: u64) -> Result<Option<u64>, ApiError> {
    let sql = so.state.storage().sql();
    let mut from = head;
    let floor = head.saturating_sub(RUNTIME_SCAN_MAX);
    while from > floor {
        let page = store::headers_desc(&sql, from, PAGE).map_err(sql_err)?;
        let Some(lowest) = page.last().map(|(s, _)| *s) else { break };
        for (seq, header) in &page {
            if *seq > floor && actor_of(header)? == Actor::Runtime {
                return Ok(Some(*seq));
            }
        }
        from = lowest.saturating_sub(1);
    }
    Ok(None)
}

/// `GET /v1/sessions/{key}/inbound?after=SEQ&limit=N`: events the bridge and the webhooks
/// appended after `after` (default: the runtime's newest append, within the last 50,000 events).
pub(super) fn pending(so: &SessionDO, req: &Request) -> Result<Response, ApiError> {
    let after = param::query_u64(req, "after", param::SEQ)?;
    let limit = param::query_u64(req, "limit", 1..=1000)?.unwrap_or(100);
    let head = so.with_live(|l| Ok(l.engine.head().seq))?;
    let runtime_seq = last_runtime_seq(so, head)?;
    let after = after.unwrap_or_else(|| runtime_seq.unwrap_or(head.saturating_sub(RUNTIME_SCAN_MAX)));
    so.with_live(|l| {
        let mut events = Vec::new();
        let mut next = after + 1;
        let mut next_after = None;
        'scan: while next <= head {
            let page = l.store.read(next, PAGE).map_err(|e| ApiError::internal(e.to_string()))?;
            let Some(end) = page.last().map(|r| r.seq) else { break };
            for rec in &page {
                if matches!(actor_of(&rec.header)?, Actor::Bridge | Actor::Webhook) {
                    events.push(record_json(rec)?);
                    next_after = Some(rec.seq);
                    if events.len() as u64 == limit {
                        break 'scan;
                    }
                }
            }
            next = end + 1;
        }
        let more = events.len() as u64 == limit && next_after.is_some_and(|s| s < head);
        let mut page = moltlog_core::dto::Json::from(json!({
            "events": null,
            "after": after,
            "runtime_seq": runtime_seq,
            "head_seq": head,
            "next_after": if more { next_after } else { None },
        }));
        page.set("events", moltlog_core::dto::Json::Array(events));
        Ok(rt::json(200, &page)?)
    })
}
