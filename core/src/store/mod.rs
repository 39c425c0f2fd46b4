//! Log storage: the synchronous interface the engine needs from any store (the DO's SQLite, the
//! in-memory store, the replay tool's files), and the conformance suite every store must pass.

pub mod conformance;
mod memory;

pub use memory::{MemoryStore, MemoryStoreError};

use crate::chain::Hash;
use crate::event::BlobRef;
use crate::record::StoredRecord;
use crate::state::Head;

/// What an idempotency key maps to: the original append's result and a fingerprint of its
/// content, so a reused key with different content is told apart from a retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_hash: Hash,
    pub fingerprint: Hash,
}

/// A redaction's erasure: the body of `seq` becomes `skeleton`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    pub seq: u64,
    pub skeleton: Vec<u8>,
}

/// Everything one append writes, atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitBatch {
    /// The head seq the batch was planned against: the store refuses the batch if it moved.
    pub expected_seq: u64,
    /// Contiguous records from `expected_seq + 1`.
    pub records: Vec<StoredRecord>,
    pub keys: Vec<(String, KeyEntry)>,
    /// Bodies to erase. The store also drops local snapshots at or after each erased seq and
    /// before this batch, since they hold the erased content.
    pub erasures: Vec<Erasure>,
    /// Blobs the new records reference, by seq (stores may index them; exports list them).
    pub blob_refs: Vec<(u64, BlobRef)>,
}

impl CommitBatch {
    pub fn new_head(&self) -> Option<Head> {
        self.records.last().map(|r| Head { seq: r.seq, hash: r.hash })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError<E: std::error::Error + 'static> {
    /// The head moved since the batch was planned.
    #[error("the log head is at seq {head_seq}, the batch expected {expected_seq}")]
    Conflict { expected_seq: u64, head_seq: u64 },
    #[error(transparent)]
    Store(E),
}

/// A session's log store. Every method is synchronous: the DO's SQLite API is, and it keeps the
/// engine free of async.
pub trait LogStore {
    type Error: std::error::Error + 'static;

    /// The last record's seq and hash, or None when the log is empty.
    fn head(&self) -> Result<Option<Head>, Self::Error>;

    /// Up to `limit` records from `from_seq` on, in seq order.
    fn read(&self, from_seq: u64, limit: u32) -> Result<Vec<StoredRecord>, Self::Error>;

    /// Writes the batch atomically (all of it or none) if the head seq is still
    /// `batch.expected_seq`; otherwise `Conflict` and nothing is written.
    fn append(&mut self, batch: &CommitBatch) -> Result<(), CommitError<Self::Error>>;

    fn lookup_key(&self, key: &str) -> Result<Option<KeyEntry>, Self::Error>;

    /// Stores a snapshot (bytes as `snapshot::encode` made them) taken at `seq`.
    fn put_snapshot(&mut self, seq: u64, bytes: &[u8]) -> Result<(), Self::Error>;

    /// The newest snapshot and its seq.
    fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, Self::Error>;

    /// Seqs of the snapshots kept, ascending.
    fn snapshot_seqs(&self) -> Result<Vec<u64>, Self::Error>;

    /// Drops snapshots older than `seq` (keeps `seq` and newer).
    fn prune_snapshots_before(&mut self, seq: u64) -> Result<(), Self::Error>;
}

/// The idempotency entry an event's own key maps to, recomputed from its stored record (used when
/// a log is rebuilt from its archive). None when the event has no key.
pub fn event_key_entry(rec: &StoredRecord, header: &crate::event::EventHeader) -> Option<(String, KeyEntry)> {
    let key = header.idempotency_key.clone()?;
    let fingerprint = crate::engine::fingerprint(header.causation, &header.body_sha256);
    Some((key, KeyEntry { first_seq: rec.seq, last_seq: rec.seq, last_hash: rec.hash, fingerprint }))
}

/// Reads the single record at `seq`.
pub fn read_one<S: LogStore + ?Sized>(store: &S, seq: u64) -> Result<Option<StoredRecord>, S::Error> {
    Ok(store.read(seq, 1)?.into_iter().next().filter(|r| r.seq == seq))
}
