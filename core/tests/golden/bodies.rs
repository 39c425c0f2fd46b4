//! Body constructors for the fixtures. They do not use `moltlog_core::sample`, whose defaults
//! other tests may tune: fixture bytes must change only when a format does.

use moltlog_core::EventBody;
use moltlog_core::event::{
    Attachment, BrowserAction, BrowserActionKind, ChannelRef, ChatMessage, Payload, Platform, Redaction,
    Role, ToolCall, ToolResult,
};

pub fn channel(platform: Platform, chat_id: &str, message_id: Option<&str>) -> ChannelRef {
    ChannelRef { platform, chat_id: chat_id.into(), message_id: message_id.map(Into::into), thread_id: None }
}

pub fn message(
    role: Role,
    channel: Option<ChannelRef>,
    author: Option<&str>,
    text: &str,
    attachments: Vec<Attachment>,
) -> EventBody {
    EventBody::ChatMessage(ChatMessage {
        role,
        channel,
        author: author.map(Into::into),
        text: Payload::Inline(text.into()),
        attachments,
    })
}

pub fn tool_call(call_id: &str, tool: &str, input_json: &str) -> EventBody {
    EventBody::ToolCall(ToolCall {
        call_id: call_id.into(),
        tool: tool.into(),
        input: Payload::Inline(input_json.into()),
    })
}

pub fn tool_result(call_id: &str, output_json: &str, is_error: bool, duration_ms: Option<u64>) -> EventBody {
    EventBody::ToolResult(ToolResult {
        call_id: call_id.into(),
        output: Payload::Inline(output_json.into()),
        is_error,
        duration_ms,
    })
}

/// A browser action with nothing but its kind set.
pub fn browser(action: BrowserActionKind) -> BrowserAction {
    BrowserAction {
        action,
        target_id: None,
        url: None,
        detail: Payload::Inline(String::new()),
        result: Payload::Inline(String::new()),
        error: None,
        screenshot: None,
    }
}

pub fn redaction(target_seq: u64, reason: &str) -> EventBody {
    EventBody::Redaction(Redaction { target_seq, reason: reason.into() })
}
