//! The loaded session: engine (state cache), store and background-work bookkeeping. Lives in
//! memory between requests; rebuilt from storage whenever the Durable Object wakes.

use moltlog_core::key::SessionKey;
use moltlog_core::store::LogStore;
use moltlog_core::{Engine, SessionState};

use super::sql_store::{SqlError, SqlStore};
use crate::schedule::Work;

pub struct Live {
    pub key: SessionKey,
    pub store: SqlStore,
    pub engine: Engine,
    pub work: Work,
    /// The alarm time we last set (None: unknown or none).
    pub alarm_at: Option<u64>,
    pub created_ms: u64,
    /// How the state was rebuilt when this object woke (for status).
    pub rebuilt_from_snapshot: Option<u64>,
    pub replayed_on_wake: u64,
}

impl Live {
    pub fn state(&self) -> &SessionState {
        self.engine.state()
    }

    /// Re-reads the background-work bookkeeping from storage.
    pub fn refresh_work(&mut self) -> Result<(), SqlError> {
        let s = &self.store;
        let head_seq = self.engine.head().seq;
        let archived_seq = s.meta_u64("archived_seq")?;
        let oldest_unarchived_ts_ms = if head_seq > archived_seq {
            s.record_at(archived_seq + 1)?.and_then(|r| r.decode_header().ok()).map(|h| h.ts_ms)
        } else {
            None
        };
        let stale = s.any_stale()?;
        self.work = Work {
            head_seq,
            archived_seq,
            oldest_unarchived_ts_ms,
            last_snapshot_seq: s.meta_u64("last_snapshot_seq")?,
            last_snapshot_ms: s.meta_u64("last_snapshot_ms")?,
            last_snapshot_len: s.meta_u64("last_snapshot_len")?,
            stale,
            directory_synced_seq: s.meta_u64("directory_synced_seq")?,
            directory_synced_ms: self.work.directory_synced_ms,
            failures: self.work.failures,
            deliveries_due_ms: self.work.deliveries_due_ms,
            created_ms: self.created_ms,
        };
        Ok(())
    }

    /// Bookkeeping after new records were committed (cheaper than `refresh_work`).
    pub fn note_appended(&mut self, first_ts_ms: u64, erased: bool) -> Result<(), SqlError> {
        let w = &mut self.work;
        if w.head_seq == w.archived_seq {
            w.oldest_unarchived_ts_ms = Some(first_ts_ms);
        }
        w.head_seq = self.engine.head().seq;
        if erased {
            self.refresh_work()?;
        }
        Ok(())
    }

    pub fn local_snapshot_seqs(&self) -> Result<Vec<u64>, SqlError> {
        self.store.snapshot_seqs()
    }
}
