//! Whole-log verification: the chain from genesis, every body against its header, snapshots
//! against the replayed state, and redactions against the redaction events that allow them.
//! Streaming: memory holds the state, never the log.
//!
//! Records come one at a time (`Verifier::push`, from a store) or a segment at a time
//! (`Verifier::open_segment` / `step` / `close_segment`, from an archive; see `segments`), or as
//! segments checked ahead on other threads (`check_segment`, `Verifier::fold_checked`; see
//! `checked`). `ArchiveCheck` checks an archive against the local log (see `archive`).

mod archive;
mod checked;
mod segments;

pub use archive::{ArchiveCheck, ArchiveProblem, BadSegment};
pub use checked::{CheckedSegment, check_segment};
pub use segments::{SegmentCursor, Step};

use crate::chain::{self, Hash};
use crate::event::{EventBody, Lifecycle};
use crate::record::{self, CheckedRecord, FramedRecord, RecordProblem};
use crate::segment::SegmentError;
use crate::snapshot::Snapshot;
use crate::state::{Head, SessionState};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    Record(#[from] RecordProblem),
    #[error("snapshot at seq {snapshot_seq} differs from the replayed state: {detail}")]
    Snapshot { snapshot_seq: u64, detail: String },
    #[error("body is redacted but no redaction event names this seq")]
    UnauthorizedRedaction,
    #[error(
        "the log ends at seq {actual} with hash {}, expected seq {expected} with hash {}",
        chain::to_hex(actual_hash),
        chain::to_hex(expected_hash)
    )]
    Head { expected: u64, expected_hash: Hash, actual: u64, actual_hash: Hash },
    #[error("{0}")]
    Source(String),
    /// An archive segment is damaged or does not continue the log (see `segments`).
    #[error("{0}")]
    Segment(SegmentError),
}

/// The first thing wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {problem}")]
pub struct VerifyError {
    pub seq: u64,
    pub problem: Problem,
}

#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub head: Head,
    pub records: u64,
    /// Seqs whose bodies are redacted (present as skeletons), ascending.
    pub redacted: Vec<u64>,
    /// Seqs a redaction event names whose full body is still present (erasure pending).
    pub not_erased: Vec<u64>,
    pub snapshots_checked: u64,
    pub state: SessionState,
    /// Seqs recovery recorded as lost (`records_lost` events), in log order.
    pub gaps: Vec<LostRange>,
}

/// Seqs a `records_lost` event names, and why they are gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostRange {
    pub first_seq: u64,
    pub last_seq: u64,
    pub reason: String,
}

/// A streaming verification. Cloning it checkpoints the fold: a caller that re-verifies a growing
/// log can continue from the clone instead of starting again from genesis.
#[derive(Clone, Debug)]
pub struct Verifier {
    state: SessionState,
    flagged: Vec<u64>,
    records: u64,
    snapshots_checked: u64,
    gaps: Vec<LostRange>,
}

impl Verifier {
    pub fn new(session_key: &str) -> Verifier {
        Verifier {
            state: SessionState::new(session_key),
            flagged: Vec::new(),
            records: 0,
            snapshots_checked: 0,
            gaps: Vec::new(),
        }
    }

    /// The seq the next record must have.
    pub fn next_seq(&self) -> u64 {
        self.state.head.seq + 1
    }

    pub fn head(&self) -> Head {
        self.state.head
    }

    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Checks the next record and folds it in.
    pub fn push(&mut self, rec: &FramedRecord<'_>) -> Result<(), VerifyError> {
        self.push_inspect(rec, |_| {})
    }

    /// Checks the next record, lets `inspect` see it decoded (before the state takes its body:
    /// readers print it, collect its blob references, compare it), then folds it in.
    pub fn push_inspect(
        &mut self,
        rec: &FramedRecord<'_>,
        inspect: impl FnOnce(&CheckedRecord),
    ) -> Result<(), VerifyError> {
        let seq = self.next_seq();
        let checked = record::check(&self.state.head.hash, seq, self.state.last_ts_ms, rec)
            .map_err(|p| VerifyError { seq, problem: p.into() })?;
        inspect(&checked);
        if checked.header.seq != seq
            && let EventBody::Lifecycle(Lifecycle::RecordsLost { first_seq, last_seq, reason }) =
                &checked.body
        {
            self.gaps.push(LostRange { first_seq: *first_seq, last_seq: *last_seq, reason: reason.clone() });
        }
        if rec.redacted {
            self.flagged.push(checked.header.seq);
        }
        self.state.apply(&checked.header, checked.hash, checked.body);
        self.records += 1;
        Ok(())
    }

    /// Checks a snapshot taken at the current head against the replayed state, byte for byte.
    pub fn check_snapshot(&mut self, snap: &Snapshot) -> Result<(), VerifyError> {
        let seq = snap.header.seq;
        let fail =
            |detail: String| VerifyError { seq, problem: Problem::Snapshot { snapshot_seq: seq, detail } };
        if seq != self.state.head.seq {
            return Err(fail(format!("checked at seq {}", self.state.head.seq)));
        }
        if snap.header.head_hash != self.state.head.hash {
            return Err(fail(format!(
                "its head hash is {}, the log's is {}",
                chain::to_hex(&snap.header.head_hash),
                chain::to_hex(&self.state.head.hash)
            )));
        }
        let replayed = self.state.encode();
        if replayed != snap.state_bytes {
            return Err(fail(format!(
                "state differs (replayed {} bytes, sha256 {}; snapshot {} bytes, sha256 {})",
                replayed.len(),
                chain::to_hex(&chain::sha256(&replayed)),
                snap.state_bytes.len(),
                chain::to_hex(&snap.header.state_sha256)
            )));
        }
        self.snapshots_checked += 1;
        Ok(())
    }

    /// Ends verification: every redacted body must be allowed by a redaction event.
    pub fn finish(self) -> Result<VerifyReport, VerifyError> {
        if let Some(&seq) = self.flagged.iter().find(|s| self.state.redacted.binary_search(s).is_err()) {
            return Err(VerifyError { seq, problem: Problem::UnauthorizedRedaction });
        }
        let not_erased =
            self.state.redacted.iter().copied().filter(|s| self.flagged.binary_search(s).is_err()).collect();
        Ok(VerifyReport {
            head: self.state.head,
            records: self.records,
            redacted: self.flagged,
            not_erased,
            snapshots_checked: self.snapshots_checked,
            state: self.state,
            gaps: self.gaps,
        })
    }
}
