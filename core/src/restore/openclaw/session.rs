//! `sessions.json`: the runtime's index of an agent's sessions, one entry per session key.

use serde_json::{Map, Value, json};

use crate::event::{ChatMessage, EventBody};
use crate::restore::Item;
use crate::state::SessionState;

fn chat_type(session_key: &str) -> &'static str {
    if session_key.contains(":group:") {
        "group"
    } else if session_key.contains(":channel:") {
        "room"
    } else {
        "direct"
    }
}

/// The index entry of this session (the runtime rebuilds fields left out), as a whole file.
/// `updatedAt` is the restore time, not the last event's: see `render`.
pub(super) fn index(s: &SessionState, items: &[Item], sid: &str, restored_at_ms: u64) -> String {
    let provider = items
        .iter()
        .find_map(|i| match &i.body {
            EventBody::ChatMessage(ChatMessage { channel: Some(c), .. }) => {
                Some(c.platform.name().to_owned())
            }
            _ => None,
        })
        .or_else(|| s.model.as_ref().map(|m| m.provider.clone()));
    let entry = json!({
        "sessionId": sid,
        "updatedAt": restored_at_ms,
        "chatType": chat_type(&s.session_key),
        "provider": provider,
        "displayName": s.session_key,
        "inputTokens": s.counters.input_tokens,
        "outputTokens": s.counters.output_tokens,
        "totalTokens": s.counters.input_tokens.saturating_add(s.counters.output_tokens),
        "compactionCount": s.counters.compactions,
    });
    let mut index = Map::new();
    index.insert(s.session_key.clone(), entry);
    serde_json::to_string_pretty(&Value::Object(index)).expect("a JSON value serializes") + "\n"
}
