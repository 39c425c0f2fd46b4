//! Recovery: a session whose Durable Object storage is empty but whose R2 archive exists is
//! rebuilt from the archived segments, each verified and chained to the one before.
//! Resumable: records already restored are skipped, so an eviction mid-recovery is harmless.
//!
//! Degraded when the archive is damaged: core's `recovery::Planner` decides, segment by segment,
//! and at the first one that is missing, does not verify or does not continue the log, the walk
//! stops with a gap (from there to the highest seq the archive shows was assigned). `load` then
//! records the gap as a `records_lost` event after it and the session goes on serving.

use moltlog_core::key::SessionKey;
use moltlog_core::recovery::{self, ArchivedSegment, Gap, Next, Planner};
use moltlog_core::segment::{self, VerifiedSegment};
use moltlog_core::state::Head;
use moltlog_core::store::{CommitBatch, LogStore, event_key_entry, read_one};
use serde_json::{Value, json};
use worker::{Bucket, console_log, console_warn};

use super::sql_store::SqlStore;
use crate::http::ApiError;
use crate::rt;

/// Meta key of the recovery history the operator route reports (a JSON array).
pub(super) const RECOVERIES_META: &str = "recoveries";

pub(super) struct Recovered {
    pub snapshot_seq: Option<u64>,
    pub segments: u32,
    pub last_seq: u64,
    /// Seqs the archive could not give back, to be recorded as lost.
    pub gap: Option<Gap>,
}

fn err(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, "recovery_failed", e.to_string())
}

/// A fetched segment's records after the head, or why it cannot be restored.
enum Fetched {
    Missing,
    Restorable(CommitBatch, VerifiedSegment),
    Damaged(String),
    /// It verifies but disagrees with the restored log where they overlap.
    Diverged,
}

fn collect(bytes: &[u8], key: &SessionKey, head: Head) -> Fetched {
    let mut batch = CommitBatch { expected_seq: head.seq, ..CommitBatch::default() };
    let mut linked = false;
    let verified = segment::verify(bytes, key.as_str(), |checked, frame| {
        let seq = checked.header.seq;
        if seq == head.seq && checked.hash == head.hash {
            linked = true;
        }
        if seq > head.seq {
            let rec = frame.to_stored(seq);
            batch.keys.extend(event_key_entry(&rec, &checked.header));
            batch.blob_refs.extend(checked.body.blob_refs().into_iter().map(|b| (seq, b.clone())));
            batch.records.push(rec);
        }
    });
    match verified {
        Err(e) => Fetched::Damaged(e.to_string()),
        Ok(v) if v.header.first_seq <= head.seq && !linked => Fetched::Diverged,
        Ok(v) => Fetched::Restorable(batch, v),
    }
}

