//! Rendering events, outcomes and errors as JSON. Events are [`Json`] documents: their JSON
//! payloads are the stored text, byte for byte.

use serde_json::{Value, json};

use super::json::Json;

use crate::chain::{self, Hash};
use crate::engine::AppendOutcome;
use crate::event::{BlobRef, DeliveryOutcome, EventBody, EventHeader, Lifecycle, Payload};

pub fn blob_json(b: &BlobRef) -> Value {
    json!({"sha256": chain::to_hex(&b.sha256), "len": b.len, "content_type": b.content_type})
}

/// `{"error":{"code":…,"message":…}}`, plus any extra members (a conflict's head, say).
pub fn error_json(code: &str, message: &str, extra: Option<Value>) -> Value {
    let mut err = json!({"code": code, "message": message});
    if let (Some(Value::Object(extra)), Value::Object(e)) = (extra, &mut err) {
        e.extend(extra);
    }
    json!({ "error": err })
}

pub fn outcome_json(o: &AppendOutcome) -> Value {
    json!({"first_seq": o.first_seq, "last_seq": o.last_seq, "head": chain::to_hex(&o.head), "duplicate": o.duplicate})
}

struct Obj(Vec<(String, Json)>);

impl Obj {
    fn put(&mut self, k: &str, v: impl Into<Value>) {
        self.0.push((k.to_owned(), Json::Value(v.into())));
    }

    fn opt<T: Into<Value>>(&mut self, k: &str, v: Option<T>) {
        if let Some(v) = v {
            self.put(k, v);
        }
    }

    /// A payload field: JSON or text inline, `{name}_blob` when stored as a blob, absent when
    /// redacted (the event says `"redacted": true`).
    fn payload(&mut self, k: &str, p: &Payload, is_json: bool) {
        match p {
            Payload::Inline(s) if is_json => self.0.push((k.to_owned(), Json::stored(s))),
            Payload::Inline(s) => self.put(k, s.as_str()),
            Payload::Blob(b) => self.put(&format!("{k}_blob"), blob_json(b)),
            Payload::Redacted => {}
        }
    }
}

/// An event as the API returns it: its body's fields beside `seq`, `id`, `ts_ms`, `actor`, `hash`.
pub fn event_json(header: &EventHeader, hash: &Hash, body: &EventBody, redacted: bool) -> Json {
    let mut o = Obj(Vec::new());
    o.put("seq", header.seq);
    o.put("id", header.id.to_string());
    o.put("ts_ms", header.ts_ms);
    o.put("actor", header.actor.name());
    o.put("hash", chain::to_hex(hash));
    o.put("kind", header.kind.name());
    o.opt("causation", header.causation);
    o.opt("idempotency_key", header.idempotency_key.as_deref());
    if redacted {
        o.put("redacted", true);
    }
    body_fields(&mut o, body);
    Json::Object(o.0)
}

fn body_fields(o: &mut Obj, body: &EventBody) {
    match body {
        EventBody::ChatMessage(m) => {
            o.put("role", m.role.name());
            o.payload("text", &m.text, false);
            o.opt("author", m.author.as_deref());
            if let Some(c) = &m.channel {
                let mut ch = serde_json::Map::new();
                ch.insert("type".into(), c.platform.name().into());
                ch.insert("chat_id".into(), c.chat_id.as_str().into());
                for (k, v) in [("message_id", &c.message_id), ("thread_id", &c.thread_id)] {
                    if let Some(v) = v {
                        ch.insert(k.into(), v.as_str().into());
                    }
                }
                o.put("channel", Value::Object(ch));
            }
            if !m.attachments.is_empty() {
                let list: Vec<Value> = m
                    .attachments
                    .iter()
                    .map(|a| {
                        let mut v = json!({"blob": blob_json(&a.blob)});
                        if let Some(n) = &a.name {
                            v["name"] = n.as_str().into();
                        }
                        v
                    })
                    .collect();
                o.put("attachments", list);
            }
        }
        EventBody::ToolCall(c) => {
            o.put("call_id", c.call_id.as_str());
            o.put("tool", c.tool.as_str());
            o.payload("input", &c.input, true);
        }
        EventBody::ToolResult(r) => {
            o.put("call_id", r.call_id.as_str());
            o.payload("output", &r.output, true);
            o.put("is_error", r.is_error);
            o.opt("duration_ms", r.duration_ms);
        }
        EventBody::BrowserAction(a) => {
            o.put("action", a.action.name());
            o.opt("target_id", a.target_id.as_deref());
            o.opt("url", a.url.as_deref());
            o.payload("detail", &a.detail, false);
            o.payload("result", &a.result, true);
            o.opt("error", a.error.as_deref());
            if let Some(Payload::Blob(b)) = &a.screenshot {
                o.put("screenshot", blob_json(b));
            }
        }
        EventBody::ModelCall(m) => {
            o.put("provider", m.provider.as_str());
            o.put("model", m.model.as_str());
            o.put("input_tokens", m.input_tokens);
            o.put("output_tokens", m.output_tokens);
            o.put("latency_ms", m.latency_ms);
            o.opt("stop_reason", m.stop_reason.as_deref());
        }
        EventBody::WebhookReceived(w) => {
            o.put("source", w.source.as_str());
            o.opt("delivery_id", w.delivery_id.as_deref());
            o.opt("event_type", w.event_type.as_deref());
            o.put("verified", w.verified);
            o.put("content_type", w.content_type.as_str());
            o.payload("payload", &w.payload, super::input::is_json_type(&w.content_type));
        }
        EventBody::Lifecycle(l) => lifecycle_fields(o, l),
        EventBody::DeliveryReceipt(r) => {
            o.put("outbox_seq", r.outbox_seq);
            o.put("attempt", r.attempt);
            match &r.outcome {
                DeliveryOutcome::Delivered { remote_id } => {
                    o.put("outcome", "delivered");
                    o.opt("remote_id", remote_id.as_deref());
                }
                DeliveryOutcome::Failed { error, retry_at_ms } => {
                    o.put("outcome", "failed");
                    o.put("error", error.as_str());
                    o.put("retry_at_ms", *retry_at_ms);
                }
                DeliveryOutcome::DeadLettered { error } => {
                    o.put("outcome", "dead_lettered");
                    o.put("error", error.as_str());
                }
            }
        }
        EventBody::Redaction(r) => {
            o.put("target_seq", r.target_seq);
            o.put("reason", r.reason.as_str());
        }
    }
}

