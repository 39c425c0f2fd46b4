//! Slack Events API in, `chat.postMessage` out.
//!
//! Inbound authentication: `X-Slack-Signature` is `v0=` + hex HMAC-SHA256 under the signing
//! secret of `v0:{X-Slack-Request-Timestamp}:{raw body}`; requests more than five minutes away
//! from now are refused (replay window). Slack retries an event it got no 2xx for within three
//! seconds, with the same `event_id`.
//!
//! The idempotency key is the message's identity, `slack:{channel}:{ts}`, rather than the
//! `event_id`: a retry carries the same message, so it dedupes retries just as well, and it
//! also folds the two events Slack sends for one message when an app subscribes to both
//! `message.*` and `app_mention`.
//!
//! Outbound replies carry `metadata` naming the moltlog delivery id. Slack has no idempotency
//! key for `chat.postMessage`, so after a send whose outcome is unknown the outbox first looks
//! for that metadata in the conversation (`conversations.history` / `.replies`) and only sends
//! again if the message is not there.

use serde_json::{Value, json};

use super::config::SlackConfig;
use super::outbound::{Attempt, HttpCall, HttpReply};
use super::split::clip_units;
use super::{BridgeError, BridgePlatform, Inbound, InboundMessage, json_object};
use crate::sig::hmac_sha256_matches;

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// The replay window Slack recommends.
pub const MAX_SKEW_S: u64 = 300;
/// `chat.postMessage` truncates `text` past 40,000 characters; parts stay under it (in UTF-16
/// units, never fewer than characters). Replies go as `text` only, so the 3,000-character limit
/// of a section block does not apply.
pub const MAX_TEXT_UNITS: usize = 39_000;
/// The metadata event type of moltlog's replies.
pub const METADATA_TYPE: &str = "moltlog_outbox";

pub fn verify(
    cfg: &SlackConfig,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_s: u64,
) -> Result<(), BridgeError> {
    let secret = cfg.signing_secret.as_deref().ok_or(BridgeError::NotConfigured("slack"))?;
    let ts_text = timestamp.ok_or(BridgeError::BadSignature("X-Slack-Request-Timestamp is missing"))?.trim();
    let ts: u64 = ts_text
        .parse()
        .map_err(|_| BridgeError::BadSignature("X-Slack-Request-Timestamp is not a number"))?;
    let skew_s = ts.abs_diff(now_s);
    if skew_s > MAX_SKEW_S {
        return Err(BridgeError::StaleTimestamp { skew_s, max_s: MAX_SKEW_S });
    }
    let sig = signature.ok_or(BridgeError::BadSignature("X-Slack-Signature is missing"))?;
    let hex =
        sig.trim().strip_prefix("v0=").ok_or(BridgeError::BadSignature("X-Slack-Signature is not v0"))?;
    if !hmac_sha256_matches(secret.as_bytes(), &[b"v0:", ts_text.as_bytes(), b":", body], hex) {
        return Err(BridgeError::BadSignature("X-Slack-Signature does not match"));
    }
    Ok(())
}

/// Message subtypes that are a person's new message (everything else: edits, deletions,
/// joins, bot posts including our own replies, is not carried).
fn carried_subtype(subtype: Option<&str>) -> bool {
    matches!(subtype, None | Some("file_share") | Some("thread_broadcast"))
}

