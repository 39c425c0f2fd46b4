//! The transcript's entries as the runtime writes them: one assistant message per model turn
//! (its text and tool calls together, with the turn's usage), tool results paired with their call,
//! the compaction where it happened. Only chat messages, tool calls and tool results become
//! messages: browser actions and other records are no model output and are never rendered as
//! tool calls the model did not make.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::chain;
use crate::event::{Attachment, EventBody, ModelCall, Payload, Role};
use crate::restore::Item;
use crate::state::SessionState;

/// One transcript line before it is chained (`id`, `parentId` and `timestamp` are added then).
pub(super) struct Entry {
    pub kind: &'static str,
    pub id: String,
    pub ts_ms: u64,
    pub fields: Map<String, Value>,
}

fn entry_id(seq: u64) -> String {
    format!("{seq:08x}")
}

/// Text for the model; a blob stays a reference, redacted content stays `[redacted]`.
fn text_of(p: &Payload) -> String {
    match p {
        Payload::Inline(s) => s.clone(),
        Payload::Blob(b) => {
            format!("[content stored as blob sha256:{} ({} bytes)]", chain::to_hex(&b.sha256), b.len)
        }
        Payload::Redacted => "[redacted]".to_owned(),
    }
}

/// A JSON field's text as plain text: a JSON string is unwrapped, anything else stays JSON.
fn plain_of(p: &Payload) -> String {
    match p {
        Payload::Inline(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::String(inner)) => inner,
            _ => s.clone(),
        },
        other => text_of(other),
    }
}

/// Tool arguments: the model API takes an object, so anything else is wrapped as `{"value": …}`.
fn arguments_of(p: &Payload) -> Value {
    let v = match p {
        Payload::Inline(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => Value::String(text_of(other)),
    };
    if v.is_object() { v } else { json!({ "value": v }) }
}

fn attachment_text(a: &Attachment) -> String {
    let hex = chain::to_hex(&a.blob.sha256);
    format!(
        "[attachment {}: {}, {} bytes, blob sha256:{hex} (moltlog/blobs/sha256/{hex})]",
        a.name.as_deref().unwrap_or("unnamed"),
        a.blob.content_type,
        a.blob.len
    )
}

fn text_blocks(text: &Payload, attachments: &[Attachment]) -> Vec<Value> {
    let mut blocks = vec![json!({"type": "text", "text": text_of(text)})];
    blocks.extend(attachments.iter().map(|a| json!({"type": "text", "text": attachment_text(a)})));
    blocks
}

/// The API family pi-ai names for a provider; a provider it does not know keeps its own name.
fn api_of(provider: &str) -> String {
    match provider {
        "anthropic" => "anthropic-messages".into(),
        "openai" => "openai-responses".into(),
        "google" => "google-generative-ai".into(),
        other => other.to_owned(),
    }
}

/// One model turn being gathered: the assistant's text and tool calls, and its model calls.
struct Turn<'a> {
    first_seq: u64,
    ts_ms: u64,
    blocks: Vec<Value>,
    calls: Vec<&'a ModelCall>,
    tool_calls: bool,
}

