//! Body types of format v1, one per event kind.

use serde::{Deserialize, Serialize};

use crate::chain::Hash;

/// An event's body. Variants are only ever appended (postcard encodes the variant index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventBody {
    ChatMessage(ChatMessage),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    BrowserAction(BrowserAction),
    ModelCall(ModelCall),
    WebhookReceived(WebhookReceived),
    Lifecycle(Lifecycle),
    DeliveryReceipt(DeliveryReceipt),
    Redaction(Redaction),
}

/// Content that may be large or sensitive: kept inline, moved to an R2 blob when large, or
/// erased by a redaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Text kept in the event (JSON text where the field holds JSON).
    Inline(String),
    /// Content stored as a content-addressed blob (`blobs/sha256/{hex}` in R2).
    Blob(BlobRef),
    /// Content erased by a redaction event.
    Redacted,
}

impl Payload {
    pub fn inline(&self) -> Option<&str> {
        match self {
            Payload::Inline(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_redacted(&self) -> bool {
        matches!(self, Payload::Redacted)
    }
}

/// A reference to a content-addressed blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub sha256: Hash,
    pub len: u64,
    pub content_type: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    User,
    Assistant,
    System,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }
}

/// The chat platform a message came from or goes to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Platform {
    Telegram,
    Slack,
    Discord,
    /// A web chat or the agent's own UI.
    Web,
    Other(String),
}

impl Platform {
    pub fn name(&self) -> &str {
        match self {
            Platform::Telegram => "telegram",
            Platform::Slack => "slack",
            Platform::Discord => "discord",
            Platform::Web => "web",
            Platform::Other(s) => s,
        }
    }

    pub fn from_name(name: &str) -> Platform {
        match name {
            "telegram" => Platform::Telegram,
            "slack" => Platform::Slack,
            "discord" => Platform::Discord,
            "web" => Platform::Web,
            other => Platform::Other(other.to_owned()),
        }
    }
}

/// Where on a chat platform a message lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRef {
    pub platform: Platform,
    pub chat_id: String,
    pub message_id: Option<String>,
    pub thread_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: Option<String>,
    pub blob: BlobRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    /// Set on inbound platform messages and on assistant replies to be delivered there.
    pub channel: Option<ChannelRef>,
    pub author: Option<String>,
    pub text: Payload,
    pub attachments: Vec<Attachment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub call_id: String,
    pub tool: String,
    /// JSON text.
    pub input: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    /// JSON text.
    pub output: Payload,
    pub is_error: bool,
    pub duration_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BrowserActionKind {
    Navigate,
    Reload,
    /// Back/forward through the page history.
    History,
    Click,
    Type,
    Screenshot,
    Evaluate,
    CreateTarget,
    CloseTarget,
    /// Any other CDP command worth recording, named in `detail`.
    RawCdp,
}

impl BrowserActionKind {
    pub const ALL: [BrowserActionKind; 10] = [
        BrowserActionKind::Navigate,
        BrowserActionKind::Reload,
        BrowserActionKind::History,
        BrowserActionKind::Click,
        BrowserActionKind::Type,
        BrowserActionKind::Screenshot,
        BrowserActionKind::Evaluate,
        BrowserActionKind::CreateTarget,
        BrowserActionKind::CloseTarget,
        BrowserActionKind::RawCdp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BrowserActionKind::Navigate => "navigate",
            BrowserActionKind::Reload => "reload",
            BrowserActionKind::History => "history",
            BrowserActionKind::Click => "click",
            BrowserActionKind::Type => "type",
            BrowserActionKind::Screenshot => "screenshot",
            BrowserActionKind::Evaluate => "evaluate",
            BrowserActionKind::CreateTarget => "create_target",
            BrowserActionKind::CloseTarget => "close_target",
            BrowserActionKind::RawCdp => "raw_cdp",
        }
    }

    pub fn from_name(name: &str) -> Option<BrowserActionKind> {
        BrowserActionKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserAction {
    pub action: BrowserActionKind,
    /// The CDP target (tab) the action ran in.
    pub target_id: Option<String>,
    /// The page url after the action (for navigation: where it went).
    pub url: Option<String>,
    /// What was done: typed text, an expression, a selector, a CDP method (may be sensitive).
    pub detail: Payload,
    /// The outcome as JSON text or a summary.
    pub result: Payload,
    pub error: Option<String>,
    /// The screenshot image, stored as a blob.
    pub screenshot: Option<Payload>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCall {
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub latency_ms: u64,
    pub stop_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReceived {
    /// The integration's name (`github`, a configured hook name, …).
    pub source: String,
    pub delivery_id: Option<String>,
    pub event_type: Option<String>,
    /// Whether the sender's signature was checked and held.
    pub verified: bool,
    pub content_type: String,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    SessionStarted {
        agent: Option<String>,
    },
    SandboxAttached {
        sandbox_id: String,
    },
    SandboxEvicted {
        sandbox_id: Option<String>,
        reason: String,
    },
    /// A sandbox rebuilt its session from this log up to `head_seq`.
    Restored {
        sandbox_id: Option<String>,
        head_seq: u64,
    },
    /// The agent compacted its context: transcript entries before `first_kept_seq` are replaced
    /// by `summary`.
    Compacted {
        summary: Payload,
        first_kept_seq: u64,
        tokens_before: u64,
    },
    /// The Durable Object lost its storage and rebuilt the log from the R2 archive.
    RecoveredFromArchive {
        snapshot_seq: Option<u64>,
        segments: u32,
        last_seq: u64,
    },
    /// Recovery met a damaged or missing archive: seqs `first_seq..=last_seq` were assigned but
    /// are gone. This event sits at seq `last_seq + 1` and links to the record before
    /// `first_seq`, so the chain stays verifiable across the gap and no lost seq is reused.
    RecordsLost {
        first_seq: u64,
        last_seq: u64,
        reason: String,
    },
}

impl Lifecycle {
    /// The seqs a `RecordsLost` event says are gone.
    pub fn lost_range(&self) -> Option<(u64, u64)> {
        match self {
            Lifecycle::RecordsLost { first_seq, last_seq, .. } => Some((*first_seq, *last_seq)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReceipt {
    /// The seq of the chat message being delivered.
    pub outbox_seq: u64,
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryOutcome {
    Delivered {
        remote_id: Option<String>,
    },
    /// This attempt failed; the next one is due at `retry_at_ms`.
    Failed {
        error: String,
        retry_at_ms: u64,
    },
    /// Given up: the message is visible as failed.
    DeadLettered {
        error: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    pub target_seq: u64,
    pub reason: String,
}
