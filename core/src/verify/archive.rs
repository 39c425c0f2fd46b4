//! The archive check: every segment the session archived, read back from R2, verifies standalone,
//! continues the segment before it, and carries the local log's chain hashes at both ends. A
//! damaged or missing object is found here, while the local copy can still repair it, rather than
//! on the day storage is lost and recovery needs it. Pure: the caller fetches the objects.

use crate::chain::{self, Hash};
use crate::record;
use crate::segment::{self, SegmentError};

/// Why an archived segment cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveProblem {
    #[error("the object is missing from the archive")]
    Missing,
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error("its key names seqs {key_first}..={key_last}, its header {first}..={last}")]
    KeyMismatch { key_first: u64, key_last: u64, first: u64, last: u64 },
    #[error("seqs {expected}..{found} are in no segment")]
    Hole { expected: u64, found: u64 },
    #[error(
        "its chain hash at seq {seq} is {}, the local log's is {}",
        chain::to_hex(archived),
        chain::to_hex(local)
    )]
    Diverges { seq: u64, archived: Hash, local: Hash },
}

/// The first bad segment, by object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSegment {
    pub key: String,
    pub problem: ArchiveProblem,
}

/// Checks archived segments one at a time, in seq order.
#[derive(Debug, Clone)]
pub struct ArchiveCheck {
    session_key: String,
    next_seq: u64,
    prev_hash: Hash,
    checked: u32,
}

impl ArchiveCheck {
    pub fn new(session_key: &str) -> ArchiveCheck {
        ArchiveCheck {
            session_key: session_key.to_owned(),
            next_seq: 1,
            prev_hash: chain::genesis(session_key),
            checked: 0,
        }
    }

    /// The hash the next segment must link from.
    pub fn prev_hash(&self) -> Hash {
        self.prev_hash
    }

    /// Segments checked so far (good ones and the bad one).
    pub fn checked(&self) -> u32 {
        self.checked
    }

    /// The seq the next segment must start at.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Checks the segment stored at `object_key` (`None`: the object is gone). `local_hash`
    /// answers the local log's chain hash at a seq, `None` where the log does not hold it.
    pub fn check(
        &mut self,
        object_key: &str,
        bytes: Option<&[u8]>,
        local_hash: impl Fn(u64) -> Option<Hash>,
    ) -> Result<(), BadSegment> {
        self.checked += 1;
        let bad = |problem: ArchiveProblem| BadSegment { key: object_key.to_owned(), problem };
        let (key_first, key_last, _) = segment::parse_object_key(object_key).ok_or_else(|| {
            bad(SegmentError::Header(format!("unparsable object key {object_key:?}")).into())
        })?;
        let hole = ArchiveProblem::Hole { expected: self.next_seq, found: key_first };
        if key_first < self.next_seq {
            return Err(bad(hole));
        }
        let bytes = bytes.ok_or_else(|| bad(ArchiveProblem::Missing))?;
        // Past a hole only a segment that opens with the gap's `records_lost` event continues.
        let mut closes_gap = false;
        let verified = segment::verify(bytes, &self.session_key, |c, _| {
            closes_gap |= c.header.seq == key_first && record::closes_gap(self.next_seq, key_first, &c.body);
        })
        .map_err(|e| bad(e.into()))?;
        if key_first > self.next_seq && !closes_gap {
            return Err(bad(hole));
        }
        let h = &verified.header;
        if (h.first_seq, h.last_seq) != (key_first, key_last) {
            return Err(bad(ArchiveProblem::KeyMismatch {
                key_first,
                key_last,
                first: h.first_seq,
                last: h.last_seq,
            }));
        }
        if h.prev_hash != self.prev_hash {
            return Err(bad(SegmentError::PrevHash { expected: self.prev_hash, actual: h.prev_hash }.into()));
        }
        if let Some(local) = local_hash(h.last_seq).filter(|l| *l != h.last_hash) {
            return Err(bad(ArchiveProblem::Diverges { seq: h.last_seq, archived: h.last_hash, local }));
        }
        self.next_seq = h.last_seq + 1;
        self.prev_hash = h.last_hash;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;
    use crate::store::{LogStore, MemoryStore};
    use crate::{Actor, AppendRequest, Engine, Limits, Now, SessionKey, StoredRecord};

    const KEY: &str = "agent:archive";

    fn log(n: u64) -> Vec<StoredRecord> {
        let mut engine = Engine::new(SessionKey::parse(KEY).unwrap(), Limits::default());
        let mut store = MemoryStore::new();
        for i in 0..n {
            let now = Now { now_ms: 1_700_000_000_000 + i, entropy: 1 };
            engine.append(&mut store, AppendRequest::one(Actor::Runtime, sample::user("hi")), now).unwrap();
        }
        store.read(1, n as u32).unwrap()
    }

    fn seg(recs: &[StoredRecord], first: u64, last: u64) -> (String, Vec<u8>) {
        let prev = if first == 1 { chain::genesis(KEY) } else { recs[first as usize - 2].hash };
        let bytes = segment::encode(KEY, prev, &recs[first as usize - 1..last as usize], 5);
        (segment::object_key(KEY, first, last, 0), bytes)
    }

    fn local(recs: &[StoredRecord]) -> impl Fn(u64) -> Option<Hash> + '_ {
        |seq| recs.get(seq.checked_sub(1)? as usize).map(|r| r.hash)
    }

