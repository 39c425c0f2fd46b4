//! The chat messaging bridge: Telegram, Slack and Discord webhooks in, replies out.
//!
//! Inbound, a platform's request is verified over its raw bytes (`sig`), parsed into a
//! platform-neutral [`InboundMessage`], mapped to a session key by the binding rules
//! (`binding`), and appended to that session as a `chat_message` by the bridge actor, with the
//! platform's delivery id as the event's idempotency key: a platform retry appends nothing.
//!
//! Outbound, an assistant `chat_message` that names a channel is an outbox entry in the session
//! state (derived from events); the session's Durable Object delivers it from its alarm
//! (`session/outbox.rs`) with the request the platform module builds, and records the result
//! as a delivery receipt event.
//!
//! Everything here but `worker.rs` is pure and compiled natively too, so it is unit-tested
//! without a runtime.

pub mod binding;
pub mod config;
pub mod discord;
pub mod outbound;
pub mod outbox;
pub mod slack;
pub mod split;
pub mod telegram;
#[cfg(target_arch = "wasm32")]
pub mod worker;

use moltlog_core::event::Platform;
use serde_json::{Value, json};

/// The chat platforms the bridge speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BridgePlatform {
    Telegram,
    Slack,
    Discord,
}

impl BridgePlatform {
    pub const ALL: [BridgePlatform; 3] =
        [BridgePlatform::Telegram, BridgePlatform::Slack, BridgePlatform::Discord];

    pub fn name(self) -> &'static str {
        match self {
            BridgePlatform::Telegram => "telegram",
            BridgePlatform::Slack => "slack",
            BridgePlatform::Discord => "discord",
        }
    }

    pub fn from_name(name: &str) -> Option<BridgePlatform> {
        BridgePlatform::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The platform an outbox entry targets, if the bridge delivers there. Entries for `web`
    /// and other platforms are left to their own consumer (they read the tail).
    pub fn of(platform: &Platform) -> Option<BridgePlatform> {
        match platform {
            Platform::Telegram => Some(BridgePlatform::Telegram),
            Platform::Slack => Some(BridgePlatform::Slack),
            Platform::Discord => Some(BridgePlatform::Discord),
            Platform::Web | Platform::Other(_) => None,
        }
    }
}

/// A chat message that arrived from a platform, platform-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    pub platform: BridgePlatform,
    /// The conversation: Telegram chat id, Slack channel id, Discord channel id.
    pub chat_id: String,
    /// The message (Telegram message id, Slack `ts`, Discord interaction id).
    pub message_id: Option<String>,
    /// Telegram forum topic, Slack `thread_ts`.
    pub thread_id: Option<String>,
    pub user_id: Option<String>,
    /// A display name when the platform sends one, else the user id.
    pub author: Option<String>,
    pub text: String,
    /// Slack team, Discord guild (for binding rules).
    pub space: Option<String>,
    /// The platform's delivery id, made unique across platforms: the event's idempotency key.
    pub delivery_key: String,
}

impl InboundMessage {
    /// The `chat_message` event, in the append API's JSON shape, that this message becomes.
    pub fn event_json(&self) -> Value {
        let mut channel = json!({"type": self.platform.name(), "chat_id": self.chat_id});
        if let Some(m) = &self.message_id {
            channel["message_id"] = m.as_str().into();
        }
        if let Some(t) = &self.thread_id {
            channel["thread_id"] = t.as_str().into();
        }
        let mut event = json!({
            "kind": "chat_message",
            "role": "user",
            "text": self.text,
            "channel": channel,
            "idempotency_key": self.delivery_key,
        });
        if let Some(a) = self.author.as_ref().or(self.user_id.as_ref()) {
            event["author"] = a.as_str().into();
        }
        event
    }
}

/// A Discord interaction's reply credentials, kept by the session's Durable Object (never in
/// the log) so that the reply can complete the interaction's deferred response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscordInteraction {
    pub id: String,
    pub application_id: String,
    pub token: String,
}

/// What to do with a verified platform request.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// Answer at once and append nothing (Discord PING, Slack `url_verification`).
    Reply(Value),
    /// Acknowledge and append nothing: an update the bridge does not carry (edits, bot
    /// messages, joins). Telling the platform "ok" stops its retries.
    Ignore(&'static str),
    /// Append the message, then answer `ack`.
    Message { message: Box<InboundMessage>, ack: Value, interaction: Option<DiscordInteraction> },
}

/// Why a platform request was refused. Each maps to the status the platform expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("the {0} bridge is not configured on this deployment")]
    NotConfigured(&'static str),
    #[error("signature check failed: {0}")]
    BadSignature(&'static str),
    #[error("request timestamp is {skew_s} s away from now; at most {max_s} s are accepted")]
    StaleTimestamp { skew_s: u64, max_s: u64 },
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request body is {len} bytes; at most {max} are accepted")]
    TooLarge { len: u64, max: u64 },
}

impl BridgeError {
    pub fn status(&self) -> u16 {
        match self {
            BridgeError::NotConfigured(_) => 404,
            BridgeError::BadSignature(_) | BridgeError::StaleTimestamp { .. } => 401,
            BridgeError::Malformed(_) => 400,
            BridgeError::TooLarge { .. } => 413,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            BridgeError::NotConfigured(_) => "bridge_not_configured",
            BridgeError::BadSignature(_) => "bad_signature",
            BridgeError::StaleTimestamp { .. } => "stale_timestamp",
            BridgeError::Malformed(_) => "invalid_json",
            BridgeError::TooLarge { .. } => "request_too_large",
        }
    }
}

/// Parses a verified body as a JSON object.
pub(crate) fn json_object(body: &[u8]) -> Result<Value, BridgeError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| BridgeError::Malformed(format!("body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(BridgeError::Malformed("body is not a JSON object".into()));
    }
    Ok(v)
}

/// A JSON value as an id string: strings as they are, integers in decimal.
pub(crate) fn id_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_event_json_is_an_append_api_event() {
        let m = InboundMessage {
            platform: BridgePlatform::Telegram,
            chat_id: "42".into(),
            message_id: Some("7".into()),
            thread_id: None,
            user_id: Some("1001".into()),
            author: Some("alice".into()),
            text: "hi".into(),
            space: None,
            delivery_key: "telegram:chat:42:message:7".into(),
        };
        let raw = serde_json::value::to_raw_value(&m.event_json()).unwrap();
        let ev = moltlog_core::dto::parse_event(&raw).expect("the append API accepts it");
        assert_eq!(ev.idempotency_key.as_deref(), Some("telegram:chat:42:message:7"));
        let moltlog_core::EventBody::ChatMessage(c) = ev.body else { panic!("not a chat message") };
        assert_eq!(c.author.as_deref(), Some("alice"));
        assert_eq!(c.channel.unwrap().message_id.as_deref(), Some("7"));
    }

    #[test]
    fn statuses() {
        assert_eq!(BridgeError::BadSignature("x").status(), 401);
        assert_eq!(BridgeError::StaleTimestamp { skew_s: 600, max_s: 300 }.status(), 401);
        assert_eq!(BridgeError::TooLarge { len: 2, max: 1 }.status(), 413);
        assert_eq!(BridgeError::Malformed("x".into()).status(), 400);
    }
}
