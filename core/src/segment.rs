//! Archive segments: a contiguous run of records that verifies standalone and chains to its
//! neighbours.
//!
//! `"MOLTSEGM" ‖ u8 version ‖ u32 LE header_len ‖ header ‖ record frames… ‖ sha256[32]`, where
//! header = `codec::encode(SegmentHeader)`, each frame is as `StoredRecord::write_frame` writes
//! it, and the trailing digest covers every byte before it. Verification checks the records first
//! (so damage is reported at its seq) and the trailer last.

use serde::{Deserialize, Serialize};

use crate::chain::{self, Hash};
use crate::codec::{self, DecodeError, FORMAT_V1, Reader};
use crate::record::{self, CheckedRecord, FramedRecord, RecordProblem, StoredRecord};

pub const SEGMENT_MAGIC: &[u8; 8] = b"MOLTSEGM";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHeader {
    pub session_key: String,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The chain hash of the record before `first_seq` (genesis for seq 1).
    pub prev_hash: Hash,
    pub last_hash: Hash,
    pub count: u64,
    /// Timestamps of the first and last record, for time-range lookups without decoding.
    pub first_ts_ms: u64,
    pub last_ts_ms: u64,
    pub created_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("segment does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("record frame at seq {seq} does not decode: {error}")]
    Frame { seq: u64, error: DecodeError },
    #[error("seq {seq}: {problem}")]
    Record { seq: u64, problem: RecordProblem },
    #[error("segment header says {expected} records ending at seq {last_seq}, found {actual}")]
    Count { expected: u64, actual: u64, last_seq: u64 },
    #[error(
        "segment's last hash {} differs from its last record's {}",
        chain::to_hex(expected),
        chain::to_hex(actual)
    )]
    LastHash { expected: Hash, actual: Hash },
    #[error("segment is of session {actual:?}, expected {expected:?}")]
    WrongSession { expected: String, actual: String },
    #[error("segment checksum mismatch: the file is damaged outside its records")]
    Checksum,
    #[error("segment header is inconsistent: {0}")]
    Header(String),
    #[error(
        "segment's prev_hash {} differs from the chain hash before its first record {}",
        chain::to_hex(actual),
        chain::to_hex(expected)
    )]
    PrevHash { expected: Hash, actual: Hash },
}

/// Encodes `records` (contiguous, non-empty, each linked to the one before) as a segment.
pub fn encode(session_key: &str, prev_hash: Hash, records: &[StoredRecord], created_ms: u64) -> Vec<u8> {
    let first = records.first().expect("a segment holds at least one record");
    let last = records.last().expect("non-empty");
    assert_eq!(last.seq - first.seq + 1, records.len() as u64, "segment records must be contiguous");
    let ts = |r: &StoredRecord| r.decode_header().map(|h| h.ts_ms).unwrap_or(0);
    let mut frames = Vec::with_capacity(records.iter().map(StoredRecord::frame_len).sum());
    for r in records {
        r.write_frame(&mut frames);
    }
    let run = FramedRun {
        first_seq: first.seq,
        last_seq: last.seq,
        first_ts_ms: ts(first),
        last_ts_ms: ts(last),
        last_hash: last.hash,
        frames: &frames,
    };
    encode_frames(session_key, prev_hash, &run, created_ms)
}

/// A run of records already in frame form (as stores keep them), with what a segment header says
/// about them.
#[derive(Clone, Copy, Debug)]
pub struct FramedRun<'a> {
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_ts_ms: u64,
    pub last_ts_ms: u64,
    pub last_hash: Hash,
    /// The records' frames, one after another (`StoredRecord::write_frame`).
    pub frames: &'a [u8],
}

