//! Parsing append requests.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::DtoError;
use super::json::MAX_JSON_DEPTH;
use crate::chain;
use crate::engine::NewEvent;
use crate::event::{
    Attachment, BlobRef, BrowserAction, BrowserActionKind, ChannelRef, ChatMessage, DeliveryOutcome,
    DeliveryReceipt, EventBody, EventKind, Lifecycle, ModelCall, Payload, Platform, Redaction, Role,
    ToolCall, ToolResult, WebhookReceived,
};

/// A parsed append request: one event or a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInput {
    pub events: Vec<NewEvent>,
    pub expected_seq: Option<u64>,
    pub idempotency_key: Option<String>,
}

type RawMap<'a> = BTreeMap<String, &'a RawValue>;

/// The fields of one JSON object, taken one by one; what is left at the end is unknown.
struct Fields<'a> {
    map: RawMap<'a>,
    path: String,
}

impl<'a> Fields<'a> {
    fn parse(raw: &'a RawValue, path: &str) -> Result<Fields<'a>, DtoError> {
        let map: RawMap<'a> = serde_json::from_str(raw.get())
            .map_err(|_| DtoError::new("invalid_field", path, "expected a JSON object"))?;
        Ok(Fields { map, path: path.to_owned() })
    }

    fn at(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) }
    }

    fn take(&mut self, name: &str) -> Option<&'a RawValue> {
        self.map.remove(name).filter(|v| v.get() != "null")
    }

    fn opt<T: DeserializeOwned>(&mut self, name: &str, what: &str) -> Result<Option<T>, DtoError> {
        match self.take(name) {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|_| DtoError::new("invalid_field", self.at(name), format!("expected {what}"))),
        }
    }

    fn req<T: DeserializeOwned>(&mut self, name: &str, what: &str) -> Result<T, DtoError> {
        self.opt(name, what)?
            .ok_or_else(|| DtoError::new("missing_field", self.at(name), format!("required: {what}")))
    }

    /// A field holding any JSON value, kept as the client's text (at most `MAX_JSON_DEPTH` deep).
    fn json(&mut self, name: &str, required: bool) -> Result<Payload, DtoError> {
        match self.map.remove(name) {
            Some(raw) => {
                let depth = super::json::depth(raw.get());
                if depth > MAX_JSON_DEPTH {
                    return Err(DtoError::new(
                        "json_too_deep",
                        self.at(name),
                        format!(
                            "JSON nested {depth} deep; at most {MAX_JSON_DEPTH} levels of arrays and objects"
                        ),
                    ));
                }
                Ok(Payload::Inline(raw.get().to_owned()))
            }
            None if required => {
                Err(DtoError::new("missing_field", self.at(name), "required: any JSON value"))
            }
            None => Ok(Payload::Inline("null".to_owned())),
        }
    }

    fn text(&mut self, name: &str) -> Result<Payload, DtoError> {
        Ok(Payload::Inline(self.opt::<String>(name, "a string")?.unwrap_or_default()))
    }

    fn finish(self) -> Result<(), DtoError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(DtoError::new("unknown_field", self.at(k), "unknown field")),
        }
    }
}

/// Parses an append request body: one event object (with `kind`), or
/// `{"events":[…], "expected_seq":N, "idempotency_key":"…"}`.
pub fn parse_append(body: &[u8]) -> Result<AppendInput, DtoError> {
    let text = std::str::from_utf8(body).map_err(|_| DtoError::new("invalid_json", "(body)", "not UTF-8"))?;
    let raw: &RawValue = serde_json::from_str(text)
        .map_err(|e| DtoError::new("invalid_json", "(body)", format!("malformed JSON: {e}")))?;
    let mut top = Fields::parse(raw, "")
        .map_err(|_| DtoError::new("invalid_json", "(body)", "expected a JSON object"))?;
    if top.map.contains_key("kind") {
        let expected_seq = top.opt("expected_seq", "a non-negative integer")?;
        let event = parse_fields(top)?;
        return Ok(AppendInput { events: vec![event], expected_seq, idempotency_key: None });
    }
    let Some(events_raw) = top.take("events") else {
        return Err(DtoError::new(
            "invalid_json",
            "(body)",
            "expected an event object with \"kind\" or a batch object with \"events\"",
        ));
    };
    let expected_seq = top.opt("expected_seq", "a non-negative integer")?;
    let idempotency_key = top.opt("idempotency_key", "a string")?;
    top.finish()?;
    let items: Vec<&RawValue> = serde_json::from_str(events_raw.get())
        .map_err(|_| DtoError::new("invalid_field", "events", "expected an array of event objects"))?;
    let events = items
        .into_iter()
        .enumerate()
        .map(|(i, raw)| parse_fields(Fields::parse(raw, &format!("events[{i}]"))?))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AppendInput { events, expected_seq, idempotency_key })
}

