//! Discord interactions in (the app's Interactions Endpoint URL), replies out.
//!
//! Inbound authentication: `X-Signature-Ed25519` is the Ed25519 signature, under the
//! application's public key, of `X-Signature-Timestamp` followed by the raw body. A failed check
//! must answer 401 (Discord probes the endpoint with bad signatures when it is saved). A PING
//! is answered with a PONG; a command, a button click or a modal is answered at once with a
//! deferred response ("thinking…", a new message), and the agent's reply completes it later. A
//! click is not acknowledged as an update of the clicked message (type 6): the reply would
//! then edit the message that held the button.
//!
//! Freshness: an interaction's id is a snowflake carrying its creation time. Interactions
//! created more than [`MAX_INTERACTION_AGE_MS`] (5 minutes) away from now are refused as stale;
//! within the window a replay carries the same id, which is the idempotency key, so it appends
//! nothing.
//!
//! Outbound, a reply to an interaction whose token the session still holds (tokens live 15
//! minutes) edits the deferred response, `PATCH /webhooks/{app}/{token}/messages/@original`,
//! which is idempotent: sending it twice shows the same message once. Any other reply is a
//! channel message, `POST /channels/{id}/messages` with the bot token, carrying a `nonce`
//! derived from the outbox message and `enforce_nonce`: Discord then returns the message it
//! already created for that nonce (within a few minutes) instead of creating a second one.

use serde_json::{Value, json};

use super::config::DiscordConfig;
use super::outbound::{Attempt, HttpCall, HttpReply};
use super::split::clip_units;
use super::{BridgeError, BridgePlatform, DiscordInteraction, Inbound, InboundMessage, id_str, json_object};
use crate::sig::ed25519_verify;

pub const SIGNATURE_HEADER: &str = "x-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";
/// Discord's limit on a message's content: 2,000 characters (counted here in UTF-16 units,
/// never fewer).
pub const MAX_TEXT_UNITS: usize = 2000;
/// How long an interaction token can be used for follow-ups.
pub const INTERACTION_TOKEN_MS: u64 = 15 * 60 * 1000;
/// Margin kept before the token's expiry.
const TOKEN_MARGIN_MS: u64 = 60 * 1000;
/// How far an interaction's creation time (from its id) may be from now. Discord posts an
/// interaction within moments and wants the answer within 3 s.
pub const MAX_INTERACTION_AGE_MS: u64 = 5 * 60 * 1000;
/// The first millisecond of 2015, where Discord's snowflakes count from.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// When a snowflake id was made, in Unix milliseconds.
pub fn snowflake_ms(id: &str) -> Option<u64> {
    let n: u64 = id.parse().ok()?;
    Some((n >> 22) + DISCORD_EPOCH_MS)
}

/// Refuses an interaction whose id says it was made outside the freshness window.
fn check_fresh(id: &str, now_ms: u64) -> Result<(), BridgeError> {
    let made_ms =
        snowflake_ms(id).ok_or_else(|| BridgeError::Malformed("id is not a Discord snowflake".into()))?;
    let skew_ms = made_ms.abs_diff(now_ms);
    if skew_ms > MAX_INTERACTION_AGE_MS {
        return Err(BridgeError::StaleTimestamp {
            skew_s: skew_ms / 1000,
            max_s: MAX_INTERACTION_AGE_MS / 1000,
        });
    }
    Ok(())
}

pub fn verify(
    cfg: &DiscordConfig,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), BridgeError> {
    let key = cfg.public_key.as_deref().ok_or(BridgeError::NotConfigured("discord"))?;
    let ts = timestamp.ok_or(BridgeError::BadSignature("X-Signature-Timestamp is missing"))?;
    let sig = signature.ok_or(BridgeError::BadSignature("X-Signature-Ed25519 is missing"))?;
    if !ed25519_verify(key, &[ts.as_bytes(), body], sig) {
        return Err(BridgeError::BadSignature("X-Signature-Ed25519 does not verify"));
    }
    Ok(())
}