/// Encodes a segment from frames as they are, without decoding and re-framing every record (the
/// archiver copies them straight from storage).
pub fn encode_frames(session_key: &str, prev_hash: Hash, run: &FramedRun<'_>, created_ms: u64) -> Vec<u8> {
    assert!(run.last_seq >= run.first_seq, "a segment holds at least one record");
    let header = SegmentHeader {
        session_key: session_key.to_owned(),
        first_seq: run.first_seq,
        last_seq: run.last_seq,
        prev_hash,
        last_hash: run.last_hash,
        count: run.last_seq - run.first_seq + 1,
        first_ts_ms: run.first_ts_ms,
        last_ts_ms: run.last_ts_ms,
        created_ms,
    };
    let header_bytes = codec::encode(&header);
    let mut out = Vec::with_capacity(8 + 1 + 4 + header_bytes.len() + run.frames.len() + 32);
    out.extend_from_slice(SEGMENT_MAGIC);
    out.push(FORMAT_V1);
    codec::put_framed(&mut out, &header_bytes);
    out.extend_from_slice(run.frames);
    let digest = chain::sha256(&out);
    out.extend_from_slice(&digest);
    out
}

/// A segment opened for reading: its header, and its frames on demand.
pub struct SegmentReader<'a> {
    pub header: SegmentHeader,
    frames: Reader<'a>,
    next_seq: u64,
    whole: &'a [u8],
}

impl<'a> SegmentReader<'a> {
    pub fn open(whole: &'a [u8]) -> Result<SegmentReader<'a>, SegmentError> {
        let bytes = &whole[..whole.len().saturating_sub(32)];
        let mut r = Reader::new(bytes);
        if r.take(8).map_err(|_| DecodeError::BadMagic("segment"))? != SEGMENT_MAGIC {
            return Err(DecodeError::BadMagic("segment").into());
        }
        match r.u8()? {
            FORMAT_V1 => {}
            v => return Err(DecodeError::UnknownVersion { found: v, expected: FORMAT_V1 }.into()),
        }
        let header: SegmentHeader = codec::decode(r.framed()?)?;
        Ok(SegmentReader { next_seq: header.first_seq, header, frames: r, whole })
    }

    /// Whether the trailing checksum matches (check after reading the frames).
    pub fn checksum_ok(&self) -> bool {
        checksum_ok(self.whole)
    }

    /// The next frame without consuming it (unchecked: to decide where to stop, say at a time).
    pub fn peek_frame(&self) -> Option<FramedRecord<'a>> {
        let mut frames = self.frames.clone();
        (!frames.is_empty()).then(|| FramedRecord::read(&mut frames).ok()).flatten()
    }

    /// The next frame, or None at the end. The seq is the one the frame should have.
    pub fn next_frame(&mut self) -> Option<Result<(u64, FramedRecord<'a>), SegmentError>> {
        if self.frames.is_empty() {
            return None;
        }
        let seq = self.next_seq;
        // A damaged header may start near u64::MAX; `verify` stops at the header's count, which
        // the seq range bounds, before a saturated seq could be handed out twice.
        self.next_seq = seq.saturating_add(1);
        Some(FramedRecord::read(&mut self.frames).map(|f| (seq, f)).map_err(|error| {
            self.frames = Reader::new(&[]);
            SegmentError::Frame { seq, error }
        }))
    }
}

/// Whether a segment file's trailing SHA-256 matches the bytes before it. Separate from reading
/// the frames so that a reader can hash a file on one thread while checking records on another.
pub fn checksum_ok(whole: &[u8]) -> bool {
    codec::strip_checksum(whole).is_some()
}

/// Summary of a segment that verified standalone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSegment {
    pub header: SegmentHeader,
}

