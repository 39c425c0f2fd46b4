//! The first thing found wrong, said precisely: at which seq, what, expected versus actual, and
//! in which object. Built from core's `VerifyError`, so every reader reports the same way.

use moltlog_core::chain;
use moltlog_core::record::RecordProblem;
use moltlog_core::segment::SegmentError;
use moltlog_core::verify::{Problem, VerifyError};
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub seq: u64,
    /// A stable snake_case name for machines (`body_digest`, `missing_records`, …).
    pub kind: &'static str,
    /// What is wrong, in words.
    pub message: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// The object (segment, snapshot, blob) it was found in.
    pub object: Option<String>,
}

fn hex(h: &[u8; 32]) -> Option<String> {
    Some(chain::to_hex(h))
}

impl Failure {
    pub fn new(seq: u64, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure { seq, kind, message: message.into(), expected: None, actual: None, object: None }
    }

    pub fn with(mut self, expected: Option<String>, actual: Option<String>) -> Failure {
        self.expected = expected;
        self.actual = actual;
        self
    }

    pub fn from_verify(e: &VerifyError, object: Option<String>) -> Failure {
        let seq = e.seq;
        let mut f = match &e.problem {
            Problem::Record(p) => record(seq, p),
            Problem::Snapshot { detail, .. } => Failure::new(
                seq,
                "snapshot_mismatch",
                format!("the snapshot at seq {seq} does not match the replayed log: {detail}"),
            ),
            Problem::UnauthorizedRedaction => Failure::new(
                seq,
                "unauthorized_redaction",
                "the body is stored redacted, but no redaction event names this seq",
            ),
            Problem::Head { expected, expected_hash, actual, actual_hash } => Failure::new(
                seq,
                "head",
                if actual < expected {
                    format!(
                        "the log ends at seq {actual}, but it reached seq {expected}: records are missing"
                    )
                } else {
                    format!("the log differs from the head it should have (seq {expected})")
                },
            )
            .with(
                Some(format!("seq {expected} hash {}", chain::to_hex(expected_hash))),
                Some(format!("seq {actual} hash {}", chain::to_hex(actual_hash))),
            ),
            Problem::Source(m) => Failure::new(seq, "source", m.clone()),
            Problem::Segment(s) => segment(seq, s),
        };
        f.object = object;
        f
    }

    pub fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "kind": self.kind,
            "message": self.message,
            "expected": self.expected,
            "actual": self.actual,
            "object": self.object,
        })
    }
}

fn record(seq: u64, p: &RecordProblem) -> Failure {
    let msg = p.to_string();
    match p {
        RecordProblem::UndecodableHeader(_) => Failure::new(seq, "undecodable_header", msg),
        RecordProblem::UndecodableBody(_) => Failure::new(seq, "undecodable_body", msg),
        RecordProblem::Gap { expected, found } if found > expected => Failure::new(
            seq,
            "missing_records",
            format!(
                "expected seq {expected} here but found seq {found}: records {expected}..={} are missing \
                 (or out of order)",
                found - 1
            ),
        )
        .with(Some(format!("seq {expected}")), Some(format!("seq {found}"))),
        RecordProblem::Gap { expected, found } => Failure::new(
            seq,
            "out_of_order",
            format!("expected seq {expected} here but found seq {found}: records are out of order"),
        )
        .with(Some(format!("seq {expected}")), Some(format!("seq {found}"))),
        RecordProblem::BodyDigest { expected, actual } => {
            Failure::new(seq, "body_digest", "the body does not hash to the digest its header commits to")
                .with(hex(expected), hex(actual))
        }
        RecordProblem::SkeletonDigest { expected, actual } => Failure::new(
            seq,
            "redacted_body_digest",
            "the redacted body does not hash to the skeleton digest its header commits to",
        )
        .with(hex(expected), hex(actual)),
        RecordProblem::BodyLength { expected, actual } => {
            Failure::new(seq, "body_length", "the body's length differs from its header's")
                .with(Some(format!("{expected} bytes")), Some(format!("{actual} bytes")))
        }
        RecordProblem::KindMismatch { expected, actual } => {
            Failure::new(seq, "kind_mismatch", "the body is of another kind than its header says")
                .with(Some(expected.name().into()), Some(actual.name().into()))
        }
        RecordProblem::SkeletonHasContent => Failure::new(seq, "redacted_body_has_content", msg),
        RecordProblem::NothingToRedact => Failure::new(seq, "redaction_flag_without_content", msg),
        RecordProblem::BrokenLink { stored, computed } => Failure::new(
            seq,
            "broken_link",
            "the chain breaks here: the header does not hash, with its predecessor, to the hash stored \
             for it (the header was changed, or a record before it)",
        )
        .with(hex(computed), hex(stored)),
        RecordProblem::TimeWentBack { ts_ms, prev_ts_ms } => Failure::new(seq, "time_went_back", msg)
            .with(Some(format!("at least {prev_ts_ms}")), Some(ts_ms.to_string())),
    }
}

fn segment(seq: u64, s: &SegmentError) -> Failure {
    let msg = s.to_string();
    match s {
        SegmentError::Decode(_) => Failure::new(seq, "segment_undecodable", msg),
        SegmentError::Frame { .. } => Failure::new(seq, "frame_undecodable", msg),
        SegmentError::Record { problem, .. } => record(seq, problem),
        SegmentError::Count { expected, actual, .. } => Failure::new(seq, "segment_count", msg)
            .with(Some(format!("{expected} records")), Some(format!("{actual} records"))),
        SegmentError::LastHash { expected, actual } => {
            Failure::new(seq, "segment_last_hash", msg).with(hex(expected), hex(actual))
        }
        SegmentError::WrongSession { expected, actual } => Failure::new(
            seq,
            "wrong_session",
            format!("a segment of another session ({actual}) stands in this session's log"),
        )
        .with(Some(expected.clone()), Some(actual.clone())),
        SegmentError::Checksum => Failure::new(seq, "segment_checksum", msg),
        SegmentError::Header(_) => Failure::new(seq, "segment_header", msg),
        SegmentError::PrevHash { expected, actual } => {
            Failure::new(seq, "segment_prev_hash", msg).with(hex(expected), hex(actual))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_reads_as_missing_records_and_a_swap_as_out_of_order() {
        let gap =
            VerifyError { seq: 4, problem: Problem::Record(RecordProblem::Gap { expected: 4, found: 9 }) };
        let f = Failure::from_verify(&gap, Some("x.seg".into()));
        assert_eq!((f.seq, f.kind), (4, "missing_records"));
        assert!(f.message.contains("4..=8"), "{}", f.message);
        let swap =
            VerifyError { seq: 4, problem: Problem::Record(RecordProblem::Gap { expected: 4, found: 3 }) };
        assert_eq!(Failure::from_verify(&swap, None).kind, "out_of_order");
    }
}
