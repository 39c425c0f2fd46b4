//! Recovery from the archive, decided without IO: which archived segments to restore when a
//! Durable Object lost its storage, and where the damage is when not all of them can be.
//!
//! The caller lists the archive (`latest_segments`), then walks it in seq order, asking `wants`
//! before fetching a segment, then `checked` (it verified standalone), `damaged` (it is missing
//! or does not verify) or `diverged` (it disagrees with the restored log) for the copy. The
//! walk restores every segment that verifies and continues the log; at the first one that is
//! missing, damaged, or does not continue the log, it stops with a `Gap`: the seqs from there to
//! the highest seq the archive shows was ever assigned. The session then records the gap as a
//! `records_lost` event at the seq after it and goes on, so no lost seq is ever handed out again.

use crate::chain::{self, Hash};
use crate::event::EventBody;
use crate::record::StoredRecord;
use crate::segment;
use crate::state::Head;
use crate::store::{LogStore, read_one};

/// One archived segment object: the newest generation for its seq range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedSegment {
    pub first_seq: u64,
    pub last_seq: u64,
    pub generation: u32,
    pub key: String,
    pub size: u64,
}

/// The newest generation of each segment among listed objects `(key, size)`, by first seq.
/// Objects that are not segments are ignored.
pub fn latest_segments(objects: impl IntoIterator<Item = (String, u64)>) -> Vec<ArchivedSegment> {
    let mut newest: std::collections::BTreeMap<u64, ArchivedSegment> = Default::default();
    for (key, size) in objects {
        let Some((first_seq, last_seq, generation)) = segment::parse_object_key(&key) else { continue };
        if newest.get(&first_seq).is_none_or(|s| generation > s.generation) {
            newest.insert(first_seq, ArchivedSegment { first_seq, last_seq, generation, key, size });
        }
    }
    newest.into_values().collect()
}

/// The highest seq the archive shows was assigned: the end of any segment or a snapshot's seq.
pub fn highest_seq(segments: &[ArchivedSegment], snapshot_seqs: &[u64]) -> u64 {
    let seg = segments.iter().map(|s| s.last_seq).max().unwrap_or(0);
    seg.max(snapshot_seqs.iter().copied().max().unwrap_or(0))
}

/// Seqs the archive lost, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub first_seq: u64,
    pub last_seq: u64,
    pub reason: String,
}

/// What to do with the next listed segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// The log already holds all of it (record it as archived, nothing to restore).
    Held,
    /// Fetch it and report with `checked`.
    Fetch,
    /// Nothing from here on can be linked to the log: record this gap and stop.
    Stop(Gap),
}

/// Walks the archive in seq order from the log's current head.
#[derive(Clone, Debug)]
pub struct Planner {
    head: Head,
    highest_seq: u64,
}

impl Planner {
    /// `head` is what the local log holds (genesis when empty: a resumed recovery keeps what it
    /// restored); `highest_seq` from `highest_seq`.
    pub fn new(head: Head, highest_seq: u64) -> Planner {
        Planner { head, highest_seq: highest_seq.max(head.seq) }
    }

    pub fn head(&self) -> Head {
        self.head
    }

    fn gap(&self, reason: String) -> Gap {
        Gap { first_seq: self.head.seq + 1, last_seq: self.highest_seq, reason }
    }

    pub fn wants(&self, seg: &ArchivedSegment) -> Next {
        if seg.last_seq <= self.head.seq {
            Next::Held
        } else if seg.first_seq > self.head.seq + 1 {
            Next::Stop(self.gap(format!(
                "no archived segment holds seqs {}..{}",
                self.head.seq + 1,
                seg.first_seq
            )))
        } else {
            Next::Fetch
        }
    }

    /// Reports a fetched segment that verified standalone, with its header's chain ends.
    /// `Ok(())`: restore it (its records after the head); the head moves to its end. A segment
    /// that overlaps the head is linked by the caller, which knows the record at the head; one
    /// that starts right after it must chain to the head hash, which is checked here.
    pub fn checked(&mut self, seg: &ArchivedSegment, prev_hash: Hash, last_hash: Hash) -> Result<(), Gap> {
        if seg.first_seq == self.head.seq + 1 && prev_hash != self.head.hash {
            return Err(self.gap(format!(
                "{} does not chain to seq {} (its prev_hash is {})",
                seg.key,
                self.head.seq,
                chain::to_hex(&prev_hash)
            )));
        }
        self.head = Head { seq: seg.last_seq, hash: last_hash };
        Ok(())
    }

    /// Reports a segment that is missing (`why` says so) or does not verify.
    pub fn damaged(&self, seg: &ArchivedSegment, why: &str) -> Gap {
        self.gap(format!("{}: {why}", seg.key))
    }

    /// Reports that a fetched segment overlapping the head disagrees with the log there.
    pub fn diverged(&self, seg: &ArchivedSegment) -> Gap {
        self.gap(format!("{} disagrees with the restored log at seq {}", seg.key, self.head.seq))
    }

    /// After the last segment: seqs a snapshot shows were assigned but no segment held.
    pub fn finish(&self) -> Option<Gap> {
        (self.highest_seq > self.head.seq).then(|| {
            self.gap(format!(
                "the archive ends at seq {} but a snapshot is at seq {}",
                self.head.seq, self.highest_seq
            ))
        })
    }
}

