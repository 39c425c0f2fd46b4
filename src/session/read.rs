//! Read routes: events, state, status, restore bundle, verification.

use moltlog_core::StoredRecord;
use moltlog_core::chain::{self, Hash};
use moltlog_core::dto;
use moltlog_core::record::FramedRecord;
use moltlog_core::restore::{self, openclaw};
use moltlog_core::segment;
use moltlog_core::snapshot;
use moltlog_core::state::Head;
use moltlog_core::store::{LogStore, read_one};
use moltlog_core::verify::Verifier;
use serde_json::{Value, json};
use worker::{Request, Response};

use super::SessionDO;
use crate::http::{ApiError, param};
use crate::rt;

/// Media type of the binary event listing (a segment holding the requested records).
pub const SEGMENT_MEDIA_TYPE: &str = "application/vnd.moltlog.segment";

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

fn sql(e: super::sql_store::SqlError) -> ApiError {
    ApiError::new(500, "storage_error", e.to_string())
}

/// An event as JSON, decoded from its stored record (its JSON payloads as stored).
pub(super) fn record_json(rec: &StoredRecord) -> Result<dto::Json, ApiError> {
    let corrupt = |e: moltlog_core::codec::DecodeError| {
        ApiError::new(500, "corrupt_log", format!("seq {}: {e}", rec.seq))
    };
    let header = rec.decode_header().map_err(corrupt)?;
    let body = rec.decode_body().map_err(corrupt)?;
    Ok(dto::event_json(&header, &rec.hash, &body, rec.redacted))
}

pub(super) fn events(so: &SessionDO, req: &Request) -> Result<Response, ApiError> {
    let after = param::query_u64(req, "after", param::SEQ)?.unwrap_or(0);
    let limit = param::query_u64(req, "limit", 1..=u64::from(MAX_LIMIT))?.unwrap_or(u64::from(DEFAULT_LIMIT));
    let wants_segment = req.headers().get("accept")?.is_some_and(|a| a.contains(SEGMENT_MEDIA_TYPE));
    so.with_live(|l| {
        let head = l.engine.head();
        let mut records = l.store.read(after + 1, limit as u32).map_err(sql)?;
        if wants_segment {
            // One segment holds a contiguous run: a recorded gap ends it.
            moltlog_core::recovery::cut_at_gap(&mut records);
            if records.is_empty() {
                return Ok(Response::empty()?.with_status(204));
            }
            let prev: Hash = if after == 0 {
                chain::genesis(l.key.as_str())
            } else {
                read_one(&l.store, after).map_err(sql)?.map(|r| r.hash).ok_or_else(|| {
                    ApiError::new(404, "no_such_seq", format!("seq {after} is not in the log"))
                })?
            };
            let bytes = segment::encode(l.key.as_str(), prev, &records, rt::now_ms());
            return Ok(rt::bytes_response(bytes, SEGMENT_MEDIA_TYPE)?);
        }
        let events = records.iter().map(record_json).collect::<Result<Vec<_>, _>>()?;
        let next_after = records.last().map(|r| r.seq);
        let page = dto::Json::object([
            ("events", dto::Json::Array(events)),
            ("head_seq", json!(head.seq).into()),
            ("next_after", json!(next_after).into()),
        ]);
        Ok(rt::json(200, &page)?)
    })
}

pub(super) fn state(so: &SessionDO) -> Result<Response, ApiError> {
    so.with_live(|l| Ok(rt::json(200, &dto::state_json(l.state()))?))
}

fn head_json(h: Head) -> Value {
    json!({"seq": h.seq, "hash": chain::to_hex(&h.hash)})
}

