//! The Access team's signing keys (JWKS) and the isolate's cache of them.
//!
//! Keys are cached so a request costs no fetch. Cloudflare rotates keys and publishes the new one
//! before signing with it, so an unknown `kid` triggers a refetch, at most once per
//! `refetch_min_ms`: a stream of junk kids cannot turn into a stream of fetches. A key set older
//! than [`MAX_AGE_MS`] is refreshed on next use, so a withdrawn key stops working.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::{BoxedUint, PublicKey};
use serde::Deserialize;

/// Refresh a key set this old on next use even if every kid is known.
pub const MAX_AGE_MS: u64 = 60 * 60 * 1000;

/// Smallest RSA modulus accepted, in bits.
const MIN_BITS: u32 = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS is not JSON with a keys list")]
    Json,
    #[error("the JWKS has no usable RS256 key")]
    NoKeys,
    #[error("fetching the JWKS failed: {0}")]
    Fetch(String),
}

/// Keys by `kid`.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: HashMap<String, Arc<PublicKey>>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
struct RawKey {
    kid: Option<String>,
    kty: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl RawKey {
    /// The key if it is an RSA signing key meant for RS256; anything else is skipped.
    fn into_key(self) -> Option<(String, PublicKey)> {
        if self.kty.as_deref() != Some("RSA")
            || self.alg.as_deref().is_some_and(|a| a != "RS256")
            || self.use_.as_deref().is_some_and(|u| u != "sig")
        {
            return None;
        }
        let kid = self.kid.filter(|k| !k.is_empty())?;
        let n = URL_SAFE_NO_PAD.decode(self.n?).ok()?;
        let e = URL_SAFE_NO_PAD.decode(self.e?).ok()?;
        let (n, e) = (BoxedUint::from_be_slice_vartime(&n), BoxedUint::from_be_slice_vartime(&e));
        if n.bit_width_vartime() < MIN_BITS {
            return None;
        }
        Some((kid, PublicKey::new(n, e).ok()?))
    }
}

impl Jwks {
    /// Parses `{"keys": [...]}`, keeping the RSA signing keys (Cloudflare's certs endpoint also
    /// lists certificates, which are ignored).
    pub fn parse(json: &str) -> Result<Jwks, JwksError> {
        let raw: RawSet = serde_json::from_str(json).map_err(|_| JwksError::Json)?;
        let keys: HashMap<_, _> =
            raw.keys.into_iter().filter_map(RawKey::into_key).map(|(k, v)| (k, Arc::new(v))).collect();
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        Ok(Jwks { keys })
    }

