//! Constructors for common bodies: shorthand for tests, benchmarks, the simulation and fixtures.

use crate::event::{
    BrowserAction, BrowserActionKind, ChannelRef, ChatMessage, EventBody, Lifecycle, ModelCall, Payload,
    Platform, Redaction, Role, ToolCall, ToolResult, WebhookReceived,
};

pub fn chat(role: Role, text: &str) -> EventBody {
    EventBody::ChatMessage(ChatMessage {
        role,
        channel: None,
        author: None,
        text: Payload::Inline(text.to_owned()),
        attachments: vec![],
    })
}

pub fn user(text: &str) -> EventBody {
    chat(Role::User, text)
}

/// An inbound message from a platform chat.
pub fn inbound(platform: Platform, chat_id: &str, message_id: &str, author: &str, text: &str) -> EventBody {
    EventBody::ChatMessage(ChatMessage {
        role: Role::User,
        channel: Some(ChannelRef {
            platform,
            chat_id: chat_id.to_owned(),
            message_id: Some(message_id.to_owned()),
            thread_id: None,
        }),
        author: Some(author.to_owned()),
        text: Payload::Inline(text.to_owned()),
        attachments: vec![],
    })
}

/// An assistant reply to be delivered to a platform chat.
pub fn reply(platform: Platform, chat_id: &str, text: &str) -> EventBody {
    EventBody::ChatMessage(ChatMessage {
        role: Role::Assistant,
        channel: Some(ChannelRef {
            platform,
            chat_id: chat_id.to_owned(),
            message_id: None,
            thread_id: None,
        }),
        author: None,
        text: Payload::Inline(text.to_owned()),
        attachments: vec![],
    })
}

pub fn tool_call(call_id: &str, tool: &str, input_json: &str) -> EventBody {
    EventBody::ToolCall(ToolCall {
        call_id: call_id.to_owned(),
        tool: tool.to_owned(),
        input: Payload::Inline(input_json.to_owned()),
    })
}

pub fn tool_result(call_id: &str, output_json: &str, is_error: bool) -> EventBody {
    EventBody::ToolResult(ToolResult {
        call_id: call_id.to_owned(),
        output: Payload::Inline(output_json.to_owned()),
        is_error,
        duration_ms: Some(12),
    })
}

pub fn navigate(target_id: &str, url: &str) -> EventBody {
    EventBody::BrowserAction(BrowserAction {
        action: BrowserActionKind::Navigate,
        target_id: Some(target_id.to_owned()),
        url: Some(url.to_owned()),
        detail: Payload::Inline(String::new()),
        result: Payload::Inline(String::new()),
        error: None,
        screenshot: None,
    })
}

pub fn model_call(model: &str, input_tokens: u64, output_tokens: u64) -> EventBody {
    EventBody::ModelCall(ModelCall {
        provider: "anthropic".into(),
        model: model.to_owned(),
        input_tokens,
        output_tokens,
        latency_ms: 800,
        stop_reason: Some("end_turn".into()),
    })
}

pub fn webhook(source: &str, delivery_id: &str, payload_json: &str) -> EventBody {
    EventBody::WebhookReceived(WebhookReceived {
        source: source.to_owned(),
        delivery_id: Some(delivery_id.to_owned()),
        event_type: None,
        verified: true,
        content_type: "application/json".into(),
        payload: Payload::Inline(payload_json.to_owned()),
    })
}

pub fn compacted(summary: &str, first_kept_seq: u64) -> EventBody {
    EventBody::Lifecycle(Lifecycle::Compacted {
        summary: Payload::Inline(summary.to_owned()),
        first_kept_seq,
        tokens_before: 1000,
    })
}

pub fn redaction(target_seq: u64, reason: &str) -> EventBody {
    EventBody::Redaction(Redaction { target_seq, reason: reason.to_owned() })
}

/// A log of `n` user messages ("message 0", …) appended through the engine: the stored records.
pub fn chat_log(session_key: &str, n: u64) -> Vec<crate::StoredRecord> {
    use crate::engine::{AppendRequest, Engine, Limits, Now};
    use crate::store::{LogStore, MemoryStore};
    let key = crate::key::SessionKey::parse(session_key).expect("a valid session key");
    let mut engine = Engine::new(key, Limits::default());
    let mut store = MemoryStore::new();
    for i in 0..n {
        let now = Now { now_ms: 1_700_000_000_000 + i, entropy: u128::from(i) };
        let req = AppendRequest::one(crate::Actor::Runtime, user(&format!("message {i}")));
        engine.append(&mut store, req, now).expect("a sample append");
    }
    store.read(1, u32::try_from(n).expect("a sample log fits a read")).expect("memory store reads")
}
