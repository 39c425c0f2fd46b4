//! The transcript: what the agent's context is built from after its last compaction.

use serde::{Deserialize, Serialize};

use crate::event::{Actor, Attachment, ChannelRef, Payload, Role};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub seq: u64,
    pub ts_ms: u64,
    pub actor: Actor,
    pub item: TranscriptItem,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TranscriptItem {
    Message {
        role: Role,
        author: Option<String>,
        channel: Option<ChannelRef>,
        text: Payload,
        attachments: Vec<Attachment>,
    },
    ToolCall {
        call_id: String,
        tool: String,
        input: Payload,
    },
    /// The tool's name is not repeated here: it belongs to the call, which renderers look up by
    /// `call_id` (so a redacted call cannot change what its result shows).
    ToolResult {
        call_id: String,
        output: Payload,
        is_error: bool,
    },
}

impl TranscriptItem {
    /// Erase the content as the event's skeleton does (see `event::skeleton`).
    pub(crate) fn redact(&mut self) {
        match self {
            TranscriptItem::Message { text, attachments, .. } => {
                *text = Payload::Redacted;
                attachments.clear();
            }
            TranscriptItem::ToolCall { input, .. } => *input = Payload::Redacted,
            TranscriptItem::ToolResult { output, .. } => *output = Payload::Redacted,
        }
    }
}
