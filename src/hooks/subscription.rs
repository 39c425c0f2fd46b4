//! Outbound webhook subscriptions: the model, the delivery a subscriber receives, and the
//! delivery bookkeeping's rules. Pure; the session's Durable Object stores and sends.
//!
//! ## What a subscriber receives
//!
//! ```text
//! POST <url>
//! content-type: application/json
//! moltlog-delivery: dlv_…           stable across retries: de-duplicate on it
//! moltlog-subscription: sub_…
//! moltlog-session: agent:main:telegram:chat:42
//! moltlog-signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
//! webhook-id: dlv_…                 Standard Webhooks (see `standard`): the same delivery id,
//! webhook-timestamp: <unix s>       signed with it, so `standardwebhooks`/`svix` verify
//! webhook-signature: v1,<base64>    deliveries as they are
//!
//! {"delivery_id":"dlv_…","subscription_id":"sub_…","session_key":"…","first_seq":5,"last_seq":9,
//!  "events":[{…an event as GET /events returns it…}, …]}
//! ```
//!
//! Deliveries of one session reach a subscriber in seq order: the next one is not sent before
//! the current one was answered 2xx. A delivery covers the seq range `first_seq..=last_seq`
//! (events of other kinds in the range are left out); the range is fixed before the first
//! attempt, so every retry carries the same delivery id and the same events (a redaction in
//! between erases content, nothing else). Delivery is at least once: a subscriber that answered
//! 2xx to a request the session never saw answered (its runtime died meanwhile) gets it again.
//! After `WEBHOOK_MAX_ATTEMPTS` failures in a row the subscription pauses for that session
//! (`dead_lettered`, visible with its delivery log) until it is resumed; nothing is skipped.

use moltlog_core::dto::Json;
use moltlog_core::event::EventKind;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::address::{self, AddressError};
use super::config::UrlPolicy;
use super::{signature, standard};
use crate::bridge::outbound::{Attempt, HttpCall, HttpReply};

/// Whom a subscription is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One session (stored in that session).
    Session,
    /// Every session whose key starts with `prefix` (stored in the registry).
    All { prefix: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub secret: String,
    /// The kinds delivered; empty means all.
    pub kinds: Vec<EventKind>,
    pub scope: Scope,
    pub created_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("invalid subscription request: {0}")]
    Invalid(String),
    #[error("no subscription {0:?}")]
    NotFound(String),
    #[error("{0} (WEBHOOKS_ALLOW_PRIVATE=1 allows it for local testing)")]
    UrlRefused(#[from] AddressError),
}

