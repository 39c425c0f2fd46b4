//! Machine tokens: bearer secrets whose SHA-256 digests (never the tokens) are configured in the
//! `MOLTLOG_TOKENS` secret, each with a name and scopes.
//!
//! ```json
//! [{"name": "runtime-main", "sha256": "<64 hex>", "scopes": ["session:agent:main:*:append"]}]
//! ```

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::scope::{Scope, ScopeError};

/// A configured token: its name (for logs and the audit trail), digest and grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenEntry {
    pub name: String,
    digest: [u8; 32],
    pub scopes: Vec<Scope>,
}

/// Every configured token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenSet {
    entries: Vec<TokenEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenConfigError {
    /// The message names the position, never the content.
    #[error("MOLTLOG_TOKENS is not a JSON list of {{name, sha256, scopes}}: {0}")]
    Json(String),
    #[error("token {name:?}: sha256 must be 64 hex digits (the digest of the token, not the token)")]
    BadDigest { name: String },
    #[error("token {name:?}: {source}")]
    BadScope { name: String, source: ScopeError },
    #[error("token {name:?} has no scopes")]
    NoScopes { name: String },
    #[error("token name {name:?} is empty or used twice")]
    BadName { name: String },
    #[error("tokens {a:?} and {b:?} have the same digest")]
    SameDigest { a: String, b: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    sha256: String,
    scopes: Vec<String>,
}

impl TokenSet {
    pub fn parse(json: &str) -> Result<TokenSet, TokenConfigError> {
        let raw: Vec<RawEntry> = serde_json::from_str(json)
            .map_err(|e| TokenConfigError::Json(format!("line {} column {}", e.line(), e.column())))?;
        let mut entries: Vec<TokenEntry> = Vec::with_capacity(raw.len());
        for r in raw {
            if r.name.trim().is_empty() || entries.iter().any(|e| e.name == r.name) {
                return Err(TokenConfigError::BadName { name: r.name });
            }
            let digest = hex::decode(r.sha256.trim())
                .ok()
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| TokenConfigError::BadDigest { name: r.name.clone() })?;
            if let Some(other) = entries.iter().find(|e| e.digest == digest) {
                return Err(TokenConfigError::SameDigest { a: other.name.clone(), b: r.name });
            }
            if r.scopes.is_empty() {
                return Err(TokenConfigError::NoScopes { name: r.name });
            }
            let scopes = r
                .scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| TokenConfigError::BadScope { name: r.name.clone(), source })?;
            entries.push(TokenEntry { name: r.name, digest, scopes });
        }
        Ok(TokenSet { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry whose digest is the SHA-256 of `token`. Every entry is compared in constant
    /// time and the scan never stops early, so timing says nothing about which bytes matched.
    pub fn authenticate(&self, token: &str) -> Option<&TokenEntry> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = 0u32;
        for (i, e) in self.entries.iter().enumerate() {
            let hit = e.digest.ct_eq(&presented);
            found.conditional_assign(&(i as u32 + 1), hit);
        }
        (found > 0).then(|| &self.entries[found as usize - 1])
    }
}

/// The hex SHA-256 of a token: what `MOLTLOG_TOKENS` holds for it.
pub fn digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> String {
        format!(
            r#"[{{"name":"rt","sha256":"{}","scopes":["session:agent:a:*:append","session:agent:a:*:read"]}},
                {{"name":"boss","sha256":"{}","scopes":["admin"]}}]"#,
            digest_hex("rt-secret"),
            digest_hex("boss-secret").to_uppercase(),
        )
    }

    #[test]
    fn finds_the_token_by_its_digest() {
        let set = TokenSet::parse(&config()).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.authenticate("rt-secret").unwrap().name, "rt");
        assert_eq!(set.authenticate("boss-secret").unwrap().scopes, vec![Scope::Admin]);
        assert!(set.authenticate("rt-secre").is_none());
        assert!(set.authenticate("").is_none());
        assert!(TokenSet::default().authenticate("rt-secret").is_none());
    }

    #[test]
    fn a_plain_token_in_place_of_a_digest_is_refused() {
        let bad = r#"[{"name":"x","sha256":"rt-secret","scopes":["admin"]}]"#;
        assert_eq!(TokenSet::parse(bad), Err(TokenConfigError::BadDigest { name: "x".into() }));
    }

    #[test]
    fn config_errors_are_named_and_never_echo_the_value() {
        let e = TokenSet::parse("[{\"name\":\"x\",\"sha256\":\"secretsecret\"").unwrap_err();
        assert!(matches!(e, TokenConfigError::Json(_)));
        assert!(!e.to_string().contains("secretsecret"), "{e}");
        let d = digest_hex("t");
        let twice = format!(
            r#"[{{"name":"a","sha256":"{d}","scopes":["admin"]}},{{"name":"b","sha256":"{d}","scopes":["admin"]}}]"#
        );
        assert!(matches!(TokenSet::parse(&twice), Err(TokenConfigError::SameDigest { .. })));
        let no_scopes = format!(r#"[{{"name":"a","sha256":"{d}","scopes":[]}}]"#);
        assert!(matches!(TokenSet::parse(&no_scopes), Err(TokenConfigError::NoScopes { .. })));
        let bad_scope = format!(r#"[{{"name":"a","sha256":"{d}","scopes":["root"]}}]"#);
        assert!(matches!(TokenSet::parse(&bad_scope), Err(TokenConfigError::BadScope { .. })));
        let extra = format!(r#"[{{"name":"a","sha256":"{d}","scopes":["admin"],"token":"x"}}]"#);
        assert!(matches!(TokenSet::parse(&extra), Err(TokenConfigError::Json(_))));
    }
}
