//! Segments checked ahead, on other threads, then folded in order on one.
//!
//! Checking a record (decoding, two SHA-256s) costs far more than folding it into the state, and
//! a segment can be checked on its own chain, from its header's `prev_hash`, without the log
//! before it. So a reader may `check_segment` several segments in parallel and hand each
//! `CheckedSegment` to the one `Verifier`, which folds its records only if the segment continues
//! the log exactly where it ends (`continues`). A `CheckedSegment` can only be made by
//! `check_segment`, so holding one is proof that the check passed; the fold still makes sure each
//! record follows the verifier's head. Anything else (a segment that does not check out, does not
//! continue the log, or overlaps it) goes through `open_segment`/`step`/`close_segment`, which
//! reports the first problem at its seq.

use super::Verifier;
use crate::chain::Hash;
use crate::event::EventHeader;
use crate::record::CheckedRecord;
use crate::segment::{self, SegmentHeader};

/// A segment whose every record, header and trailer checked out on its own.
pub struct CheckedSegment {
    header: SegmentHeader,
    records: std::vec::IntoIter<(CheckedRecord, bool)>,
    /// The hash the next record follows in the segment's chain.
    prev: Hash,
}

impl CheckedSegment {
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The header of the record `fold_checked` folds next.
    pub fn peek_header(&self) -> Option<&EventHeader> {
        self.records.as_slice().first().map(|(r, _)| &r.header)
    }
}

/// Checks a segment on its own, as `segment::verify` does, keeping its decoded records. `None`
/// if anything is wrong with it: then verify it with `Verifier::open_segment` to learn what.
pub fn check_segment(bytes: &[u8], session_key: &str) -> Option<CheckedSegment> {
    let mut records = Vec::new();
    let verified =
        segment::verify(bytes, session_key, |checked, frame| records.push((checked, frame.redacted))).ok()?;
    let header = verified.header;
    Some(CheckedSegment { prev: header.prev_hash, header, records: records.into_iter() })
}

impl Verifier {
    /// Whether `seg` continues the log exactly where it ends: same session, its first seq next,
    /// its `prev_hash` the head's hash, its first record no older than the head. Only then may
    /// `fold_checked` fold it.
    pub fn continues(&self, seg: &CheckedSegment) -> bool {
        seg.header.session_key == self.state.session_key
            && seg.header.first_seq == self.next_seq()
            && seg.header.prev_hash == self.state.head.hash
            && seg.peek_header().is_some_and(|h| h.ts_ms >= self.state.last_ts_ms)
    }

    /// Folds the next record of a segment that `continues` the log, after `inspect` saw it (with
    /// whether its body is stored redacted). `None` once the segment is done.
    ///
    /// Panics if the record does not follow the head (the segment did not continue the log, or
    /// records were pushed in between): a misuse, not bad data.
    pub fn fold_checked(
        &mut self,
        seg: &mut CheckedSegment,
        inspect: impl FnOnce(&CheckedRecord, bool),
    ) -> Option<u64> {
        let (rec, redacted) = seg.records.next()?;
        let seq = rec.header.seq;
        assert!(
            seg.prev == self.state.head.hash && seq == self.next_seq(),
            "a checked segment folded where it does not continue the log"
        );
        inspect(&rec, redacted);
        if redacted {
            self.flagged.push(seq);
        }
        seg.prev = rec.hash;
        self.state.apply(&rec.header, rec.hash, rec.body);
        self.records += 1;
        Some(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::record::StoredRecord;
    use crate::sample;
    use crate::state::Head;
    use crate::verify::Verifier;

    const KEY: &str = "agent:main:checked";

    fn log(n: u64) -> Vec<StoredRecord> {
        sample::chat_log(KEY, n)
    }

    fn seg(recs: &[StoredRecord], first: u64, last: u64) -> Vec<u8> {
        let prev = if first == 1 { Head::genesis(KEY).hash } else { recs[first as usize - 2].hash };
        segment::encode(KEY, prev, &recs[first as usize - 1..last as usize], 5)
    }

    #[test]
    fn checked_segments_fold_to_the_state_a_sequential_walk_reaches() {
        let recs = log(12);
        let (a, b) = (seg(&recs, 1, 5), seg(&recs, 6, 12));
        // Checked in any order (think: on two threads), folded in seq order.
        let mut cb = check_segment(&b, KEY).unwrap();
        let mut ca = check_segment(&a, KEY).unwrap();
        let mut v = Verifier::new(KEY);
        assert!(!v.continues(&cb), "the later segment does not continue an empty log");
        let mut seen = Vec::new();
        for cs in [&mut ca, &mut cb] {
            assert!(v.continues(cs));
            while let Some(seq) = v.fold_checked(cs, |r, redacted| seen.push((r.header.seq, redacted))) {
                assert_eq!(seq, v.head().seq);
            }
        }
        assert_eq!(seen.len(), 12);
        let folded = v.finish().unwrap();

        let mut s = Verifier::new(KEY);
        for bytes in [&a, &b] {
            let mut cur = s.open_segment(bytes).unwrap();
            while s.step(&mut cur, |_, _| {}).unwrap().is_some() {}
            s.close_segment(cur).unwrap();
        }
        let stepped = s.finish().unwrap();
        assert_eq!(folded.state, stepped.state);
        assert_eq!(folded.head, Head { seq: 12, hash: recs[11].hash });
    }

    #[test]
    fn anything_wrong_is_left_to_the_stepping_path() {
        let recs = log(6);
        let clean = seg(&recs, 1, 6);
        let mut bad = clean.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(check_segment(&bad, KEY).is_none(), "a damaged trailer");
        assert!(check_segment(&clean, "agent:main:other").is_none(), "another session");
        // A segment that checks out alone but belongs after another history.
        let other = log(3);
        let stray = segment::encode(KEY, [9; 32], &other, 0);
        assert!(check_segment(&stray, KEY).is_none(), "records that do not link from its prev_hash");
        let lone = seg(&recs, 4, 6);
        let cs = check_segment(&lone, KEY).unwrap();
        assert!(!Verifier::new(KEY).continues(&cs));
    }

    #[test]
    #[should_panic(expected = "does not continue the log")]
    fn folding_out_of_place_is_refused() {
        let recs = log(6);
        let mut cs = check_segment(&seg(&recs, 4, 6), KEY).unwrap();
        Verifier::new(KEY).fold_checked(&mut cs, |_, _| {});
    }
}