pub fn parse(body: &[u8]) -> Result<Inbound, BridgeError> {
    let v = json_object(body)?;
    match v["type"].as_str() {
        Some("url_verification") => {
            let challenge = v["challenge"]
                .as_str()
                .ok_or_else(|| BridgeError::Malformed("url_verification without a challenge".into()))?;
            Ok(Inbound::Reply(json!({"challenge": challenge})))
        }
        Some("event_callback") => {
            let e = &v["event"];
            if !matches!(e["type"].as_str(), Some("message") | Some("app_mention")) {
                return Ok(Inbound::Ignore("not a message event"));
            }
            // Bot messages, our own replies among them: carrying them would make the agent
            // talk to itself.
            if e.get("bot_id").is_some_and(|b| !b.is_null()) || !carried_subtype(e["subtype"].as_str()) {
                return Ok(Inbound::Ignore("not a person's new message"));
            }
            let field = |name: &str| {
                e[name]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| BridgeError::Malformed(format!("event.{name} is missing")))
            };
            let channel = field("channel")?;
            let ts = field("ts")?;
            let user = e["user"].as_str().map(str::to_owned);
            let message = InboundMessage {
                platform: BridgePlatform::Slack,
                delivery_key: format!("slack:{channel}:{ts}"),
                chat_id: channel,
                message_id: Some(ts),
                thread_id: e["thread_ts"].as_str().map(str::to_owned),
                author: user.clone(),
                user_id: user,
                text: e["text"].as_str().unwrap_or_default().to_owned(),
                space: v["team_id"].as_str().map(str::to_owned),
            };
            Ok(Inbound::Message { message: Box::new(message), ack: json!({}), interaction: None })
        }
        Some(_) => Ok(Inbound::Ignore("not an event callback")),
        None => Err(BridgeError::Malformed("type is missing".into())),
    }
}

fn bearer(cfg: &SlackConfig) -> Result<String, BridgeError> {
    cfg.bot_token
        .as_deref()
        .map(|t| format!("Bearer {t}"))
        .ok_or(BridgeError::NotConfigured("slack (SLACK_BOT_TOKEN)"))
}

/// `chat.postMessage` for a reply, in the thread when the channel names one.
pub fn send_call(
    cfg: &SlackConfig,
    channel: &str,
    thread_ts: Option<&str>,
    text: &str,
    delivery_id: &str,
) -> Result<HttpCall, BridgeError> {
    let mut body = json!({
        "channel": channel,
        "text": clip_units(text, MAX_TEXT_UNITS),
        "metadata": {"event_type": METADATA_TYPE, "event_payload": {"delivery_id": delivery_id}},
    });
    if let Some(t) = thread_ts {
        body["thread_ts"] = t.into();
    }
    Ok(HttpCall::json("POST", format!("{}/chat.postMessage", cfg.api_base), &body)
        .header("authorization", bearer(cfg)?))
}

/// Errors after which the same request may succeed later.
fn retryable(error: &str) -> bool {
    matches!(
        error,
        "ratelimited"
            | "internal_error"
            | "fatal_error"
            | "service_unavailable"
            | "request_timeout"
            | "team_added_to_org"
    )
}

/// What a Web API answer means. Slack answers HTTP 200 with `{"ok":false,"error"}` for most
/// failures, and 429 with `Retry-After` when rate limited.
pub fn classify(reply: &HttpReply) -> Attempt {
    let body = reply.json().unwrap_or(Value::Null);
    if reply.status == 200 && body["ok"].as_bool() == Some(true) {
        return Attempt::Delivered { remote_id: body["ts"].as_str().map(str::to_owned) };
    }
    if reply.status == 429 {
        let error = "slack chat.postMessage: rate limited".to_owned();
        return Attempt::Retry { error, after_ms: reply.retry_after_ms().or(Some(1000)), uncertain: false };
    }
    if reply.status != 200 {
        return Attempt::from_status(reply, "slack chat.postMessage");
    }
    let code = body["error"].as_str().unwrap_or("unknown_error");
    let error = format!("slack chat.postMessage: {code}");
    if retryable(code) {
        Attempt::Retry { error, after_ms: reply.retry_after_ms(), uncertain: false }
    } else if matches!(code, "not_authed" | "invalid_auth" | "token_revoked" | "account_inactive") {
        // The operator can fix the token: keep trying until the attempts run out.
        Attempt::Retry { error, after_ms: None, uncertain: false }
    } else {
        Attempt::Permanent { error }
    }
}

