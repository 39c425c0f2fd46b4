//! The in-memory store: the reference implementation of `LogStore` for tests, benchmarks and
//! the replay tool's in-memory work.

use std::collections::{BTreeMap, HashMap};

use super::{CommitBatch, CommitError, KeyEntry, LogStore};
use crate::record::StoredRecord;
use crate::state::Head;

#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: Vec<StoredRecord>,
    keys: HashMap<String, KeyEntry>,
    snapshots: BTreeMap<u64, Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MemoryStoreError {
    #[error("idempotency key {0:?} already exists")]
    KeyExists(String),
    #[error("batch is malformed: {0}")]
    BadBatch(String),
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// All records (for tests that tamper with a copy).
    pub fn records(&self) -> &[StoredRecord] {
        &self.records
    }
}

impl LogStore for MemoryStore {
    type Error = MemoryStoreError;

    fn head(&self) -> Result<Option<Head>, Self::Error> {
        Ok(self.records.last().map(|r| Head { seq: r.seq, hash: r.hash }))
    }

    fn read(&self, from_seq: u64, limit: u32) -> Result<Vec<StoredRecord>, Self::Error> {
        let start = from_seq.max(1) - 1;
        Ok(self
            .records
            .iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn append(&mut self, batch: &CommitBatch) -> Result<(), CommitError<Self::Error>> {
        let head_seq = self.records.len() as u64;
        if head_seq != batch.expected_seq {
            return Err(CommitError::Conflict { expected_seq: batch.expected_seq, head_seq });
        }
        // Validate everything first so that a failure writes nothing.
        for (i, r) in batch.records.iter().enumerate() {
            if r.seq != batch.expected_seq + 1 + i as u64 {
                return Err(CommitError::Store(MemoryStoreError::BadBatch(format!(
                    "record {i} has seq {}",
                    r.seq
                ))));
            }
        }
        for (key, _) in &batch.keys {
            if self.keys.contains_key(key) {
                return Err(CommitError::Store(MemoryStoreError::KeyExists(key.clone())));
            }
        }
        for e in &batch.erasures {
            if e.seq == 0 || e.seq > head_seq {
                return Err(CommitError::Store(MemoryStoreError::BadBatch(format!(
                    "erasure of seq {} beyond the head",
                    e.seq
                ))));
            }
        }
        for e in &batch.erasures {
            let r = &mut self.records[(e.seq - 1) as usize];
            r.body = e.skeleton.clone();
            r.redacted = true;
            self.snapshots.retain(|&s, _| s < e.seq || s > head_seq);
        }
        self.records.extend(batch.records.iter().cloned());
        self.keys.extend(batch.keys.iter().cloned());
        Ok(())
    }

    fn lookup_key(&self, key: &str) -> Result<Option<KeyEntry>, Self::Error> {
        Ok(self.keys.get(key).cloned())
    }

    fn put_snapshot(&mut self, seq: u64, bytes: &[u8]) -> Result<(), Self::Error> {
        self.snapshots.insert(seq, bytes.to_vec());
        Ok(())
    }

    fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, Self::Error> {
        Ok(self.snapshots.iter().next_back().map(|(s, b)| (*s, b.clone())))
    }

    fn snapshot_seqs(&self) -> Result<Vec<u64>, Self::Error> {
        Ok(self.snapshots.keys().copied().collect())
    }

    fn prune_snapshots_before(&mut self, seq: u64) -> Result<(), Self::Error> {
        self.snapshots.retain(|&s, _| s >= seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_conformance_suite() {
        crate::store::conformance::run(&mut MemoryStore::new).unwrap();
    }
}