/// Verifies a segment on its own: every record links from `prev_hash`, the count, seq range and
/// last hash match the header. `visit` sees each checked record (e.g. to fold state).
pub fn verify(
    bytes: &[u8],
    session_key: &str,
    mut visit: impl FnMut(CheckedRecord, FramedRecord<'_>),
) -> Result<VerifiedSegment, SegmentError> {
    let mut reader = SegmentReader::open(bytes)?;
    let header = reader.header.clone();
    if header.session_key != session_key {
        return Err(SegmentError::WrongSession {
            expected: session_key.to_owned(),
            actual: header.session_key,
        });
    }
    check_header(&header)?;
    let mut prev = header.prev_hash;
    let mut prev_ts = 0;
    let mut count = 0u64;
    while let Some(frame) = reader.next_frame() {
        let (seq, frame) = frame?;
        if count == header.count {
            return Err(SegmentError::Count {
                expected: header.count,
                actual: count + 1,
                last_seq: header.last_seq,
            });
        }
        let checked = record::check(&prev, seq, prev_ts, &frame)
            .map_err(|problem| SegmentError::Record { seq, problem })?;
        prev = checked.hash;
        prev_ts = checked.header.ts_ms;
        count += 1;
        visit(checked, frame);
    }
    if count != header.count {
        return Err(SegmentError::Count { expected: header.count, actual: count, last_seq: header.last_seq });
    }
    if prev != header.last_hash {
        return Err(SegmentError::LastHash { expected: header.last_hash, actual: prev });
    }
    if !reader.checksum_ok() {
        return Err(SegmentError::Checksum);
    }
    Ok(VerifiedSegment { header })
}

/// Checks what the header says about itself before any record is read, so that damage to the
/// header is reported as such rather than blamed on the first record it no longer matches.
fn check_header(h: &SegmentHeader) -> Result<(), SegmentError> {
    if h.first_seq == 0 || h.last_seq < h.first_seq {
        return Err(SegmentError::Header(format!("seq range {}..={}", h.first_seq, h.last_seq)));
    }
    if h.last_seq - h.first_seq + 1 != h.count {
        return Err(SegmentError::Header(format!(
            "seqs {}..={} are not {} records",
            h.first_seq, h.last_seq, h.count
        )));
    }
    // The predecessor of seq 1 is known; any other segment's is checked by its first record's link.
    if h.first_seq == 1 && h.prev_hash != chain::genesis(&h.session_key) {
        return Err(SegmentError::Header("the hash before seq 1 is not the session's genesis hash".into()));
    }
    Ok(())
}

/// The R2 object key of a segment: `sessions/{key}/segments/{first:020}-{last:020}.seg`, or
/// `….g{generation}.seg` for a segment rewritten after a redaction erased one of its bodies
/// (keys are never overwritten: the rewrite gets a new key and the old object is deleted).
pub fn object_key(session_key: &str, first_seq: u64, last_seq: u64, generation: u32) -> String {
    if generation == 0 {
        format!("sessions/{session_key}/segments/{first_seq:020}-{last_seq:020}.seg")
    } else {
        format!("sessions/{session_key}/segments/{first_seq:020}-{last_seq:020}.g{generation}.seg")
    }
}

/// `(first_seq, last_seq, generation)` from a segment's object key (or its file name).
pub fn parse_object_key(key: &str) -> Option<(u64, u64, u32)> {
    let name = key.rsplit('/').next()?.strip_suffix(".seg")?;
    let (range, generation) = match name.split_once(".g") {
        Some((range, g)) => (range, g.parse().ok()?),
        None => (name, 0),
    };
    let (first, last) = range.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first >= 1 && last >= first).then_some((first, last, generation))
}

/// The R2 object key of a snapshot: `sessions/{key}/snapshots/{seq:020}.snap`.
pub fn snapshot_object_key(session_key: &str, seq: u64) -> String {
    format!("sessions/{session_key}/snapshots/{seq:020}.snap")
}

/// The seq from a snapshot's object key (or file name).
pub fn parse_snapshot_key(key: &str) -> Option<u64> {
    key.rsplit('/').next()?.strip_suffix(".snap")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_round_trip() {
        let k = object_key("a:b", 1, 1000, 0);
        assert_eq!(k, "sessions/a:b/segments/00000000000000000001-00000000000000001000.seg");
        assert_eq!(parse_object_key(&k), Some((1, 1000, 0)));
        assert_eq!(parse_object_key(&object_key("a", 5, 9, 3)), Some((5, 9, 3)));
        assert_eq!(parse_object_key("sessions/a/segments/junk.seg"), None);
        assert_eq!(parse_snapshot_key(&snapshot_object_key("a", 42)), Some(42));
    }
}
