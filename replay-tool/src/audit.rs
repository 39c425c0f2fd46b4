//! A whole audit of one session: the verifying walk to the end, then what only the end can tell
//! (every redacted body authorised, the head the source claimed reached, snapshots past the end),
//! then the blobs the log references. `verify` prints it; `restore` refuses to run without a
//! clean one.

use std::collections::BTreeMap;

use indicatif::ProgressBar;
use moltlog_core::chain::{self, Hash};
use moltlog_core::state::{Head, SessionState};
use moltlog_core::verify::{LostRange, Problem, VerifyError};
use serde_json::{Value, json};

use crate::archive::{ClaimedHead, SessionArchive};
use crate::failure::Failure;
use crate::walk::{self, Stop, Visit, WalkError};

/// What an audit found.
#[derive(Clone, Debug)]
pub struct Audit {
    pub session_key: String,
    pub source: String,
    /// The head verified (the end of the log, or the record before the failure).
    pub head: Head,
    /// Whether the log was checked against a head stated elsewhere (a bundle's manifest,
    /// `--expect-head`). An R2 archive states none: it ends where archiving got to.
    pub head_checked: bool,
    pub records: u64,
    pub segments: u64,
    pub snapshots_checked: Vec<u64>,
    /// Snapshots that predate the redaction of content they hold (due for deletion).
    pub snapshots_stale: Vec<u64>,
    /// Intact snapshots in a state layout this build cannot decode (another moltlog version).
    pub snapshots_unreadable: Vec<u64>,
    /// Snapshots past the end of an archive that does not claim a head (R2 snapshots are taken
    /// of the live log, which may be ahead of the archive): not checkable, not wrong.
    pub snapshots_unchecked: Vec<u64>,
    pub blobs_checked: u64,
    /// Referenced blobs this source does not have (not pulled, or not requested).
    pub blobs_missing: Vec<String>,
    pub redacted: Vec<u64>,
    pub not_erased: Vec<u64>,
    /// Seqs a recovery recorded as lost (`records_lost` events): reported, not tampering.
    pub gaps: Vec<LostRange>,
    pub superseded: Vec<String>,
    pub unrecognised: Vec<String>,
    pub failure: Option<Failure>,
    /// The replayed state (on success).
    pub state: Option<SessionState>,
}

impl Audit {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "session_key": self.session_key,
            "source": self.source,
            "head": {"seq": self.head.seq, "hash": chain::to_hex(&self.head.hash)},
            "head_checked": self.head_checked,
            "records": self.records,
            "segments": self.segments,
            "snapshots": {
                "checked": self.snapshots_checked,
                "stale": self.snapshots_stale,
                "unreadable": self.snapshots_unreadable,
                "unchecked": self.snapshots_unchecked,
            },
            "blobs": {"checked": self.blobs_checked, "missing": self.blobs_missing},
            "redacted": self.redacted,
            "not_erased": self.not_erased,
            "gaps": self.gaps.iter().map(|g| json!({"first_seq": g.first_seq, "last_seq": g.last_seq, "reason": g.reason})).collect::<Vec<_>>(),
            "superseded_segments": self.superseded,
            "unrecognised_objects": self.unrecognised,
            "failure": self.failure.as_ref().map(Failure::to_json),
        })
    }
}

/// The log does not reach the head it should: reported at the first seq that differs (a missing
/// record after a truncation, the first extra one, or the head itself when only the hash differs).
fn head_failure(claimed: ClaimedHead, head: Head) -> Failure {
    let (expected, actual) = (claimed.seq, head.seq);
    let seq = if actual == expected { actual } else { expected.min(actual) + 1 };
    match claimed.hash {
        Some(expected_hash) => {
            let problem = Problem::Head { expected, expected_hash, actual, actual_hash: head.hash };
            Failure::from_verify(&VerifyError { seq, problem }, None)
        }
        None => Failure::new(
            seq,
            "head",
            format!("the log ends at seq {actual}, but it should end at seq {expected}"),
        )
        .with(Some(format!("seq {expected}")), Some(format!("seq {actual}"))),
    }
}

/// A blob the log references: its length and the first seq referencing it.
struct BlobUse {
    len: u64,
    seq: u64,
}

/// Audits the session. `Err` only when the source could not be read (exit status 2); anything
/// wrong with the data is in `Audit::failure`.
pub fn audit(
    archive: &SessionArchive,
    check_blobs: bool,
    progress: &ProgressBar,
) -> Result<Audit, WalkError> {
    audit_with(archive, check_blobs, progress, &mut |_, _| Ok(()))
}

