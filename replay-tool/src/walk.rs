//! The verifying walk: reads a session's segments in seq order and drives moltlog-core's
//! `Verifier` over them, checking every snapshot when the log reaches its seq. Every command that
//! reads a log (verify, log, state, export, restore, diff) goes through here, so nothing is shown
//! that was not checked first.
//!
//! Streaming: one segment is verified while a reader thread fetches the next one and hashes its
//! trailer; buffers are reused, so memory holds the state and two segments, never the log.

use std::sync::mpsc;

use indicatif::ProgressBar;
use moltlog_core::record::{CheckedRecord, FramedRecord};
use moltlog_core::segment;
use moltlog_core::snapshot;
use moltlog_core::verify::{Problem, Step, Verifier, VerifyError};

use crate::archive::SessionArchive;
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

/// A fetched segment: its bytes and whether its trailing checksum holds.
struct Fetched {
    bytes: Vec<u8>,
    checksum_ok: bool,
}

/// Walks the archive's log from genesis to `stop`, showing every new record to `visit` after it
/// was checked and before it is folded in.
pub fn walk(
    archive: &SessionArchive,
    stop: Stop,
    progress: &ProgressBar,
    visit: &mut dyn FnMut(&CheckedRecord, &FramedRecord<'_>) -> std::io::Result<()>,
) -> Result<Walked, WalkError> {
    let mut walked = Walked {
        verifier: Verifier::new(archive.session_key()),
        stopped_early: false,
        segments_read: 0,
        covered: Vec::new(),
        snapshots_checked: Vec::new(),
    };
    if stop == Stop::AfterSeq(0) {
        walked.stopped_early = !archive.segments.is_empty();
        return Ok(walked);
    }
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Result<Fetched, SourceError>>(2);
        let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
        let segments = &archive.segments;
        let source = &*archive.source;
        let reader = std::thread::Builder::new().name("segment-reader".into());
        let spawned = reader.spawn_scoped(scope, move || {
            for seg in segments {
                let mut bytes = spare_rx.try_recv().unwrap_or_default();
                let fetched = match source.read_into(&seg.key, &mut bytes) {
                    Ok(true) => {
                        let checksum_ok = segment::checksum_ok(&bytes);
                        Ok(Fetched { bytes, checksum_ok })
                    }
                    Ok(false) => Err(SourceError::Invalid(format!(
                        "{} was listed but could not be read back from {}",
                        seg.key,
                        source.describe()
                    ))),
                    Err(e) => Err(e),
                };
                let failed = fetched.is_err();
                if tx.send(fetched).is_err() || failed {
                    return;
                }
            }
        });
        spawned.map_err(|e| SourceError::Invalid(format!("starting the segment reader: {e}")))?;
        for seg in &archive.segments {
            let fetched = rx.recv().expect("the reader sends one result per segment")?;
            walked.segments_read += 1;
            let outcome = walk_segment(archive, &mut walked, seg, &fetched, stop, progress, visit);
            let _ = spare_tx.send(fetched.bytes);
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
    seg: &crate::archive::SegmentRef,
    fetched: &Fetched,
    stop: Stop,
    progress: &ProgressBar,
    visit: &mut dyn FnMut(&CheckedRecord, &FramedRecord<'_>) -> std::io::Result<()>,
) -> Result<bool, WalkError> {
    let v = &mut walked.verifier;
    if seg.last <= v.head().seq {
        walked.covered.push(seg.key.clone());
        return Ok(false);
    }
    let mut cur = v.open_segment(&fetched.bytes).map_err(|e| tampered(e, &seg.key))?;
    let (first, last) = (cur.header().first_seq, cur.header().last_seq);
    if (first, last) != (seg.first, seg.last) {
        let problem = Problem::Source(format!(
            "{} is named for seqs {}..={} but holds seqs {first}..={last}",
            seg.key, seg.first, seg.last
        ));
        return Err(tampered(VerifyError { seq: seg.first.min(first), problem }, &seg.key));
    }
    // Progress is counted per segment: a clock read per record would cost more than the record.
    let before = v.head().seq;
    let reached_stop = frames(archive, walked, seg, &mut cur, stop, visit);
    progress.inc(walked.verifier.head().seq - before);
    if reached_stop? {
        return Ok(true);
    }
    walked.verifier.close_segment_with(cur, fetched.checksum_ok).map_err(|e| tampered(e, &seg.key))?;
    Ok(false)
}

/// Steps through a segment's frames. Returns whether the walk reached `stop`.
fn frames(
    archive: &SessionArchive,
    walked: &mut Walked,
    seg: &crate::archive::SegmentRef,
    cur: &mut moltlog_core::verify::SegmentCursor<'_>,
    stop: Stop,
    visit: &mut dyn FnMut(&CheckedRecord, &FramedRecord<'_>) -> std::io::Result<()>,
) -> Result<bool, WalkError> {
    let v = &mut walked.verifier;
    let mut output = Ok(());
    loop {
        if let Stop::AtTime(t) = stop
            && cur.peek_header().is_some_and(|h| h.ts_ms > t)
        {
            return Ok(true);
        }
        let step = v
            .step(cur, |c, f| {
                if output.is_ok() {
                    output = visit(c, f);
                }
            })
            .map_err(|e| tampered(e, &seg.key))?;
        match step {
            None => return Ok(false),
            Some(Step::Overlap(_)) => {}
            Some(Step::Pushed(seq)) => {
                std::mem::replace(&mut output, Ok(())).map_err(WalkError::Output)?;
                if let Some(info) = archive.snapshots.get(&seq) {
                    check_snapshot(archive, v, seq, &info.key)?;
                    walked.snapshots_checked.push(seq);
                }
                if stop == Stop::AfterSeq(seq) {
                    return Ok(true);
                }
            }
        }
    }
}

/// Checks the snapshot named for `seq` against the state just replayed to `seq`.
fn check_snapshot(archive: &SessionArchive, v: &mut Verifier, seq: u64, key: &str) -> Result<(), WalkError> {
    let bytes = archive.source.read(key)?.ok_or_else(|| {
        SourceError::Invalid(format!(
            "{key} was listed but could not be read back from {}",
            archive.describe()
        ))
    })?;
    let fail = |detail: String| {
        tampered(VerifyError { seq, problem: Problem::Snapshot { snapshot_seq: seq, detail } }, key)
    };
    let snap = snapshot::decode(&bytes, archive.session_key()).map_err(|e| fail(e.to_string()))?;
    if snap.header.seq != seq {
        return Err(fail(format!(
            "the file is named for seq {seq} but the snapshot is of seq {}",
            snap.header.seq
        )));
    }
    v.check_snapshot(&snap).map_err(|e| tampered(e, key))
}

/// Snapshots the walk did not reach (beyond its end), by seq.
pub fn snapshots_beyond(archive: &SessionArchive, head_seq: u64) -> Vec<u64> {
    archive.snapshots.range(head_seq + 1..).map(|(s, _)| *s).collect()
}