/// The lookup for a reply whose send may or may not have happened: the conversation (or the
/// thread) since shortly before the send, with message metadata.
pub fn lookup_call(
    cfg: &SlackConfig,
    channel: &str,
    thread_ts: Option<&str>,
    since_ms: u64,
) -> Result<HttpCall, BridgeError> {
    let oldest = format!("{}.000000", (since_ms / 1000).saturating_sub(60));
    let url = match thread_ts {
        Some(t) => format!(
            "{}/conversations.replies?channel={}&ts={}&oldest={oldest}&include_all_metadata=true&limit=200",
            cfg.api_base,
            enc(channel),
            enc(t)
        ),
        None => format!(
            "{}/conversations.history?channel={}&oldest={oldest}&include_all_metadata=true&limit=200",
            cfg.api_base,
            enc(channel)
        ),
    };
    Ok(HttpCall { method: "GET", url, headers: vec![("authorization".into(), bearer(cfg)?)], body: None })
}

/// Percent-encodes a query value (Slack ids and timestamps need nothing, but be safe).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The reply is there (its `ts`): the earlier send went through.
    Found(String),
    /// The reply is not there: sending again is safe.
    Absent,
    /// The lookup itself failed (no `channels:history` scope, say): the outcome stays unknown.
    Failed(String),
}

