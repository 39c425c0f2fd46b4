//! Verifying a log stored as archive segments (R2, export bundles, the replay tool's bundles):
//! each segment must continue the chain where the log verified so far ends.
//!
//! Pull-style (`open_segment`, then `step` per frame, then `close_segment`) so that a reader can
//! check a snapshot as soon as the log reaches its seq, stop at a seq or a time, and hold one
//! segment in memory at a time. Problems are reported at the seq they concern: a damaged record at
//! its own seq, a missing range at its first seq, damage to a segment's header or trailer at the
//! segment's first seq. Records are checked before the trailer, so damage inside a record is
//! reported as such rather than as a bad file checksum.
//!
//! A segment may start before the end of the log verified so far (archives overlap after a
//! Durable Object recovered from R2 and archived again). Its overlapping frames are checked on the
//! segment's own chain, from its `prev_hash`, and where it reaches the log's head its hash must be
//! the log's; only then do its later frames extend the log.

use super::{Problem, Verifier, VerifyError};
use crate::chain::Hash;
use crate::codec::{self, DecodeError};
use crate::event::{EventBody, EventHeader};
use crate::record::{self, CheckedRecord, FramedRecord, RecordProblem};
use crate::segment::{SegmentError, SegmentHeader, SegmentReader};

/// A segment being verified frame by frame.
pub struct SegmentCursor<'a> {
    reader: SegmentReader<'a>,
    /// Hash and time of the previous frame of this segment.
    prev: Hash,
    prev_ts: u64,
    frames: u64,
    /// The log's head hash when the segment starts right after it (checked against the header's
    /// `prev_hash` at the end).
    before: Option<Hash>,
}

impl SegmentCursor<'_> {
    /// The segment's header, as decoded (not trusted until `close_segment`).
    pub fn header(&self) -> &SegmentHeader {
        &self.reader.header
    }

    /// The header of the next frame, decoded but unchecked (None at the end or if it does not
    /// decode: `step` then reports why). For readers that stop at a time: records are in time
    /// order, so the first one past the time ends the walk before it is folded in.
    pub fn peek_header(&self) -> Option<EventHeader> {
        self.reader.peek_frame().and_then(|f| codec::decode(f.header).ok())
    }
}

/// What `Verifier::step` did with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The record at this seq was checked and folded into the state.
    Pushed(u64),
    /// The log already held this seq; the frame was checked on its segment's own chain.
    Overlap(u64),
}

