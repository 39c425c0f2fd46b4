//! What a fresh agent sandbox needs to resume a session, as the Worker serves it
//! (`GET /v1/sessions/{key}/restore`) and `moltlog-replay restore` writes it: one implementation.

pub mod openclaw;

use serde_json::{Value, json};

use crate::dto::state_json;
use crate::state::SessionState;

/// Format version of the restore bundle JSON.
pub const RESTORE_VERSION: u32 = 1;

/// The restore bundle: the transcript since the last compaction (with the compaction summary),
/// tool calls that never got a result, the browser state, and the head it was built at.
pub fn bundle_json(s: &SessionState) -> Value {
    let full = state_json(s);
    let pick = |k: &str| full.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "restore_version": RESTORE_VERSION,
        "session_key": s.session_key,
        "head": pick("head"),
        "agent": pick("agent"),
        "model": pick("model"),
        "compaction": pick("compaction"),
        "transcript": pick("transcript"),
        "open_tool_calls": pick("open_tool_calls"),
        "browser": pick("browser"),
        "sandbox": pick("sandbox"),
        "outbox": pick("outbox"),
        "redacted": pick("redacted"),
    })
}
