//! Size limits: what one append may carry.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Events in one append.
    pub max_batch_events: u32,
    /// An event's encoded body as stored in the log, after large payloads moved to blobs. Kept
    /// well under a Durable Object SQLite row (2 MB).
    pub max_event_bytes: u32,
    /// All inline bodies of one append together.
    pub max_batch_bytes: u64,
    /// A body larger than this has its largest payloads moved to content-addressed blobs.
    pub blob_threshold_bytes: u32,
    /// One payload (blob).
    pub max_blob_bytes: u64,
    /// Idempotency keys, ids and other short strings.
    pub max_key_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_events: 1000,
            max_event_bytes: 1 << 20,
            max_batch_bytes: 8 << 20,
            blob_threshold_bytes: 64 << 10,
            max_blob_bytes: 32 << 20,
            max_key_bytes: 256,
        }
    }
}
