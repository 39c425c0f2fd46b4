//! Rendering a session in the agent runtime's own layout (OpenClaw / pi-coding-agent JSONL
//! transcripts, session file version 3; see ../shared/OPENCLAW.md):
//! `agents/<agentId>/sessions/sessions.json` and `agents/<agentId>/sessions/<sessionId>.jsonl`.
//!
//! Entry ids derive from seqs and the session id from the session key, so rendering the same log
//! at the same restore time gives byte-identical files (the Worker's route and the tool agree).

mod message;
mod session;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use super::Item;
use crate::chain;
use crate::state::SessionState;

/// The pi-coding-agent session file version this renders.
pub const SESSION_FILE_VERSION: u32 = 3;

/// One file to write, relative to the runtime's state dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub content: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub agent_id: String,
    pub session_id: String,
    pub files: Vec<File>,
}

impl Rendered {
    pub fn to_json(&self) -> Value {
        json!({
            "format": "openclaw",
            "agent_id": self.agent_id,
            "session_id": self.session_id,
            "files": self.files.iter().map(|f| json!({"path": f.path, "content": f.content})).collect::<Vec<_>>(),
        })
    }
}

/// `agent:<agentId>:…` names its agent; other keys belong to the default agent `main`.
pub fn agent_id(session_key: &str) -> String {
    let mut parts = session_key.split(':');
    match (parts.next(), parts.next()) {
        (Some("agent"), Some(id)) if !id.is_empty() => id.to_owned(),
        _ => "main".to_owned(),
    }
}

/// A stable UUID-shaped id derived from the session key.
pub fn session_id(session_key: &str) -> String {
    let h = chain::sha256(session_key.as_bytes());
    let x = hex::encode(&h[..16]);
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// ISO 8601 UTC with milliseconds, from a Unix time in ms.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Renders the session's transcript since its last compaction (`items`, from
/// `restore::transcript`). `restored_at_ms` stamps `updatedAt` in `sessions.json`: the runtime's
/// daily reset would discard a session last updated before the last 04:00.
pub fn render(s: &SessionState, items: &[Item], restored_at_ms: u64) -> Rendered {
    let agent = agent_id(&s.session_key);
    let sid = session_id(&s.session_key);
    let header = json!({
        "type": "session",
        "version": SESSION_FILE_VERSION,
        "id": sid,
        "timestamp": iso8601(s.first_ts_ms),
        "cwd": "/",
    });
    let mut lines = vec![header.to_string()];
    let mut parent: Option<String> = None;
    for e in message::entries(s, items) {
        let mut entry = Map::new();
        entry.insert("type".into(), e.kind.into());
        entry.insert("id".into(), e.id.clone().into());
        entry.insert("parentId".into(), parent.take().map_or(Value::Null, Value::String));
        entry.insert("timestamp".into(), iso8601(e.ts_ms).into());
        entry.extend(e.fields);
        lines.push(Value::Object(entry).to_string());
        parent = Some(e.id);
    }
    let mut jsonl = lines.join("\n");
    jsonl.push('\n');

    let dir = format!("agents/{agent}/sessions");
    Rendered {
        files: vec![
            File {
                path: format!("{dir}/sessions.json"),
                content: session::index(s, items, &sid, restored_at_ms),
            },
            File { path: format!("{dir}/{sid}.jsonl"), content: jsonl },
        ],
        agent_id: agent,
        session_id: sid,
    }
}
