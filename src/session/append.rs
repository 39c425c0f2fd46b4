//! `POST /v1/sessions/{key}/events`: plan, check referenced blobs, store blobs, commit, then tell
//! the tail and the alarm.

use moltlog_core::dto;
use moltlog_core::engine::{AppendRequest, Now, Planned, blob_object_key};
use moltlog_core::event::{Actor, blob_check};
use moltlog_core::store::CommitError;
use worker::{Request, Response};

use super::{SessionDO, background, tail};
use crate::http::ApiError;
use crate::rt;

/// Attempts before giving up when other appends keep moving the head while blobs upload.
const MAX_ATTEMPTS: u32 = 8;

pub(super) async fn handle(so: &SessionDO, req: &mut Request, actor: Actor) -> Result<Response, ApiError> {
    let body = crate::http::body::read(req, so.cfg.max_request_bytes).await?;
    append_json(so, actor, &body).await
}

/// Appends a JSON append request body (one event or a batch) as `actor`, answering the outcome.
pub(super) async fn append_json(so: &SessionDO, actor: Actor, body: &[u8]) -> Result<Response, ApiError> {
    let input = dto::parse_append(body)?;
    if let Some(seq) = input.expected_seq {
        crate::http::param::check_seq("expected_seq", seq)?;
    }
    let request = AppendRequest {
        actor,
        events: input.events,
        expected_seq: input.expected_seq,
        idempotency_key: input.idempotency_key,
    };
    let (status, outcome) = append(so, request).await?;
    Ok(rt::json(status, &dto::outcome_json(&outcome))?)
}

/// Appends `request`: 201 with the new seqs, or 200 with the original ones for a retry.
pub(super) async fn append(
    so: &SessionDO,
    request: AppendRequest,
) -> Result<(u16, moltlog_core::AppendOutcome), ApiError> {
    let mut refs_checked = false;
    for _ in 0..MAX_ATTEMPTS {
        let now = Now { now_ms: rt::now_ms(), entropy: rt::entropy() };
        let planned = so.with_live(|l| Ok(l.engine.plan(&l.store, request.clone(), now)?))?;
        let plan = match planned {
            Planned::Duplicate(outcome) => return Ok((200, outcome)),
            Planned::Append(plan) => plan,
        };
        if !refs_checked {
            check_blob_refs(so, &request, &plan).await?;
            refs_checked = true;
        }
        if !plan.blobs.is_empty() {
            // Blobs first: an event is never committed before the content it references.
            let bucket = so.env.bucket(rt::BUCKET)?;
            for b in &plan.blobs {
                rt::put_if_absent(&bucket, &blob_object_key(&b.sha256), b.bytes.clone(), &b.content_type)
                    .await?;
            }
        }
        let broadcast = tail::has_clients(so).then(|| tail::render(&plan));
        let erased = !plan.commit.erasures.is_empty();
        let first_ts = plan.events.first().map_or(0, |(h, _)| h.ts_ms);
        let committed = so.with_live(|l| {
            if l.engine.head().seq != plan.commit.expected_seq {
                return Ok(None); // another append landed while the blobs uploaded: plan again
            }
            match l.engine.commit(&mut l.store, plan) {
                Ok(outcome) => {
                    l.note_appended(first_ts, erased).map_err(|e| ApiError::internal(e.to_string()))?;
                    Ok(Some(outcome))
                }
                Err(CommitError::Conflict { .. }) => {
                    Err(ApiError::internal("the store's head moved under the session's only writer"))
                }
                Err(CommitError::Store(e)) => Err(ApiError::new(500, "storage_error", e.to_string())),
            }
        })?;
        let Some(outcome) = committed else { continue };
        if let Some(messages) = broadcast {
            tail::broadcast(so, outcome.first_seq, &messages);
        }
        background::after_append(so, outcome.first_seq == 1).await;
        return Ok((201, outcome));
    }
    Err(ApiError::new(503, "busy", "the session kept changing while this append stored its blobs; retry"))
}

/// Every blob the request's events reference (attachments, screenshots) must be in R2 with the
/// length the reference gives: 422 otherwise, before anything is stored. Blobs this plan uploads
/// itself are not looked up.
async fn check_blob_refs(
    so: &SessionDO,
    request: &AppendRequest,
    plan: &moltlog_core::engine::AppendPlan,
) -> Result<(), ApiError> {
    let refs = blob_check::distinct_refs(request.events.iter().map(|e| &e.body));
    if refs.is_empty() {
        return Ok(());
    }
    let bucket = so.env.bucket(rt::BUCKET)?;
    for r in refs {
        if plan.blobs.iter().any(|b| b.sha256 == r.sha256 && b.bytes.len() as u64 == r.len) {
            continue;
        }
        let stored = bucket.head(blob_object_key(&r.sha256)).await?.map(|o| o.size());
        blob_check::check(r, stored).map_err(|e| ApiError::new(422, e.code(), e.to_string()))?;
    }
    Ok(())
}
