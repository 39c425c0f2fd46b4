//! Snapshots: the encoded state at a seq, with enough in the header to check it standalone and
//! against a replay of the log.
//!
//! `"MOLTSNAP" ‖ u8 version ‖ u32 LE header_len ‖ header ‖ u32 LE payload_len ‖ payload ‖
//! sha256[32]`, where header = `codec::encode(SnapshotHeader)`, payload = the encoded state,
//! compressed as the header says, and the trailing digest covers every byte before it.

use serde::{Deserialize, Serialize};

use crate::chain::{self, Hash};
use crate::codec::{self, DecodeError, FORMAT_V1, Reader};
use crate::state::SessionState;

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"MOLTSNAP";

/// Largest state a snapshot may claim to inflate to (guards against decompression bombs).
pub const MAX_STATE_BYTES: u64 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    None,
    /// Raw DEFLATE (RFC 1951).
    Deflate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    pub session_key: String,
    pub seq: u64,
    pub head_hash: Hash,
    /// SHA-256 of the encoded (uncompressed) state.
    pub state_sha256: Hash,
    pub state_len: u64,
    pub compression: Compression,
    pub created_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("snapshot checksum mismatch: the file is damaged")]
    Checksum,
    #[error("snapshot state is {actual} bytes, header says {expected}")]
    StateLength { expected: u64, actual: u64 },
    #[error(
        "snapshot state digest mismatch: header says {}, state hashes to {}",
        chain::to_hex(expected),
        chain::to_hex(actual)
    )]
    StateDigest { expected: Hash, actual: Hash },
    #[error("snapshot is of session {actual:?}, expected {expected:?}")]
    WrongSession { expected: String, actual: String },
    #[error("snapshot header says seq {header_seq}, its state is at seq {state_seq}")]
    HeadMismatch { header_seq: u64, state_seq: u64 },
}

/// A decoded, self-consistent snapshot.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub header: SnapshotHeader,
    pub state: SessionState,
    /// The encoded state: what `state_sha256` covers and a replay must reproduce.
    pub state_bytes: Vec<u8>,
}

/// Encodes `state` as a snapshot.
pub fn encode(state: &SessionState, created_ms: u64, compression: Compression) -> Vec<u8> {
    let state_bytes = state.encode();
    let payload = match compression {
        Compression::None => state_bytes.clone(),
        // Level 1: snapshots are taken often in a Durable Object; the state compresses well anyway.
        Compression::Deflate => miniz_oxide::deflate::compress_to_vec(&state_bytes, 1),
    };
    let header = SnapshotHeader {
        session_key: state.session_key.clone(),
        seq: state.head.seq,
        head_hash: state.head.hash,
        state_sha256: chain::sha256(&state_bytes),
        state_len: state_bytes.len() as u64,
        compression,
        created_ms,
    };
    let header_bytes = codec::encode(&header);
    let mut out = Vec::with_capacity(8 + 1 + 8 + header_bytes.len() + payload.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.push(FORMAT_V1);
    codec::put_framed(&mut out, &header_bytes);
    codec::put_framed(&mut out, &payload);
    let digest = chain::sha256(&out);
    out.extend_from_slice(&digest);
    out
}

/// Reads only the header (cheap: for listings).
pub fn decode_header(bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
    let mut r = open(bytes)?;
    Ok(codec::decode(r.framed()?)?)
}

fn open(bytes: &[u8]) -> Result<Reader<'_>, DecodeError> {
    let mut r = Reader::new(bytes);
    if r.take(8).map_err(|_| DecodeError::BadMagic("snapshot"))? != SNAPSHOT_MAGIC {
        return Err(DecodeError::BadMagic("snapshot"));
    }
    match r.u8()? {
        FORMAT_V1 => Ok(r),
        v => Err(DecodeError::UnknownVersion { found: v, expected: FORMAT_V1 }),
    }
}

/// Decodes a snapshot and checks it is internally consistent (digest, length, head) and belongs
/// to `session_key`. Whether it matches the log is for the caller to check (see `verify`).
pub fn decode(bytes: &[u8], session_key: &str) -> Result<Snapshot, SnapshotError> {
    let body = codec::strip_checksum(bytes).ok_or(SnapshotError::Checksum)?;
    let mut r = open(body)?;
    let header: SnapshotHeader = codec::decode(r.framed()?)?;
    let payload = r.framed()?;
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes(r.remaining()).into());
    }
    if header.session_key != session_key {
        return Err(SnapshotError::WrongSession {
            expected: session_key.to_owned(),
            actual: header.session_key,
        });
    }
    if header.state_len > MAX_STATE_BYTES {
        return Err(SnapshotError::StateLength { expected: header.state_len, actual: 0 });
    }
    let state_bytes = match header.compression {
        Compression::None => payload.to_vec(),
        Compression::Deflate => {
            miniz_oxide::inflate::decompress_to_vec_with_limit(payload, header.state_len as usize)
                .map_err(|e| DecodeError::Invalid(format!("snapshot payload does not inflate: {e}")))?
        }
    };
    if state_bytes.len() as u64 != header.state_len {
        return Err(SnapshotError::StateLength {
            expected: header.state_len,
            actual: state_bytes.len() as u64,
        });
    }
    let actual = chain::sha256(&state_bytes);
    if actual != header.state_sha256 {
        return Err(SnapshotError::StateDigest { expected: header.state_sha256, actual });
    }
    let state = SessionState::decode(&state_bytes)?;
    if state.head.seq != header.seq || state.head.hash != header.head_hash {
        return Err(SnapshotError::HeadMismatch { header_seq: header.seq, state_seq: state.head.seq });
    }
    if state.session_key != header.session_key {
        return Err(SnapshotError::WrongSession { expected: header.session_key, actual: state.session_key });
    }
    Ok(Snapshot { header, state, state_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_compression() {
        let state = SessionState::new("k");
        for c in [Compression::None, Compression::Deflate] {
            let bytes = encode(&state, 5, c);
            let snap = decode(&bytes, "k").unwrap();
            assert_eq!(snap.state, state);
            assert_eq!(snap.header.created_ms, 5);
            assert_eq!(decode_header(&bytes).unwrap(), snap.header);
        }
    }

    #[test]
    fn rejects_another_sessions_snapshot() {
        let bytes = encode(&SessionState::new("a"), 0, Compression::Deflate);
        assert!(matches!(decode(&bytes, "b"), Err(SnapshotError::WrongSession { .. })));
    }

    #[test]
    fn any_flipped_byte_is_caught() {
        let bytes = encode(&SessionState::new("k"), 0, Compression::None);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad, "k").is_err(), "flip at {i} went unnoticed");
        }
    }
}