    #[test]
    fn intact_segments_that_match_the_log_pass() {
        let recs = log(8);
        let mut c = ArchiveCheck::new(KEY);
        for (f, l) in [(1, 3), (4, 8)] {
            let (k, b) = seg(&recs, f, l);
            c.check(&k, Some(&b), local(&recs)).unwrap();
        }
        assert_eq!((c.checked(), c.next_seq()), (2, 9));
    }

    #[test]
    fn a_flipped_byte_fails_the_segment_it_is_in() {
        let recs = log(8);
        let mut c = ArchiveCheck::new(KEY);
        let (k, b) = seg(&recs, 1, 3);
        c.check(&k, Some(&b), local(&recs)).unwrap();
        let (k, mut b) = seg(&recs, 4, 8);
        let mid = b.len() / 2;
        b[mid] ^= 0x01;
        let e = c.check(&k, Some(&b), local(&recs)).unwrap_err();
        assert_eq!(e.key, k);
        assert!(matches!(e.problem, ArchiveProblem::Segment(_)), "{:?}", e.problem);
    }

    #[test]
    fn missing_objects_and_holes_are_named() {
        let recs = log(8);
        let (k, _) = seg(&recs, 1, 3);
        let e = ArchiveCheck::new(KEY).check(&k, None, local(&recs)).unwrap_err();
        assert_eq!(e.problem, ArchiveProblem::Missing);
        let (k, b) = seg(&recs, 4, 8);
        let e = ArchiveCheck::new(KEY).check(&k, Some(&b), local(&recs)).unwrap_err();
        assert_eq!(e.problem, ArchiveProblem::Hole { expected: 1, found: 4 });
    }

    #[test]
    fn a_segment_of_another_history_diverges_from_the_log() {
        let recs = log(4);
        let other = {
            let mut engine = Engine::new(SessionKey::parse(KEY).unwrap(), Limits::default());
            let mut store = MemoryStore::new();
            for i in 0..4u64 {
                let now = Now { now_ms: 1_800_000_000_000 + i, entropy: 9 };
                engine
                    .append(&mut store, AppendRequest::one(Actor::Runtime, sample::user("x")), now)
                    .unwrap();
            }
            store.read(1, 4).unwrap()
        };
        let (k, b) = seg(&other, 1, 4);
        let e = ArchiveCheck::new(KEY).check(&k, Some(&b), local(&recs)).unwrap_err();
        assert!(matches!(e.problem, ArchiveProblem::Diverges { seq: 4, .. }), "{:?}", e.problem);
    }

    #[test]
    fn a_segment_under_another_range_key_is_refused() {
        let recs = log(4);
        let (_, b) = seg(&recs, 1, 4);
        let k = segment::object_key(KEY, 1, 3, 0);
        let e = ArchiveCheck::new(KEY).check(&k, Some(&b), local(&recs)).unwrap_err();
        assert!(matches!(e.problem, ArchiveProblem::KeyMismatch { .. }), "{:?}", e.problem);
    }
}
