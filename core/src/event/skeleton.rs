//! The skeleton of a body: the body with its content erased.
//!
//! A redaction replaces a stored body by its skeleton. The header commits to both digests, so the
//! chain still verifies, and the skeleton keeps every field the state reducer needs for structure
//! (call ids, roles, channels, urls), so a replay over redacted records folds to the same state as
//! the live session did once it applied the redaction event.

use super::{BlobRef, EventBody, Lifecycle, Payload};

fn blob(p: &Payload) -> Option<&BlobRef> {
    match p {
        Payload::Blob(b) => Some(b),
        _ => None,
    }
}

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

    /// Every blob the body references (payloads moved to blobs, attachments, screenshots).
    pub fn blob_refs(&self) -> Vec<&BlobRef> {
        match self {
            EventBody::ChatMessage(m) => {
                blob(&m.text).into_iter().chain(m.attachments.iter().map(|a| &a.blob)).collect()
            }
            EventBody::ToolCall(c) => blob(&c.input).into_iter().collect(),
            EventBody::ToolResult(r) => blob(&r.output).into_iter().collect(),
            EventBody::BrowserAction(a) => [Some(&a.detail), Some(&a.result), a.screenshot.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(blob)
                .collect(),
            EventBody::WebhookReceived(w) => blob(&w.payload).into_iter().collect(),
            EventBody::Lifecycle(Lifecycle::Compacted { summary, .. }) => blob(summary).into_iter().collect(),
            EventBody::Lifecycle(_)
            | EventBody::ModelCall(_)
            | EventBody::DeliveryReceipt(_)
            | EventBody::Redaction(_) => vec![],
        }
    }

    /// The body with every content field erased; structure kept.
    pub fn skeleton(&self) -> EventBody {
        let mut s = self.clone();
        match &mut s {
            EventBody::ChatMessage(m) => {
                m.text = Payload::Redacted;
                m.attachments.clear();
            }
            EventBody::ToolCall(c) => c.input = Payload::Redacted,
            EventBody::ToolResult(r) => r.output = Payload::Redacted,
            EventBody::BrowserAction(a) => {
                a.detail = Payload::Redacted;
                a.result = Payload::Redacted;
                if let Some(shot) = &mut a.screenshot {
                    *shot = Payload::Redacted;
                }
            }
            EventBody::WebhookReceived(w) => w.payload = Payload::Redacted,
            EventBody::Lifecycle(Lifecycle::Compacted { summary, .. }) => *summary = Payload::Redacted,
            EventBody::Lifecycle(_)
            | EventBody::ModelCall(_)
            | EventBody::DeliveryReceipt(_)
            | EventBody::Redaction(_) => {}
        }
        s
    }
}
