//! The session state as JSON (`GET /v1/sessions/{key}/state`, `moltlog-replay state`). Open tool
//! calls' inputs are the stored JSON text ([`Json`]); everything else is plain values.

use serde_json::{Value, json};

use super::json::Json;
use super::output::blob_json;
use crate::chain;
use crate::event::Payload;
use crate::state::{OutboxStatus, SandboxStatus, SessionState};

/// A text payload (or what stands in for it).
fn payload(p: &Payload) -> Value {
    match p {
        Payload::Inline(s) => Value::String(s.clone()),
        Payload::Blob(b) => json!({ "blob": blob_json(b) }),
        Payload::Redacted => json!({ "redacted": true }),
    }
}

fn json_payload(p: &Payload) -> Json {
    match p {
        Payload::Inline(s) => Json::stored(s),
        other => Json::Value(payload(other)),
    }
}

pub fn state_json(s: &SessionState) -> Json {
    let open_tool_calls = s
        .open_tool_calls
        .iter()
        .map(|(id, c)| {
            Json::object([
                ("call_id", Json::Value(id.as_str().into())),
                ("seq", Json::Value(c.seq.into())),
                ("tool", Json::Value(c.tool.as_str().into())),
                ("input", json_payload(&c.input)),
            ])
        })
        .collect();
    let sandbox = match &s.sandbox {
        SandboxStatus::Unknown => json!({"status": "unknown"}),
        SandboxStatus::Attached { sandbox_id, since_ms } => {
            json!({"status": "attached", "sandbox_id": sandbox_id, "since_ms": since_ms})
        }
        SandboxStatus::Detached { since_ms, reason } => {
            json!({"status": "detached", "since_ms": since_ms, "reason": reason})
        }
    };
    let outbox: Vec<Value> = s
        .outbox
        .iter()
        .map(|(seq, e)| {
            json!({
                "seq": seq,
                "channel": {"type": e.channel.platform.name(), "chat_id": e.channel.chat_id, "thread_id": e.channel.thread_id},
                "text": payload(&e.text),
                "attempts": e.attempts,
                "next_attempt_ms": e.next_attempt_ms,
                "last_error": e.last_error,
                "status": match e.status { OutboxStatus::Pending => "pending", OutboxStatus::DeadLettered => "dead_lettered" },
            })
        })
        .collect();
    let b = &s.browser;
    let browser = json!({
        "current_target": b.current_target,
        "current_url": b.current_url(),
        "targets": b.targets.iter().map(|(id, t)| json!({"target_id": id, "url": t.url, "last_seq": t.last_seq})).collect::<Vec<_>>(),
        "last_action": b.last_action.as_ref().map(|a| json!({"seq": a.seq, "ts_ms": a.ts_ms, "action": a.action.name(), "target_id": a.target_id, "url": a.url, "error": a.error})),
        "last_screenshot": b.last_screenshot.as_ref().map(|sh| json!({"seq": sh.seq, "target_id": sh.target_id, "image": payload(&sh.image)})),
        "actions": b.actions,
    });
    let c = &s.counters;
    let by_kind: serde_json::Map<String, Value> = crate::event::EventKind::ALL
        .iter()
        .map(|k| (k.name().to_owned(), c.by_kind[k.index()].into()))
        .collect();
    let mut doc = Json::from(json!({
        "session_key": s.session_key,
        "head": {"seq": s.head.seq, "hash": chain::to_hex(&s.head.hash)},
        "last_id": s.last_id.map(|i| i.to_string()),
        "first_ts_ms": s.first_ts_ms,
        "last_ts_ms": s.last_ts_ms,
        "agent": s.agent,
        "model": s.model.as_ref().map(|m| json!({"provider": m.provider, "model": m.model})),
        "sandbox": sandbox,
        "compaction": s.compaction.as_ref().map(|c| json!({"seq": c.seq, "summary": payload(&c.summary), "first_kept_seq": c.first_kept_seq, "tokens_before": c.tokens_before})),
        "transcript": s.transcript,
        "open_tool_calls": null,
        "browser": browser,
        "outbox": outbox,
        "counters": {
            "events": c.events(),
            "by_kind": by_kind,
            "input_tokens": c.input_tokens,
            "output_tokens": c.output_tokens,
            "compactions": c.compactions,
            "delivered": c.delivered,
            "dead_lettered": c.dead_lettered,
            "restores": c.restores,
            "recoveries": c.recoveries,
        },
        "redacted": s.redacted,
    }));
    doc.set("open_tool_calls", Json::Array(open_tool_calls));
    doc
}
