//! Telegram Bot API: webhook updates in, `sendMessage` out.
//!
//! Inbound authentication is the `X-Telegram-Bot-Api-Secret-Token` header, which Telegram sets
//! to the `secret_token` given to `setWebhook`; compared in constant time. Telegram redelivers
//! an update until it gets a 2xx.
//!
//! The idempotency key is the message's identity, `telegram:chat:{chat_id}:message:{id}`, not
//! the `update_id`: Telegram picks update ids at random again after a week without updates, so
//! an update id can come back on a different message, which must not be dropped as a repeat.
//! Message ids are unique within a chat, and a redelivery carries the same message.

use serde_json::{Value, json};

use super::config::TelegramConfig;
use super::outbound::{Attempt, HttpCall, HttpReply};
use super::split::clip_units;
use super::{BridgeError, BridgePlatform, Inbound, InboundMessage, id_str, json_object};
use crate::sig::ct_eq;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Telegram's limit on a message's text, in UTF-16 code units (how Telegram counts it).
pub const MAX_TEXT_UNITS: usize = 4096;

pub fn verify(cfg: &TelegramConfig, secret_header: Option<&str>) -> Result<(), BridgeError> {
    let expected = cfg.webhook_secret.as_deref().ok_or(BridgeError::NotConfigured("telegram"))?;
    let given =
        secret_header.ok_or(BridgeError::BadSignature("X-Telegram-Bot-Api-Secret-Token is missing"))?;
    if !ct_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(BridgeError::BadSignature("X-Telegram-Bot-Api-Secret-Token does not match"));
    }
    Ok(())
}

/// What a non-text message is, for the transcript (the bridge carries text only).
fn describe(m: &Value) -> String {
    const KINDS: [&str; 12] = [
        "photo",
        "document",
        "sticker",
        "voice",
        "video",
        "video_note",
        "audio",
        "animation",
        "location",
        "contact",
        "poll",
        "venue",
    ];
    match KINDS.iter().find(|k| m.get(**k).is_some()) {
        Some(k) => format!("[{k}]"),
        None => "[unsupported message]".to_owned(),
    }
}

