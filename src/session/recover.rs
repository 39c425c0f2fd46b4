//! Recovery: a session whose Durable Object storage is empty but whose R2 archive exists is
//! rebuilt from the archived segments, each verified and chained to the one before.
//! Resumable: records already restored are skipped, so an eviction mid-recovery is harmless.

use std::collections::BTreeMap;

use moltlog_core::key::SessionKey;
use moltlog_core::segment;
use moltlog_core::state::Head;
use moltlog_core::store::{CommitBatch, LogStore, event_key_entry};
use worker::{Bucket, console_log, console_warn};

use super::sql_store::SqlStore;
use crate::http::ApiError;
use crate::rt;

pub(super) struct Recovered {
    pub snapshot_seq: Option<u64>,
    pub segments: u32,
    pub last_seq: u64,
}

fn err(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, "recovery_failed", e.to_string())
}

pub(super) async fn from_archive(
    store: &SqlStore,
    bucket: &Bucket,
    key: &SessionKey,
) -> Result<Option<Recovered>, ApiError> {
    let mut newest: BTreeMap<u64, (u64, u32, String, u64)> = BTreeMap::new();
    for (k, size) in rt::list_all(bucket, &format!("sessions/{key}/segments/")).await? {
        if let Some((first, last, generation)) = segment::parse_object_key(&k)
            && newest.get(&first).is_none_or(|(_, g, _, _)| generation > *g)
        {
            newest.insert(first, (last, generation, k, size));
        }
    }
    let snapshots = rt::list_all(bucket, &format!("sessions/{key}/snapshots/")).await?;
    if newest.is_empty() && snapshots.is_empty() {
        return Ok(None);
    }
    let mut store = store.clone();
    let mut head = store.head().map_err(err)?.unwrap_or(Head::genesis(key.as_str()));
    let mut restored = 0u32;
    for (first, (last, generation, object_key, size)) in newest {
        if last <= head.seq {
            store.put_segment_row(first, last, generation, &object_key, size).map_err(err)?;
            continue;
        }
        if first > head.seq + 1 {
            console_warn!(
                "moltlog recovery of {key}: archive has a gap before seq {first}; recovered up to {}",
                head.seq
            );
            break;
        }
        let bytes =
            rt::get_bytes(bucket, &object_key).await?.ok_or_else(|| err(format!("{object_key} vanished")))?;
        let mut batch = CommitBatch { expected_seq: head.seq, ..CommitBatch::default() };
        let mut linked = first == head.seq + 1;
        let verified = segment::verify(&bytes, key.as_str(), |checked, frame| {
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
        })
        .map_err(|e| err(format!("{object_key}: {e}")))?;
        if first == head.seq + 1 && verified.header.prev_hash != head.hash {
            return Err(err(format!("{object_key} does not chain to seq {}", head.seq)));
        }
        if !linked {
            return Err(err(format!(
                "{object_key} overlaps the restored log but disagrees with it at seq {}",
                head.seq
            )));
        }
        store.append(&batch).map_err(err)?;
        store.put_segment_row(first, last, generation, &object_key, size).map_err(err)?;
        store.set_meta("archived_seq", &last.to_string()).map_err(err)?;
        head = Head { seq: verified.header.last_seq, hash: verified.header.last_hash };
        restored += 1;
    }
    let mut snapshot_seq = None;
    for (k, size) in snapshots {
        if let Some(seq) = segment::parse_snapshot_key(&k).filter(|&s| s <= head.seq) {
            store.put_r2_snapshot_row(seq, &k, size).map_err(err)?;
            snapshot_seq = snapshot_seq.max(Some(seq));
        }
    }
    console_log!("moltlog: recovered {key} from R2: {restored} segments, up to seq {}", head.seq);
    Ok(Some(Recovered { snapshot_seq, segments: restored, last_seq: head.seq }))
}
