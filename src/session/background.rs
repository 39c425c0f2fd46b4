//! The alarm: archive segments and snapshots to R2, rewrite archived copies a redaction made
//! stale, keep the directory up to date, then schedule the next run.
//!
//! Each step captures what it writes before awaiting R2, and records progress in SQLite only
//! after R2 acknowledged, so an eviction mid-step just repeats the step. Duplicate alarms find
//! nothing due. R2 keys are never overwritten: segment ranges are fixed by an intent stored
//! before the upload, and a rewrite gets a new generation key. Every uploaded segment is read
//! back and its digest compared before the log counts it as archived (`upload_checked`).

use moltlog_core::chain::{self, Hash};
use moltlog_core::recovery;
use moltlog_core::segment;
use moltlog_core::store::LogStore;
use serde_json::json;
use worker::{Bucket, Response, ScheduledTime, console_error};

use super::SessionDO;
use super::live::Live;
use super::sql_store::SqlError;
use crate::http::ApiError;
use crate::rt;
use crate::schedule;

/// Segments archived per alarm run (bounds one run's duration; the next run continues).
const SEGMENTS_PER_RUN: u32 = 16;

fn sql(e: SqlError) -> ApiError {
    ApiError::new(500, "storage_error", e.to_string())
}

pub(super) async fn run(so: &SessionDO) {
    match so.ensure_live(None).await {
        Ok(true) => {}
        Ok(false) => return, // an object that never held a session
        Err(e) => {
            console_error!("moltlog alarm: loading failed: {e}");
            return;
        }
    }
    let _ = so.with_live(|l| {
        l.alarm_at = None;
        Ok(())
    });
    let result = run_steps(so).await;
    let _ = so.with_live(|l| {
        match &result {
            Ok(()) => l.work.failures = 0,
            Err(e) => {
                l.work.failures += 1;
                console_error!("moltlog alarm for {}: {e} (failure {})", l.key, l.work.failures);
            }
        }
        Ok(())
    });
    ensure_scheduled(so).await;
}

async fn run_steps(so: &SessionDO) -> Result<(), ApiError> {
    // Chat replies and webhook deliveries first: people wait for them. Their trouble does not
    // hold up archiving.
    let deliveries = super::deliver::run(so).await;
    let now = rt::now_ms();
    rewrite_stale(so).await?;
    for _ in 0..SEGMENTS_PER_RUN {
        let due =
            so.with_live(|l| Ok(schedule::archive_due(&so.cfg, &l.work, now) && l.work.unarchived() > 0))?;
        if !due {
            break;
        }
        archive_one(so, now).await?;
    }
    if so.with_live(|l| Ok(schedule::snapshot_due(&so.cfg, &l.work, now)))? {
        snapshot(so, now).await?;
    }
    if so.with_live(|l| Ok(schedule::directory_due(&l.work, now)))? {
        sync_directory(so, now).await?;
    }
    deliveries
}

/// Sets the alarm for the next due work, if it is earlier than the one already set.
pub(super) async fn ensure_scheduled(so: &SessionDO) {
    super::deliver::refresh_due(so);
    let now = rt::now_ms();
    let Ok(Some((due, current))) =
        so.with_live(|l| Ok(schedule::next_alarm(&so.cfg, &l.work, now).map(|d| (d, l.alarm_at))))
    else {
        return;
    };
    if current.is_some_and(|c| c <= due) {
        return;
    }
    let at = ScheduledTime::new(js_sys::Date::new(&js_sys::Number::from(due as f64)));
    match so.state.storage().set_alarm(at).await {
        Ok(()) => {
            let _ = so.with_live(|l| {
                l.alarm_at = Some(due);
                Ok(())
            });
        }
        Err(e) => console_error!("moltlog: setting the alarm failed: {e}"),
    }
}

/// After a commit: the first event registers the session in the directory at once; everything
/// else waits for the alarm.
pub(super) async fn after_append(so: &SessionDO, first_event: bool) {
    if first_event {
        let _ = sync_directory(so, rt::now_ms()).await;
    }
    ensure_scheduled(so).await;
}

/// The hash a segment starting at `first` links from (across a recorded gap, see `recovery`).
fn prev_hash(l: &Live, first: u64) -> Result<Hash, ApiError> {
    recovery::hash_before(&l.store, l.key.as_str(), first)
        .map_err(sql)?
        .ok_or_else(|| ApiError::internal(format!("the record before seq {first} is missing")))
}