pub(super) async fn from_archive(
    store: &SqlStore,
    bucket: &Bucket,
    key: &SessionKey,
) -> Result<Option<Recovered>, ApiError> {
    let segments =
        recovery::latest_segments(rt::list_all(bucket, &format!("sessions/{key}/segments/")).await?);
    let snapshots = rt::list_all(bucket, &format!("sessions/{key}/snapshots/")).await?;
    if segments.is_empty() && snapshots.is_empty() {
        return Ok(None);
    }
    let snapshot_seqs: Vec<u64> =
        snapshots.iter().filter_map(|(k, _)| segment::parse_snapshot_key(k)).collect();
    let mut store = store.clone();
    let head = store.head().map_err(err)?.unwrap_or(Head::genesis(key.as_str()));
    let mut planner = Planner::new(head, recovery::highest_seq(&segments, &snapshot_seqs));
    let mut restored = 0u32;
    let mut gap = None;
    for seg in &segments {
        match planner.wants(seg) {
            Next::Held => {
                // Resumed: the log holds it (a range lost to a recorded gap is not archived).
                if read_one(&store, seg.last_seq).map_err(err)?.is_some() {
                    put_row(&store, seg)?;
                }
                continue;
            }
            Next::Stop(g) => {
                gap = Some(g);
                break;
            }
            Next::Fetch => {}
        }
        let fetched = match rt::get_bytes(bucket, &seg.key).await? {
            None => Fetched::Missing,
            Some(bytes) => collect(&bytes, key, planner.head()),
        };
        let outcome = match fetched {
            Fetched::Missing => Err(planner.damaged(seg, "the object could not be read")),
            Fetched::Damaged(why) => Err(planner.damaged(seg, &why)),
            Fetched::Diverged => Err(planner.diverged(seg)),
            Fetched::Restorable(batch, v) => {
                planner.checked(seg, v.header.prev_hash, v.header.last_hash).map(|()| batch)
            }
        };
        let batch = match outcome {
            Ok(batch) => batch,
            Err(g) => {
                gap = Some(g);
                break;
            }
        };
        store.append(&batch).map_err(err)?;
        put_row(&store, seg)?;
        store.set_meta("archived_seq", &seg.last_seq.to_string()).map_err(err)?;
        restored += 1;
    }
    let gap = gap.or_else(|| planner.finish());
    let head = planner.head();
    let mut snapshot_seq = None;
    for (k, size) in snapshots {
        if let Some(seq) = segment::parse_snapshot_key(&k).filter(|&s| s <= head.seq) {
            store.put_r2_snapshot_row(seq, &k, size).map_err(err)?;
            snapshot_seq = snapshot_seq.max(Some(seq));
        }
    }
    if let Some(g) = &gap {
        console_warn!(
            "moltlog recovery of {key}: seqs {}..={} are lost ({}); recovered up to {}",
            g.first_seq,
            g.last_seq,
            g.reason,
            head.seq
        );
        // The archiver continues with the gap's event, which links across the gap.
        store.set_meta("archived_seq", &g.last_seq.to_string()).map_err(err)?;
    }
    console_log!("moltlog: recovered {key} from R2: {restored} segments, up to seq {}", head.seq);
    Ok(Some(Recovered { snapshot_seq, segments: restored, last_seq: head.seq, gap }))
}

fn put_row(store: &SqlStore, seg: &ArchivedSegment) -> Result<(), ApiError> {
    store.put_segment_row(seg.first_seq, seg.last_seq, seg.generation, &seg.key, seg.size).map_err(err)
}

/// Adds this recovery to the history `GET …/recovery` reports.
pub(super) fn remember(
    store: &SqlStore,
    r: &Recovered,
    gap_seq: Option<u64>,
    now_ms: u64,
) -> Result<(), ApiError> {
    let mut history: Vec<Value> = store
        .meta(RECOVERIES_META)
        .map_err(err)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    history.push(json!({
        "at_ms": now_ms,
        "segments_restored": r.segments,
        "snapshot_seq": r.snapshot_seq,
        "restored_to_seq": r.last_seq,
        "gap": r.gap.as_ref().map(|g| json!({
            "first_seq": g.first_seq,
            "last_seq": g.last_seq,
            "reason": g.reason,
            "recorded_at_seq": gap_seq,
        })),
    }));
    store.set_meta(RECOVERIES_META, &Value::Array(history).to_string()).map_err(err)
}

/// `GET /v1/sessions/{key}/recovery`: `normal` unless a recovery lost seqs (`degraded`), the
/// gaps with their seq ranges and reasons, and every recovery with when it ran.
pub(super) fn report(store: &SqlStore) -> Result<Value, ApiError> {
    let history: Vec<Value> = store
        .meta(RECOVERIES_META)
        .map_err(err)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let gaps: Vec<Value> = history
        .iter()
        .filter(|r| !r["gap"].is_null())
        .map(|r| {
            let mut g = r["gap"].clone();
            g["at_ms"] = r["at_ms"].clone();
            g
        })
        .collect();
    Ok(json!({
        "state": if gaps.is_empty() { "normal" } else { "degraded" },
        "gaps": gaps,
        "recoveries": history,
    }))
}
