//! Inbound webhooks: checking a delivery and turning it into a `webhook_received` event. Pure;
//! `worker.rs` does the IO.

use serde_json::value::RawValue;

use super::config::{Hook, HookKind};
use super::signature::{self, SignatureError};
use super::standard::{self, StandardError};
use crate::sig::{hmac_sha256, hmac_sha256_matches};

pub const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
pub const GITHUB_DELIVERY: &str = "x-github-delivery";
pub const GITHUB_EVENT: &str = "x-github-event";
pub const DELIVERY_HEADER: &str = "moltlog-delivery";
pub const EVENT_HEADER: &str = "moltlog-event";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("no webhook integration is configured as {0:?}")]
    Unknown(String),
    #[error("the secret of hook {0:?} is not set (its secret_var names no secret)")]
    NoSecret(String),
    #[error("signature check failed: {0}")]
    BadSignature(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Standard(#[from] StandardError),
    #[error("malformed delivery: {0}")]
    Malformed(String),
    #[error("the payload is neither JSON nor UTF-8 text")]
    NotText,
    #[error("request body is {len} bytes; at most {max} are accepted")]
    TooLarge { len: u64, max: u64 },
}

impl HookError {
    pub fn status(&self) -> u16 {
        match self {
            HookError::Unknown(_) => 404,
            HookError::NoSecret(_) => 503,
            HookError::BadSignature(_) | HookError::Signature(_) | HookError::Standard(_) => 401,
            HookError::Malformed(_) => 400,
            HookError::NotText => 415,
            HookError::TooLarge { .. } => 413,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            HookError::Unknown(_) => "unknown_hook",
            HookError::NoSecret(_) => "hook_not_configured",
            HookError::BadSignature(_) => "bad_signature",
            HookError::Signature(SignatureError::Stale { .. }) => "stale_timestamp",
            HookError::Signature(_) => "bad_signature",
            HookError::Standard(StandardError::Stale { .. }) => "stale_timestamp",
            HookError::Standard(_) => "bad_signature",
            HookError::Malformed(_) => "invalid_json",
            HookError::NotText => "unsupported_media_type",
            HookError::TooLarge { .. } => "request_too_large",
        }
    }
}

/// A verified delivery, ready to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: String,
    pub event_type: Option<String>,
}

/// Checks a delivery's signature over the raw `body` and finds its delivery id. `header`
/// looks up a request header (case-insensitive).
pub fn verify(
    hook: &Hook,
    secret: &str,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now_s: u64,
) -> Result<Delivery, HookError> {
    match hook.kind {
        HookKind::Github => {
            let sig = header(GITHUB_SIGNATURE)
                .ok_or_else(|| HookError::BadSignature("X-Hub-Signature-256 is missing".into()))?;
            let hex = sig
                .trim()
                .strip_prefix("sha256=")
                .ok_or_else(|| HookError::BadSignature("X-Hub-Signature-256 is not sha256=…".into()))?;
            if !hmac_sha256_matches(secret.as_bytes(), &[body], hex) {
                return Err(HookError::BadSignature("X-Hub-Signature-256 does not match".into()));
            }
            let delivery_id = header(GITHUB_DELIVERY)
                .filter(|d| !d.trim().is_empty())
                .ok_or_else(|| HookError::Malformed("X-GitHub-Delivery is missing".into()))?;
            Ok(Delivery { delivery_id: delivery_id.trim().to_owned(), event_type: header(GITHUB_EVENT) })
        }
        HookKind::Hmac if header(standard::SIGNATURE).is_some() => {
            // Standard Webhooks: the id is signed, so it de-duplicates retries and replays alike.
            let v = standard::verify(
                &standard::key(secret),
                header(standard::ID).as_deref(),
                header(standard::TIMESTAMP).as_deref(),
                header(standard::SIGNATURE).as_deref(),
                body,
                now_s,
                hook.tolerance_s,
            )?;
            Ok(Delivery { delivery_id: v.id, event_type: header(EVENT_HEADER) })
        }
        HookKind::Hmac => {
            let sig = header(signature::HEADER);
            let t = signature::verify(secret.as_bytes(), sig.as_deref(), body, now_s, hook.tolerance_s)?;
            // `Moltlog-Delivery` is not signed: a captured request resent with a new value would
            // pass for a new delivery. The signed bytes identify it instead, so an exact replay
            // inside the window is the same delivery (senders that retry with a fresh timestamp
            // and want one event use Standard Webhooks, whose id is signed).
            let delivery_id = hex::encode(
                &hmac_sha256(b"moltlog.hook.delivery", &[t.to_string().as_bytes(), b".", body])[..16],
            );
            Ok(Delivery { delivery_id, event_type: header(EVENT_HEADER) })
        }
    }
}

