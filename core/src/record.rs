//! Records: an event as stored (header bytes, body bytes, chain hash), how one is sealed, how it
//! is framed in segments and exports, and how one is checked against its predecessor.

use crate::chain::{self, Hash};
use crate::codec::{self, DecodeError, Reader};
use crate::event::{Actor, EventBody, EventHeader, EventKind};
use crate::id::EventId;

/// One stored event. `body` holds the full encoded body, or its skeleton once redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: u64,
    pub header: Vec<u8>,
    pub body: Vec<u8>,
    pub redacted: bool,
    /// The chain hash of this record (a cache: verifiers recompute it).
    pub hash: Hash,
}

impl StoredRecord {
    pub fn decode_header(&self) -> Result<EventHeader, DecodeError> {
        codec::decode(&self.header)
    }

    pub fn decode_body(&self) -> Result<EventBody, DecodeError> {
        codec::decode(&self.body)
    }

    /// Appends this record's frame:
    /// `u32 header_len ‖ header ‖ hash[32] ‖ u8 redacted ‖ u32 body_len ‖ body`.
    pub fn write_frame(&self, out: &mut Vec<u8>) {
        codec::put_framed(out, &self.header);
        out.extend_from_slice(&self.hash);
        out.push(u8::from(self.redacted));
        codec::put_framed(out, &self.body);
    }

    pub fn frame_len(&self) -> usize {
        4 + self.header.len() + 32 + 1 + 4 + self.body.len()
    }
}

/// A record read back from a frame or a store row, borrowed. Nothing in it is trusted until
/// `check` has linked it to its predecessor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramedRecord<'a> {
    pub header: &'a [u8],
    /// The hash the writer claims; `check` recomputes and compares it.
    pub hash: &'a Hash,
    pub redacted: bool,
    pub body: &'a [u8],
}

impl<'a> FramedRecord<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let header = r.framed()?;
        let hash: &Hash = r.take(32)?.try_into().expect("took 32 bytes");
        let redacted = match r.u8()? {
            0 => false,
            1 => true,
            other => return Err(DecodeError::Invalid(format!("redaction flag {other}"))),
        };
        let body = r.framed()?;
        Ok(FramedRecord { header, hash, redacted, body })
    }

    pub fn to_stored(&self, seq: u64) -> StoredRecord {
        StoredRecord {
            seq,
            header: self.header.to_vec(),
            body: self.body.to_vec(),
            redacted: self.redacted,
            hash: *self.hash,
        }
    }
}

/// Reads back records written one after another with `StoredRecord::write_frame` (as stores
/// and segments hold them). Stops at the first frame that does not decode.
pub struct Frames<'a> {
    reader: Reader<'a>,
    failed: bool,
}

impl<'a> Frames<'a> {
    pub fn new(bytes: &'a [u8]) -> Frames<'a> {
        Frames { reader: Reader::new(bytes), failed: false }
    }
}

impl<'a> Frames<'a> {
    /// Bytes not read yet (the next frame starts here).
    pub fn remaining(&self) -> usize {
        self.reader.remaining()
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<FramedRecord<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.is_empty() {
            return None;
        }
        let frame = FramedRecord::read(&mut self.reader);
        self.failed = frame.is_err();
        Some(frame)
    }
}

impl<'a> From<&'a StoredRecord> for FramedRecord<'a> {
    fn from(r: &'a StoredRecord) -> Self {
        FramedRecord { header: &r.header, hash: &r.hash, redacted: r.redacted, body: &r.body }
    }
}

/// Everything but the body that a new event's header needs.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub seq: u64,
    pub id: EventId,
    pub ts_ms: u64,
    pub actor: Actor,
    pub causation: Option<u64>,
    pub idempotency_key: Option<String>,
}

/// Encodes a new event, links it to `prev` and returns its header and stored record.
pub fn seal(prev: &Hash, env: Envelope, body: &EventBody) -> (EventHeader, StoredRecord) {
    let bytes = codec::encode(body);
    let digest = chain::sha256(&bytes);
    seal_encoded(prev, env, body, bytes, digest)
}

/// `seal` for a body already encoded and hashed (`body_bytes` must be `codec::encode(body)`,
/// `body_sha256` its digest).
pub fn seal_encoded(
    prev: &Hash,
    env: Envelope,
    body: &EventBody,
    body_bytes: Vec<u8>,
    body_sha256: Hash,
) -> (EventHeader, StoredRecord) {
    debug_assert_eq!(body_bytes, codec::encode(body), "body_bytes must be the body's encoding");
    debug_assert_eq!(body_sha256, chain::sha256(&body_bytes), "body_sha256 must be the body's digest");
    let skeleton_sha256 =
        if body.has_content() { chain::sha256(&codec::encode(&body.skeleton())) } else { body_sha256 };
    let header = EventHeader {
        seq: env.seq,
        id: env.id,
        ts_ms: env.ts_ms,
        kind: body.kind(),
        actor: env.actor,
        causation: env.causation,
        idempotency_key: env.idempotency_key,
        body_len: u32::try_from(body_bytes.len()).expect("body over 4 GiB"),
        body_sha256,
        skeleton_sha256,
    };
    let header_bytes = codec::encode(&header);
    let hash = chain::link(prev, &header_bytes);
    let record = StoredRecord { seq: env.seq, header: header_bytes, body: body_bytes, redacted: false, hash };
    (header, record)
}

