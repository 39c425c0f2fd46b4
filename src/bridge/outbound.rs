//! Outbound HTTP, platform-neutral and pure: the request a delivery makes, the answer it got,
//! what that answer means, and when to try again.
//!
//! The Durable Object performs the call (`src/net.rs`); everything that decides is here, with
//! the clock and the random bits passed in, so the retry policy is tested natively.

use moltlog_core::event::DeliveryOutcome;
use sha2::{Digest, Sha256};

/// An HTTP request to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCall {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl HttpCall {
    pub fn json(method: &'static str, url: String, body: &serde_json::Value) -> HttpCall {
        HttpCall {
            method,
            url,
            headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
            body: Some(body.to_string().into_bytes()),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> HttpCall {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// The answer to an [`HttpCall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `Retry-After` in milliseconds (the seconds form; HTTP dates are not used by these APIs).
    pub fn retry_after_ms(&self) -> Option<u64> {
        let v = self.header("retry-after")?.trim().parse::<f64>().ok()?;
        (v.is_finite() && v >= 0.0).then(|| (v * 1000.0).ceil() as u64)
    }

    /// The body, shortened for an error message.
    pub fn snippet(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        let s = s.trim();
        if s.len() <= 200 { s.to_owned() } else { format!("{}…", &s[..s.floor_char_boundary(200)]) }
    }
}

/// What one delivery attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The platform took the message.
    Delivered { remote_id: Option<String> },
    /// Try again later (not before `after_ms` from now when the platform said so). `uncertain`:
    /// the platform may have acted on the request (timeout, dropped connection).
    Retry { error: String, after_ms: Option<u64>, uncertain: bool },
    /// Trying again cannot help (unknown chat, bot removed, message refused).
    Permanent { error: String },
}

impl Attempt {
    /// A transport failure: no answer came, so the platform may or may not have acted.
    pub fn unknown(error: impl Into<String>) -> Attempt {
        Attempt::Retry { error: error.into(), after_ms: None, uncertain: true }
    }

    /// A generic HTTP classification: 429 and 5xx are retried, 408 too, other 4xx are final.
    pub fn from_status(reply: &HttpReply, what: &str) -> Attempt {
        let error = format!("{what}: HTTP {} {}", reply.status, reply.snippet());
        match reply.status {
            429 => Attempt::Retry { error, after_ms: reply.retry_after_ms(), uncertain: false },
            408 | 500..=599 => Attempt::Retry { error, after_ms: reply.retry_after_ms(), uncertain: false },
            _ => Attempt::Permanent { error },
        }
    }
}

/// Retry timing: exponential with "equal jitter". The `n`th retry waits between half and all
/// of `base * 2^(n-1)` (capped at `max`), so a burst of failures does not retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    /// Delay after the `attempt`th failure (1-based); `entropy` supplies the jitter.
    pub fn delay_ms(&self, attempt: u32, entropy: u64) -> u64 {
        let exp = self.base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(40)).min(self.max_ms);
        let half = exp / 2;
        half + entropy % (exp - half + 1)
    }

    /// The delay a platform's `Retry-After` asks for, plus a little jitter (up to 10%, at most
    /// a second) so that everything throttled at once does not come back at once.
    pub fn after_ms(&self, retry_after_ms: u64, entropy: u64) -> u64 {
        retry_after_ms + entropy % ((retry_after_ms / 10).min(1000) + 1)
    }
}

/// The receipt outcome for attempt number `attempt` (1-based) that came to `result`.
pub fn outcome(
    attempt: u32,
    max_attempts: u32,
    backoff: Backoff,
    result: &Attempt,
    now_ms: u64,
    entropy: u64,
) -> DeliveryOutcome {
    match result {
        Attempt::Delivered { remote_id } => DeliveryOutcome::Delivered { remote_id: remote_id.clone() },
        Attempt::Permanent { error } => DeliveryOutcome::DeadLettered { error: error.clone() },
        Attempt::Retry { error, .. } if attempt >= max_attempts => DeliveryOutcome::DeadLettered {
            error: format!("gave up after {attempt} attempts; last: {error}"),
        },
        Attempt::Retry { error, after_ms, .. } => {
            let delay = match after_ms {
                Some(ms) => backoff.after_ms(*ms, entropy),
                None => backoff.delay_ms(attempt, entropy),
            };
            DeliveryOutcome::Failed { error: error.clone(), retry_at_ms: now_ms + delay }
        }
    }
}

/// A stable id for one outbox message (session + seq), the same on every attempt and after any
/// restart: the platform-side idempotency token where the platform has one.
pub fn delivery_id(session_key: &str, outbox_seq: u64) -> String {
    let mut h = Sha256::new();
    h.update(b"moltlog.outbox.v1");
    h.update(session_key.as_bytes());
    h.update([0]);
    h.update(outbox_seq.to_le_bytes());
    hex::encode(&h.finalize()[..12])
}