/// Whether a media type carries JSON (`application/json`, `application/vnd.x+json`): the same
/// rule the append API applies to `webhook_received` payloads.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// The append request body (the append API's JSON) for a verified delivery. JSON payloads are
/// embedded as the sender's exact text; others as a JSON string of their UTF-8 text.
pub fn event_body(hook: &Hook, d: &Delivery, content_type: &str, body: &[u8]) -> Result<Vec<u8>, HookError> {
    let content_type =
        if content_type.trim().is_empty() { "application/octet-stream" } else { content_type.trim() };
    let payload: String = if is_json(content_type) {
        let text = std::str::from_utf8(body)
            .map_err(|_| HookError::Malformed("JSON payload is not UTF-8".into()))?;
        let raw: &RawValue = serde_json::from_str(text)
            .map_err(|e| HookError::Malformed(format!("payload is not JSON: {e}")))?;
        raw.get().to_owned()
    } else {
        let text = std::str::from_utf8(body).map_err(|_| HookError::NotText)?;
        serde_json::Value::from(text).to_string()
    };
    let head = serde_json::json!({
        "kind": "webhook_received",
        "source": hook.name,
        "delivery_id": d.delivery_id,
        "event_type": d.event_type,
        "verified": true,
        "content_type": content_type,
        "idempotency_key": format!("hook:{}:{}", hook.name, d.delivery_id),
    })
    .to_string();
    // `{…head…, "payload": <payload>}`: the payload is spliced in as text, never re-encoded.
    let mut out = head.into_bytes();
    out.pop();
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(payload.as_bytes());
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use moltlog_core::EventBody;
    use moltlog_core::event::Payload;

    fn hook(kind: HookKind) -> Hook {
        Hook {
            name: "gh".into(),
            kind,
            secret_var: "S".into(),
            session: moltlog_core::SessionKey::parse("agent:main:github").unwrap(),
            tolerance_s: 300,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let v: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
        move |n: &str| v.iter().find(|(k, _)| k == &n.to_ascii_lowercase()).map(|(_, v)| v.clone())
    }

    /// The example in GitHub's "Validating webhook deliveries" guide.
    #[test]
    fn github_documented_example() {
        let h = headers(&[
            (
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("X-GitHub-Event", "issues"),
        ]);
        let d =
            verify(&hook(HookKind::Github), "It's a Secret to Everybody", &h, b"Hello, World!", 0).unwrap();
        assert_eq!(d.delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(d.event_type.as_deref(), Some("issues"));
        assert!(
            verify(&hook(HookKind::Github), "It's a Secret to Everybody", &h, b"Hello, World?", 0).is_err()
        );
        let no_delivery = headers(&[(
            "X-Hub-Signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert_eq!(
            verify(&hook(HookKind::Github), "It's a Secret to Everybody", &no_delivery, b"Hello, World!", 0)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(verify(&hook(HookKind::Github), "x", &headers(&[]), b"", 0).unwrap_err().status(), 401);
    }

    #[test]
    fn generic_hmac() {
        let sig = signature::sign(b"k", 1000, b"{}");
        let h = headers(&[("Moltlog-Signature", &sig)]);
        let d1 = verify(&hook(HookKind::Hmac), "k", &h, b"{}", 1010).unwrap();
        let d2 = verify(&hook(HookKind::Hmac), "k", &h, b"{}", 1020).unwrap();
        assert_eq!(d1, d2, "a replay is the same delivery");
        let e = verify(&hook(HookKind::Hmac), "k", &h, b"{}", 2000).unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "stale_timestamp"));
        let with_event = headers(&[("Moltlog-Signature", &sig), ("Moltlog-Event", "build")]);
        let d = verify(&hook(HookKind::Hmac), "k", &with_event, b"{}", 1000).unwrap();
        assert_eq!(
            (d.delivery_id.as_str(), d.event_type.as_deref()),
            (d1.delivery_id.as_str(), Some("build"))
        );
        let other = headers(&[("Moltlog-Signature", &signature::sign(b"k", 1001, b"{}"))]);
        assert_ne!(verify(&hook(HookKind::Hmac), "k", &other, b"{}", 1001).unwrap(), d1);
    }

    /// The unsigned `Moltlog-Delivery` header cannot turn a replayed request into a new delivery.
    #[test]
    fn a_new_delivery_header_does_not_make_a_replay_new() {
        let sig = signature::sign(b"k", 1000, b"{}");
        let ids: Vec<String> = ["d-1", "d-2", ""]
            .into_iter()
            .map(|d| {
                let h = headers(&[("Moltlog-Signature", &sig), ("Moltlog-Delivery", d)]);
                verify(&hook(HookKind::Hmac), "k", &h, b"{}", 1000).unwrap().delivery_id
            })
            .collect();
        assert!(ids.iter().all(|i| i == &ids[0]), "{ids:?}");
    }

    #[test]
    fn generic_hooks_accept_standard_webhooks() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = standard::sign(&standard::key(secret), "msg_1", 1000, b"{}");
        let h =
            headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "1000"), ("webhook-signature", &sig)]);
        let d = verify(&hook(HookKind::Hmac), secret, &h, b"{}", 1100).unwrap();
        assert_eq!(d.delivery_id, "msg_1");
        // Another id is another signature: the replay with a fresh id fails.
        let forged =
            headers(&[("webhook-id", "msg_2"), ("webhook-timestamp", "1000"), ("webhook-signature", &sig)]);
        assert_eq!(
            verify(&hook(HookKind::Hmac), secret, &forged, b"{}", 1100).unwrap_err().code(),
            "bad_signature"
        );
        let e = verify(&hook(HookKind::Hmac), secret, &h, b"{}", 1400).unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "stale_timestamp"));
        let partial = headers(&[("webhook-signature", &sig)]);
        assert_eq!(verify(&hook(HookKind::Hmac), secret, &partial, b"{}", 1000).unwrap_err().status(), 401);
    }

    #[test]
    fn event_bodies_keep_the_payload_text() {
        let d = Delivery { delivery_id: "d1".into(), event_type: Some("push".into()) };
        let payload = br#"{"zebra": 1, "big": 123456789012345678901234567890, "a": [1.50]}"#;
        let body = event_body(&hook(HookKind::Github), &d, "application/json", payload).unwrap();
        let input = moltlog_core::dto::parse_append(&body).unwrap();
        assert_eq!(input.events[0].idempotency_key.as_deref(), Some("hook:gh:d1"));
        let EventBody::WebhookReceived(w) = &input.events[0].body else { panic!() };
        assert_eq!(w.payload, Payload::Inline(String::from_utf8(payload.to_vec()).unwrap()));
        assert!(w.verified);
        let form =
            event_body(&hook(HookKind::Github), &d, "application/x-www-form-urlencoded", b"payload=%7B%7D")
                .unwrap();
        let input = moltlog_core::dto::parse_append(&form).unwrap();
        let EventBody::WebhookReceived(w) = &input.events[0].body else { panic!() };
        assert_eq!(w.payload, Payload::Inline("payload=%7B%7D".into()));
        assert_eq!(
            event_body(&hook(HookKind::Github), &d, "application/json", b"{nope").unwrap_err().status(),
            400
        );
        assert_eq!(
            event_body(&hook(HookKind::Github), &d, "text/plain", &[0xff, 0xfe]).unwrap_err().status(),
            415
        );
    }
}