/// Why a record does not belong where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    #[error("header does not decode: {0}")]
    UndecodableHeader(DecodeError),
    #[error("body does not decode: {0}")]
    UndecodableBody(DecodeError),
    #[error("gap: expected seq {expected}, found {found}")]
    Gap { expected: u64, found: u64 },
    #[error(
        "body digest mismatch: header says {}, body hashes to {}",
        chain::to_hex(expected),
        chain::to_hex(actual)
    )]
    BodyDigest { expected: Hash, actual: Hash },
    #[error(
        "redacted body digest mismatch: header says {}, skeleton hashes to {}",
        chain::to_hex(expected),
        chain::to_hex(actual)
    )]
    SkeletonDigest { expected: Hash, actual: Hash },
    #[error("body is {actual} bytes; header says {expected}")]
    BodyLength { expected: u32, actual: usize },
    #[error("body kind {actual:?} differs from header kind {expected:?}")]
    KindMismatch { expected: EventKind, actual: EventKind },
    #[error("redacted body still holds content")]
    SkeletonHasContent,
    #[error("marked redacted, but its header says the body holds no content to redact")]
    NothingToRedact,
    #[error(
        "stored hash {} differs from the recomputed chain hash {}",
        chain::to_hex(stored),
        chain::to_hex(computed)
    )]
    BrokenLink { stored: Hash, computed: Hash },
    #[error("timestamp {ts_ms} is before its predecessor's {prev_ts_ms}")]
    TimeWentBack { ts_ms: u64, prev_ts_ms: u64 },
}

/// A record that passed `check`: decoded and linked.
#[derive(Clone, Debug)]
pub struct CheckedRecord {
    pub header: EventHeader,
    pub body: EventBody,
    pub hash: Hash,
}

/// Checks one record against its predecessor: decodes, checks seq, the claimed chain hash, body
/// (or skeleton) digest, kind, length and time order.
pub fn check(
    prev_hash: &Hash,
    expected_seq: u64,
    prev_ts_ms: u64,
    rec: &FramedRecord<'_>,
) -> Result<CheckedRecord, RecordProblem> {
    let header: EventHeader = codec::decode(rec.header).map_err(RecordProblem::UndecodableHeader)?;
    let gap = RecordProblem::Gap { expected: expected_seq, found: header.seq };
    // Only a `records_lost` event may follow a hole, checked once its body is (below).
    if header.seq != expected_seq && (header.seq < expected_seq || header.kind != EventKind::Lifecycle) {
        return Err(gap);
    }
    let hash = chain::link(prev_hash, rec.header);
    if *rec.hash != hash {
        return Err(RecordProblem::BrokenLink { stored: *rec.hash, computed: hash });
    }
    let actual = chain::sha256(rec.body);
    // A body without content is its own skeleton (both digests agree), so for such a record the
    // redaction flag would pass the digest check below unnoticed. The engine never redacts one.
    if rec.redacted && header.skeleton_sha256 == header.body_sha256 {
        return Err(RecordProblem::NothingToRedact);
    }
    if rec.redacted {
        if actual != header.skeleton_sha256 {
            return Err(RecordProblem::SkeletonDigest { expected: header.skeleton_sha256, actual });
        }
    } else {
        if actual != header.body_sha256 {
            return Err(RecordProblem::BodyDigest { expected: header.body_sha256, actual });
        }
        if rec.body.len() != header.body_len as usize {
            return Err(RecordProblem::BodyLength { expected: header.body_len, actual: rec.body.len() });
        }
    }
    let body: EventBody = codec::decode(rec.body).map_err(RecordProblem::UndecodableBody)?;
    if body.kind() != header.kind {
        return Err(RecordProblem::KindMismatch { expected: header.kind, actual: body.kind() });
    }
    if header.seq != expected_seq && !closes_gap(expected_seq, header.seq, &body) {
        return Err(gap);
    }
    if rec.redacted && body.has_content() {
        return Err(RecordProblem::SkeletonHasContent);
    }
    if header.ts_ms < prev_ts_ms {
        return Err(RecordProblem::TimeWentBack { ts_ms: header.ts_ms, prev_ts_ms });
    }
    Ok(CheckedRecord { header, body, hash })
}

/// Whether `body`, found at seq `found` where `expected` was due, is the `records_lost` event
/// that names exactly the seqs in between: the one record allowed to follow a hole.
pub fn closes_gap(expected: u64, found: u64, body: &EventBody) -> bool {
    match body {
        EventBody::Lifecycle(l) => l
            .lost_range()
            .is_some_and(|(first, last)| first == expected && last.checked_add(1) == Some(found)),
        _ => false,
    }
}

/// The skeleton bytes that replace a record's body when it is redacted.
pub fn skeleton_bytes(body: &EventBody) -> Vec<u8> {
    codec::encode(&body.skeleton())
}