/// Parses one event object.
pub fn parse_event(raw: &RawValue) -> Result<NewEvent, DtoError> {
    parse_fields(Fields::parse(raw, "")?)
}

fn parse_fields(mut f: Fields<'_>) -> Result<NewEvent, DtoError> {
    let idempotency_key = f.opt("idempotency_key", "a string")?;
    let causation = f.opt("causation", "a seq (positive integer)")?;
    let kind_name: String = f.req("kind", "an event kind string")?;
    let kind = EventKind::from_name(&kind_name).ok_or_else(|| {
        let known: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
        DtoError::new(
            "unknown_kind",
            f.at("kind"),
            format!("unknown kind {kind_name:?}; known: {}", known.join(", ")),
        )
    })?;
    let body = body(kind, &mut f)?;
    f.finish()?;
    Ok(NewEvent { body, idempotency_key, causation })
}

fn body(kind: EventKind, f: &mut Fields<'_>) -> Result<EventBody, DtoError> {
    Ok(match kind {
        EventKind::ChatMessage => EventBody::ChatMessage(ChatMessage {
            role: role(f)?,
            channel: channel(f)?,
            author: f.opt("author", "a string")?,
            text: f.text("text")?,
            attachments: attachments(f)?,
        }),
        EventKind::ToolCall => EventBody::ToolCall(ToolCall {
            call_id: f.req("call_id", "a string")?,
            tool: f.req("tool", "a string")?,
            input: f.json("input", false)?,
        }),
        EventKind::ToolResult => EventBody::ToolResult(ToolResult {
            call_id: f.req("call_id", "a string")?,
            output: f.json("output", false)?,
            is_error: f.opt("is_error", "a boolean")?.unwrap_or(false),
            duration_ms: f.opt("duration_ms", "a non-negative integer")?,
        }),
        EventKind::BrowserAction => {
            let action: String = f.req("action", "a browser action name")?;
            let action = BrowserActionKind::from_name(&action).ok_or_else(|| {
                let known: Vec<_> = BrowserActionKind::ALL.iter().map(|k| k.name()).collect();
                DtoError::new(
                    "invalid_field",
                    f.at("action"),
                    format!("unknown action {action:?}; known: {}", known.join(", ")),
                )
            })?;
            EventBody::BrowserAction(BrowserAction {
                action,
                target_id: f.opt("target_id", "a string")?,
                url: f.opt("url", "a string")?,
                detail: f.text("detail")?,
                result: f.json("result", false)?,
                error: f.opt("error", "a string")?,
                screenshot: blob_field(f, "screenshot")?.map(Payload::Blob),
            })
        }
        EventKind::ModelCall => EventBody::ModelCall(ModelCall {
            provider: f.req("provider", "a string")?,
            model: f.req("model", "a string")?,
            input_tokens: f.opt("input_tokens", "a non-negative integer")?.unwrap_or(0),
            output_tokens: f.opt("output_tokens", "a non-negative integer")?.unwrap_or(0),
            latency_ms: f.opt("latency_ms", "a non-negative integer")?.unwrap_or(0),
            stop_reason: f.opt("stop_reason", "a string")?,
        }),
        EventKind::WebhookReceived => {
            let content_type: String =
                f.opt("content_type", "a string")?.unwrap_or_else(|| "application/json".into());
            // JSON payloads keep the client's JSON text; any other content type carries its text
            // as a JSON string, stored unquoted (rendered back the same way).
            let payload = if is_json_type(&content_type) {
                f.json("payload", true)?
            } else {
                Payload::Inline(
                    f.req("payload", "a string (the payload text, as the content type is not JSON)")?,
                )
            };
            EventBody::WebhookReceived(WebhookReceived {
                source: f.req("source", "a string")?,
                delivery_id: f.opt("delivery_id", "a string")?,
                event_type: f.opt("event_type", "a string")?,
                verified: f.opt("verified", "a boolean")?.unwrap_or(false),
                content_type,
                payload,
            })
        }
        EventKind::Lifecycle => EventBody::Lifecycle(lifecycle(f)?),
        EventKind::DeliveryReceipt => EventBody::DeliveryReceipt(DeliveryReceipt {
            outbox_seq: f.req("outbox_seq", "a seq")?,
            attempt: f.req("attempt", "a positive integer")?,
            outcome: outcome(f)?,
        }),
        EventKind::Redaction => EventBody::Redaction(Redaction {
            target_seq: f.req("target_seq", "a seq")?,
            reason: f.req("reason", "a string")?,
        }),
    })
}

