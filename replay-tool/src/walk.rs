//! The verifying walk: reads a session's segments in seq order and drives moltlog-core's
//! `Verifier` over them, checking every snapshot when the log reaches its seq. Every command that
//! reads a log (verify, log, state, export, restore, diff) goes through here, so nothing is shown
//! that was not checked first.
//!
//! Streaming and parallel: checker threads (one per core, at most four) each fetch every Nth
//! segment and check it on its own (`verify::check_segment`: decoding, both digests per record,
//! the trailer), a few segments ahead; this thread folds the checked records in seq order
//! (`Verifier::fold_checked`), which is cheap. A segment that does not check out, or does not
//! continue the log where it ends, is walked record by record instead (`open_segment`/`step`/
//! `close_segment`), which names the first problem at its seq. Memory holds the state and a few
//! segments, never the log.

use std::sync::mpsc;

use indicatif::ProgressBar;
use moltlog_core::record::CheckedRecord;
use moltlog_core::segment;
use moltlog_core::snapshot::{self, SnapshotError};
use moltlog_core::verify::{CheckedSegment, Problem, Step, Verifier, VerifyError, check_segment};

use crate::archive::{SegmentRef, SessionArchive};
use crate::objects::SourceError;

/// Where a walk ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// At the end of the log.
    End,
    /// After the record at this seq (0: before the first record).
    AfterSeq(u64),
    /// After the last record appended at or before this time (ms since the epoch).
    AtTime(u64),
}

/// Sees each new record once it is checked, before it is folded in, with whether its body is
/// stored redacted.
pub type Visit<'a> = dyn FnMut(&CheckedRecord, bool) -> std::io::Result<()> + 'a;

/// A walk that ended without finding anything wrong.
pub struct Walked {
    pub verifier: Verifier,
    /// Whether it stopped before the end of the log (at `Stop`).
    pub stopped_early: bool,
    pub segments_read: u64,
    /// Segments whose whole range other segments already held (skipped).
    pub covered: Vec<String>,
    /// Snapshots checked against the replayed state, by seq.
    pub snapshots_checked: Vec<u64>,
    /// Snapshots taken after a body was erased but before the redaction that erased it: they
    /// hold content the log no longer has, and the Worker deletes them (R2 may still show one
    /// for a moment). Not comparable, so not compared.
    pub snapshots_stale: Vec<u64>,
    /// Intact snapshots whose state this build cannot decode (written by another version).
    pub snapshots_unreadable: Vec<u64>,
    /// Seqs stored redacted whose redaction event the walk has not reached yet.
    pending_redactions: std::collections::BTreeSet<u64>,
}

/// Why a walk ended early.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The data is wrong: tampered, damaged, incomplete.
    #[error("{error}")]
    Tampered {
        error: VerifyError,
        /// The object the problem was found in.
        object: Option<String>,
    },
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The visitor could not write its output.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
}

fn tampered(error: VerifyError, object: &str) -> WalkError {
    WalkError::Tampered { error, object: Some(object.to_owned()) }
}

/// What a checker thread hands over for one segment.
struct Fetched {
    bytes: Vec<u8>,
    /// The segment, checked on its own, when it checks out.
    checked: Option<CheckedSegment>,
    /// Whether the trailer matches (for the record-by-record path).
    checksum_ok: bool,
}

/// Segments a checker may run ahead of the fold, per checker.
const AHEAD: usize = 2;

fn checkers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)
}

/// Fetches and checks every `step`th segment from `first`, sending each result in order.
fn check_every(
    archive: &SessionArchive,
    first: usize,
    step: usize,
    tx: mpsc::SyncSender<Result<Fetched, SourceError>>,
    spare: mpsc::Receiver<Vec<u8>>,
) {
    let source = &*archive.source;
    for seg in archive.segments.iter().skip(first).step_by(step) {
        let mut bytes = spare.try_recv().unwrap_or_default();
        let fetched = match source.read_into(&seg.key, &mut bytes) {
            Ok(true) => {
                let checked = check_segment(&bytes, archive.session_key());
                let checksum_ok = checked.is_some() || segment::checksum_ok(&bytes);
                Ok(Fetched { bytes, checked, checksum_ok })
            }
            Ok(false) => Err(SourceError::Invalid(format!(
                "{} was listed but could not be read back from {}",
                seg.key,
                source.describe()
            ))),
            Err(e) => Err(e),
        };
        let failed = fetched.is_err();
        // A closed channel: the walk stopped early; nothing more to do.
        if tx.send(fetched).is_err() || failed {
            return;
        }
    }
}