/// The id of part `part` (0-based) of a reply split into several messages. Part 0 keeps the
/// message's own [`delivery_id`] (so sends started before replies were split still resolve);
/// every other part has its own, so a platform de-duplicates each part separately.
pub fn part_delivery_id(session_key: &str, outbox_seq: u64, part: u32) -> String {
    if part == 0 {
        return delivery_id(session_key, outbox_seq);
    }
    let mut h = Sha256::new();
    h.update(b"moltlog.outbox.part.v1");
    h.update(session_key.as_bytes());
    h.update([0]);
    h.update(outbox_seq.to_le_bytes());
    h.update(part.to_le_bytes());
    hex::encode(&h.finalize()[..12])
}

/// A URL fit for errors and logs (errors end up in receipts, which are events): Telegram puts
/// the bot token in the path, interaction webhooks their token; the query is dropped too.
pub fn redact_url(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    base.split('/')
        .map(|seg| {
            if seg.starts_with("bot") && seg.contains(':') {
                "bot…"
            } else if seg.len() > 40 {
                "…"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff { base_ms: 1000, max_ms: 10_000 };

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        for e in [0u64, 1, 499, 500, 12345, u64::MAX] {
            let d1 = B.delay_ms(1, e);
            assert!((500..=1000).contains(&d1), "{d1}");
            let d3 = B.delay_ms(3, e);
            assert!((2000..=4000).contains(&d3), "{d3}");
            let d9 = B.delay_ms(9, e);
            assert!((5000..=10_000).contains(&d9), "{d9}");
            assert!(B.delay_ms(u32::MAX, e) <= 10_000);
        }
        assert_ne!(B.delay_ms(2, 1), B.delay_ms(2, 2), "entropy moves it");
    }

    #[test]
    fn retry_after_is_honoured() {
        let r = Attempt::Retry { error: "429".into(), after_ms: Some(30_000), uncertain: false };
        let DeliveryOutcome::Failed { retry_at_ms, .. } = outcome(1, 5, B, &r, 100, 7) else { panic!() };
        assert!((30_100..=31_100).contains(&retry_at_ms), "{retry_at_ms}");
    }

    #[test]
    fn outcomes() {
        let ok = Attempt::Delivered { remote_id: Some("9".into()) };
        assert_eq!(outcome(1, 3, B, &ok, 0, 0), DeliveryOutcome::Delivered { remote_id: Some("9".into()) });
        let perm = Attempt::Permanent { error: "chat not found".into() };
        assert!(matches!(outcome(1, 3, B, &perm, 0, 0), DeliveryOutcome::DeadLettered { .. }));
        let retry = Attempt::unknown("timeout");
        assert!(matches!(outcome(2, 3, B, &retry, 0, 0), DeliveryOutcome::Failed { .. }));
        let DeliveryOutcome::DeadLettered { error } = outcome(3, 3, B, &retry, 0, 0) else { panic!() };
        assert!(error.contains("3 attempts") && error.contains("timeout"));
    }

    #[test]
    fn statuses_classify() {
        let r = |status, headers: Vec<(String, String)>| HttpReply { status, headers, body: b"x".to_vec() };
        assert!(matches!(
            Attempt::from_status(&r(429, vec![("retry-after".into(), "2".into())]), "t"),
            Attempt::Retry { after_ms: Some(2000), .. }
        ));
        assert!(matches!(Attempt::from_status(&r(503, vec![]), "t"), Attempt::Retry { after_ms: None, .. }));
        assert!(matches!(Attempt::from_status(&r(400, vec![]), "t"), Attempt::Permanent { .. }));
        assert_eq!(r(200, vec![("Retry-After".into(), "1.5".into())]).retry_after_ms(), Some(1500));
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(delivery_id("a", 1), delivery_id("a", 1));
        assert_ne!(delivery_id("a", 1), delivery_id("a", 2));
        assert_ne!(delivery_id("a", 1), delivery_id("b", 1));
        assert_eq!(delivery_id("a", 1).len(), 24);
        assert_eq!(part_delivery_id("a", 1, 0), delivery_id("a", 1));
        assert_ne!(part_delivery_id("a", 1, 1), delivery_id("a", 1));
        assert_ne!(part_delivery_id("a", 1, 1), part_delivery_id("a", 1, 2));
        assert_ne!(part_delivery_id("a", 1, 1), part_delivery_id("a", 2, 1));
        assert_eq!(part_delivery_id("a", 1, 7).len(), 24, "fits Discord's 25-character nonce");
    }

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(
            redact_url("https://api.telegram.org/bot123:ABC-def/sendMessage"),
            "https://api.telegram.org/bot…/sendMessage"
        );
        let token = "a".repeat(180);
        assert_eq!(
            redact_url(&format!(
                "https://discord.com/api/v10/webhooks/1234567890123456789/{token}/messages/@original"
            )),
            "https://discord.com/api/v10/webhooks/1234567890123456789/…/messages/@original"
        );
        assert_eq!(redact_url("https://hooks.example/x?token=secret"), "https://hooks.example/x");
    }
}