/// Whether a media type carries JSON (`application/json`, `application/vnd.x+json`, …).
pub fn is_json_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

fn role(f: &mut Fields<'_>) -> Result<Role, DtoError> {
    let name: String = f.req("role", "one of user, assistant, system")?;
    match name.as_str() {
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        "system" => Ok(Role::System),
        _ => Err(DtoError::new(
            "invalid_field",
            f.at("role"),
            format!("unknown role {name:?}; known: user, assistant, system"),
        )),
    }
}

fn channel(f: &mut Fields<'_>) -> Result<Option<ChannelRef>, DtoError> {
    let Some(raw) = f.take("channel") else { return Ok(None) };
    let mut c = Fields::parse(raw, &f.at("channel"))?;
    let platform: String = c.req("type", "a platform name (telegram, slack, discord, web, …)")?;
    let channel = ChannelRef {
        platform: Platform::from_name(&platform),
        chat_id: c.req("chat_id", "a string")?,
        message_id: c.opt("message_id", "a string")?,
        thread_id: c.opt("thread_id", "a string")?,
    };
    c.finish()?;
    Ok(Some(channel))
}

fn blob_ref(raw: &RawValue, path: &str) -> Result<BlobRef, DtoError> {
    let mut b = Fields::parse(raw, path)?;
    let hex: String = b.req("sha256", "a hex SHA-256")?;
    let sha256 = chain::from_hex(&hex)
        .ok_or_else(|| DtoError::new("invalid_field", b.at("sha256"), "expected 64 hex digits"))?;
    let blob = BlobRef {
        sha256,
        len: b.req("len", "a byte count")?,
        content_type: b.opt("content_type", "a string")?.unwrap_or_else(|| "application/octet-stream".into()),
    };
    b.finish()?;
    Ok(blob)
}

fn blob_field(f: &mut Fields<'_>, name: &str) -> Result<Option<BlobRef>, DtoError> {
    let path = f.at(name);
    f.take(name).map(|raw| blob_ref(raw, &path)).transpose()
}

fn attachments(f: &mut Fields<'_>) -> Result<Vec<Attachment>, DtoError> {
    let Some(raw) = f.take("attachments") else { return Ok(vec![]) };
    let path = f.at("attachments");
    let items: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| DtoError::new("invalid_field", &path, "expected an array of blob references"))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let at = format!("{path}[{i}]");
            let mut a = Fields::parse(raw, &at)?;
            let name = a.opt("name", "a string")?;
            let blob_raw = a.map.remove("blob").ok_or_else(|| {
                DtoError::new("missing_field", format!("{at}.blob"), "required: a blob reference")
            })?;
            a.finish()?;
            Ok(Attachment { name, blob: blob_ref(blob_raw, &format!("{at}.blob"))? })
        })
        .collect()
}