fn redacted_in(l: &Live, first: u64, last: u64) -> Result<usize, ApiError> {
    Ok(l.state().redacted.iter().filter(|&&s| s >= first && s <= last).count())
}

/// Archives the next run of unarchived records as one segment.
async fn archive_one(so: &SessionDO, now: u64) -> Result<(), ApiError> {
    let (key, r2_key, bytes, first, last, redactions_before) = so.with_live(|l| {
        // The intent fixes the range and creation time before the upload, so a repeat after an
        // eviction writes the very same object.
        let (first, last, created) = match l.store.meta("archive_intent").map_err(sql)? {
            Some(i) => {
                parse_intent(&i).ok_or_else(|| ApiError::internal(format!("bad archive intent {i:?}")))?
            }
            None => {
                let first = l.work.archived_seq + 1;
                let last = l.engine.head().seq.min(first + u64::from(so.cfg.segment_max_events) - 1);
                l.store.set_meta("archive_intent", &format!("{first},{last},{now}")).map_err(sql)?;
                (first, last, now)
            }
        };
        let run = l.store.frames(first, last).map_err(sql)?;
        let framed = segment::FramedRun {
            first_seq: first,
            last_seq: last,
            first_ts_ms: run.first_ts_ms,
            last_ts_ms: run.last_ts_ms,
            last_hash: run.last_hash,
            frames: &run.frames,
        };
        let bytes = segment::encode_frames(l.key.as_str(), prev_hash(l, first)?, &framed, created);
        let r2_key = segment::object_key(l.key.as_str(), first, last, 0);
        Ok((l.key.clone(), r2_key, bytes, first, last, redacted_in(l, first, last)?))
    })?;
    let bucket = so.env.bucket(rt::BUCKET)?;
    let size = upload_checked(&bucket, &r2_key, bytes).await?;
    so.with_live(|l| {
        debug_assert_eq!(l.key, key);
        l.store.put_segment_row(first, last, 0, &r2_key, size).map_err(sql)?;
        if redacted_in(l, first, last)? != redactions_before {
            // A redaction landed during the upload: the object holds erased content.
            l.store.mark_stale(Some(first), None).map_err(sql)?;
        }
        l.store.set_meta("archived_seq", &last.to_string()).map_err(sql)?;
        l.store.delete_meta("archive_intent").map_err(sql)?;
        l.refresh_work().map_err(sql)
    })
}

/// Upload attempts per run before the run fails (the next run starts again).
const UPLOAD_ATTEMPTS: u32 = 2;

/// Writes a segment and reads it back: R2 must hold exactly these bytes before the log counts
/// them as archived. A copy that differs (a damaged upload, or a stray object already at the
/// key, which `put_if_absent` would keep) is reported, deleted and written again; if it still
/// differs the run fails, the intent stays and the next run repeats it. Returns the size.
async fn upload_checked(bucket: &Bucket, key: &str, bytes: Vec<u8>) -> Result<u64, ApiError> {
    let size = bytes.len() as u64;
    let digest = chain::sha256(&bytes);
    for attempt in 1..=UPLOAD_ATTEMPTS {
        rt::put_if_absent(bucket, key, bytes.clone(), "application/octet-stream").await?;
        let back = rt::get_bytes(bucket, key).await?;
        let back_digest = back.as_deref().map(chain::sha256);
        if back_digest == Some(digest) {
            return Ok(size);
        }
        console_error!(
            "moltlog archive: {key} read back as {} (attempt {attempt}), expected {} bytes sha256 {}; rewriting",
            back.as_ref().map_or("nothing".to_owned(), |b| format!(
                "{} bytes sha256 {}",
                b.len(),
                chain::to_hex(&back_digest.unwrap_or_default())
            )),
            size,
            chain::to_hex(&digest)
        );
        bucket.delete(key).await?;
    }
    Err(ApiError::new(
        500,
        "archive_mismatch",
        format!("{key} does not read back as written after {UPLOAD_ATTEMPTS} attempts"),
    ))
}

