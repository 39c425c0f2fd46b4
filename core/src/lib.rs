//! moltlog-core: the pure engine of moltlog.
//!
//! Event formats, the hash chain, the state reducer, snapshots, archive segments, the append
//! engine and verification: one implementation that the Durable Object (wasm32) and the replay
//! tool (native) share.
//!
//! Architecture invariant: nothing in this crate does IO. No clock, no randomness, no async, no
//! `worker` crate, no `Send` bounds. Time and random bits are arguments (`engine::Now`).

pub mod bundle;
pub mod chain;
pub mod codec;
pub mod dto;
pub mod engine;
pub mod event;
pub mod id;
pub mod key;
pub mod record;
pub mod recovery;
pub mod restore;
pub mod sample;
pub mod segment;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod tail;
pub mod verify;

pub use chain::Hash;
pub use engine::{AppendError, AppendOutcome, AppendRequest, Engine, Limits, NewEvent, Now};
pub use event::{Actor, EventBody, EventHeader, EventKind};
pub use key::SessionKey;
pub use record::StoredRecord;
pub use state::{Head, SessionState};
pub use store::{LogStore, MemoryStore};
