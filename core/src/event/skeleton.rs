//! The skeleton of a body: the body with its content erased.
//!
//! A redaction replaces a stored body by its skeleton. The header commits to both digests, so the
//! chain still verifies, and the skeleton keeps every field the state reducer needs for structure
//! (call ids, roles, channels, urls), so a replay over redacted records folds to the same state as
//! the live session did once it applied the redaction event.

use super::{
    BrowserAction, ChatMessage, EventBody, Lifecycle, Payload, ToolCall, ToolResult, WebhookReceived,
};

impl EventBody {
    /// Whether the body holds content that a redaction would erase.
    pub fn has_content(&self) -> bool {
        let live = |p: &Payload| !p.is_redacted();
        match self {
            EventBody::ChatMessage(m) => live(&m.text) || !m.attachments.is_empty(),
            EventBody::ToolCall(c) => live(&c.input),
            EventBody::ToolResult(r) => live(&r.output),
            EventBody::BrowserAction(a) => {
                live(&a.detail) || live(&a.result) || a.screenshot.as_ref().is_some_and(live)
            }
            EventBody::WebhookReceived(w) => live(&w.payload),
            EventBody::Lifecycle(Lifecycle::Compacted { summary, .. }) => live(summary),
            EventBody::Lifecycle(_)
            | EventBody::ModelCall(_)
            | EventBody::DeliveryReceipt(_)
            | EventBody::Redaction(_) => false,
        }
    }

    /// The body with every content field erased; structure kept.
    ///
    /// Built field by field rather than by cloning the body and erasing: the content is what
    /// makes a body large, and sealing computes every event's skeleton.
    pub fn skeleton(&self) -> EventBody {
        let erased = |_: &Payload| Payload::Redacted;
        match self {
            EventBody::ChatMessage(m) => EventBody::ChatMessage(ChatMessage {
                role: m.role,
                channel: m.channel.clone(),
                author: m.author.clone(),
                text: Payload::Redacted,
                attachments: Vec::new(),
            }),
            EventBody::ToolCall(c) => EventBody::ToolCall(ToolCall {
                call_id: c.call_id.clone(),
                tool: c.tool.clone(),
                input: Payload::Redacted,
            }),
            EventBody::ToolResult(r) => EventBody::ToolResult(ToolResult {
                call_id: r.call_id.clone(),
                output: Payload::Redacted,
                is_error: r.is_error,
                duration_ms: r.duration_ms,
            }),
            EventBody::BrowserAction(a) => EventBody::BrowserAction(BrowserAction {
                action: a.action,
                target_id: a.target_id.clone(),
                url: a.url.clone(),
                detail: Payload::Redacted,
                result: Payload::Redacted,
                error: a.error.clone(),
                screenshot: a.screenshot.as_ref().map(erased),
            }),
            EventBody::WebhookReceived(w) => EventBody::WebhookReceived(WebhookReceived {
                source: w.source.clone(),
                delivery_id: w.delivery_id.clone(),
                event_type: w.event_type.clone(),
                verified: w.verified,
                content_type: w.content_type.clone(),
                payload: Payload::Redacted,
            }),
            EventBody::Lifecycle(Lifecycle::Compacted { first_kept_seq, tokens_before, .. }) => {
                EventBody::Lifecycle(Lifecycle::Compacted {
                    summary: Payload::Redacted,
                    first_kept_seq: *first_kept_seq,
                    tokens_before: *tokens_before,
                })
            }
            EventBody::Lifecycle(_)
            | EventBody::ModelCall(_)
            | EventBody::DeliveryReceipt(_)
            | EventBody::Redaction(_) => self.clone(),
        }
    }
}
