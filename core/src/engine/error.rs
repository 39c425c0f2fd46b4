//! Why an append is refused. Each variant has a stable snake_case code for the JSON API.

use crate::chain::Hash;
use crate::event::EventKind;
use crate::state::Head;

#[derive(Debug, thiserror::Error)]
pub enum AppendError<E: std::error::Error + 'static> {
    #[error("the batch holds no events")]
    EmptyBatch,
    #[error("the batch holds {count} events; at most {max} are allowed")]
    TooManyEvents { count: usize, max: u32 },
    #[error("event {index} is {bytes} bytes once stored; at most {max} are allowed")]
    EventTooLarge { index: usize, bytes: usize, max: u32 },
    #[error("event {index} has a {bytes}-byte payload; at most {max} are allowed")]
    PayloadTooLarge { index: usize, bytes: usize, max: u64 },
    #[error("the batch is {bytes} bytes once stored; at most {max} are allowed")]
    BatchTooLarge { bytes: u64, max: u64 },
    #[error("expected_seq is {expected_seq} but the log is at seq {}", head.seq)]
    Conflict { expected_seq: u64, head: Head },
    #[error("idempotency key {key:?} was used before for different content")]
    KeyReused { key: String },
    #[error(
        "event {index}'s idempotency key {key:?} was used before, but the batch's other events are new; retry the original batch or use new keys"
    )]
    PartialDuplicate { index: usize, key: String },
    #[error("idempotency key {key:?} appears twice in the batch")]
    DuplicateKeyInBatch { key: String },
    #[error("event {index}: {reason}")]
    Invalid { index: usize, reason: String },
    #[error("event {index}: {actor} may not append {kind:?} events")]
    Forbidden { index: usize, actor: &'static str, kind: EventKind },
    #[error("event {index} redacts seq {target}, which {why}")]
    BadRedaction { index: usize, target: u64, why: &'static str },
    #[error("log storage failed: {0}")]
    Store(E),
    #[error("stored record {seq} is corrupt: {detail}")]
    Corrupt { seq: u64, detail: String },
}

impl<E: std::error::Error + 'static> AppendError<E> {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppendError::EmptyBatch => "empty_batch",
            AppendError::TooManyEvents { .. } => "too_many_events",
            AppendError::EventTooLarge { .. } => "event_too_large",
            AppendError::PayloadTooLarge { .. } => "payload_too_large",
            AppendError::BatchTooLarge { .. } => "batch_too_large",
            AppendError::Conflict { .. } => "seq_conflict",
            AppendError::KeyReused { .. } => "idempotency_key_reused",
            AppendError::PartialDuplicate { .. } => "partial_duplicate",
            AppendError::DuplicateKeyInBatch { .. } => "duplicate_key_in_batch",
            AppendError::Invalid { .. } => "invalid_event",
            AppendError::Forbidden { .. } => "kind_not_allowed",
            AppendError::BadRedaction { .. } => "bad_redaction",
            AppendError::Store(_) => "storage_error",
            AppendError::Corrupt { .. } => "corrupt_log",
        }
    }

    /// The head to report with a conflict.
    pub fn conflict_head(&self) -> Option<(u64, Hash)> {
        match self {
            AppendError::Conflict { head, .. } => Some((head.seq, head.hash)),
            _ => None,
        }
    }
}
