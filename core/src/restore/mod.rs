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
use crate::event::{EventBody, EventHeader, EventKind};
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

/// The transcript's events (chat messages, tool calls, tool results since the last compaction),
/// and the model calls among them (from the first transcript event on), whose usage the
/// OpenClaw rendering puts on the assistant turns. Reads the log from the first transcript event
/// to the head, a page at a time.
pub fn transcript<S: LogStore + ?Sized>(
    state: &SessionState,
    store: &S,
) -> Result<Vec<Item>, RestoreError<S::Error>> {
    let mut items = Vec::with_capacity(state.transcript.len());
    let mut wanted = state.transcript.iter().copied().peekable();
    let Some(&first) = wanted.peek() else { return Ok(items) };
    let mut from = first;
    while from <= state.head.seq {
        let page = store.read(from, PAGE).map_err(RestoreError::Store)?;
        if page.first().map(|r| r.seq) != Some(from) {
            return Err(RestoreError::Missing { seq: wanted.peek().copied().unwrap_or(from) });
        }
        for rec in page.iter().take_while(|r| r.seq <= state.head.seq) {
            let corrupt = |error| RestoreError::Corrupt { seq: rec.seq, error };
            if let Some(&next) = wanted.peek()
                && next < rec.seq
            {
                return Err(RestoreError::Missing { seq: next });
            }
            let is_wanted = wanted.peek() == Some(&rec.seq);
            let header = rec.decode_header().map_err(corrupt)?;
            if !is_wanted && header.kind != EventKind::ModelCall {
                continue;
            }
            if is_wanted {
                wanted.next();
            }
            items.push(Item {
                header,
                hash: rec.hash,
                body: rec.decode_body().map_err(corrupt)?,
                redacted: rec.redacted,
            });
        }
        from = page.last().map_or(from, |r| r.seq) + 1;
    }
    if let Some(next) = wanted.next() {
        return Err(RestoreError::Missing { seq: next });
    }
    Ok(items)
}

/// Whether the reducer puts events of this body in the transcript (model calls ride along in
/// `transcript`'s answer for their usage only).
pub fn in_transcript(body: &EventBody) -> bool {
    matches!(body, EventBody::ChatMessage(_) | EventBody::ToolCall(_) | EventBody::ToolResult(_))
}

/// The restore bundle: the transcript since the last compaction (with the compaction summary),
/// tool calls that never got a result, the browser state, and the head it was built at. JSON
/// payloads are the stored text ([`Json`]).
pub fn bundle_json(s: &SessionState, transcript: &[Item]) -> Json {
    let full = state_json(s);
    let pick = |k: &str| full.get(k).unwrap_or(Json::Value(Value::Null));
    let events = transcript
        .iter()
        .filter(|i| in_transcript(&i.body))
        .map(|i| event_json(&i.header, &i.hash, &i.body, i.redacted))
        .collect();
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