fn author(m: &Value) -> Option<String> {
    if let Some(from) = m.get("from") {
        if let Some(u) = from["username"].as_str() {
            return Some(u.to_owned());
        }
        let name = [from["first_name"].as_str(), from["last_name"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !name.is_empty() {
            return Some(name);
        }
    }
    m["author_signature"].as_str().or(m["chat"]["title"].as_str()).map(str::to_owned)
}

/// Parses a verified update. New messages and channel posts become events; edits, member
/// changes, callback queries and the rest are acknowledged and not carried.
pub fn parse(body: &[u8]) -> Result<Inbound, BridgeError> {
    let u = json_object(body)?;
    let update_id = u["update_id"]
        .as_u64()
        .ok_or_else(|| BridgeError::Malformed("update_id is missing or not a non-negative integer".into()))?;
    let Some(m) = u.get("message").or_else(|| u.get("channel_post")) else {
        return Ok(Inbound::Ignore("not a new message"));
    };
    let chat_id = id_str(&m["chat"]["id"])
        .ok_or_else(|| BridgeError::Malformed("message.chat.id is missing".into()))?;
    let message_id = id_str(&m["message_id"]);
    let delivery_key = match &message_id {
        Some(id) => format!("telegram:chat:{chat_id}:message:{id}"),
        // Every message has an id; should one not, the update is the best identity there is.
        None => format!("telegram:update:{update_id}"),
    };
    let text = m["text"].as_str().or(m["caption"].as_str()).map(str::to_owned).unwrap_or_else(|| describe(m));
    let thread_id =
        if m["is_topic_message"].as_bool() == Some(true) { id_str(&m["message_thread_id"]) } else { None };
    let message = InboundMessage {
        platform: BridgePlatform::Telegram,
        chat_id,
        message_id,
        thread_id,
        user_id: id_str(&m["from"]["id"]),
        author: author(m),
        text,
        space: None,
        delivery_key,
    };
    Ok(Inbound::Message { message: Box::new(message), ack: json!({}), interaction: None })
}

/// `sendMessage` for a reply. The chat id goes as a number when it is one (`-100…` groups),
/// else as given (`@channelname`); a `message_id` makes the reply quote it (the outbox passes
/// it for the first part of a long reply only). `text` is one part, within the limit.
pub fn send_call(
    cfg: &TelegramConfig,
    chat_id: &str,
    message_id: Option<&str>,
    thread_id: Option<&str>,
    text: &str,
) -> Result<HttpCall, BridgeError> {
    let token =
        cfg.bot_token.as_deref().ok_or(BridgeError::NotConfigured("telegram (TELEGRAM_BOT_TOKEN)"))?;
    let chat: Value = chat_id.parse::<i64>().map(Value::from).unwrap_or_else(|_| chat_id.into());
    let mut body = json!({"chat_id": chat, "text": clip_units(text, MAX_TEXT_UNITS)});
    if let Some(t) = thread_id.and_then(|t| t.parse::<i64>().ok()) {
        body["message_thread_id"] = t.into();
    }
    if let Some(m) = message_id.and_then(|m| m.parse::<i64>().ok()) {
        body["reply_parameters"] = json!({"message_id": m, "allow_sending_without_reply": true});
    }
    Ok(HttpCall::json("POST", format!("{}/bot{token}/sendMessage", cfg.api_base), &body))
}

/// What a `sendMessage` answer means. Telegram answers `{"ok":true,"result":{message_id}}`, or
/// `{"ok":false,"error_code","description","parameters":{"retry_after"}}`.
pub fn classify(reply: &HttpReply) -> Attempt {
    let body = reply.json().unwrap_or(Value::Null);
    if (200..300).contains(&reply.status) && body["ok"].as_bool() == Some(true) {
        return Attempt::Delivered { remote_id: id_str(&body["result"]["message_id"]) };
    }
    let description = body["description"].as_str().map(str::to_owned).unwrap_or_else(|| reply.snippet());
    let error = format!("telegram sendMessage: HTTP {}: {description}", reply.status);
    match reply.status {
        429 => {
            let after =
                body["parameters"]["retry_after"].as_u64().map(|s| s * 1000).or(reply.retry_after_ms());
            Attempt::Retry { error, after_ms: after, uncertain: false }
        }
        // The token is wrong or revoked: the operator can fix it, so keep trying for a while.
        401 | 404 => Attempt::Retry { error, after_ms: None, uncertain: false },
        400..=499 => Attempt::Permanent { error },
        _ => Attempt::Retry { error, after_ms: reply.retry_after_ms(), uncertain: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TelegramConfig {
        TelegramConfig {
            bot_token: Some("123:ABC".into()),
            webhook_secret: Some("s3cret".into()),
            api_base: "http://t".into(),
        }
    }

    #[test]
    fn secret_token() {
        assert!(verify(&cfg(), Some("s3cret")).is_ok());
        assert_eq!(verify(&cfg(), Some("s3creT")).unwrap_err().status(), 401);
        assert_eq!(verify(&cfg(), None).unwrap_err().status(), 401);
        assert_eq!(verify(&TelegramConfig::default(), Some("x")).unwrap_err().status(), 404);
    }

    #[test]
    fn a_message_update() {
        let body = br#"{"update_id":900,"message":{"message_id":7,"from":{"id":1001,"is_bot":false,"first_name":"Alice","username":"alice"},
            "chat":{"id":-100123,"type":"supergroup"},"date":1700000000,"text":"hello bot","is_topic_message":true,"message_thread_id":3}}"#;
        let Inbound::Message { message, interaction, .. } = parse(body).unwrap() else { panic!() };
        assert!(interaction.is_none());
        assert_eq!(message.chat_id, "-100123");
        assert_eq!(message.message_id.as_deref(), Some("7"));
        assert_eq!(message.thread_id.as_deref(), Some("3"));
        assert_eq!(message.author.as_deref(), Some("alice"));
        assert_eq!(message.user_id.as_deref(), Some("1001"));
        assert_eq!(message.text, "hello bot");
        assert_eq!(message.delivery_key, "telegram:chat:-100123:message:7");
    }

    /// Telegram reuses update ids after a quiet week: a reused id on another message is a new
    /// message (another key), while a redelivery of the same message keeps its key.
    #[test]
    fn the_key_is_the_message_not_the_update_id() {
        let update = |update_id: u64, chat: i64, message_id: u64, text: &str| {
            let v = json!({"update_id": update_id, "message": {"message_id": message_id,
                "chat": {"id": chat, "type": "private"}, "date": 1, "text": text}});
            let Inbound::Message { message, .. } = parse(v.to_string().as_bytes()).unwrap() else { panic!() };
            message.delivery_key
        };
        let first = update(900, 42, 7, "hello");
        assert_ne!(first, update(900, 42, 8, "a different message"), "same update id, new message");
        assert_ne!(first, update(900, 43, 7, "same message id, other chat"));
        assert_eq!(first, update(900, 42, 7, "hello"), "a redelivery is a repeat");
        let post = br#"{"update_id":5,"channel_post":{"message_id":3,"chat":{"id":-1009,"type":"channel"},"text":"news"}}"#;
        let Inbound::Message { message, .. } = parse(post).unwrap() else { panic!() };
        assert_eq!(message.delivery_key, "telegram:chat:-1009:message:3");
    }

    #[test]
    fn other_updates() {
        let photo = br#"{"update_id":1,"message":{"message_id":1,"chat":{"id":5},"from":{"id":2,"first_name":"Bo"},"photo":[]}}"#;
        let Inbound::Message { message, .. } = parse(photo).unwrap() else { panic!() };
        assert_eq!((message.text.as_str(), message.author.as_deref()), ("[photo]", Some("Bo")));
        assert!(matches!(parse(br#"{"update_id":2,"edited_message":{}}"#).unwrap(), Inbound::Ignore(_)));
        assert_eq!(parse(br#"{"message":{}}"#).unwrap_err().status(), 400);
        assert_eq!(parse(b"{nope").unwrap_err().status(), 400);
        assert_eq!(parse(b"[1]").unwrap_err().status(), 400);
    }

    #[test]
    fn send_message_call() {
        let call = send_call(&cfg(), "-100123", Some("7"), Some("3"), "hi").unwrap();
        assert_eq!(call.url, "http://t/bot123:ABC/sendMessage");
        let body: Value = serde_json::from_slice(call.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["chat_id"], -100123);
        assert_eq!(body["message_thread_id"], 3);
        assert_eq!(body["reply_parameters"]["message_id"], 7);
        let call = send_call(&cfg(), "@news", None, None, &"x".repeat(5000)).unwrap();
        let body: Value = serde_json::from_slice(call.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["chat_id"], "@news");
        assert_eq!(crate::bridge::split::utf16_len(body["text"].as_str().unwrap()), MAX_TEXT_UNITS);
        assert!(send_call(&TelegramConfig::default(), "1", None, None, "x").is_err());
    }

    #[test]
    fn answers() {
        let r = |status, body: &str| HttpReply { status, headers: vec![], body: body.as_bytes().to_vec() };
        assert_eq!(
            classify(&r(200, r#"{"ok":true,"result":{"message_id":55}}"#)),
            Attempt::Delivered { remote_id: Some("55".into()) }
        );
        assert!(matches!(
            classify(&r(
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#
            )),
            Attempt::Retry { after_ms: Some(3000), .. }
        ));
        assert!(matches!(
            classify(&r(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#)),
            Attempt::Permanent { error } if error.contains("chat not found")
        ));
        assert!(matches!(classify(&r(502, "bad gateway")), Attempt::Retry { .. }));
    }
}