impl SubscriptionError {
    pub fn status(&self) -> u16 {
        match self {
            SubscriptionError::Invalid(_) => 400,
            SubscriptionError::NotFound(_) => 404,
            SubscriptionError::UrlRefused(_) => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SubscriptionError::Invalid(_) => "invalid_subscription",
            SubscriptionError::NotFound(_) => "no_such_subscription",
            SubscriptionError::UrlRefused(_) => "subscription_url_refused",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateJson {
    url: String,
    kinds: Option<Vec<String>>,
    secret: Option<String>,
    session_prefix: Option<String>,
}

/// Random bits for a new subscription's id and secret (the runtime draws them).
#[derive(Clone, Copy, Debug)]
pub struct Fresh {
    pub id: u128,
    pub secret: [u128; 2],
    pub now_ms: u64,
}

pub fn kinds_from_names(names: &[String]) -> Result<Vec<EventKind>, SubscriptionError> {
    let mut kinds = Vec::new();
    for n in names {
        let k = EventKind::from_name(n).ok_or_else(|| {
            let known: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
            SubscriptionError::Invalid(format!("unknown kind {n:?}; known: {}", known.join(", ")))
        })?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds.sort();
    Ok(kinds)
}

/// Refuses a subscriber URL whose host is not public (checked at creation and again before each
/// delivery, since the setting or the rules may have changed since), unless `policy` allows it.
pub fn check_url(url: &str, policy: UrlPolicy) -> Result<(), SubscriptionError> {
    if policy.allow_private {
        return Ok(());
    }
    address::check_public(url)?;
    Ok(())
}

/// Parses `POST …/subscriptions`. `global` is the all-sessions registry (which alone takes
/// `session_prefix`); `policy` may admit `http://` URLs and private hosts (local testing).
pub fn parse_create(
    body: &[u8],
    global: bool,
    policy: UrlPolicy,
    fresh: Fresh,
) -> Result<Subscription, SubscriptionError> {
    let allow_http = policy.allow_http;
    let c: CreateJson =
        serde_json::from_slice(body).map_err(|e| SubscriptionError::Invalid(e.to_string()))?;
    let url = c.url.trim().to_owned();
    let ok_scheme = url.starts_with("https://") || (allow_http && url.starts_with("http://"));
    if !ok_scheme || url.len() > 2048 || url.contains(char::is_whitespace) {
        return Err(SubscriptionError::Invalid(format!(
            "url must be an https:// URL{} of at most 2048 characters",
            if allow_http { " (or http://)" } else { "" }
        )));
    }
    check_url(&url, policy)?;
    let kinds = kinds_from_names(&c.kinds.unwrap_or_default())?;
    let secret = match c.secret {
        Some(s) if s.len() >= 16 && s.len() <= 256 => s,
        Some(_) => return Err(SubscriptionError::Invalid("secret must be 16..=256 bytes".into())),
        None => format!("whsec_{:032x}{:032x}", fresh.secret[0], fresh.secret[1]),
    };
    let scope = match (global, c.session_prefix) {
        (true, p) => Scope::All { prefix: p.unwrap_or_default() },
        (false, None) => Scope::Session,
        (false, Some(_)) => {
            return Err(SubscriptionError::Invalid(
                "session_prefix is for subscriptions to all sessions".into(),
            ));
        }
    };
    Ok(Subscription {
        id: format!("sub_{:024x}", fresh.id >> 32),
        url,
        secret,
        kinds,
        scope,
        created_ms: fresh.now_ms,
    })
}

impl Subscription {
    pub fn wants(&self, kind: EventKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    pub fn applies_to(&self, session_key: &str) -> bool {
        match &self.scope {
            Scope::Session => true,
            Scope::All { prefix } => session_key.starts_with(prefix.as_str()),
        }
    }

    /// Kinds as stored: comma-separated names, empty for all.
    pub fn kinds_text(&self) -> String {
        self.kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
    }

    pub fn kinds_from_text(text: &str) -> Vec<EventKind> {
        text.split(',').filter_map(EventKind::from_name).collect()
    }

    /// The subscription as the API shows it (never the secret, except right after creation).
    pub fn to_json(&self, with_secret: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "url": self.url,
            "kinds": self.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "created_ms": self.created_ms,
        });
        match &self.scope {
            Scope::Session => v["scope"] = "session".into(),
            Scope::All { prefix } => {
                v["scope"] = "all".into();
                v["session_prefix"] = prefix.as_str().into();
            }
        }
        if with_secret {
            v["secret"] = self.secret.as_str().into();
        }
        v
    }
}

/// The stable id of the delivery of `first..=last` of a session to a subscription.
pub fn delivery_id(sub_id: &str, session_key: &str, first: u64, last: u64) -> String {
    let mut h = Sha256::new();
    h.update(b"moltlog.delivery.v1");
    for part in [sub_id.as_bytes(), session_key.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(first.to_le_bytes());
    h.update(last.to_le_bytes());
    format!("dlv_{}", hex::encode(&h.finalize()[..12]))
}

/// The request delivering `events` (already rendered as the events API renders them).
pub fn delivery_call(
    sub: &Subscription,
    session_key: &str,
    (first, last): (u64, u64),
    events: Vec<Json>,
    now_s: u64,
) -> HttpCall {
    let id = delivery_id(&sub.id, session_key, first, last);
    // Events embed their stored JSON payloads as they are: built as `Json`, never as a `Value`.
    let mut body = Json::from(json!({
        "delivery_id": id,
        "subscription_id": sub.id,
        "session_key": session_key,
        "first_seq": first,
        "last_seq": last,
        "events": null,
    }));
    body.set("events", Json::Array(events));
    let body = body.to_string().into_bytes();
    let sig = signature::sign(sub.secret.as_bytes(), now_s, &body);
    let standard_sig = standard::sign(&standard::key(&sub.secret), &id, now_s, &body);
    HttpCall {
        method: "POST",
        url: sub.url.clone(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), concat!("moltlog-webhooks/", env!("CARGO_PKG_VERSION")).into()),
            ("moltlog-delivery".into(), id.clone()),
            ("moltlog-subscription".into(), sub.id.clone()),
            ("moltlog-session".into(), session_key.to_owned()),
            (signature::HEADER.into(), sig),
            (standard::ID.into(), id),
            (standard::TIMESTAMP.into(), now_s.to_string()),
            (standard::SIGNATURE.into(), standard_sig),
        ],
        body: Some(body),
    }
}

/// What a subscriber's answer means: 2xx delivered; 410 Gone stops at once; anything else
/// (429 with its `Retry-After` included) is retried.
pub fn classify(reply: &HttpReply) -> Attempt {
    match reply.status {
        200..=299 => Attempt::Delivered { remote_id: None },
        410 => Attempt::Permanent { error: format!("subscriber answered 410 Gone: {}", reply.snippet()) },
        s => Attempt::Retry {
            error: format!("subscriber answered HTTP {s}: {}", reply.snippet()),
            after_ms: reply.retry_after_ms(),
            uncertain: false,
        },
    }
}

/// A subscription's delivery state in one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub sub_id: String,
    /// Everything up to here was delivered (or held nothing the subscription wants).
    pub delivered_seq: u64,
    /// The delivery in progress: its fixed seq range.
    pub batch: Option<(u64, u64)>,
    /// Failed attempts of the delivery in progress.
    pub attempts: u32,
    pub next_attempt_ms: u64,
    /// Paused after too many failures (dead-lettered) until resumed.
    pub paused: bool,
    pub last_error: Option<String>,
}

impl Cursor {
    /// When the alarm must run for this cursor, if it must.
    pub fn due_ms(&self, head_seq: u64) -> Option<u64> {
        (!self.paused && (self.batch.is_some() || self.delivered_seq < head_seq))
            .then_some(self.next_attempt_ms)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "delivered_seq": self.delivered_seq,
            "in_flight": self.batch.map(|(f, l)| json!({"first_seq": f, "last_seq": l})),
            "attempts": self.attempts,
            "next_attempt_ms": self.next_attempt_ms,
            "status": if self.paused { "dead_lettered" } else { "active" },
            "last_error": self.last_error,
        })
    }
}