fn lifecycle(f: &mut Fields<'_>) -> Result<Lifecycle, DtoError> {
    let event: String = f.req("event", "a lifecycle event name")?;
    Ok(match event.as_str() {
        "session_started" => Lifecycle::SessionStarted { agent: f.opt("agent", "a string")? },
        "sandbox_attached" => Lifecycle::SandboxAttached { sandbox_id: f.req("sandbox_id", "a string")? },
        "sandbox_evicted" => Lifecycle::SandboxEvicted {
            sandbox_id: f.opt("sandbox_id", "a string")?,
            reason: f.opt("reason", "a string")?.unwrap_or_default(),
        },
        "restored" => Lifecycle::Restored {
            sandbox_id: f.opt("sandbox_id", "a string")?,
            head_seq: f.req("head_seq", "a seq")?,
        },
        "compacted" => Lifecycle::Compacted {
            summary: f.text("summary")?,
            first_kept_seq: f.req("first_kept_seq", "a seq")?,
            tokens_before: f.opt("tokens_before", "a non-negative integer")?.unwrap_or(0),
        },
        "recovered_from_archive" => Lifecycle::RecoveredFromArchive {
            snapshot_seq: f.opt("snapshot_seq", "a seq")?,
            segments: f.opt("segments", "a count")?.unwrap_or(0),
            last_seq: f.req("last_seq", "a seq")?,
        },
        _ => {
            return Err(DtoError::new(
                "invalid_field",
                f.at("event"),
                format!(
                    "unknown lifecycle event {event:?}; known: session_started, sandbox_attached, sandbox_evicted, restored, compacted, recovered_from_archive"
                ),
            ));
        }
    })
}

fn outcome(f: &mut Fields<'_>) -> Result<DeliveryOutcome, DtoError> {
    let name: String = f.req("outcome", "one of delivered, failed, dead_lettered")?;
    Ok(match name.as_str() {
        "delivered" => DeliveryOutcome::Delivered { remote_id: f.opt("remote_id", "a string")? },
        "failed" => DeliveryOutcome::Failed {
            error: f.req("error", "a string")?,
            retry_at_ms: f.req("retry_at_ms", "a time in ms")?,
        },
        "dead_lettered" => DeliveryOutcome::DeadLettered { error: f.req("error", "a string")? },
        _ => {
            return Err(DtoError::new("invalid_field", f.at("outcome"), format!("unknown outcome {name:?}")));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: u32) -> String {
        let d = depth as usize;
        format!("{}1{}", "[".repeat(d), "]".repeat(d))
    }

    #[test]
    fn json_payloads_up_to_the_depth_limit_are_kept_exactly() {
        let text = nested(MAX_JSON_DEPTH);
        let body = format!(r#"{{"kind":"tool_call","call_id":"c","tool":"t","input":{text}}}"#);
        let input = parse_append(body.as_bytes()).unwrap();
        let EventBody::ToolCall(c) = &input.events[0].body else { panic!("a tool call") };
        assert_eq!(c.input, Payload::Inline(text));
    }

    #[test]
    fn json_payloads_past_the_depth_limit_are_refused() {
        for depth in [MAX_JSON_DEPTH + 1, 128, 129, 100_000] {
            let text = nested(depth);
            for body in [
                format!(r#"{{"kind":"tool_call","call_id":"c","tool":"t","input":{text}}}"#),
                format!(r#"{{"events":[{{"kind":"tool_result","call_id":"c","output":{{"x":{text}}}}}]}}"#),
                format!(r#"{{"kind":"webhook_received","source":"s","payload":{text}}}"#),
            ] {
                let e = parse_append(body.as_bytes()).unwrap_err();
                assert_eq!(e.code, "json_too_deep", "depth {depth}: {e}");
            }
        }
        let e = parse_append(
            format!(r#"{{"kind":"tool_call","call_id":"c","tool":"t","input":{}}}"#, nested(101)).as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.path, "input");
    }
}