impl Turn<'_> {
    fn into_entry(self, s: &SessionState) -> Entry {
        let (input, output) = self.calls.iter().fold((0u64, 0u64), |(i, o), c| {
            (i.saturating_add(c.input_tokens), o.saturating_add(c.output_tokens))
        });
        let last = self.calls.last();
        let (provider, model) = match (last, &s.model) {
            (Some(c), _) => (c.provider.clone(), c.model.clone()),
            (None, Some(m)) => (m.provider.clone(), m.model.clone()),
            (None, None) => ("unknown".to_owned(), "unknown".to_owned()),
        };
        let truncated =
            last.and_then(|c| c.stop_reason.as_deref()).is_some_and(|r| matches!(r, "max_tokens" | "length"));
        let stop_reason = if truncated {
            "length"
        } else if self.tool_calls {
            "toolUse"
        } else {
            "stop"
        };
        let zero_cost = json!({"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0});
        let message = json!({
            "role": "assistant",
            "content": self.blocks,
            "api": api_of(&provider),
            "provider": provider,
            "model": model,
            "usage": {
                "input": input,
                "output": output,
                "cacheRead": 0,
                "cacheWrite": 0,
                "totalTokens": input.saturating_add(output),
                "cost": zero_cost,
            },
            "stopReason": stop_reason,
            "timestamp": self.ts_ms,
        });
        message_entry(self.first_seq, self.ts_ms, message)
    }
}

fn message_entry(seq: u64, ts_ms: u64, message: Value) -> Entry {
    let mut fields = Map::new();
    fields.insert("message".into(), message);
    Entry { kind: "message", id: entry_id(seq), ts_ms, fields }
}

/// A line the runtime keeps but never sends to the model.
fn custom_entry(seq: u64, ts_ms: u64, custom_type: &str, data: Value) -> Entry {
    let mut fields = Map::new();
    fields.insert("customType".into(), custom_type.into());
    fields.insert("data".into(), data);
    Entry { kind: "custom", id: entry_id(seq), ts_ms, fields }
}

/// The entries of the transcript (`items`: the transcript's events and the model calls among
/// them), in log order, the compaction included.
pub(super) fn entries(s: &SessionState, items: &[Item]) -> Vec<Entry> {
    let cseq = s.compaction.as_ref().map(|c| c.seq);
    let mut out: Vec<(u64, Entry)> = Vec::new();
    let mut turn: Option<Turn> = None;
    let mut pending: Vec<&ModelCall> = Vec::new();
    // Tool call id → tool name, for the calls already rendered.
    let mut called: BTreeMap<&str, &str> = BTreeMap::new();
    let close = |turn: &mut Option<Turn>, out: &mut Vec<(u64, Entry)>| {
        if let Some(t) = turn.take() {
            out.push((t.first_seq, t.into_entry(s)));
        }
    };
    for item in items {
        let (seq, ts_ms) = (item.header.seq, item.header.ts_ms);
        // A turn never spans the compaction.
        if turn.as_ref().is_some_and(|t| cseq.is_some_and(|c| t.first_seq < c && seq > c)) {
            close(&mut turn, &mut out);
        }
        let assistant_block = match &item.body {
            EventBody::ModelCall(m) => {
                match turn.as_mut() {
                    Some(t) => t.calls.push(m),
                    None => pending.push(m),
                }
                continue;
            }
            EventBody::ChatMessage(m) if m.role == Role::Assistant => text_blocks(&m.text, &m.attachments),
            EventBody::ToolCall(c) => {
                called.insert(&c.call_id, &c.tool);
                vec![
                    json!({"type": "toolCall", "id": c.call_id, "name": c.tool, "arguments": arguments_of(&c.input)}),
                ]
            }
            _ => Vec::new(),
        };
        if !assistant_block.is_empty() {
            let t = turn.get_or_insert_with(|| Turn {
                first_seq: seq,
                ts_ms,
                blocks: Vec::new(),
                calls: std::mem::take(&mut pending),
                tool_calls: false,
            });
            t.tool_calls |= matches!(item.body, EventBody::ToolCall(_));
            t.blocks.extend(assistant_block);
            continue;
        }
        close(&mut turn, &mut out);
        pending.clear();
        let entry = match &item.body {
            EventBody::ChatMessage(m) if m.role == Role::User => {
                let mut msg = json!({"role": "user", "content": text_blocks(&m.text, &m.attachments), "timestamp": ts_ms});
                if let Some(a) = &m.author {
                    msg["author"] = a.clone().into();
                }
                message_entry(seq, ts_ms, msg)
            }
            // The runtime's transcript has no system role: kept, not sent.
            EventBody::ChatMessage(m) => {
                custom_entry(seq, ts_ms, "moltlog.system_message", json!({"text": text_of(&m.text)}))
            }
            EventBody::ToolResult(r) => match called.get(r.call_id.as_str()) {
                Some(tool) => message_entry(
                    seq,
                    ts_ms,
                    json!({
                        "role": "toolResult",
                        "toolCallId": r.call_id,
                        "toolName": tool,
                        "content": [{"type": "text", "text": plain_of(&r.output)}],
                        "isError": r.is_error,
                        "timestamp": ts_ms,
                    }),
                ),
                // Its call is before the kept part: a result without a call would be refused.
                None => custom_entry(
                    seq,
                    ts_ms,
                    "moltlog.tool_result_without_call",
                    json!({"toolCallId": r.call_id, "text": plain_of(&r.output), "isError": r.is_error}),
                ),
            },
            _ => continue,
        };
        out.push((seq, entry));
    }
    close(&mut turn, &mut out);
    with_compaction(s, items, out)
}

/// Puts the compaction entry where it happened: after the entries it kept, before the later ones.
fn with_compaction(s: &SessionState, items: &[Item], out: Vec<(u64, Entry)>) -> Vec<Entry> {
    let Some(c) = &s.compaction else { return out.into_iter().map(|(_, e)| e).collect() };
    let at = out.iter().position(|(seq, _)| *seq > c.seq).unwrap_or(out.len());
    let cid = entry_id(c.seq);
    let first_kept =
        out.iter().find(|(_, e)| e.kind == "message").map_or_else(|| cid.clone(), |(_, e)| e.id.clone());
    let ts_ms = items.iter().find(|i| i.header.seq > c.seq).map_or(s.last_ts_ms, |i| i.header.ts_ms);
    let mut fields = Map::new();
    fields.insert("summary".into(), text_of(&c.summary).into());
    fields.insert("firstKeptEntryId".into(), first_kept.into());
    fields.insert("tokensBefore".into(), c.tokens_before.into());
    let mut entries: Vec<Entry> = out.into_iter().map(|(_, e)| e).collect();
    entries.insert(at, Entry { kind: "compaction", id: cid, ts_ms, fields });
    entries
}
