//! Rendering a session in the agent runtime's own layout (OpenClaw / pi-coding-agent JSONL
//! transcripts; see ../shared/OPENCLAW.md): `agents/<agentId>/sessions/sessions.json` and
//! `agents/<agentId>/sessions/<sessionId>.jsonl`.
//!
//! Entry ids derive from seqs and the session id from the session key, so rendering the same log
//! twice gives byte-identical files.

use serde_json::{Map, Value, json};

use super::Item;
use crate::chain;
use crate::dto::Json;
use crate::event::EventBody;
use crate::event::{Payload, Role};
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

fn chat_type(session_key: &str) -> &'static str {
    if session_key.contains(":group:") {
        "group"
    } else if session_key.contains(":channel:") {
        "room"
    } else {
        "direct"
    }
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

/// Transcript lines, each entry linked to the one before by `parentId`.
struct Lines {
    lines: Vec<String>,
    parent: Option<String>,
}

impl Lines {
    fn push(&mut self, id: String, ts_ms: u64, mut entry: Json) {
        entry.set("id", Json::Value(id.clone().into()));
        entry.set("parentId", Json::Value(self.parent.clone().map_or(Value::Null, Value::String)));
        entry.set("timestamp", Json::Value(iso8601(ts_ms).into()));
        self.lines.push(entry.to_line());
        self.parent = Some(id);
    }
}

fn entry_id(seq: u64) -> String {
    format!("{seq:08x}")
}

fn text_of(p: &Payload) -> String {
    match p {
        Payload::Inline(s) => s.clone(),
        Payload::Blob(b) => {
            format!("[content stored as blob sha256:{} ({} bytes)]", chain::to_hex(&b.sha256), b.len)
        }
        Payload::Redacted => "[redacted]".to_owned(),
    }
}

/// A JSON payload as its stored text.
fn json_of(p: &Payload) -> Json {
    match p {
        Payload::Inline(s) => Json::stored(s),
        other => Json::Value(Value::String(text_of(other))),
    }
}

