//! What a fresh agent sandbox needs to resume a session, as the Worker serves it
//! (`GET /v1/sessions/{key}/restore`) and `moltlog-replay restore` writes it: one implementation.
//!
//! The state indexes the transcript by seq; its content is read back from the log
//! (`transcript`), then rendered (`bundle_json`, `openclaw::render`).

pub mod openclaw;

use serde_json::{Value, json};

use crate::chain::Hash;
use crate::codec::DecodeError;
use crate::dto::{Json, event_json, state_json};
use crate::event::{EventBody, EventHeader};
use crate::state::SessionState;
use crate::store::LogStore;

/// Format version of the restore bundle JSON.
pub const RESTORE_VERSION: u32 = 1;

/// Records read per store call.
const PAGE: u32 = 512;

/// One transcript event, read back from the log.
#[derive(Clone, Debug)]
pub struct Item {
    pub header: EventHeader,
    pub hash: Hash,
    pub body: EventBody,
    pub redacted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError<E: std::error::Error + 'static> {
    #[error("log storage failed: {0}")]
    Store(E),
    #[error("transcript event {seq} is missing from the log")]
    Missing { seq: u64 },
    #[error("transcript event {seq} does not decode: {error}")]
    Corrupt { seq: u64, error: DecodeError },
}

/// The transcript's events (chat messages, tool calls, tool results since the last compaction).
pub fn transcript<S: LogStore + ?Sized>(
    state: &SessionState,
    store: &S,
) -> Result<Vec<Item>, RestoreError<S::Error>> {
    let mut items = Vec::with_capacity(state.transcript.len());
    let mut wanted = state.transcript.iter().copied().peekable();
    while let Some(&from) = wanted.peek() {
        let page = store.read(from, PAGE).map_err(RestoreError::Store)?;
        if page.first().map(|r| r.seq) != Some(from) {
            return Err(RestoreError::Missing { seq: from });
        }
        for rec in &page {
            if wanted.peek() != Some(&rec.seq) {
                continue;
            }
            wanted.next();
            let corrupt = |error| RestoreError::Corrupt { seq: rec.seq, error };
            items.push(Item {
                header: rec.decode_header().map_err(corrupt)?,
                hash: rec.hash,
                body: rec.decode_body().map_err(corrupt)?,
                redacted: rec.redacted,
            });
        }
        if let Some(&next) = wanted.peek()
            && page.last().is_some_and(|r| r.seq >= next)
        {
            return Err(RestoreError::Missing { seq: next });
        }
    }
    Ok(items)
}

/// The restore bundle: the transcript since the last compaction (with the compaction summary),
/// tool calls that never got a result, the browser state, and the head it was built at. JSON
/// payloads are the stored text ([`Json`]).
pub fn bundle_json(s: &SessionState, transcript: &[Item]) -> Json {
    let full = state_json(s);
    let pick = |k: &str| full.get(k).unwrap_or(Json::Value(Value::Null));
    let events = transcript.iter().map(|i| event_json(&i.header, &i.hash, &i.body, i.redacted)).collect();
    Json::object([
        ("restore_version", Json::Value(json!(RESTORE_VERSION))),
        ("session_key", Json::Value(json!(s.session_key))),
        ("head", pick("head")),
        ("agent", pick("agent")),
        ("model", pick("model")),
        ("compaction", pick("compaction")),
        ("transcript", Json::Array(events)),
        ("open_tool_calls", pick("open_tool_calls")),
        ("browser", pick("browser")),
        ("sandbox", pick("sandbox")),
        ("outbox", pick("outbox")),
        ("redacted", pick("redacted")),
    ])
}