/// The first seq a new all-sessions subscription covers in a session: the first event at or
/// after its creation. `ts_at(seq)` reads an event's time; times never decrease along the log,
/// so this is a binary search. Returns the seq to start after.
pub fn start_after(head_seq: u64, created_ms: u64, ts_at: impl Fn(u64) -> Option<u64>) -> u64 {
    let (mut lo, mut hi) = (1u64, head_seq + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ts_at(mid).is_some_and(|ts| ts < created_ms) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Fresh = Fresh { id: 0xabcdef << 40, secret: [1, 2], now_ms: 77 };
    const STRICT: UrlPolicy = UrlPolicy { allow_http: false, allow_private: false };
    const LOCAL: UrlPolicy = UrlPolicy { allow_http: true, allow_private: true };

    #[test]
    fn create() {
        let s = parse_create(
            br#"{"url":"https://x.example/h","kinds":["tool_call","chat_message","chat_message"]}"#,
            false,
            STRICT,
            F,
        )
        .unwrap();
        assert_eq!(s.kinds, vec![EventKind::ChatMessage, EventKind::ToolCall]);
        assert!(s.secret.starts_with("whsec_") && s.secret.len() == 70);
        assert!(s.id.starts_with("sub_") && s.id.len() == 28);
        assert_eq!((s.scope.clone(), s.created_ms), (Scope::Session, 77));
        assert!(s.wants(EventKind::ToolCall) && !s.wants(EventKind::Lifecycle));
        assert_eq!(Subscription::kinds_from_text(&s.kinds_text()), s.kinds);
        assert!(s.to_json(false).get("secret").is_none());
        let g =
            parse_create(br#"{"url":"http://127.0.0.1:9/","session_prefix":"agent:main:"}"#, true, LOCAL, F)
                .unwrap();
        assert!(g.wants(EventKind::Redaction));
        assert!(g.applies_to("agent:main:x") && !g.applies_to("agent:other:x"));
        let bad = |b: &str, global, p| parse_create(b.as_bytes(), global, p, F).unwrap_err().status();
        assert_eq!(bad(r#"{"url":"http://x.example/"}"#, false, STRICT), 400);
        assert_eq!(bad(r#"{"url":"https://x.example/","kinds":["nope"]}"#, false, STRICT), 400);
        assert_eq!(bad(r#"{"url":"https://x.example/","secret":"short"}"#, false, STRICT), 400);
        assert_eq!(bad(r#"{"url":"https://x.example/","session_prefix":"a"}"#, false, STRICT), 400);
        assert_eq!(bad(r#"{"url":"https://x.example/","extra":1}"#, false, STRICT), 400);
        assert_eq!(bad("{", false, STRICT), 400);
    }

    #[test]
    fn non_public_hosts_are_refused_unless_allowed() {
        let http_only = UrlPolicy { allow_http: true, allow_private: false };
        for url in [
            "http://127.0.0.1:9/",
            "http://2130706433/",
            "https://[::1]/",
            "https://metadata.google.internal/",
        ] {
            let body = format!(r#"{{"url":"{url}"}}"#);
            let e = parse_create(body.as_bytes(), false, http_only, F).unwrap_err();
            assert_eq!((e.status(), e.code()), (400, "subscription_url_refused"), "{url}");
            assert!(e.to_string().contains("WEBHOOKS_ALLOW_PRIVATE"), "{e}");
            assert!(parse_create(body.as_bytes(), false, LOCAL, F).is_ok(), "{url}");
            assert!(check_url(url, http_only).is_err() && check_url(url, LOCAL).is_ok());
        }
    }

    #[test]
    fn deliveries_are_signed_and_stable() {
        let s =
            parse_create(br#"{"url":"https://x.example/h","secret":"0123456789abcdef"}"#, false, STRICT, F)
                .unwrap();
        let call = delivery_call(
            &s,
            "agent:a",
            (3, 5),
            vec![json!({"seq": 3}).into(), json!({"seq": 5}).into()],
            1000,
        );
        let body = call.body.clone().unwrap();
        let h = |n: &str| call.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(
            signature::verify(b"0123456789abcdef", Some(&h("moltlog-signature")), &body, 1000, 300),
            Ok(1000)
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["delivery_id"], h("moltlog-delivery"));
        assert_eq!(h("moltlog-delivery"), delivery_id(&s.id, "agent:a", 3, 5));
        let key = standard::key(&s.secret);
        let v = standard::verify(
            &key,
            Some(&h("webhook-id")),
            Some(&h("webhook-timestamp")),
            Some(&h("webhook-signature")),
            &body,
            1000,
            300,
        )
        .unwrap();
        assert_eq!((v.id, v.t_s), (h("moltlog-delivery"), 1000));
        assert_ne!(delivery_id(&s.id, "agent:a", 3, 5), delivery_id(&s.id, "agent:b", 3, 5));
        assert_ne!(delivery_id(&s.id, "agent:a", 3, 5), delivery_id(&s.id, "agent:a", 3, 6));
    }

    #[test]
    fn deliveries_carry_stored_json_byte_for_byte() {
        let s =
            parse_create(br#"{"url":"https://x.example/h","secret":"0123456789abcdef"}"#, false, STRICT, F)
                .unwrap();
        let payload = r#"{"id":123456789012345678901234567890,"n":1e400,"s":"\ud800"}"#;
        let event = Json::object([("seq", Json::from(json!(3))), ("payload", Json::stored(payload))]);
        let call = delivery_call(&s, "agent:a", (3, 3), vec![event], 1000);
        let body = String::from_utf8(call.body.unwrap()).unwrap();
        assert!(body.contains(&format!(r#""events":[{{"seq":3,"payload":{payload}}}]"#)), "{body}");
    }

    #[test]
    fn answers() {
        let r =
            |status| HttpReply { status, headers: vec![("retry-after".into(), "3".into())], body: vec![] };
        assert!(matches!(classify(&r(204)), Attempt::Delivered { .. }));
        assert!(matches!(classify(&r(410)), Attempt::Permanent { .. }));
        assert!(matches!(classify(&r(429)), Attempt::Retry { after_ms: Some(3000), .. }));
        assert!(matches!(classify(&r(400)), Attempt::Retry { .. }));
    }

    #[test]
    fn start_points() {
        let ts = [10u64, 20, 20, 30, 40];
        let at = |seq: u64| ts.get(seq as usize - 1).copied();
        assert_eq!(start_after(5, 5, at), 0);
        assert_eq!(start_after(5, 20, at), 1);
        assert_eq!(start_after(5, 21, at), 3);
        assert_eq!(start_after(5, 41, at), 5);
        assert_eq!(start_after(0, 41, at), 0);
    }

    #[test]
    fn cursor_due() {
        let mut c = Cursor {
            sub_id: "s".into(),
            delivered_seq: 5,
            batch: None,
            attempts: 0,
            next_attempt_ms: 9,
            paused: false,
            last_error: None,
        };
        assert_eq!(c.due_ms(5), None);
        assert_eq!(c.due_ms(6), Some(9));
        c.paused = true;
        assert_eq!(c.due_ms(6), None);
    }
}