impl Verifier {
    /// Opens a segment that continues the log verified so far (or overlaps its end).
    pub fn open_segment<'a>(&self, bytes: &'a [u8]) -> Result<SegmentCursor<'a>, VerifyError> {
        let next = self.next_seq();
        let at = |problem| VerifyError { seq: next, problem };
        let reader = SegmentReader::open(bytes).map_err(|e| at(Problem::Segment(e)))?;
        let h = &reader.header;
        if h.session_key != self.state.session_key {
            return Err(at(Problem::Segment(SegmentError::WrongSession {
                expected: self.state.session_key.clone(),
                actual: h.session_key.clone(),
            })));
        }
        if h.first_seq == 0 || h.last_seq < h.first_seq {
            let e = DecodeError::Invalid(format!("segment header has seqs {}..={}", h.first_seq, h.last_seq));
            return Err(at(Problem::Segment(SegmentError::Decode(e))));
        }
        // A segment may start past the log's end only with the `records_lost` event that names the
        // seqs in between (decoded unchecked here: `step` checks it like any record).
        let closes_gap = || {
            let f = reader.peek_frame()?;
            let body: EventBody = codec::decode(f.body).ok()?;
            record::closes_gap(next, h.first_seq, &body).then_some(())
        };
        if h.first_seq > next && closes_gap().is_none() {
            return Err(at(Problem::Record(RecordProblem::Gap { expected: next, found: h.first_seq })));
        }
        let before = (h.first_seq >= next).then_some(self.state.head.hash);
        Ok(SegmentCursor { prev: h.prev_hash, prev_ts: 0, frames: 0, before, reader })
    }

    /// Verifies the segment's next frame. A new record is checked against the log, shown to
    /// `inspect` and folded in; a frame the log already holds is checked on the segment's chain
    /// and must agree with the log at its head. `Ok(None)` once the frames are done.
    pub fn step(
        &mut self,
        cur: &mut SegmentCursor<'_>,
        inspect: impl FnOnce(&CheckedRecord, &FramedRecord<'_>),
    ) -> Result<Option<Step>, VerifyError> {
        let Some(next) = cur.reader.next_frame() else { return Ok(None) };
        let (seq, frame) = next.map_err(|e| {
            let seq = match &e {
                SegmentError::Frame { seq, .. } => *seq,
                _ => self.next_seq(),
            };
            VerifyError { seq, problem: Problem::Segment(e) }
        })?;
        cur.frames += 1;
        let head = self.state.head;
        if seq <= head.seq {
            let checked = record::check(&cur.prev, seq, cur.prev_ts, &frame)
                .map_err(|p| VerifyError { seq, problem: p.into() })?;
            if seq == head.seq && checked.hash != head.hash {
                let problem = RecordProblem::BrokenLink { stored: checked.hash, computed: head.hash };
                return Err(VerifyError { seq, problem: problem.into() });
            }
            cur.prev = checked.hash;
            cur.prev_ts = checked.header.ts_ms;
            return Ok(Some(Step::Overlap(seq)));
        }
        self.push_inspect(&frame, |c| inspect(c, &frame))?;
        cur.prev = self.state.head.hash;
        cur.prev_ts = self.state.last_ts_ms;
        Ok(Some(Step::Pushed(seq)))
    }

    /// Finishes a segment whose frames are done: its header must match the frames found (count,
    /// last seq, last hash, the hash before it) and its trailing checksum the bytes.
    pub fn close_segment(&mut self, cur: SegmentCursor<'_>) -> Result<SegmentHeader, VerifyError> {
        let checksum_ok = cur.reader.checksum_ok();
        self.close_segment_with(cur, checksum_ok)
    }

    /// `close_segment` with the trailing checksum already checked elsewhere (a reader may hash the
    /// file on another thread while this one checks the records).
    pub fn close_segment_with(
        &mut self,
        cur: SegmentCursor<'_>,
        checksum_ok: bool,
    ) -> Result<SegmentHeader, VerifyError> {
        let h = cur.reader.header;
        let fail = |seq, e| Err(VerifyError { seq, problem: Problem::Segment(e) });
        if cur.frames != h.count || h.first_seq + cur.frames != h.last_seq + 1 {
            let seq = h.first_seq + cur.frames.min(h.count);
            return fail(
                seq,
                SegmentError::Count { expected: h.count, actual: cur.frames, last_seq: h.last_seq },
            );
        }
        if cur.prev != h.last_hash {
            return fail(h.last_seq, SegmentError::LastHash { expected: h.last_hash, actual: cur.prev });
        }
        if let Some(before) = cur.before
            && before != h.prev_hash
        {
            return fail(h.first_seq, SegmentError::PrevHash { expected: before, actual: h.prev_hash });
        }
        if !checksum_ok {
            return fail(h.first_seq, SegmentError::Checksum);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AppendRequest, Engine, Limits, Now};
    use crate::event::Actor;
    use crate::key::SessionKey;
    use crate::record::StoredRecord;
    use crate::sample;
    use crate::segment;
    use crate::state::Head;
    use crate::store::{LogStore, MemoryStore};

    const KEY: &str = "agent:main:segments";

    fn log(n: u64) -> Vec<StoredRecord> {
        sample::chat_log(KEY, n)
    }

    /// A segment of `recs[first-1..last]`.
    fn seg(recs: &[StoredRecord], first: u64, last: u64) -> Vec<u8> {
        let prev = if first == 1 { Head::genesis(KEY).hash } else { recs[first as usize - 2].hash };
        segment::encode(KEY, prev, &recs[first as usize - 1..last as usize], 5)
    }

    fn walk(v: &mut Verifier, bytes: &[u8]) -> Result<Vec<Step>, VerifyError> {
        let mut cur = v.open_segment(bytes)?;
        let mut steps = Vec::new();
        while let Some(s) = v.step(&mut cur, |_, _| {})? {
            steps.push(s);
        }
        v.close_segment(cur)?;
        Ok(steps)
    }

    #[test]
    fn consecutive_segments_verify_and_inspect_sees_every_record() {
        let recs = log(10);
        let mut v = Verifier::new(KEY);
        let mut seen = Vec::new();
        for (first, last) in [(1, 4), (5, 10)] {
            let bytes = seg(&recs, first, last);
            let mut cur = v.open_segment(&bytes).unwrap();
            while v.step(&mut cur, |c, f| seen.push((c.header.seq, f.redacted))).unwrap().is_some() {}
            v.close_segment(cur).unwrap();
        }
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
        assert!(seen.iter().all(|s| !s.1));
        let report = v.finish().unwrap();
        assert_eq!(report.head, Head { seq: 10, hash: recs[9].hash });
    }

    #[test]
    fn peeking_shows_the_next_header_without_consuming_it() {
        let recs = log(3);
        let bytes = seg(&recs, 1, 3);
        let mut v = Verifier::new(KEY);
        let mut cur = v.open_segment(&bytes).unwrap();
        assert_eq!(cur.peek_header().map(|h| h.seq), Some(1));
        assert_eq!(v.step(&mut cur, |_, _| {}).unwrap(), Some(Step::Pushed(1)));
        assert_eq!(cur.peek_header().map(|h| h.seq), Some(2));
        while v.step(&mut cur, |_, _| {}).unwrap().is_some() {}
        assert_eq!(cur.peek_header(), None);
        v.close_segment(cur).unwrap();
    }

    #[test]
    fn a_missing_range_is_reported_at_its_first_seq() {
        let recs = log(10);
        let mut v = Verifier::new(KEY);
        walk(&mut v, &seg(&recs, 1, 3)).unwrap();
        let e = walk(&mut v, &seg(&recs, 6, 10)).unwrap_err();
        assert_eq!(e.seq, 4);
        assert_eq!(e.problem, Problem::Record(RecordProblem::Gap { expected: 4, found: 6 }));
    }

    #[test]
    fn an_overlapping_segment_must_agree_with_the_log() {
        let recs = log(10);
        let mut v = Verifier::new(KEY);
        walk(&mut v, &seg(&recs, 1, 6)).unwrap();
        let steps = walk(&mut v, &seg(&recs, 4, 10)).unwrap();
        assert_eq!(steps[..3], [Step::Overlap(4), Step::Overlap(5), Step::Overlap(6)]);
        assert_eq!(steps[3], Step::Pushed(7));
        assert_eq!(v.head().seq, 10);

        // Another history of seqs 1..=10 (different ids and times) does not meet this one.
        let other = {
            let mut engine = Engine::new(SessionKey::parse(KEY).unwrap(), Limits::default());
            let mut store = MemoryStore::new();
            for i in 0..10u64 {
                let now = Now { now_ms: 1_800_000_000_000 + i, entropy: 99 };
                engine
                    .append(&mut store, AppendRequest::one(Actor::Runtime, sample::user("x")), now)
                    .unwrap();
            }
            store.read(1, 10).unwrap()
        };
        let mut v = Verifier::new(KEY);
        walk(&mut v, &seg(&recs, 1, 6)).unwrap();
        let e = walk(&mut v, &seg(&other, 4, 10)).unwrap_err();
        assert_eq!(e.seq, 6);
        assert!(matches!(e.problem, Problem::Record(RecordProblem::BrokenLink { .. })), "{e}");
    }

    #[test]
    fn another_sessions_segment_is_refused() {
        let recs = log(3);
        let bytes = segment::encode("agent:other", Head::genesis("agent:other").hash, &recs, 0);
        let e = walk(&mut Verifier::new(KEY), &bytes).unwrap_err();
        assert_eq!(e.seq, 1);
        assert!(matches!(e.problem, Problem::Segment(SegmentError::WrongSession { .. })), "{e}");
    }

    #[test]
    fn damage_is_reported_at_the_record_it_hits() {
        let recs = log(6);
        let clean = seg(&recs, 1, 6);
        // The body of seq 4 sits in its frame, after its header, hash and flag.
        let frame_start = {
            let mut pos = clean.len() - 32;
            for r in recs[3..].iter().rev() {
                pos -= r.frame_len();
            }
            pos
        };
        let mut bad = clean.clone();
        bad[frame_start + 4 + recs[3].header.len() + 32 + 1 + 4 + 3] ^= 0x20;
        let e = walk(&mut Verifier::new(KEY), &bad).unwrap_err();
        assert_eq!(e.seq, 4);
        assert!(matches!(e.problem, Problem::Record(RecordProblem::BodyDigest { .. })), "{e}");

        // A flipped trailer byte is the segment's own damage, at its first seq.
        let mut bad = clean.clone();
        *bad.last_mut().unwrap() ^= 1;
        let e = walk(&mut Verifier::new(KEY), &bad).unwrap_err();
        assert_eq!((e.seq, e.problem), (1, Problem::Segment(SegmentError::Checksum)));

        // Cut short: the frame that no longer decodes is named.
        let cut = &clean[..clean.len() - 40];
        let e = walk(&mut Verifier::new(KEY), cut).unwrap_err();
        assert_eq!(e.seq, 6);
        assert!(matches!(e.problem, Problem::Segment(SegmentError::Frame { seq: 6, .. })), "{e}");
    }

    #[test]
    fn a_header_that_lies_about_its_neighbour_is_caught() {
        let recs = log(4);
        let mut v = Verifier::new(KEY);
        walk(&mut v, &seg(&recs, 1, 2)).unwrap();
        let bytes = segment::encode(KEY, [7; 32], &recs[2..], 0);
        let e = walk(&mut v, &bytes).unwrap_err();
        assert_eq!(e.seq, 3);
        assert!(matches!(e.problem, Problem::Segment(SegmentError::PrevHash { .. })), "{e}");
    }
}