pub fn lookup_result(reply: &HttpReply, delivery_id: &str) -> Lookup {
    let body = reply.json().unwrap_or(Value::Null);
    if reply.status != 200 || body["ok"].as_bool() != Some(true) {
        let why =
            body["error"].as_str().map(str::to_owned).unwrap_or_else(|| format!("HTTP {}", reply.status));
        return Lookup::Failed(format!("slack lookup: {why}"));
    }
    let found = body["messages"].as_array().into_iter().flatten().find(|m| {
        m["metadata"]["event_type"].as_str() == Some(METADATA_TYPE)
            && m["metadata"]["event_payload"]["delivery_id"].as_str() == Some(delivery_id)
    });
    match found {
        Some(m) => Lookup::Found(m["ts"].as_str().unwrap_or_default().to_owned()),
        None => Lookup::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(secret: &str) -> SlackConfig {
        SlackConfig {
            signing_secret: Some(secret.into()),
            bot_token: Some("xoxb-1".into()),
            api_base: "http://s/api".into(),
        }
    }

    /// The example in Slack's "Verifying requests from Slack" guide.
    #[test]
    fn slack_documented_example() {
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let c = cfg("8f742231b10e8888abcd99yyyzzz85a5");
        assert_eq!(verify(&c, Some("1531420618"), Some(sig), body, 1531420618 + 10), Ok(()));
        let mut tampered = body.to_vec();
        tampered[0] = b'T';
        assert_eq!(
            verify(&c, Some("1531420618"), Some(sig), &tampered, 1531420618).unwrap_err().status(),
            401
        );
    }

    #[test]
    fn stale_and_missing() {
        let c = cfg("k");
        let sig = format!("v0={}", hex::encode(crate::sig::hmac_sha256(b"k", &[b"v0:1000:{}"])));
        assert!(verify(&c, Some("1000"), Some(&sig), b"{}", 1000 + 300).is_ok());
        assert!(matches!(
            verify(&c, Some("1000"), Some(&sig), b"{}", 1000 + 301),
            Err(BridgeError::StaleTimestamp { skew_s: 301, .. })
        ));
        assert!(verify(&c, Some("1000"), Some(&sig), b"{}", 1000 - 301).is_err());
        assert!(verify(&c, None, Some(&sig), b"{}", 1000).is_err());
        assert!(verify(&c, Some("1000"), None, b"{}", 1000).is_err());
        assert!(verify(&c, Some("1000"), Some(&sig[3..]), b"{}", 1000).is_err());
        assert_eq!(
            verify(&SlackConfig::default(), Some("1"), Some("v0=00"), b"", 1).unwrap_err().status(),
            404
        );
    }

    #[test]
    fn events() {
        let challenge = parse(br#"{"type":"url_verification","token":"x","challenge":"abc123"}"#).unwrap();
        assert_eq!(challenge, Inbound::Reply(json!({"challenge": "abc123"})));
        let msg = br#"{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message","channel":"C1","user":"U1","text":"hi","ts":"1700000000.000100","thread_ts":"1699999999.000001"}}"#;
        let Inbound::Message { message, .. } = parse(msg).unwrap() else { panic!() };
        assert_eq!(message.delivery_key, "slack:C1:1700000000.000100");
        assert_eq!(message.thread_id.as_deref(), Some("1699999999.000001"));
        assert_eq!(message.space.as_deref(), Some("T1"));
        let mention = br#"{"type":"event_callback","event":{"type":"app_mention","channel":"C1","user":"U1","text":"hi","ts":"1700000000.000100","thread_ts":"1699999999.000001"},"team_id":"T1","event_id":"Ev2"}"#;
        let Inbound::Message { message: m2, .. } = parse(mention).unwrap() else { panic!() };
        assert_eq!(m2, message, "the mention and the message event are one message");
        let bot = br#"{"type":"event_callback","event":{"type":"message","bot_id":"B1","channel":"C1","text":"reply","ts":"1.2"}}"#;
        assert!(matches!(parse(bot).unwrap(), Inbound::Ignore(_)));
        let edit = br#"{"type":"event_callback","event":{"type":"message","subtype":"message_changed","channel":"C1","ts":"1.2"}}"#;
        assert!(matches!(parse(edit).unwrap(), Inbound::Ignore(_)));
        assert!(parse(br#"{"type":"event_callback","event":{"type":"message","text":"x"}}"#).is_err());
        assert!(parse(br#"{"token":"x"}"#).is_err());
    }

    #[test]
    fn post_and_answers() {
        let call = send_call(&cfg("k"), "C1", Some("1.5"), "hello", "d1").unwrap();
        assert_eq!(call.url, "http://s/api/chat.postMessage");
        assert!(call.headers.contains(&("authorization".into(), "Bearer xoxb-1".into())));
        let body: Value = serde_json::from_slice(call.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["thread_ts"], "1.5");
        assert_eq!(body["metadata"]["event_payload"]["delivery_id"], "d1");
        let r = |status, body: &str, headers: Vec<(String, String)>| HttpReply {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            classify(&r(200, r#"{"ok":true,"ts":"1.9","channel":"C1"}"#, vec![])),
            Attempt::Delivered { remote_id: Some("1.9".into()) }
        );
        assert!(matches!(
            classify(&r(429, "", vec![("retry-after".into(), "4".into())])),
            Attempt::Retry { after_ms: Some(4000), .. }
        ));
        assert!(matches!(
            classify(&r(200, r#"{"ok":false,"error":"channel_not_found"}"#, vec![])),
            Attempt::Permanent { .. }
        ));
        assert!(matches!(
            classify(&r(200, r#"{"ok":false,"error":"internal_error"}"#, vec![])),
            Attempt::Retry { .. }
        ));
        assert!(matches!(classify(&r(500, "oops", vec![])), Attempt::Retry { .. }));
    }

    #[test]
    fn lookups() {
        let call = lookup_call(&cfg("k"), "C1", None, 1_700_000_100_000).unwrap();
        assert!(
            call.url.starts_with("http://s/api/conversations.history?channel=C1&oldest=1700000040.000000")
        );
        let call = lookup_call(&cfg("k"), "C1", Some("1.5"), 0).unwrap();
        assert!(call.url.contains("conversations.replies?channel=C1&ts=1.5"));
        let r = |body: &str| HttpReply { status: 200, headers: vec![], body: body.as_bytes().to_vec() };
        let found = r(
            r#"{"ok":true,"messages":[{"ts":"1.1","text":"a"},{"ts":"1.2","metadata":{"event_type":"moltlog_outbox","event_payload":{"delivery_id":"d1"}}}]}"#,
        );
        assert_eq!(lookup_result(&found, "d1"), Lookup::Found("1.2".into()));
        assert_eq!(lookup_result(&found, "d2"), Lookup::Absent);
        assert!(matches!(
            lookup_result(&r(r#"{"ok":false,"error":"missing_scope"}"#), "d1"),
            Lookup::Failed(_)
        ));
    }
}