fn lifecycle_fields(o: &mut Obj, l: &Lifecycle) {
    match l {
        Lifecycle::SessionStarted { agent } => {
            o.put("event", "session_started");
            o.opt("agent", agent.as_deref());
        }
        Lifecycle::SandboxAttached { sandbox_id } => {
            o.put("event", "sandbox_attached");
            o.put("sandbox_id", sandbox_id.as_str());
        }
        Lifecycle::SandboxEvicted { sandbox_id, reason } => {
            o.put("event", "sandbox_evicted");
            o.opt("sandbox_id", sandbox_id.as_deref());
            o.put("reason", reason.as_str());
        }
        Lifecycle::Restored { sandbox_id, head_seq } => {
            o.put("event", "restored");
            o.opt("sandbox_id", sandbox_id.as_deref());
            o.put("head_seq", *head_seq);
        }
        Lifecycle::Compacted { summary, first_kept_seq, tokens_before } => {
            o.put("event", "compacted");
            o.payload("summary", summary, false);
            o.put("first_kept_seq", *first_kept_seq);
            o.put("tokens_before", *tokens_before);
        }
        Lifecycle::RecoveredFromArchive { snapshot_seq, segments, last_seq } => {
            o.put("event", "recovered_from_archive");
            o.opt("snapshot_seq", *snapshot_seq);
            o.put("segments", *segments);
            o.put("last_seq", *last_seq);
        }
        Lifecycle::RecordsLost { first_seq, last_seq, reason } => {
            o.put("event", "records_lost");
            o.put("first_seq", *first_seq);
            o.put("last_seq", *last_seq);
            o.put("reason", reason.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::dto::{MAX_JSON_DEPTH, parse_append, state_json};
    use crate::engine::{AppendRequest, Engine, Limits, Now};
    use crate::event::Actor;
    use crate::key::SessionKey;
    use crate::store::MemoryStore;

    /// Appends `body` through the API parser and the engine, then renders every stored record
    /// and the state as the API does.
    fn append_and_render(body: &str) -> (Vec<String>, String) {
        let input = parse_append(body.as_bytes()).expect("accepted");
        let mut engine = Engine::new(SessionKey::parse("t:json").unwrap(), Limits::default());
        let mut store = MemoryStore::new();
        let req = AppendRequest {
            actor: Actor::Runtime,
            events: input.events,
            expected_seq: None,
            idempotency_key: None,
        };
        engine.append(&mut store, req, Now { now_ms: 1_700_000_000_000, entropy: 1 }).unwrap();
        let events = store
            .records()
            .iter()
            .map(|r| {
                super::event_json(&r.decode_header().unwrap(), &r.hash, &r.decode_body().unwrap(), false)
                    .to_string()
            })
            .collect();
        (events, state_json(engine.state()).to_string())
    }

    #[test]
    fn json_payloads_come_back_as_stored() {
        let deep = format!("{}{}", "[".repeat(MAX_JSON_DEPTH as usize), "]".repeat(MAX_JSON_DEPTH as usize));
        for payload in [
            r#"{"id":123456789012345678901234567890}"#,
            "0.1000000000000000055511151231257827",
            r#"{"n":1e400}"#,
            r#"["\ud800","\udbff\udfff","\u0041"]"#,
            r#"{"b":1, "a":[ 2 ,3.0]}"#,
            deep.as_str(),
        ] {
            let body = format!(
                r#"{{"events":[
                    {{"kind":"tool_call","call_id":"c","tool":"t","input":{payload}}},
                    {{"kind":"tool_call","call_id":"d","tool":"t","input":{payload}}},
                    {{"kind":"tool_result","call_id":"c","output":{payload}}},
                    {{"kind":"browser_action","action":"evaluate","result":{payload}}},
                    {{"kind":"webhook_received","source":"s","payload":{payload}}}]}}"#
            );
            let (events, state) = append_and_render(&body);
            for (name, e) in ["input", "input", "output", "result", "payload"].iter().zip(&events) {
                assert!(e.contains(&format!(r#""{name}":{payload}"#)), "{payload} came back as {e}");
            }
            // The open call `d` in the state (and so in the restore bundle) keeps its input too.
            assert!(state.contains(&format!(r#""input":{payload}"#)), "{payload} in the state: {state}");
        }
    }
}