pub(super) fn info(so: &SessionDO) -> Result<Response, ApiError> {
    let tail_clients = so.state.get_websockets().len();
    so.with_live(|l| {
        let s = l.state();
        let segments = l.store.segments().map_err(sql)?;
        let r2_snaps = l.store.r2_snapshots().map_err(sql)?;
        let local = l.local_snapshot_seqs().map_err(sql)?;
        let pending_outbox = s.outbox.values().filter(|e| e.status == moltlog_core::state::OutboxStatus::Pending).count();
        Ok(rt::json(200, &json!({
            "session_key": l.key.as_str(),
            "head": head_json(s.head),
            "created_ms": l.created_ms,
            "first_ts_ms": s.first_ts_ms,
            "last_ts_ms": s.last_ts_ms,
            "events": s.head.seq,
            "counters": dto::state_json(s).get("counters").and_then(|c| c.to_value_lossy().ok()),
            "archive": {
                "archived_seq": l.work.archived_seq,
                "segments": segments.len(),
                "stale_segments": segments.iter().filter(|r| r.stale).count(),
                "last_segment": segments.last().map(|r| json!({"first_seq": r.first_seq, "last_seq": r.last_seq, "key": r.key})),
            },
            "snapshots": {
                "local": local,
                "r2": r2_snaps.iter().map(|r| r.0).collect::<Vec<_>>(),
                "last_snapshot_seq": l.work.last_snapshot_seq,
                "last_snapshot_ms": l.work.last_snapshot_ms,
            },
            "wake": {"from_snapshot": l.rebuilt_from_snapshot, "replayed": l.replayed_on_wake},
            "alarm_at": l.alarm_at,
            "tail_clients": tail_clients,
            "outbox_pending": pending_outbox,
            "redacted": s.redacted,
        }))?)
    })
}

pub(super) fn restore(so: &SessionDO, req: &Request) -> Result<Response, ApiError> {
    let url = req.url()?;
    let format = url.query_pairs().find(|(k, _)| k == "format").map(|(_, v)| v.into_owned());
    if let Some(other) = format.as_deref().filter(|f| !matches!(*f, "json" | "openclaw")) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("unknown restore format {other:?}; use json or openclaw"),
        ));
    }
    // `updatedAt` in the runtime's index; settable so that a restore can be reproduced byte for byte.
    let restored_at_ms = match url.query_pairs().find(|(k, _)| k == "restored_at_ms") {
        Some((_, v)) => v.parse::<u64>().map_err(|_| {
            ApiError::bad_request("bad_query", format!("restored_at_ms {v:?} is not milliseconds since 1970"))
        })?,
        None => rt::now_ms(),
    };
    so.with_live(|l| {
        let items = restore::transcript(l.state(), &l.store)
            .map_err(|e| ApiError::new(500, "corrupt_log", e.to_string()))?;
        let body = match format.as_deref() {
            Some("openclaw") => openclaw::render(l.state(), &items, restored_at_ms).to_json().into(),
            _ => restore::bundle_json(l.state(), &items),
        };
        Ok(rt::json(200, &body)?)
    })
}

/// Verifies the whole stored log and the newest local snapshot against it (the `GET …/verify`
/// answer without its archive block).
pub(super) fn verify(so: &SessionDO) -> Result<Value, ApiError> {
    so.with_live(|l| {
        let mut v = Verifier::new(l.key.as_str());
        let snap = l.store.latest_snapshot().map_err(sql)?;
        let snap = match snap {
            Some((_, bytes)) => Some(snapshot::decode(&bytes, l.key.as_str()).map_err(|e| ApiError::new(500, "corrupt_snapshot", e.to_string()))?),
            None => None,
        };
        let fail = |e: moltlog_core::verify::VerifyError| {
            Ok(json!({"ok": false, "seq": e.seq, "problem": e.problem.to_string()}))
        };
        loop {
            let page = l.store.read(v.next_seq(), 1000).map_err(sql)?;
            if page.is_empty() {
                break;
            }
            for rec in &page {
                if let Err(e) = v.push(&FramedRecord::from(rec)) {
                    return fail(e);
                }
                if let Some(s) = snap.as_ref().filter(|s| s.header.seq == rec.seq)
                    && let Err(e) = v.check_snapshot(s)
                {
                    return fail(e);
                }
            }
        }
        let live_head = l.engine.head();
        match v.finish() {
            Err(e) => fail(e),
            Ok(report) if report.head != live_head => Ok(json!({
                "ok": false, "seq": report.head.seq,
                "problem": format!("stored log ends at {} but the live state is at {}", report.head.seq, live_head.seq),
            })),
            Ok(report) => Ok(json!({
                "ok": true,
                "head": head_json(report.head),
                "records": report.records,
                "redacted": report.redacted,
                "not_erased": report.not_erased,
                "snapshots_checked": report.snapshots_checked,
                "gaps": report.gaps.iter().map(|g| json!({"first_seq": g.first_seq, "last_seq": g.last_seq, "reason": g.reason})).collect::<Vec<_>>(),
                "state_matches_live": report.state.encode() == l.state().encode(),
            })),
        }
    })
}