/// `audit`, showing every record to `also` too (a restore keeps the transcript's events).
pub fn audit_with(
    archive: &SessionArchive,
    check_blobs: bool,
    progress: &ProgressBar,
    also: &mut Visit<'_>,
) -> Result<Audit, WalkError> {
    let mut blobs: BTreeMap<Hash, BlobUse> = BTreeMap::new();
    let mut collect = |c: &moltlog_core::record::CheckedRecord, redacted: bool| {
        for b in c.body.blob_refs() {
            blobs.entry(b.sha256).or_insert(BlobUse { len: b.len, seq: c.header.seq });
        }
        also(c, redacted)
    };
    let mut a = Audit {
        session_key: archive.session_key().to_owned(),
        source: archive.describe(),
        head: Head::genesis(archive.session_key()),
        head_checked: archive.claimed_head.is_some(),
        records: 0,
        segments: archive.segments.len() as u64,
        snapshots_checked: Vec::new(),
        snapshots_stale: Vec::new(),
        snapshots_unreadable: Vec::new(),
        snapshots_unchecked: Vec::new(),
        blobs_checked: 0,
        blobs_missing: Vec::new(),
        redacted: Vec::new(),
        not_erased: Vec::new(),
        gaps: Vec::new(),
        superseded: archive.superseded.iter().map(|s| s.key.clone()).collect(),
        unrecognised: archive.unrecognised.clone(),
        failure: None,
        state: None,
    };
    let walked = match walk::walk(archive, Stop::End, progress, &mut collect) {
        Ok(w) => w,
        Err(WalkError::Tampered { error, object }) => {
            a.head.seq = error.seq.saturating_sub(1);
            a.records = a.head.seq;
            a.failure = Some(Failure::from_verify(&error, object));
            return Ok(a);
        }
        Err(e) => return Err(e),
    };
    a.snapshots_checked = walked.snapshots_checked;
    a.snapshots_stale = walked.snapshots_stale;
    a.snapshots_unreadable = walked.snapshots_unreadable;
    // The head first: a log cut short may have lost the redaction events that account for
    // bodies stored redacted before the cut, and the cut is the real finding.
    let reached = walked.verifier.head();
    if let Some(claimed) = archive.claimed_head
        && !claimed.matches(&reached)
    {
        a.head = reached;
        a.records = reached.seq;
        a.failure = Some(head_failure(claimed, reached));
        return Ok(a);
    }
    let report = match walked.verifier.finish() {
        Ok(r) => r,
        Err(e) => {
            a.head = reached;
            a.records = reached.seq;
            a.failure = Some(Failure::from_verify(&e, None));
            return Ok(a);
        }
    };
    a.head = report.head;
    a.records = report.records;
    a.redacted = report.redacted;
    a.not_erased = report.not_erased;
    a.gaps = report.gaps;
    let beyond = walk::snapshots_beyond(archive, report.head.seq);
    if let (Some(_), Some(&seq)) = (archive.claimed_head, beyond.first()) {
        let key = archive.snapshots[&seq].key.clone();
        a.failure = Some(
            Failure::new(
                seq,
                "snapshot_beyond_log",
                format!("a snapshot of seq {seq} stands beyond the end of the log (seq {})", report.head.seq),
            )
            .with(None, None),
        );
        a.failure.as_mut().expect("set").object = Some(key);
        return Ok(a);
    }
    a.snapshots_unchecked = beyond;
    if check_blobs {
        for (sha, usage) in &blobs {
            let hex = chain::to_hex(sha);
            match archive.read_blob(sha)? {
                None => a.blobs_missing.push(hex),
                Some(bytes) => {
                    let actual = chain::sha256(&bytes);
                    if actual != *sha || bytes.len() as u64 != usage.len {
                        let mut f = Failure::new(
                            usage.seq,
                            "blob_digest",
                            format!("blob {hex}, referenced at seq {}, does not hold its content", usage.seq),
                        )
                        .with(
                            Some(format!("sha256 {hex}, {} bytes", usage.len)),
                            Some(format!("sha256 {}, {} bytes", chain::to_hex(&actual), bytes.len())),
                        );
                        f.object = Some(crate::layout::blob_key(sha));
                        a.failure = Some(f);
                        return Ok(a);
                    }
                    a.blobs_checked += 1;
                }
            }
        }
    }
    a.state = Some(report.state);
    Ok(a)
}
