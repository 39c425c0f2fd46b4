//! Rebuilding an engine from its store: the newest local snapshot that checks out, then the tail
//! after it, every record verified on the way.

use super::{Engine, Limits};
use crate::key::SessionKey;
use crate::record::{self, FramedRecord, RecordProblem};
use crate::snapshot;
use crate::state::SessionState;
use crate::store::{LogStore, read_one};

/// Records read per store call while replaying.
const PAGE: u32 = 512;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// The snapshot the state started from.
    pub snapshot_seq: Option<u64>,
    /// Records replayed on top of it.
    pub replayed: u64,
    /// Why the newest snapshot was not used, if it was not.
    pub snapshot_rejected: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError<E: std::error::Error + 'static> {
    #[error("log storage failed: {0}")]
    Store(E),
    #[error("stored record {seq} fails verification: {problem}")]
    Corrupt { seq: u64, problem: RecordProblem },
}

impl Engine {
    /// Rebuilds the state from `store`.
    pub fn rebuild<S: LogStore>(
        key: SessionKey,
        store: &S,
        limits: Limits,
    ) -> Result<(Engine, RebuildReport), RebuildError<S::Error>> {
        let mut report = RebuildReport::default();
        let state = match usable_snapshot(&key, store).map_err(RebuildError::Store)? {
            Ok(state) => {
                report.snapshot_seq = Some(state.head.seq);
                state
            }
            Err(why) => {
                report.snapshot_rejected = why;
                SessionState::new(key.as_str())
            }
        };
        let mut engine = Engine::from_state(key, state, limits);
        report.replayed = engine.catch_up(store)?;
        Ok((engine, report))
    }

    /// Replays records after the current head (written by another instance, or restored).
    pub fn catch_up<S: LogStore>(&mut self, store: &S) -> Result<u64, RebuildError<S::Error>> {
        let mut replayed = 0;
        loop {
            let from = self.state.head.seq + 1;
            let page = store.read(from, PAGE).map_err(RebuildError::Store)?;
            if page.is_empty() {
                return Ok(replayed);
            }
            for rec in page {
                let head = self.state.head;
                let checked =
                    record::check(&head.hash, head.seq + 1, self.state.last_ts_ms, &FramedRecord::from(&rec))
                        .map_err(|problem| RebuildError::Corrupt { seq: head.seq + 1, problem })?;
                self.state.apply(&checked.header, checked.hash, checked.body);
                replayed += 1;
            }
        }
    }
}

/// The newest stored snapshot if it decodes, belongs to this session and matches the stored
/// record at its seq. `Ok(Err(reason))` when there is none usable (`None`: there was none).
fn usable_snapshot<S: LogStore>(
    key: &SessionKey,
    store: &S,
) -> Result<Result<SessionState, Option<String>>, S::Error> {
    let Some((seq, bytes)) = store.latest_snapshot()? else {
        return Ok(Err(None));
    };
    let snap = match snapshot::decode(&bytes, key.as_str()) {
        Ok(s) => s,
        Err(e) => return Ok(Err(Some(format!("snapshot at seq {seq}: {e}")))),
    };
    if snap.header.seq != seq {
        return Ok(Err(Some(format!("snapshot stored as seq {seq} says seq {}", snap.header.seq))));
    }
    if seq == 0 {
        return Ok(Ok(snap.state));
    }
    match read_one(store, seq)? {
        Some(rec) if rec.hash == snap.header.head_hash => Ok(Ok(snap.state)),
        Some(_) => Ok(Err(Some(format!("snapshot at seq {seq} does not match the log's hash there")))),
        None => Ok(Err(Some(format!("snapshot at seq {seq} is beyond the log")))),
    }
}