    pub fn get(&self, kid: &str) -> Option<Arc<PublicKey>> {
        self.keys.get(kid).cloned()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What to do for a kid, decided from the cache alone.
#[derive(Debug)]
pub enum Lookup {
    /// Use this key.
    Key(Arc<PublicKey>),
    /// Fetch the JWKS now (the attempt is already recorded), then [`JwksCache::store`] it.
    Fetch,
    /// Unknown, and a fetch happened too recently to try again.
    Unknown,
}

/// The isolate's JWKS: the last good key set and when the last fetch was attempted.
#[derive(Debug, Default)]
pub struct JwksCache {
    url: String,
    keys: Jwks,
    fetched_ms: Option<u64>,
    attempted_ms: Option<u64>,
}

impl JwksCache {
    /// Decides how to get the key for `kid`. When it says [`Lookup::Fetch`] it has recorded the
    /// attempt, so requests that arrive while the fetch is in flight do not fetch again.
    pub fn lookup(&mut self, url: &str, kid: &str, now_ms: u64, refetch_min_ms: u64) -> Lookup {
        if self.url != url {
            *self = JwksCache { url: url.to_owned(), ..JwksCache::default() };
        }
        let key = self.keys.get(kid);
        let stale = self.fetched_ms.is_none_or(|t| now_ms.saturating_sub(t) >= MAX_AGE_MS);
        if let Some(k) = &key
            && !stale
        {
            return Lookup::Key(k.clone());
        }
        let may_fetch = self.attempted_ms.is_none_or(|t| now_ms.saturating_sub(t) >= refetch_min_ms);
        match (may_fetch, key) {
            (true, _) => {
                self.attempted_ms = Some(now_ms);
                Lookup::Fetch
            }
            // Stale but known, and a fetch was just tried: keep serving what we have.
            (false, Some(k)) => Lookup::Key(k),
            (false, None) => Lookup::Unknown,
        }
    }

    /// Records the outcome of a fetch: a good key set replaces the old one; a failure keeps it.
    pub fn store(&mut self, result: Result<Jwks, JwksError>, now_ms: u64) {
        if let Ok(keys) = result {
            self.keys = keys;
            self.fetched_ms = Some(now_ms);
        }
    }

    /// The key for `kid` after a fetch.
    pub fn get(&self, kid: &str) -> Option<Arc<PublicKey>> {
        self.keys.get(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mint;

    fn set(kids: &[(usize, &str)]) -> String {
        let keys: Vec<_> = kids.iter().map(|(i, kid)| mint::TestKey::load(*i, kid)).collect();
        mint::jwks(&keys.iter().collect::<Vec<_>>()).to_string()
    }

    #[test]
    fn parses_rsa_signing_keys_and_skips_the_rest() {
        let k = mint::TestKey::load(0, "k1");
        let mut jwk_ec = k.jwk();
        jwk_ec["kty"] = "EC".into();
        jwk_ec["kid"] = "ec".into();
        let mut jwk_hs = k.jwk();
        jwk_hs["alg"] = "HS256".into();
        jwk_hs["kid"] = "hs".into();
        let json = serde_json::json!({
            "keys": [k.jwk(), jwk_ec, jwk_hs, {"kid": "x", "kty": "RSA", "n": "AQAB", "e": "AQAB"}],
            "public_cert": {"kid": "k1", "cert": "-----BEGIN CERTIFICATE-----"},
        });
        let jwks = Jwks::parse(&json.to_string()).unwrap();
        assert_eq!(jwks.len(), 1);
        assert!(jwks.get("k1").is_some());
        assert_eq!(Jwks::parse(r#"{"keys":[]}"#).unwrap_err(), JwksError::NoKeys);
        assert_eq!(Jwks::parse("<html>").unwrap_err(), JwksError::Json);
    }

    #[test]
    fn unknown_kids_refetch_at_most_once_per_interval() {
        let url = "https://t.cloudflareaccess.com/cdn-cgi/access/certs";
        let mut c = JwksCache::default();
        assert!(matches!(c.lookup(url, "k1", 1_000, 500), Lookup::Fetch));
        // Another request while the fetch is in flight does not fetch again.
        assert!(matches!(c.lookup(url, "k1", 1_001, 500), Lookup::Unknown));
        c.store(Jwks::parse(&set(&[(0, "k1")])), 1_010);
        assert!(matches!(c.lookup(url, "k1", 1_020, 500), Lookup::Key(_)));
        // Rotation: k2 appears; the first ask within the interval is refused, later ones fetch.
        assert!(matches!(c.lookup(url, "k2", 1_200, 500), Lookup::Unknown));
        assert!(matches!(c.lookup(url, "k2", 1_500, 500), Lookup::Fetch));
        c.store(Jwks::parse(&set(&[(0, "k1"), (1, "k2")])), 1_510);
        assert!(matches!(c.lookup(url, "k2", 1_520, 500), Lookup::Key(_)));
        assert!(matches!(c.lookup(url, "junk", 1_530, 500), Lookup::Unknown));
    }

    #[test]
    fn a_failed_fetch_keeps_the_old_keys_and_old_keys_are_refreshed() {
        let url = "u";
        let mut c = JwksCache::default();
        assert!(matches!(c.lookup(url, "k1", 0, 100), Lookup::Fetch));
        c.store(Jwks::parse(&set(&[(0, "k1")])), 0);
        let later = MAX_AGE_MS + 1;
        assert!(matches!(c.lookup(url, "k1", later, 100), Lookup::Fetch));
        c.store(Err(JwksError::Fetch("503".into())), later);
        assert!(matches!(c.lookup(url, "k1", later + 1, 100), Lookup::Key(_)));
        // A different URL (configuration changed) starts from nothing.
        assert!(matches!(c.lookup("v", "k1", later + 2, 100), Lookup::Fetch));
        assert!(c.get("k1").is_none());
    }
}
