//! moltlog's webhook signature, used for outbound deliveries and accepted by generic inbound
//! hooks. Receivers verify it like this:
//!
//! ```text
//! Moltlog-Signature: t=1732600000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//!
//! signed = t + "." + raw request body          (t: Unix time in seconds, as sent)
//! expected = hex(HMAC-SHA256(secret, signed))
//! accept if some v1 value equals expected (constant-time compare) and |now - t| <= 300 s
//! ```
//!
//! Several `v1=` values may appear (one per secret while a secret is being rotated). The
//! timestamp is inside the signed bytes, so a captured request cannot be replayed later with a
//! fresh timestamp; within the window, receivers de-duplicate on the signed `delivery_id` in the
//! body (the `Moltlog-Delivery` header is not signed). Deliveries also carry Standard Webhooks
//! (`standard`), whose signed `webhook-id` is the same id.

use crate::sig::{hmac_sha256, hmac_sha256_matches};

pub const HEADER: &str = "moltlog-signature";
/// The default replay window.
pub const TOLERANCE_S: u64 = 300;

/// The header value signing `body` at `t_s` with `secret`.
pub fn sign(secret: &[u8], t_s: u64, body: &[u8]) -> String {
    let t = t_s.to_string();
    format!("t={t},v1={}", hex::encode(hmac_sha256(secret, &[t.as_bytes(), b".", body])))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Moltlog-Signature header is missing")]
    Missing,
    #[error("the Moltlog-Signature header has no t= timestamp or no v1= signature")]
    Malformed,
    #[error("the signature timestamp is {skew_s} s away from now; at most {max_s} s are accepted")]
    Stale { skew_s: u64, max_s: u64 },
    #[error("no v1 signature matches")]
    Mismatch,
}

/// Checks a `Moltlog-Signature` header over `body`; returns the signed timestamp.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now_s: u64,
    tolerance_s: u64,
) -> Result<u64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<&str> = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let t_text = t.ok_or(SignatureError::Malformed)?;
    let t_s: u64 = t_text.parse().map_err(|_| SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let skew_s = t_s.abs_diff(now_s);
    if skew_s > tolerance_s {
        return Err(SignatureError::Stale { skew_s, max_s: tolerance_s });
    }
    // Every candidate is checked (no early exit), so timing says nothing about which matched.
    let matched = sigs
        .iter()
        .fold(false, |acc, s| hmac_sha256_matches(secret, &[t_text.as_bytes(), b".", body], s) | acc);
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    Ok(t_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = sign(b"whsec_1", 1_700_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(verify(b"whsec_1", Some(&h), b"{\"a\":1}", 1_700_000_100, TOLERANCE_S), Ok(1_700_000_000));
        assert_eq!(
            verify(b"whsec_2", Some(&h), b"{\"a\":1}", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"whsec_1", Some(&h), b"{\"a\":2}", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(b"whsec_1", Some(&h), b"{\"a\":1}", 1_700_000_301, 300),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn rotation_and_malformed_headers() {
        let good = sign(b"new", 50, b"x");
        let v1 = good.split_once("v1=").unwrap().1;
        let both = format!("t=50, v1={}, v1={v1}", "00".repeat(32));
        assert_eq!(verify(b"new", Some(&both), b"x", 50, 300), Ok(50));
        assert_eq!(verify(b"new", None, b"x", 50, 300), Err(SignatureError::Missing));
        assert_eq!(verify(b"new", Some("v1=00"), b"x", 50, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(b"new", Some("t=50"), b"x", 50, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(b"new", Some("t=soon,v1=00"), b"x", 50, 300), Err(SignatureError::Malformed));
    }
}
