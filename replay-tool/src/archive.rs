//! One session's archive in an object source: which segments make up its log, its snapshots,
//! its blobs, and the head the source claims.
//!
//! Segment choice follows schemas/FORMAT.md §7: for each `first_seq`, the object with the highest
//! generation (a segment rewritten after a redaction erased one of its bodies). Everything else
//! (gaps, overlaps, damage) is for the verifier to find and report.

use std::collections::BTreeMap;

use moltlog_core::key::SessionKey;
use moltlog_core::segment;
use moltlog_core::state::Head;

use crate::layout::blob_key;
use crate::objects::{ObjectInfo, ObjectSource, SourceError, segments_prefix, snapshots_prefix};

/// The head a log must reach: a seq, and the chain hash there when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimedHead {
    pub seq: u64,
    pub hash: Option<moltlog_core::Hash>,
}

impl From<Head> for ClaimedHead {
    fn from(h: Head) -> Self {
        ClaimedHead { seq: h.seq, hash: Some(h.hash) }
    }
}

impl ClaimedHead {
    pub fn matches(&self, h: &Head) -> bool {
        self.seq == h.seq && self.hash.is_none_or(|x| x == h.hash)
    }

    /// `SEQ` or `SEQ:HASH` (hex).
    pub fn parse(s: &str) -> Option<ClaimedHead> {
        let (seq, hash) = match s.split_once(':') {
            Some((seq, hash)) => (seq, Some(moltlog_core::chain::from_hex(hash)?)),
            None => (s, None),
        };
        Some(ClaimedHead { seq: seq.parse().ok()?, hash })
    }
}

/// A segment object, named by its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRef {
    pub first: u64,
    pub last: u64,
    pub generation: u32,
    pub key: String,
    pub size: u64,
}

pub struct SessionArchive {
    pub source: Box<dyn ObjectSource>,
    pub key: SessionKey,
    /// The segments that make up the log, in seq order.
    pub segments: Vec<SegmentRef>,
    /// Older generations still present (superseded by a rewrite).
    pub superseded: Vec<SegmentRef>,
    /// Objects under the segments prefix whose names are not segment keys.
    pub unrecognised: Vec<String>,
    /// Snapshot objects by the seq in their name.
    pub snapshots: BTreeMap<u64, ObjectInfo>,
    /// The head the source states (an export manifest, a pull manifest, `--expect-head`).
    pub claimed_head: Option<ClaimedHead>,
    /// Records up to here were archived to R2 (when the source says).
    pub archived_seq: Option<u64>,
}

/// Picks the segments that make up the log from a listing: per `first_seq` the highest
/// generation (ties: the longer range). Returns (chosen in seq order, superseded, unrecognised).
pub fn choose_segments(listing: &[ObjectInfo]) -> (Vec<SegmentRef>, Vec<SegmentRef>, Vec<String>) {
    let mut best: BTreeMap<u64, SegmentRef> = BTreeMap::new();
    let mut superseded = Vec::new();
    let mut unrecognised = Vec::new();
    for o in listing {
        let Some((first, last, generation)) = segment::parse_object_key(&o.key) else {
            unrecognised.push(o.key.clone());
            continue;
        };
        let candidate = SegmentRef { first, last, generation, key: o.key.clone(), size: o.size };
        match best.get(&first) {
            Some(b) if (b.generation, b.last) >= (generation, last) => superseded.push(candidate),
            _ => {
                if let Some(old) = best.insert(first, candidate) {
                    superseded.push(old);
                }
            }
        }
    }
    superseded.sort_by_key(|s| (s.first, s.generation));
    (best.into_values().collect(), superseded, unrecognised)
}

impl SessionArchive {
    /// Lists the session's segments and snapshots in `source`.
    pub fn open(source: Box<dyn ObjectSource>, key: SessionKey) -> Result<SessionArchive, SourceError> {
        let listing = source.list(&segments_prefix(key.as_str()))?;
        let (segments, superseded, mut unrecognised) = choose_segments(&listing);
        let mut snapshots = BTreeMap::new();
        for o in source.list(&snapshots_prefix(key.as_str()))? {
            match segment::parse_snapshot_key(&o.key) {
                Some(seq) => {
                    snapshots.insert(seq, o);
                }
                None => unrecognised.push(o.key),
            }
        }
        Ok(SessionArchive {
            source,
            key,
            segments,
            superseded,
            unrecognised,
            snapshots,
            claimed_head: None,
            archived_seq: None,
        })
    }

    pub fn session_key(&self) -> &str {
        self.key.as_str()
    }

    /// The last seq the segments claim to reach (from their names; for progress and messages).
    pub fn last_named_seq(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.last)
    }

    pub fn read_blob(&self, sha256: &moltlog_core::Hash) -> Result<Option<Vec<u8>>, SourceError> {
        self.source.read(&blob_key(sha256))
    }

    pub fn describe(&self) -> String {
        self.source.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(key: &str) -> ObjectInfo {
        ObjectInfo { key: key.into(), size: 1 }
    }

    #[test]
    fn the_highest_generation_wins_per_first_seq() {
        let k = |f, l, g| segment::object_key("s", f, l, g);
        let listing = vec![
            o(&k(1, 10, 0)),
            o(&k(1, 10, 2)),
            o(&k(1, 10, 1)),
            o(&k(11, 20, 0)),
            o("sessions/s/segments/notes.txt"),
        ];
        let (chosen, superseded, unrecognised) = choose_segments(&listing);
        assert_eq!(chosen.iter().map(|s| (s.first, s.generation)).collect::<Vec<_>>(), vec![(1, 2), (11, 0)]);
        assert_eq!(superseded.iter().map(|s| s.generation).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(unrecognised, vec!["sessions/s/segments/notes.txt".to_string()]);
    }
}
