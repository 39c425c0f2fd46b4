//! Events as they are stored: a header that the hash chain covers, and a body the header commits
//! to by digest.
//!
//! Storage types are encoded with postcard, which is not self-describing: enums are externally
//! tagged, integers are u32/u64, and new variants are only ever added at the end.

pub mod blob_check;
mod body;
mod skeleton;

pub use blob_check::BlobRefError;
pub use body::*;

use serde::{Deserialize, Serialize};

use crate::chain::Hash;
use crate::id::EventId;

/// What every event carries beside its body. The chain hashes these bytes as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHeader {
    /// Position in the session's log, contiguous from 1.
    pub seq: u64,
    pub id: EventId,
    /// Append time (server clock), never decreasing along the log.
    pub ts_ms: u64,
    pub kind: EventKind,
    pub actor: Actor,
    /// The seq of the event that caused this one (a reply's inbound message, a result's call).
    pub causation: Option<u64>,
    /// The client's key for de-duplicating retries of this event, when it gave one.
    pub idempotency_key: Option<String>,
    /// Length of the full encoded body.
    pub body_len: u32,
    /// SHA-256 of the full encoded body.
    pub body_sha256: Hash,
    /// SHA-256 of the encoded body skeleton: what remains once the body is redacted. Lets a
    /// redacted record stay verifiable (see `skeleton`).
    pub skeleton_sha256: Hash,
}

/// The body's kind, repeated in the header so that a reader can filter without decoding bodies
/// and a redacted record still says what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKind {
    ChatMessage,
    ToolCall,
    ToolResult,
    BrowserAction,
    ModelCall,
    WebhookReceived,
    Lifecycle,
    DeliveryReceipt,
    Redaction,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::ChatMessage,
        EventKind::ToolCall,
        EventKind::ToolResult,
        EventKind::BrowserAction,
        EventKind::ModelCall,
        EventKind::WebhookReceived,
        EventKind::Lifecycle,
        EventKind::DeliveryReceipt,
        EventKind::Redaction,
    ];

    /// The snake_case name used by the JSON API.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ChatMessage => "chat_message",
            EventKind::ToolCall => "tool_call",
            EventKind::ToolResult => "tool_result",
            EventKind::BrowserAction => "browser_action",
            EventKind::ModelCall => "model_call",
            EventKind::WebhookReceived => "webhook_received",
            EventKind::Lifecycle => "lifecycle",
            EventKind::DeliveryReceipt => "delivery_receipt",
            EventKind::Redaction => "redaction",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Index into per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Who appended the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Actor {
    /// The session's Durable Object itself (lifecycle, delivery receipts).
    System,
    /// The agent runtime in its sandbox.
    Runtime,
    /// The chat messaging bridge (inbound platform messages).
    Bridge,
    /// An inbound webhook integration.
    Webhook,
    /// A person or operator tool (redactions, manual appends).
    Operator,
}

impl Actor {
    pub const ALL: [Actor; 5] =
        [Actor::System, Actor::Runtime, Actor::Bridge, Actor::Webhook, Actor::Operator];

    pub fn name(self) -> &'static str {
        match self {
            Actor::System => "system",
            Actor::Runtime => "runtime",
            Actor::Bridge => "bridge",
            Actor::Webhook => "webhook",
            Actor::Operator => "operator",
        }
    }

    pub fn from_name(name: &str) -> Option<Actor> {
        Actor::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl EventBody {
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::ChatMessage(_) => EventKind::ChatMessage,
            EventBody::ToolCall(_) => EventKind::ToolCall,
            EventBody::ToolResult(_) => EventKind::ToolResult,
            EventBody::BrowserAction(_) => EventKind::BrowserAction,
            EventBody::ModelCall(_) => EventKind::ModelCall,
            EventBody::WebhookReceived(_) => EventKind::WebhookReceived,
            EventBody::Lifecycle(_) => EventKind::Lifecycle,
            EventBody::DeliveryReceipt(_) => EventKind::DeliveryReceipt,
            EventBody::Redaction(_) => EventKind::Redaction,
        }
    }
}
