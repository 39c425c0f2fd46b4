//! The log in SQLite as pages: each row holds a run of consecutive records as frames
//! (`StoredRecord::write_frame`), up to `PAGE_BYTES`. A batch of 100 events is one row write
//! instead of 100: the Durable Object's SQL cost is per row, and an event's frame is small.

use moltlog_core::StoredRecord;
use moltlog_core::record::Frames;
use moltlog_core::state::Head;
use worker::{SqlStorage, SqlStorageValue as V};

use super::sql_store::{SqlError, as_bytes, as_hash, as_u64, exec, int, rows};

/// A page grows to about this size (a row holds at most 2 MB; one record may exceed it alone,
/// up to the engine's 1 MiB event limit plus its header).
pub const PAGE_BYTES: usize = 512 << 10;

/// Pages fetched per query while reading.
const PAGES_PER_QUERY: u32 = 16;

/// The last record's seq and hash.
pub fn head(sql: &SqlStorage) -> Result<Option<Head>, SqlError> {
    let r = rows(sql, "SELECT last_seq, last_hash FROM event_pages ORDER BY first_seq DESC LIMIT 1", vec![])?;
    match r.into_iter().next() {
        None => Ok(None),
        Some(row) => {
            let mut it = row.into_iter();
            let seq = as_u64(&it.next().unwrap_or(V::Null))?;
            let hash = as_hash(it.next().unwrap_or(V::Null))?;
            Ok(Some(Head { seq, hash }))
        }
    }
}

fn decode_page(
    first_seq: u64,
    bytes: &[u8],
    out: &mut Vec<StoredRecord>,
    from: u64,
    limit: usize,
) -> Result<(), SqlError> {
    for (i, frame) in Frames::new(bytes).enumerate() {
        let seq = first_seq + i as u64;
        let frame = frame
            .map_err(|e| SqlError(format!("page at seq {first_seq}: record {seq} does not decode: {e}")))?;
        if seq >= from && out.len() < limit {
            out.push(frame.to_stored(seq));
        }
    }
    Ok(())
}

/// Up to `limit` records from `from` on.
pub fn read(sql: &SqlStorage, from: u64, limit: u32) -> Result<Vec<StoredRecord>, SqlError> {
    let limit = limit as usize;
    let mut out = Vec::new();
    // The seq the next page must hold: pages are contiguous, so a page starting after it is a hole.
    let mut expect = from.max(1);
    while out.len() < limit {
        let pages = rows(
            sql,
            "SELECT first_seq, last_seq, records FROM event_pages WHERE last_seq >= ? ORDER BY first_seq LIMIT ?",
            vec![int(expect)?, int(u64::from(PAGES_PER_QUERY))?],
        )?;
        let fetched = pages.len();
        for page in pages {
            let mut it = page.into_iter();
            let first = as_u64(&it.next().unwrap_or(V::Null))?;
            let last = as_u64(&it.next().unwrap_or(V::Null))?;
            let bytes = as_bytes(it.next().unwrap_or(V::Null))?;
            if first > expect && !closes_gap(expect, first, &bytes) {
                return Err(SqlError(format!("the log has a hole: no page holds seq {expect}")));
            }
            decode_page(first, &bytes, &mut out, expect, limit)?;
            expect = last + 1;
            if out.len() >= limit {
                break;
            }
        }
        if fetched < PAGES_PER_QUERY as usize {
            break;
        }
    }
    Ok(out)
}

/// Whether a page starting at `first` where `expect` was due opens with the `records_lost` event
/// naming the seqs in between (a recovery's recorded gap, the one hole a log may have). Readers
/// that verify check that record like any other.
fn closes_gap(expect: u64, first: u64, page: &[u8]) -> bool {
    let Some(Ok(frame)) = Frames::new(page).next() else { return false };
    moltlog_core::codec::decode::<moltlog_core::EventBody>(frame.body)
        .is_ok_and(|body| moltlog_core::record::closes_gap(expect, first, &body))
}

/// Writes `records` (contiguous) as new pages.
pub fn insert(sql: &SqlStorage, records: &[StoredRecord]) -> Result<(), SqlError> {
    let mut start = 0;
    while start < records.len() {
        let mut bytes = Vec::new();
        let mut end = start;
        while end < records.len() && (end == start || bytes.len() + records[end].frame_len() <= PAGE_BYTES) {
            records[end].write_frame(&mut bytes);
            end += 1;
        }
        let (first, last) = (&records[start], &records[end - 1]);
        exec(
            sql,
            "INSERT INTO event_pages (first_seq, last_seq, last_hash, records) VALUES (?, ?, ?, ?)",
            vec![int(first.seq)?, int(last.seq)?, V::Blob(last.hash.to_vec()), V::Blob(bytes)],
        )?;
        start = end;
    }
    Ok(())
}