/// Renders the session's transcript since its last compaction (`items`, from
/// `restore::transcript`).
pub fn render(s: &SessionState, items: &[Item]) -> Rendered {
    let agent = agent_id(&s.session_key);
    let sid = session_id(&s.session_key);
    let mut lines: Vec<String> = Vec::new();
    let header = json!({
        "type": "session",
        "version": SESSION_FILE_VERSION,
        "id": sid,
        "timestamp": iso8601(s.first_ts_ms),
        "cwd": "/",
    });
    lines.push(header.to_string());

    let tool_names: std::collections::BTreeMap<&str, &str> = items
        .iter()
        .filter_map(|i| match &i.body {
            EventBody::ToolCall(c) => Some((c.call_id.as_str(), c.tool.as_str())),
            _ => None,
        })
        .chain(s.open_tool_calls.iter().map(|(id, c)| (id.as_str(), c.tool.as_str())))
        .collect();

    let mut out = Lines { lines, parent: None };
    let mut compaction_entry = s.compaction.as_ref().map(|c| {
        let first_kept =
            items.iter().find(|i| i.header.seq >= c.first_kept_seq).map(|i| entry_id(i.header.seq));
        let mut m = Map::new();
        m.insert("type".into(), "compaction".into());
        m.insert("summary".into(), text_of(&c.summary).into());
        m.insert("firstKeptEntryId".into(), first_kept.map_or(Value::Null, Value::String));
        m.insert("tokensBefore".into(), c.tokens_before.into());
        let ts = items.iter().find(|i| i.header.seq > c.seq).map_or(s.last_ts_ms, |i| i.header.ts_ms);
        (c.seq, ts, Json::from(Value::Object(m)))
    });
    for item in items {
        let (seq, ts_ms) = (item.header.seq, item.header.ts_ms);
        // The compaction entry goes where it happened: after the entries it kept.
        if let Some((cseq, ts, m)) = compaction_entry.take_if(|(cseq, ..)| seq > *cseq) {
            out.push(entry_id(cseq), ts, m);
        }
        let message = match &item.body {
            EventBody::ChatMessage(m) => {
                let mut msg = json!({
                    "role": m.role.name(),
                    "content": [{"type": "text", "text": text_of(&m.text)}],
                    "timestamp": ts_ms,
                });
                if m.role == Role::Assistant
                    && let Some(model) = &s.model
                {
                    msg["provider"] = model.provider.clone().into();
                    msg["model"] = model.model.clone().into();
                }
                if let Some(a) = &m.author {
                    msg["author"] = a.clone().into();
                }
                msg.into()
            }
            EventBody::ToolCall(c) => {
                let mut msg = Json::from(json!({"role": "assistant", "content": null, "timestamp": ts_ms}));
                let mut call = Json::from(json!({"type": "toolCall", "id": c.call_id, "name": c.tool}));
                call.set("arguments", json_of(&c.input));
                msg.set("content", Json::Array(vec![call]));
                msg
            }
            EventBody::ToolResult(r) => Json::from(json!({
                "role": "toolResult",
                "toolCallId": r.call_id,
                "toolName": tool_names.get(r.call_id.as_str()).copied().unwrap_or(""),
                "content": [{"type": "text", "text": text_of(&r.output)}],
                "isError": r.is_error,
                "timestamp": ts_ms,
            })),
            // Only the three kinds above are in a transcript.
            _ => continue,
        };
        let entry = Json::object([("type", Json::Value("message".into())), ("message", message)]);
        out.push(entry_id(seq), ts_ms, entry);
    }
    if let Some((seq, ts, m)) = compaction_entry {
        out.push(entry_id(seq), ts, m);
    }
    let lines = out.lines;
    let mut jsonl = lines.join("\n");
    jsonl.push('\n');

    let provider = items
        .iter()
        .find_map(|i| match &i.body {
            EventBody::ChatMessage(crate::event::ChatMessage { channel: Some(c), .. }) => {
                Some(c.platform.name().to_owned())
            }
            _ => None,
        })
        .or_else(|| s.model.as_ref().map(|m| m.provider.clone()));
    let entry = json!({
        "sessionId": sid,
        "updatedAt": s.last_ts_ms,
        "chatType": chat_type(&s.session_key),
        "provider": provider,
        "displayName": s.session_key,
        "inputTokens": s.counters.input_tokens,
        "outputTokens": s.counters.output_tokens,
        "totalTokens": s.counters.input_tokens + s.counters.output_tokens,
        "compactionCount": s.counters.compactions,
    });
    let mut index = Map::new();
    index.insert(s.session_key.clone(), entry);
    let dir = format!("agents/{agent}/sessions");
    Rendered {
        files: vec![
            File {
                path: format!("{dir}/sessions.json"),
                content: serde_json::to_string_pretty(&Value::Object(index)).expect("json") + "\n",
            },
            File { path: format!("{dir}/{sid}.jsonl"), content: jsonl },
        ],
        agent_id: agent,
        session_id: sid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AppendRequest, Engine, Limits, Now};
    use crate::event::Actor;
    use crate::key::SessionKey;
    use crate::sample;
    use crate::store::MemoryStore;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn agent_and_session_ids() {
        assert_eq!(agent_id("agent:ops:telegram:chat:1"), "ops");
        assert_eq!(agent_id("cron:job"), "main");
        assert_eq!(session_id("k"), session_id("k"));
        assert_eq!(session_id("k").len(), 36);
    }

    #[test]
    fn renders_a_linear_transcript_with_compaction() {
        let mut engine = Engine::new(SessionKey::parse("agent:main:main").unwrap(), Limits::default());
        let mut store = MemoryStore::new();
        let bodies = vec![
            sample::user("old"),
            sample::user("hello"),
            sample::tool_call("c1", "bash", r#"{"cmd":"ls"}"#),
            sample::tool_result("c1", r#""a.txt""#, false),
            sample::compacted("earlier: said old", 2),
            sample::chat(Role::Assistant, "done"),
        ];
        for (i, b) in bodies.into_iter().enumerate() {
            engine
                .append(
                    &mut store,
                    AppendRequest::one(Actor::Runtime, b),
                    Now { now_ms: 1_700_000_000_000 + i as u64, entropy: 1 },
                )
                .unwrap();
        }
        let items = super::super::transcript(engine.state(), &store).unwrap();
        let r = render(engine.state(), &items);
        assert_eq!(r.agent_id, "main");
        let lines: Vec<Value> =
            r.files[1].content.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["session", "message", "message", "message", "compaction", "message"]);
        assert_eq!(lines[4]["firstKeptEntryId"], "00000002");
        assert_eq!(lines[3]["message"]["toolName"], "bash");
        assert_eq!(lines[2]["message"]["content"][0]["arguments"]["cmd"], "ls");
        for w in lines[1..].windows(2) {
            assert_eq!(w[1]["parentId"], w[0]["id"], "entries form a chain");
        }
        assert_eq!(render(engine.state(), &items), r, "rendering is deterministic");
    }

    #[test]
    fn tool_arguments_keep_their_stored_tokens_on_one_line() {
        let mut engine = Engine::new(SessionKey::parse("agent:main:main").unwrap(), Limits::default());
        let mut store = MemoryStore::new();
        let input = "{\n \"id\": 123456789012345678901234567890,\n \"x\": 1e400, \"s\": \"\\ud800\"\n}";
        let req = AppendRequest::one(Actor::Runtime, sample::tool_call("c1", "bash", input));
        engine.append(&mut store, req, Now { now_ms: 1_700_000_000_000, entropy: 1 }).unwrap();
        let items = super::super::transcript(engine.state(), &store).unwrap();
        let r = render(engine.state(), &items);
        let line = r.files[1].content.lines().nth(1).unwrap();
        let want = r#""arguments":{ "id": 123456789012345678901234567890, "x": 1e400, "s": "\ud800"}"#;
        assert!(line.contains(want), "{line}");
    }
}