/// Walks the archive's log from genesis to `stop`, showing every new record to `visit`.
pub fn walk(
    archive: &SessionArchive,
    stop: Stop,
    progress: &ProgressBar,
    visit: &mut Visit<'_>,
) -> Result<Walked, WalkError> {
    let mut walked = Walked {
        verifier: Verifier::new(archive.session_key()),
        stopped_early: false,
        segments_read: 0,
        covered: Vec::new(),
        snapshots_checked: Vec::new(),
        snapshots_stale: Vec::new(),
        snapshots_unreadable: Vec::new(),
        pending_redactions: Default::default(),
    };
    if stop == Stop::AfterSeq(0) {
        walked.stopped_early = !archive.segments.is_empty();
        return Ok(walked);
    }
    let n = checkers().min(archive.segments.len().max(1));
    std::thread::scope(|scope| {
        let mut lanes = Vec::with_capacity(n);
        for first in 0..n {
            let (tx, rx) = mpsc::sync_channel::<Result<Fetched, SourceError>>(AHEAD);
            let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
            std::thread::Builder::new()
                .name(format!("segment-checker-{first}"))
                .spawn_scoped(scope, move || check_every(archive, first, n, tx, spare_rx))
                .map_err(|e| SourceError::Invalid(format!("starting a segment checker: {e}")))?;
            lanes.push((rx, spare_tx));
        }
        for (i, seg) in archive.segments.iter().enumerate() {
            let (rx, spare) = &lanes[i % n];
            let mut fetched = rx.recv().expect("each checker sends one result per segment")?;
            walked.segments_read += 1;
            let outcome = walk_segment(archive, &mut walked, seg, &mut fetched, stop, progress, visit);
            let _ = spare.send(fetched.bytes);
            if outcome? {
                walked.stopped_early = true;
                break;
            }
        }
        Ok(walked)
    })
}

/// Verifies one segment. Returns whether the walk reached `stop` inside it.
fn walk_segment(
    archive: &SessionArchive,
    walked: &mut Walked,
    seg: &SegmentRef,
    fetched: &mut Fetched,
    stop: Stop,
    progress: &ProgressBar,
    visit: &mut Visit<'_>,
) -> Result<bool, WalkError> {
    if seg.last <= walked.verifier.head().seq {
        walked.covered.push(seg.key.clone());
        return Ok(false);
    }
    let before = walked.verifier.head().seq;
    // Progress is counted per segment: a clock read per record would cost more than the record.
    let reached_stop = match fetched.checked.take().filter(|c| walked.verifier.continues(c)) {
        Some(mut checked) => {
            let h = checked.header();
            named_for(seg, h.first_seq, h.last_seq)?;
            fold(archive, walked, &mut checked, stop, visit)
        }
        None => step_through(archive, walked, seg, fetched, stop, visit),
    };
    progress.inc(walked.verifier.head().seq - before);
    reached_stop
}

/// A segment must hold the seqs its name says (a renamed file could stand in the wrong place).
fn named_for(seg: &SegmentRef, first: u64, last: u64) -> Result<(), WalkError> {
    if (first, last) == (seg.first, seg.last) {
        return Ok(());
    }
    let problem = Problem::Source(format!(
        "{} is named for seqs {}..={} but holds seqs {first}..={last}",
        seg.key, seg.first, seg.last
    ));
    Err(tampered(VerifyError { seq: seg.first.min(first), problem }, &seg.key))
}

/// Folds a segment checked ahead. Returns whether the walk reached `stop`.
fn fold(
    archive: &SessionArchive,
    walked: &mut Walked,
    checked: &mut CheckedSegment,
    stop: Stop,
    visit: &mut Visit<'_>,
) -> Result<bool, WalkError> {
    let mut output = Ok(());
    loop {
        if let Stop::AtTime(t) = stop
            && checked.peek_header().is_some_and(|h| h.ts_ms > t)
        {
            return Ok(true);
        }
        let mut was_redacted = false;
        let folded = walked.verifier.fold_checked(checked, |c, redacted| {
            was_redacted = redacted;
            output = visit(c, redacted);
        });
        let Some(seq) = folded else { return Ok(false) };
        std::mem::replace(&mut output, Ok(())).map_err(WalkError::Output)?;
        pushed(archive, walked, seq, was_redacted)?;
        if stop == Stop::AfterSeq(seq) {
            return Ok(true);
        }
    }
}