/// A command's text as a person would have typed it: `/name sub value other:value`.
fn command_text(data: &Value) -> String {
    fn options(out: &mut Vec<String>, opts: &Value) {
        let list = opts.as_array().map(Vec::as_slice).unwrap_or_default();
        let single = list.len() == 1;
        for o in list {
            let name = o["name"].as_str().unwrap_or_default();
            match &o["value"] {
                Value::Null => {
                    // A subcommand (group): its name, then its own options.
                    out.push(name.to_owned());
                    options(out, &o["options"]);
                }
                Value::String(s) if single => out.push(s.clone()),
                Value::String(s) => out.push(format!("{name}:{s}")),
                v => out.push(format!("{name}:{v}")),
            }
        }
    }
    let mut parts = vec![format!("/{}", data["name"].as_str().unwrap_or_default())];
    options(&mut parts, &data["options"]);
    parts.join(" ")
}

/// A modal's submitted values, one per line.
fn modal_text(data: &Value) -> String {
    let mut lines = Vec::new();
    for row in data["components"].as_array().into_iter().flatten() {
        for c in row["components"].as_array().into_iter().flatten() {
            if let Some(v) = c["value"].as_str() {
                lines.push(v.to_owned());
            }
        }
    }
    lines.join("\n")
}

/// Parses a verified interaction received at `now_ms`.
pub fn parse(body: &[u8], now_ms: u64) -> Result<Inbound, BridgeError> {
    let v = json_object(body)?;
    let kind = v["type"].as_u64().ok_or_else(|| BridgeError::Malformed("type is missing".into()))?;
    let (text, ack) = match kind {
        1 => return Ok(Inbound::Reply(json!({"type": 1}))),
        // Autocomplete: no suggestions; the bridge carries completed commands only.
        4 => return Ok(Inbound::Reply(json!({"type": 8, "data": {"choices": []}}))),
        2 => (command_text(&v["data"]), json!({"type": 5})),
        // Deferred with a new message, as for commands: the reply must not replace the message
        // that holds the button.
        3 => (
            format!("[component {}]", v["data"]["custom_id"].as_str().unwrap_or_default()),
            json!({"type": 5}),
        ),
        5 => (modal_text(&v["data"]), json!({"type": 5})),
        other => return Err(BridgeError::Malformed(format!("unknown interaction type {other}"))),
    };
    let field = |value: &Value, name: &str| {
        id_str(value).ok_or_else(|| BridgeError::Malformed(format!("{name} is missing")))
    };
    let id = field(&v["id"], "id")?;
    check_fresh(&id, now_ms)?;
    let application_id = field(&v["application_id"], "application_id")?;
    let token = v["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| BridgeError::Malformed("token is missing".into()))?;
    let chat_id = id_str(&v["channel_id"])
        .or_else(|| id_str(&v["channel"]["id"]))
        .ok_or_else(|| BridgeError::Malformed("channel_id is missing".into()))?;
    let user = if v["member"]["user"].is_object() { &v["member"]["user"] } else { &v["user"] };
    let message = InboundMessage {
        platform: BridgePlatform::Discord,
        chat_id,
        message_id: Some(id.clone()),
        thread_id: None,
        user_id: id_str(&user["id"]),
        author: user["global_name"].as_str().or(user["username"].as_str()).map(str::to_owned),
        text,
        space: id_str(&v["guild_id"]),
        delivery_key: format!("discord:{id}"),
    };
    let interaction = DiscordInteraction { id, application_id, token: token.to_owned() };
    Ok(Inbound::Message { message: Box::new(message), ack, interaction: Some(interaction) })
}

/// Whether an interaction token received at `created_ms` can still be used at `now_ms`.
pub fn token_usable(created_ms: u64, now_ms: u64) -> bool {
    now_ms < created_ms + INTERACTION_TOKEN_MS - TOKEN_MARGIN_MS
}

/// Agent output must not ping `@everyone` or roles.
fn no_mentions() -> Value {
    json!({"parse": []})
}

/// Edits the interaction's deferred response into the reply.
pub fn edit_original_call(cfg: &DiscordConfig, application_id: &str, token: &str, text: &str) -> HttpCall {
    HttpCall::json(
        "PATCH",
        format!("{}/webhooks/{application_id}/{token}/messages/@original", cfg.api_base),
        &json!({"content": clip_units(text, MAX_TEXT_UNITS), "allowed_mentions": no_mentions()}),
    )
}

/// Posts the reply in the channel, de-duplicated by Discord on `nonce`.
pub fn create_message_call(
    cfg: &DiscordConfig,
    channel_id: &str,
    text: &str,
    nonce: &str,
) -> Result<HttpCall, BridgeError> {
    let token = cfg.bot_token.as_deref().ok_or(BridgeError::NotConfigured("discord (DISCORD_BOT_TOKEN)"))?;
    let nonce: String = nonce.chars().take(25).collect();
    let body = json!({
        "content": clip_units(text, MAX_TEXT_UNITS),
        "nonce": nonce,
        "enforce_nonce": true,
        "allowed_mentions": no_mentions(),
    });
    Ok(HttpCall::json("POST", format!("{}/channels/{channel_id}/messages", cfg.api_base), &body)
        .header("authorization", format!("Bot {token}")))
}

/// What an answer means. 429 answers carry `retry_after` (seconds, fractional) in the body.
pub fn classify(reply: &HttpReply) -> Attempt {
    let body = reply.json().unwrap_or(Value::Null);
    if (200..300).contains(&reply.status) {
        return Attempt::Delivered { remote_id: id_str(&body["id"]) };
    }
    let message = body["message"].as_str().map(str::to_owned).unwrap_or_else(|| reply.snippet());
    let error = format!("discord: HTTP {}: {message}", reply.status);
    match reply.status {
        429 => {
            let after =
                body["retry_after"].as_f64().map(|s| (s * 1000.0).ceil() as u64).or(reply.retry_after_ms());
            Attempt::Retry { error, after_ms: after.or(Some(1000)), uncertain: false }
        }
        // A bad token, or an interaction token that expired: retried (by channel message, see
        // `interaction_gone`), until the attempts run out.
        401 | 404 => Attempt::Retry { error, after_ms: None, uncertain: false },
        400..=499 => Attempt::Permanent { error },
        _ => Attempt::Retry { error, after_ms: reply.retry_after_ms(), uncertain: false },
    }
}

/// Whether an answer to an interaction-token request says the token no longer works (so the
/// next attempt should post a channel message instead).
pub fn interaction_gone(reply: &HttpReply) -> bool {
    matches!(reply.status, 401 | 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Now, for the tests: 2026-11-01.
    const NOW: u64 = 1_793_491_200_000;

    /// A snowflake id made at `ms`.
    fn snowflake(ms: u64) -> String {
        (((ms - DISCORD_EPOCH_MS) << 22) | 0x1234).to_string()
    }

    fn cfg(pk: &str) -> DiscordConfig {
        DiscordConfig {
            public_key: Some(pk.into()),
            bot_token: Some("B0T".into()),
            api_base: "http://d/api".into(),
        }
    }

    #[test]
    fn signature_over_timestamp_and_body() {
        // RFC 8032 test 1 signs the empty message: timestamp and body both empty.
        let pk = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        assert_eq!(verify(&cfg(pk), Some(""), Some(sig), b""), Ok(()));
        assert_eq!(verify(&cfg(pk), Some("1"), Some(sig), b"").unwrap_err().status(), 401);
        assert_eq!(verify(&cfg(pk), Some(""), None, b"").unwrap_err().status(), 401);
        assert_eq!(verify(&cfg(pk), None, Some(sig), b"").unwrap_err().status(), 401);
        assert_eq!(verify(&DiscordConfig::default(), Some(""), Some(sig), b"").unwrap_err().status(), 404);
    }

    #[test]
    fn ping_and_autocomplete() {
        assert_eq!(
            parse(br#"{"type":1,"id":"1","application_id":"2","token":"t"}"#, NOW).unwrap(),
            Inbound::Reply(json!({"type":1}))
        );
        assert!(matches!(parse(br#"{"type":4}"#, NOW).unwrap(), Inbound::Reply(v) if v["type"] == 8));
        assert!(parse(br#"{"type":99}"#, NOW).is_err());
        assert!(parse(br#"{"id":"1"}"#, NOW).is_err());
    }

    #[test]
    fn a_command() {
        let id = snowflake(NOW - 1000);
        let body =
            json!({"type":2,"id":id,"application_id":"222","token":"tok","channel_id":"333","guild_id":"444",
            "member":{"user":{"id":"555","username":"bob","global_name":"Bob"}},
            "data":{"name":"ask","options":[{"name":"prompt","type":3,"value":"what is up"}]}})
            .to_string();
        let Inbound::Message { message, ack, interaction } = parse(body.as_bytes(), NOW).unwrap() else {
            panic!()
        };
        assert_eq!(ack, json!({"type": 5}));
        assert_eq!(message.text, "/ask what is up");
        assert_eq!((message.chat_id.as_str(), message.message_id.as_deref()), ("333", Some(id.as_str())));
        assert_eq!((message.author.as_deref(), message.space.as_deref()), (Some("Bob"), Some("444")));
        assert_eq!(message.delivery_key, format!("discord:{id}"));
        assert_eq!(
            interaction,
            Some(DiscordInteraction { id: id.clone(), application_id: "222".into(), token: "tok".into() })
        );
        let sub = json!({"name":"todo","options":[{"name":"add","type":1,"options":[{"name":"item","value":"milk"},{"name":"count","value":2}]}]});
        assert_eq!(command_text(&sub), "/todo add item:milk count:2");
    }

    #[test]
    fn components_and_modals() {
        let button =
            json!({"type":3,"id":snowflake(NOW),"application_id":"2","token":"t","channel":{"id":"9"},
            "user":{"id":"5","username":"al"},"data":{"custom_id":"yes"}})
            .to_string();
        let Inbound::Message { message, ack, .. } = parse(button.as_bytes(), NOW).unwrap() else { panic!() };
        // A new deferred message (5), not an update of the message with the button (6): the
        // reply edits `@original`, which must be the new message.
        assert_eq!((message.text.as_str(), ack), ("[component yes]", json!({"type": 5})));
        assert_eq!(message.chat_id, "9");
        let modal = json!({"components":[{"components":[{"value":"a"}]},{"components":[{"value":"b"}]}]});
        assert_eq!(modal_text(&modal), "a\nb");
    }

    #[test]
    fn stale_interactions_are_refused() {
        let at = |made_ms: u64| {
            let body = json!({"type":2,"id":snowflake(made_ms),"application_id":"2","token":"t",
                "channel_id":"9","data":{"name":"ask"}})
            .to_string();
            parse(body.as_bytes(), NOW)
        };
        assert!(at(NOW - MAX_INTERACTION_AGE_MS).is_ok());
        assert!(at(NOW + MAX_INTERACTION_AGE_MS).is_ok(), "clocks differ a little either way");
        let stale = at(NOW - MAX_INTERACTION_AGE_MS - 1000).unwrap_err();
        assert!(matches!(stale, BridgeError::StaleTimestamp { skew_s: 301, max_s: 300 }), "{stale:?}");
        assert_eq!(stale.status(), 401);
        assert!(at(NOW + MAX_INTERACTION_AGE_MS + 1000).is_err());
        let not_a_snowflake =
            br#"{"type":2,"id":"abc","application_id":"2","token":"t","channel_id":"9","data":{}}"#;
        assert_eq!(parse(not_a_snowflake, NOW).unwrap_err().status(), 400);
        assert_eq!(
            snowflake_ms("175928847299117063"),
            Some(1_462_015_105_796),
            "Discord's documented example"
        );
    }

    #[test]
    fn replies() {
        let c = cfg("00");
        let edit = edit_original_call(&c, "222", "tok", "hi");
        assert_eq!(
            (edit.method, edit.url.as_str()),
            ("PATCH", "http://d/api/webhooks/222/tok/messages/@original")
        );
        let post = create_message_call(&c, "333", "hi", "0123456789abcdef0123456789").unwrap();
        let body: Value = serde_json::from_slice(post.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["nonce"].as_str().unwrap().len(), 25);
        assert_eq!(body["enforce_nonce"], true);
        assert!(post.headers.contains(&("authorization".into(), "Bot B0T".into())));
        assert!(create_message_call(&DiscordConfig::default(), "1", "x", "n").is_err());
        assert!(token_usable(0, 13 * 60 * 1000));
        assert!(!token_usable(0, 14 * 60 * 1000 + 1));
    }

    #[test]
    fn answers() {
        let r = |status, body: &str| HttpReply { status, headers: vec![], body: body.as_bytes().to_vec() };
        assert_eq!(
            classify(&r(200, r#"{"id":"77","content":"hi"}"#)),
            Attempt::Delivered { remote_id: Some("77".into()) }
        );
        assert!(matches!(
            classify(&r(
                429,
                r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#
            )),
            Attempt::Retry { after_ms: Some(1500), .. }
        ));
        assert!(matches!(
            classify(&r(403, r#"{"message":"Missing Access","code":50001}"#)),
            Attempt::Permanent { .. }
        ));
        assert!(matches!(classify(&r(404, r#"{"message":"Unknown Webhook"}"#)), Attempt::Retry { .. }));
        assert!(interaction_gone(&r(404, "")));
    }
}
