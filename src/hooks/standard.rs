//! Standard Webhooks (<https://www.standardwebhooks.com>), the signature receivers' libraries
//! (`standardwebhooks`, `svix`) verify. Every outbound delivery carries it beside
//! `Moltlog-Signature`; generic (`hmac`) inbound hooks accept it.
//!
//! ```text
//! webhook-id: dlv_…                 stable across retries: de-duplicate on it
//! webhook-timestamp: 1732600000     Unix seconds of this attempt
//! webhook-signature: v1,<base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))>
//! ```
//!
//! The key: a secret of the spec's form (`whsec_` then base64, or bare base64) is the
//! base64-decoded bytes, as the libraries read it by default; any other secret is its raw bytes
//! (receivers then pass `{format: "raw"}`). The id is inside the signed bytes, so unlike the
//! unsigned `Moltlog-Delivery` header, a replay cannot pass for a new delivery.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::sig::{ct_eq, hmac_sha256};

pub const ID: &str = "webhook-id";
pub const TIMESTAMP: &str = "webhook-timestamp";
pub const SIGNATURE: &str = "webhook-signature";
/// The longest `webhook-id` accepted (it becomes part of an idempotency key).
pub const MAX_ID_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandardError {
    #[error("webhook-id, webhook-timestamp and webhook-signature must all be present")]
    Missing,
    #[error("webhook-id must be 1-{MAX_ID_BYTES} printable ASCII characters")]
    BadId,
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the webhook timestamp is {skew_s} s away from now; at most {max_s} s are accepted")]
    Stale { skew_s: u64, max_s: u64 },
    #[error("no v1 webhook-signature matches")]
    Mismatch,
}

/// The HMAC key a secret stands for (see the module doc).
pub fn key(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(b64).unwrap_or_else(|_| secret.as_bytes().to_vec())
}

fn tag(key: &[u8], id: &str, t: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(key, &[id.as_bytes(), b".", t.as_bytes(), b".", body])
}

/// The `webhook-signature` value for `body` sent as delivery `id` at `t_s`.
pub fn sign(key: &[u8], id: &str, t_s: u64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(tag(key, id, &t_s.to_string(), body)))
}

/// A verified delivery: its id and signed timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub id: String,
    pub t_s: u64,
}

/// Checks the three headers over `body`.
pub fn verify(
    key: &[u8],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_s: u64,
    tolerance_s: u64,
) -> Result<Verified, StandardError> {
    let (Some(id), Some(t), Some(signature)) = (id, timestamp, signature) else {
        return Err(StandardError::Missing);
    };
    let (id, t) = (id.trim(), t.trim());
    if id.is_empty() || id.len() > MAX_ID_BYTES || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StandardError::BadId);
    }
    if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StandardError::BadTimestamp);
    }
    let t_s: u64 = t.parse().map_err(|_| StandardError::BadTimestamp)?;
    let skew_s = t_s.abs_diff(now_s);
    if skew_s > tolerance_s {
        return Err(StandardError::Stale { skew_s, max_s: tolerance_s });
    }
    let expected = tag(key, id, t, body);
    // Space-separated `v1,<base64>` entries (one per secret during a rotation); others (such as
    // `v1a,` asymmetric signatures) are skipped. Every entry is checked: no early exit.
    let matched = signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .fold(false, |acc, sig| ct_eq(&sig, &expected) | acc);
    if !matched {
        return Err(StandardError::Mismatch);
    }
    Ok(Verified { id: id.to_owned(), t_s })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries' tests.
    #[test]
    fn reference_example() {
        let key = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let v = verify(
            &key,
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            Some("1614265330"),
            Some(&sig),
            body,
            1614265330 + 10,
            300,
        );
        assert_eq!(v, Ok(Verified { id: "msg_p5jXN8AQM9LWM0D4loKWxJek".into(), t_s: 1614265330 }));
    }

    #[test]
    fn the_id_and_timestamp_are_signed() {
        let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let sig = sign(&k, "msg_1", 1000, b"{}");
        let check = |id: &str, t: &str, s: &str, body: &[u8], now: u64| {
            verify(&k, Some(id), Some(t), Some(s), body, now, 300)
        };
        assert!(check("msg_1", "1000", &sig, b"{}", 1000).is_ok());
        assert_eq!(check("msg_2", "1000", &sig, b"{}", 1000), Err(StandardError::Mismatch));
        assert_eq!(check("msg_1", "1001", &sig, b"{}", 1000), Err(StandardError::Mismatch));
        assert_eq!(check("msg_1", "1000", &sig, b"{ }", 1000), Err(StandardError::Mismatch));
        assert!(matches!(check("msg_1", "1000", &sig, b"{}", 1301), Err(StandardError::Stale { .. })));
        let rotated = format!("v1a,abc v1,{} {sig}", STANDARD.encode([0u8; 32]));
        assert!(check("msg_1", "1000", &rotated, b"{}", 1000).is_ok());
        assert_eq!(check("msg_1", "1000", "v1,!!!", b"{}", 1000), Err(StandardError::Mismatch));
        assert_eq!(check("msg_1", "-5", &sig, b"{}", 1000), Err(StandardError::BadTimestamp));
        assert_eq!(
            check("msg_1", "99999999999999999999999", &sig, b"{}", 1000),
            Err(StandardError::BadTimestamp)
        );
        assert_eq!(check("a b", "1000", &sig, b"{}", 1000), Err(StandardError::BadId));
        assert_eq!(check(&"x".repeat(257), "1000", &sig, b"{}", 1000), Err(StandardError::BadId));
        assert_eq!(verify(&k, None, Some("1000"), Some(&sig), b"{}", 1000, 300), Err(StandardError::Missing));
    }

    #[test]
    fn secrets_that_are_not_base64_are_raw_keys() {
        assert_eq!(key("whsec_AAEC"), vec![0, 1, 2]);
        assert_eq!(key("AAEC"), vec![0, 1, 2]);
        assert_eq!(key("not base64!"), b"not base64!".to_vec());
        assert_eq!(key("whsec_nope!"), b"whsec_nope!".to_vec());
    }
}