fn parse_intent(s: &str) -> Option<(u64, u64, u64)> {
    let mut it = s.split(',').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Rewrites segments and deletes R2 snapshots that hold content a redaction erased.
async fn rewrite_stale(so: &SessionDO) -> Result<(), ApiError> {
    let bucket = so.env.bucket(rt::BUCKET)?;
    let stale = so.with_live(|l| l.store.stale_segments().map_err(sql))?;
    for row in stale {
        let (new_key, bytes, redactions_before) = so.with_live(|l| {
            let records =
                l.store.read(row.first_seq, (row.last_seq - row.first_seq + 1) as u32).map_err(sql)?;
            let bytes = segment::encode(l.key.as_str(), prev_hash(l, row.first_seq)?, &records, rt::now_ms());
            let new_key =
                segment::object_key(l.key.as_str(), row.first_seq, row.last_seq, row.generation + 1);
            Ok((new_key, bytes, redacted_in(l, row.first_seq, row.last_seq)?))
        })?;
        let size = upload_checked(&bucket, &new_key, bytes).await?;
        bucket.delete(&row.key).await?;
        so.with_live(|l| {
            l.store
                .put_segment_row(row.first_seq, row.last_seq, row.generation + 1, &new_key, size)
                .map_err(sql)?;
            if redacted_in(l, row.first_seq, row.last_seq)? != redactions_before {
                l.store.mark_stale(Some(row.first_seq), None).map_err(sql)?;
            }
            Ok(())
        })?;
    }
    let stale_snaps = so.with_live(|l| {
        Ok(l.store.r2_snapshots().map_err(sql)?.into_iter().filter(|r| r.3).collect::<Vec<_>>())
    })?;
    for (seq, key, _, _) in stale_snaps {
        bucket.delete(&key).await?;
        so.with_live(|l| l.store.delete_r2_snapshot_row(seq).map_err(sql))?;
    }
    so.with_live(|l| l.refresh_work().map_err(sql))
}

/// Takes a snapshot: stored locally at once, then copied to R2.
async fn snapshot(so: &SessionDO, now: u64) -> Result<(u64, u64, String), ApiError> {
    let (seq, bytes, r2_key, redactions_before) = so.with_live(|l| {
        let seq = l.engine.head().seq;
        let bytes = l.engine.snapshot(now);
        let state_len = moltlog_core::snapshot::decode_header(&bytes).map(|h| h.state_len).unwrap_or(0);
        l.store.put_snapshot(seq, &bytes).map_err(sql)?;
        let seqs = l.store.snapshot_seqs().map_err(sql)?;
        let keep = so.cfg.local_snapshots_kept as usize;
        if seqs.len() > keep {
            l.store.prune_snapshots_before(seqs[seqs.len() - keep]).map_err(sql)?;
        }
        l.store.set_meta("last_snapshot_seq", &seq.to_string()).map_err(sql)?;
        l.store.set_meta("last_snapshot_ms", &now.to_string()).map_err(sql)?;
        l.store.set_meta("last_snapshot_len", &state_len.to_string()).map_err(sql)?;
        l.refresh_work().map_err(sql)?;
        let r2_key = segment::snapshot_object_key(l.key.as_str(), seq);
        Ok((seq, bytes, r2_key, l.state().redacted.len()))
    })?;
    let size = bytes.len() as u64;
    let bucket = so.env.bucket(rt::BUCKET)?;
    rt::put_if_absent(&bucket, &r2_key, bytes, "application/octet-stream").await?;
    so.with_live(|l| {
        l.store.put_r2_snapshot_row(seq, &r2_key, size).map_err(sql)?;
        if l.state().redacted[redactions_before..].iter().any(|&t| t <= seq) {
            // Erased content is inside: mark it for deletion by the next run.
            l.store.mark_stale(None, Some(seq)).map_err(sql)?;
            l.work.stale = true;
        }
        Ok(())
    })?;
    Ok((seq, size, r2_key))
}

/// `POST /v1/sessions/{key}/snapshot`: snapshot now.
pub(super) async fn snapshot_now(so: &SessionDO) -> Result<Response, ApiError> {
    let (seq, bytes, r2_key) = snapshot(so, rt::now_ms()).await?;
    Ok(rt::json(201, &json!({"seq": seq, "bytes": bytes, "r2_key": r2_key}))?)
}

async fn sync_directory(so: &SessionDO, now: u64) -> Result<(), ApiError> {
    let entry = so.with_live(|l| {
        let s = l.state();
        Ok(json!({
            "key": l.key.as_str(),
            "created_ms": l.created_ms,
            "last_ts_ms": s.last_ts_ms,
            "head_seq": s.head.seq,
            "head_hash": chain::to_hex(&s.head.hash),
        }))
    })?;
    let head_seq = entry["head_seq"].as_u64().unwrap_or(0);
    crate::directory::upsert(&so.env, &entry).await?;
    so.with_live(|l| {
        l.work.directory_synced_ms = now;
        l.work.directory_synced_seq = head_seq;
        l.store.set_meta("directory_synced_seq", &head_seq.to_string()).map_err(sql)
    })
}
