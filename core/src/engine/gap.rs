//! Recording a gap: after a recovery that could not restore every archived seq, the engine seals
//! one `records_lost` event at the seq after the lost range, linked to the head (the record
//! before the range), so the chain verifies across it and new events never reuse a lost seq.

use super::{AppendOutcome, AppendPlan, Engine, Now};
use crate::event::{Actor, EventBody, Lifecycle};
use crate::id::IdGen;
use crate::record::{self, Envelope};
use crate::recovery::Gap;
use crate::store::CommitBatch;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GapError {
    #[error("a gap must start right after the head (seq {head_seq}), not at seq {first_seq}")]
    NotAtHead { head_seq: u64, first_seq: u64 },
    #[error("gap {first_seq}..={last_seq} is empty or has no seq after it")]
    BadRange { first_seq: u64, last_seq: u64 },
}

impl Engine {
    /// Plans the `records_lost` event for `gap`; commit it with `Engine::commit`.
    pub fn plan_gap(&self, gap: &Gap, now: Now) -> Result<AppendPlan, GapError> {
        let head = self.state.head;
        if gap.first_seq != head.seq + 1 {
            return Err(GapError::NotAtHead { head_seq: head.seq, first_seq: gap.first_seq });
        }
        let seq = gap
            .last_seq
            .checked_add(1)
            .filter(|_| gap.last_seq >= gap.first_seq)
            .ok_or(GapError::BadRange { first_seq: gap.first_seq, last_seq: gap.last_seq })?;
        let body = EventBody::Lifecycle(Lifecycle::RecordsLost {
            first_seq: gap.first_seq,
            last_seq: gap.last_seq,
            reason: gap.reason.clone(),
        });
        let ts_ms = now.now_ms.max(self.state.last_ts_ms);
        let env = Envelope {
            seq,
            id: IdGen::after(self.state.last_id).next(ts_ms, now.entropy),
            ts_ms,
            actor: Actor::System,
            causation: None,
            idempotency_key: None,
        };
        let (header, rec) = record::seal(&head.hash, env, &body);
        let outcome = AppendOutcome { first_seq: seq, last_seq: seq, head: rec.hash, duplicate: false };
        let commit = CommitBatch { expected_seq: head.seq, records: vec![rec], ..CommitBatch::default() };
        Ok(AppendPlan { commit, events: vec![(header, body)], blobs: vec![], outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FramedRecord, RecordProblem};
    use crate::segment;
    use crate::state::Head;
    use crate::verify::{LostRange, Problem, Verifier};
    use crate::{Limits, SessionKey, StoredRecord, sample};

    const KEY: &str = "agent:gap";

    fn gap(first_seq: u64, last_seq: u64) -> Gap {
        Gap { first_seq, last_seq, reason: "seg 4-9 damaged".into() }
    }

    /// Records 1..=3 of a log, and an engine holding them.
    fn engine_at_3() -> (Engine, Vec<StoredRecord>) {
        let recs = sample::chat_log(KEY, 3);
        let mut v = Verifier::new(KEY);
        for r in &recs {
            v.push(&FramedRecord::from(r)).unwrap();
        }
        let state = v.finish().unwrap().state;
        (Engine::from_state(SessionKey::parse(KEY).unwrap(), state, Limits::default()), recs)
    }

    fn now() -> Now {
        Now { now_ms: 1_900_000_000_000, entropy: 5 }
    }

    #[test]
    fn the_gap_event_takes_the_seq_after_the_lost_range_and_verifies_across_it() {
        let (engine, recs) = engine_at_3();
        let plan = engine.plan_gap(&gap(4, 9), now()).unwrap();
        assert_eq!(plan.outcome.first_seq, 10, "lost seqs 4..=9 are never handed out again");
        let rec = &plan.commit.records[0];
        assert_eq!(rec.seq, 10);

        let mut v = Verifier::new(KEY);
        for r in recs.iter().chain([rec]) {
            v.push(&FramedRecord::from(r)).unwrap();
        }
        let report = v.finish().unwrap();
        assert_eq!(report.head, Head { seq: 10, hash: rec.hash });
        assert_eq!(report.gaps, [LostRange { first_seq: 4, last_seq: 9, reason: "seg 4-9 damaged".into() }]);

        // Folded into the engine's state, the head jumps past the gap.
        let mut state = engine.state().clone();
        let (header, body) = plan.events.into_iter().next().unwrap();
        state.apply(&header, rec.hash, body);
        assert_eq!(state.head.seq, 10);
    }

    #[test]
    fn a_hole_without_its_gap_event_is_still_a_gap_problem() {
        let recs = sample::chat_log(KEY, 6);
        let mut v = Verifier::new(KEY);
        v.push(&FramedRecord::from(&recs[0])).unwrap();
        // A record at seq 3 links from seq 1 only if it is the gap event naming seq 2.
        let e = v.push(&FramedRecord::from(&recs[2])).unwrap_err();
        assert_eq!(e.problem, Problem::Record(RecordProblem::Gap { expected: 2, found: 3 }));

        // A gap event in another place than the one it was sealed for is refused too.
        let (engine, recs) = engine_at_3();
        let plan = engine.plan_gap(&gap(4, 9), now()).unwrap();
        let mut v = Verifier::new(KEY);
        for r in &recs[..2] {
            v.push(&FramedRecord::from(r)).unwrap();
        }
        let e = v.push(&FramedRecord::from(&plan.commit.records[0])).unwrap_err();
        assert!(matches!(e.problem, Problem::Record(RecordProblem::BrokenLink { .. })), "{e}");
    }

    #[test]
    fn segments_verify_across_a_gap() {
        let (engine, recs) = engine_at_3();
        let plan = engine.plan_gap(&gap(4, 9), now()).unwrap();
        let rec = plan.commit.records[0].clone();
        let first = segment::encode(KEY, crate::chain::genesis(KEY), &recs, 1);
        let after = segment::encode(KEY, recs[2].hash, std::slice::from_ref(&rec), 2);
        segment::verify(&after, KEY, |_, _| {}).expect("the gap segment verifies standalone");
        let mut v = Verifier::new(KEY);
        for bytes in [&first, &after] {
            let mut cur = v.open_segment(bytes).unwrap();
            while v.step(&mut cur, |_, _| {}).unwrap().is_some() {}
            v.close_segment(cur).unwrap();
        }
        let report = v.finish().unwrap();
        assert_eq!(report.head.seq, 10);
        assert_eq!(report.gaps.len(), 1);
    }

    #[test]
    fn a_gap_must_start_at_the_head() {
        let (engine, _) = engine_at_3();
        assert_eq!(
            engine.plan_gap(&gap(5, 9), now()).unwrap_err(),
            GapError::NotAtHead { head_seq: 3, first_seq: 5 }
        );
        assert!(matches!(engine.plan_gap(&gap(4, u64::MAX), now()), Err(GapError::BadRange { .. })));
    }
}