/// The chain hash a run starting at seq `first` links from: the record before it, or, when
/// `first` holds a recorded gap's `records_lost` event, the record before the gap (genesis
/// before seq 1). `None` if the store lacks that record.
pub fn hash_before<S: LogStore + ?Sized>(
    store: &S,
    session_key: &str,
    first: u64,
) -> Result<Option<Hash>, S::Error> {
    let lost_from = read_one(store, first)?.and_then(|r| match r.decode_body() {
        Ok(EventBody::Lifecycle(l)) => l.lost_range().filter(|&(_, last)| last.checked_add(1) == Some(first)),
        _ => None,
    });
    let before = lost_from.map_or(first, |(f, _)| f).saturating_sub(1);
    if before == 0 {
        return Ok(Some(chain::genesis(session_key)));
    }
    Ok(read_one(store, before)?.map(|r| r.hash))
}

/// Cuts `records` (ascending, as a store reads them) at the first hole, so that what is left
/// can be one segment; the rest starts with the gap's event and is the next one.
pub fn cut_at_gap(records: &mut Vec<StoredRecord>) {
    if let Some(at) = records.windows(2).position(|w| w[1].seq != w[0].seq + 1) {
        records.truncate(at + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "agent:rec";

    fn seg(first: u64, last: u64, generation: u32) -> ArchivedSegment {
        ArchivedSegment {
            first_seq: first,
            last_seq: last,
            generation,
            key: segment::object_key(KEY, first, last, generation),
            size: 1,
        }
    }

    fn h(n: u8) -> Hash {
        [n; 32]
    }

    #[test]
    fn the_newest_generation_wins_and_other_objects_are_ignored() {
        let list = vec![
            (segment::object_key(KEY, 11, 20, 0), 5),
            (segment::object_key(KEY, 1, 10, 0), 5),
            (segment::object_key(KEY, 1, 10, 2), 6),
            ("sessions/agent:rec/segments/junk".to_owned(), 1),
        ];
        let segs = latest_segments(list);
        assert_eq!(segs.iter().map(|s| (s.first_seq, s.generation)).collect::<Vec<_>>(), [(1, 2), (11, 0)]);
        assert_eq!(highest_seq(&segs, &[15]), 20);
        assert_eq!(highest_seq(&segs, &[25]), 25);
    }

    #[test]
    fn an_intact_archive_restores_everything_without_a_gap() {
        let mut p = Planner::new(Head::genesis(KEY), 20);
        assert_eq!(p.wants(&seg(1, 10, 0)), Next::Fetch);
        p.checked(&seg(1, 10, 0), chain::genesis(KEY), h(1)).unwrap();
        p.checked(&seg(11, 20, 0), h(1), h(2)).unwrap();
        assert_eq!(p.head(), Head { seq: 20, hash: h(2) });
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn a_damaged_segment_stops_the_walk_with_a_gap_to_the_highest_seq() {
        let mut p = Planner::new(Head::genesis(KEY), 30);
        p.checked(&seg(1, 10, 0), chain::genesis(KEY), h(1)).unwrap();
        let gap = p.damaged(&seg(11, 20, 0), "checksum");
        assert_eq!((gap.first_seq, gap.last_seq), (11, 30), "seqs after the damage are lost too");
        assert!(
            gap.reason.contains("00000000000000000011-00000000000000000020.seg: checksum"),
            "{}",
            gap.reason
        );
        assert_eq!(p.head().seq, 10, "damage does not move the head");
    }

    #[test]
    fn a_hole_or_a_broken_link_is_a_gap() {
        let mut p = Planner::new(Head::genesis(KEY), 30);
        p.checked(&seg(1, 10, 0), chain::genesis(KEY), h(1)).unwrap();
        match p.wants(&seg(21, 30, 0)) {
            Next::Stop(g) => assert_eq!((g.first_seq, g.last_seq), (11, 30)),
            other => panic!("{other:?}"),
        }
        let gap = p.checked(&seg(11, 20, 0), h(9), h(2)).unwrap_err();
        assert!(gap.reason.contains("does not chain to seq 10"), "{}", gap.reason);
        assert_eq!(p.diverged(&seg(5, 20, 0)).first_seq, 11);
    }

    #[test]
    fn held_segments_are_skipped_and_a_resumed_walk_continues_at_the_head() {
        let p = Planner::new(Head { seq: 10, hash: h(1) }, 20);
        assert_eq!(p.wants(&seg(1, 10, 0)), Next::Held);
        assert_eq!(p.wants(&seg(5, 20, 0)), Next::Fetch, "an overlapping segment is fetched and linked");
    }

    #[test]
    fn runs_are_cut_at_a_hole() {
        let mut recs = crate::sample::chat_log(KEY, 6);
        recs.remove(3);
        cut_at_gap(&mut recs);
        assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let mut empty = Vec::new();
        cut_at_gap(&mut empty);
    }

    #[test]
    fn a_snapshot_beyond_the_last_segment_shows_lost_seqs() {
        let mut p = Planner::new(Head::genesis(KEY), 25);
        p.checked(&seg(1, 10, 0), chain::genesis(KEY), h(1)).unwrap();
        let gap = p.finish().unwrap();
        assert_eq!((gap.first_seq, gap.last_seq), (11, 25));
    }
}