/// Replaces the body of `seq` by its skeleton (a redaction), rewriting its page.
pub fn erase(sql: &SqlStorage, seq: u64, skeleton: &[u8]) -> Result<(), SqlError> {
    let page = rows(
        sql,
        "SELECT first_seq, records FROM event_pages WHERE first_seq <= ? AND last_seq >= ?",
        vec![int(seq)?, int(seq)?],
    )?;
    let Some(row) = page.into_iter().next() else {
        return Err(SqlError(format!("no page holds seq {seq}")));
    };
    let mut it = row.into_iter();
    let first = as_u64(&it.next().unwrap_or(V::Null))?;
    let bytes = as_bytes(it.next().unwrap_or(V::Null))?;
    let mut records = Vec::new();
    decode_page(first, &bytes, &mut records, first, usize::MAX)?;
    let target = records
        .iter_mut()
        .find(|r| r.seq == seq)
        .ok_or_else(|| SqlError(format!("page at {first} does not hold seq {seq}")))?;
    target.body = skeleton.to_vec();
    target.redacted = true;
    let mut out = Vec::with_capacity(bytes.len());
    for r in &records {
        r.write_frame(&mut out);
    }
    let written =
        exec(sql, "UPDATE event_pages SET records = ? WHERE first_seq = ?", vec![V::Blob(out), int(first)?])?
            .rows_written();
    if written != 1 {
        return Err(SqlError(format!("erasing seq {seq} rewrote {written} pages")));
    }
    Ok(())
}

/// Headers of the records at or before `from`, newest first (scans back from the head).
pub fn headers_desc(sql: &SqlStorage, from: u64, limit: u32) -> Result<Vec<(u64, Vec<u8>)>, SqlError> {
    let limit = limit as usize;
    let mut out = Vec::new();
    let mut before = from;
    while out.len() < limit && before > 0 {
        let page = rows(
            sql,
            "SELECT first_seq, records FROM event_pages WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1",
            vec![int(before)?],
        )?;
        let Some(row) = page.into_iter().next() else { break };
        let mut it = row.into_iter();
        let first = as_u64(&it.next().unwrap_or(V::Null))?;
        let bytes = as_bytes(it.next().unwrap_or(V::Null))?;
        let mut headers = Vec::new();
        for (i, frame) in Frames::new(&bytes).enumerate() {
            let frame = frame.map_err(|e| SqlError(format!("page at seq {first} does not decode: {e}")))?;
            let seq = first + i as u64;
            if seq <= before {
                headers.push((seq, frame.header.to_vec()));
            }
        }
        out.extend(headers.into_iter().rev().take(limit - out.len()));
        before = first - 1;
    }
    Ok(out)
}

/// Records `first..=last` as their frames, copied straight out of the pages (the archiver writes
/// them into a segment as they are).
pub fn run(sql: &SqlStorage, first: u64, last: u64) -> Result<Run, SqlError> {
    let mut out = Run { frames: Vec::new(), first_ts_ms: 0, last_ts_ms: 0, last_hash: [0; 32] };
    let mut expect = first;
    let ts = |h: &[u8], seq: u64| {
        moltlog_core::codec::decode::<moltlog_core::EventHeader>(h)
            .map(|h| h.ts_ms)
            .map_err(|e| SqlError(format!("record {seq}: header does not decode: {e}")))
    };
    while expect <= last {
        let pages = rows(
            sql,
            "SELECT first_seq, records FROM event_pages WHERE last_seq >= ? AND first_seq <= ? ORDER BY first_seq LIMIT ?",
            vec![int(expect)?, int(last)?, int(u64::from(PAGES_PER_QUERY))?],
        )?;
        if pages.is_empty() {
            return Err(SqlError(format!("no page holds seq {expect}")));
        }
        for page in pages {
            let mut it = page.into_iter();
            let page_first = as_u64(&it.next().unwrap_or(V::Null))?;
            let bytes = as_bytes(it.next().unwrap_or(V::Null))?;
            if page_first > expect {
                return Err(SqlError(format!("the log has a hole: no page holds seq {expect}")));
            }
            let mut frames = Frames::new(&bytes);
            let mut seq = page_first;
            let (mut from, mut to) = (None, 0);
            loop {
                let start = bytes.len() - frames.remaining();
                let Some(frame) = frames.next() else { break };
                let frame =
                    frame.map_err(|e| SqlError(format!("page at seq {page_first}: record {seq}: {e}")))?;
                if seq >= first && seq <= last {
                    from.get_or_insert(start);
                    to = bytes.len() - frames.remaining();
                    if seq == first {
                        out.first_ts_ms = ts(frame.header, seq)?;
                    }
                    if seq == last {
                        out.last_ts_ms = ts(frame.header, seq)?;
                        out.last_hash = *frame.hash;
                    }
                }
                seq += 1;
                if seq > last {
                    break;
                }
            }
            if let Some(from) = from {
                out.frames.extend_from_slice(&bytes[from..to]);
            }
            expect = seq;
            if expect > last {
                break;
            }
        }
    }
    Ok(out)
}

/// A run of records in frame form.
pub struct Run {
    pub frames: Vec<u8>,
    pub first_ts_ms: u64,
    pub last_ts_ms: u64,
    pub last_hash: moltlog_core::Hash,
}