/// After record `seq` was folded in: tracks redactions, checks the snapshot taken there.
fn pushed(archive: &SessionArchive, walked: &mut Walked, seq: u64, redacted: bool) -> Result<(), WalkError> {
    if redacted {
        walked.pending_redactions.insert(seq);
    }
    if !walked.pending_redactions.is_empty() {
        let authorised = &walked.verifier.state().redacted;
        walked.pending_redactions.retain(|s| authorised.binary_search(s).is_err());
    }
    if let Some(info) = archive.snapshots.get(&seq) {
        if !walked.pending_redactions.is_empty() {
            walked.snapshots_stale.push(seq);
        } else if check_snapshot(archive, &mut walked.verifier, seq, &info.key)? {
            walked.snapshots_checked.push(seq);
        } else {
            walked.snapshots_unreadable.push(seq);
        }
    }
    Ok(())
}

/// Walks a segment record by record, so that whatever is wrong is found at its seq.
fn step_through(
    archive: &SessionArchive,
    walked: &mut Walked,
    seg: &SegmentRef,
    fetched: &Fetched,
    stop: Stop,
    visit: &mut Visit<'_>,
) -> Result<bool, WalkError> {
    let mut cur = walked.verifier.open_segment(&fetched.bytes).map_err(|e| tampered(e, &seg.key))?;
    let (first, last) = (cur.header().first_seq, cur.header().last_seq);
    named_for(seg, first, last)?;
    if frames(archive, walked, seg, &mut cur, stop, visit)? {
        return Ok(true);
    }
    walked.verifier.close_segment_with(cur, fetched.checksum_ok).map_err(|e| tampered(e, &seg.key))?;
    Ok(false)
}

/// Steps through a segment's frames. Returns whether the walk reached `stop`.
fn frames(
    archive: &SessionArchive,
    walked: &mut Walked,
    seg: &SegmentRef,
    cur: &mut moltlog_core::verify::SegmentCursor<'_>,
    stop: Stop,
    visit: &mut Visit<'_>,
) -> Result<bool, WalkError> {
    let mut output = Ok(());
    loop {
        if let Stop::AtTime(t) = stop
            && cur.peek_header().is_some_and(|h| h.ts_ms > t)
        {
            return Ok(true);
        }
        let mut was_redacted = false;
        let step = walked
            .verifier
            .step(cur, |c, f| {
                was_redacted = f.redacted;
                if output.is_ok() {
                    output = visit(c, f.redacted);
                }
            })
            .map_err(|e| tampered(e, &seg.key))?;
        match step {
            None => return Ok(false),
            Some(Step::Overlap(_)) => {}
            Some(Step::Pushed(seq)) => {
                std::mem::replace(&mut output, Ok(())).map_err(WalkError::Output)?;
                pushed(archive, walked, seq, was_redacted)?;
                if stop == Stop::AfterSeq(seq) {
                    return Ok(true);
                }
            }
        }
    }
}

/// Checks the snapshot named for `seq` against the state just replayed to `seq`. `Ok(false)`
/// when the snapshot is intact (its digests hold) but its state does not decode with this build:
/// written by another version of moltlog. Snapshots are caches, so that is not a finding about
/// the log; anything else that does not match is.
fn check_snapshot(
    archive: &SessionArchive,
    v: &mut Verifier,
    seq: u64,
    key: &str,
) -> Result<bool, WalkError> {
    let bytes = archive.source.read(key)?.ok_or_else(|| {
        SourceError::Invalid(format!(
            "{key} was listed but could not be read back from {}",
            archive.describe()
        ))
    })?;
    let fail = |detail: String| {
        tampered(VerifyError { seq, problem: Problem::Snapshot { snapshot_seq: seq, detail } }, key)
    };
    let snap = match snapshot::decode(&bytes, archive.session_key()) {
        Ok(snap) => snap,
        // The trailing checksum is checked first, so a decode error with a readable header of
        // this session means the writer's bytes, in a layout this build does not know.
        Err(SnapshotError::Decode(_))
            if snapshot::decode_header(&bytes).is_ok_and(|h| h.session_key == archive.session_key()) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    if snap.header.seq != seq {
        return Err(fail(format!(
            "the file is named for seq {seq} but the snapshot is of seq {}",
            snap.header.seq
        )));
    }
    v.check_snapshot(&snap).map_err(|e| tampered(e, key))?;
    Ok(true)
}

/// Snapshots the walk did not reach (beyond its end), by seq.
pub fn snapshots_beyond(archive: &SessionArchive, head_seq: u64) -> Vec<u64> {
    archive.snapshots.range(head_seq + 1..).map(|(s, _)| *s).collect()
}
