//! Webhook configuration from the Worker's vars.
//!
//! `HOOKS` is a JSON object of inbound integrations by name; each names the secret binding that
//! holds its key (set with `wrangler secret put`) and the session its events go to:
//!
//! ```json
//! {"github": {"type": "github", "secret_var": "GITHUB_WEBHOOK_SECRET", "session": "agent:main:github"},
//!  "ci":     {"type": "hmac",   "secret_var": "CI_HOOK_SECRET",        "session": "agent:main:ci"}}
//! ```
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `HOOKS` | none | the inbound integrations |
//! | `HOOK_MAX_BYTES` | 26214400 | the largest inbound webhook body (GitHub caps payloads at 25 MB) |
//! | `WEBHOOK_MAX_ATTEMPTS` | 10 | outbound attempts per delivery before the subscription pauses |
//! | `WEBHOOK_BACKOFF_BASE_MS`, `WEBHOOK_BACKOFF_MAX_MS` | 5000, 3600000 | outbound retry backoff |
//! | `WEBHOOK_BATCH_EVENTS` | 100 | most events in one delivery |
//! | `WEBHOOK_TIMEOUT_MS` | 10000 | how long one delivery may take |
//! | `WEBHOOKS_ALLOW_HTTP` | 0 | accept `http://` subscriber URLs (local testing only) |
//! | `WEBHOOKS_ALLOW_PRIVATE` | 0 | accept and deliver to loopback, private, link-local and metadata hosts (local testing only) |
//! | `SUBSCRIPTIONS_CACHE_MS` | 30000 | how long a session trusts its copy of the all-sessions subscriptions |

use std::collections::BTreeMap;

use moltlog_core::key::SessionKey;
use serde::Deserialize;

use super::signature::TOLERANCE_S;
use crate::bridge::config::{BridgeConfigError, num};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC of the body>`, `X-GitHub-Delivery`.
    Github,
    /// moltlog's timestamped HMAC-SHA256 (`Moltlog-Signature`, see `signature`).
    Hmac,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub name: String,
    pub kind: HookKind,
    /// The binding (secret or var) holding the signing key.
    pub secret_var: String,
    pub session: SessionKey,
    /// Replay window of `hmac` hooks, seconds.
    pub tolerance_s: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HookJson {
    #[serde(rename = "type")]
    kind: HookKind,
    secret_var: String,
    session: String,
    tolerance_s: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HooksConfig {
    pub hooks: BTreeMap<String, Hook>,
    pub max_body_bytes: u64,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub batch_events: u32,
    pub timeout_ms: u64,
    pub allow_http: bool,
    /// Subscriber URLs may name non-public hosts (see `address`).
    pub allow_private: bool,
    pub cache_ms: u64,
}

/// Which subscriber URLs are accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            hooks: BTreeMap::new(),
            max_body_bytes: 25 << 20,
            max_attempts: 10,
            backoff_base_ms: 5_000,
            backoff_max_ms: 3_600_000,
            batch_events: 100,
            timeout_ms: 10_000,
            allow_http: false,
            allow_private: false,
            cache_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HooksConfigError {
    #[error("HOOKS is not a JSON object of hooks: {0}")]
    Json(String),
    #[error("hook {name:?}: {why}")]
    Hook { name: String, why: String },
    #[error(transparent)]
    Var(#[from] BridgeConfigError),
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn parse_hooks(json: &str) -> Result<BTreeMap<String, Hook>, HooksConfigError> {
    let raw: BTreeMap<String, HookJson> =
        serde_json::from_str(json).map_err(|e| HooksConfigError::Json(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, h) in raw {
        let bad = |why: String| HooksConfigError::Hook { name: name.clone(), why };
        if !valid_name(&name) {
            return Err(bad("names are 1-64 characters of A-Z a-z 0-9 - _".into()));
        }
        let session = SessionKey::parse(&h.session).map_err(|e| bad(e.to_string()))?;
        if h.secret_var.trim().is_empty() {
            return Err(bad("secret_var is empty".into()));
        }
        let hook = Hook {
            name: name.clone(),
            kind: h.kind,
            secret_var: h.secret_var,
            session,
            tolerance_s: h.tolerance_s.unwrap_or(TOLERANCE_S),
        };
        out.insert(name, hook);
    }
    Ok(out)
}

impl HooksConfig {
    pub fn url_policy(&self) -> UrlPolicy {
        UrlPolicy { allow_http: self.allow_http, allow_private: self.allow_private }
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<HooksConfig, HooksConfigError> {
        let mut c = HooksConfig::default();
        if let Some(h) = var("HOOKS").filter(|h| !h.trim().is_empty()) {
            c.hooks = parse_hooks(&h)?;
        }
        num(&var, "HOOK_MAX_BYTES", &mut c.max_body_bytes)?;
        num(&var, "WEBHOOK_MAX_ATTEMPTS", &mut c.max_attempts)?;
        num(&var, "WEBHOOK_BACKOFF_BASE_MS", &mut c.backoff_base_ms)?;
        num(&var, "WEBHOOK_BACKOFF_MAX_MS", &mut c.backoff_max_ms)?;
        num(&var, "WEBHOOK_BATCH_EVENTS", &mut c.batch_events)?;
        num(&var, "WEBHOOK_TIMEOUT_MS", &mut c.timeout_ms)?;
        num(&var, "SUBSCRIPTIONS_CACHE_MS", &mut c.cache_ms)?;
        let flag = |n: &str| var(n).is_some_and(|v| matches!(v.trim(), "1" | "true"));
        c.allow_http = flag("WEBHOOKS_ALLOW_HTTP");
        c.allow_private = flag("WEBHOOKS_ALLOW_PRIVATE");
        c.max_attempts = c.max_attempts.max(1);
        c.backoff_base_ms = c.backoff_base_ms.max(1);
        c.backoff_max_ms = c.backoff_max_ms.max(c.backoff_base_ms);
        c.batch_events = c.batch_events.clamp(1, 1000);
        c.timeout_ms = c.timeout_ms.max(100);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_parse() {
        let h = parse_hooks(
            r#"{"gh":{"type":"github","secret_var":"GH","session":"agent:main:github"},
                "ci":{"type":"hmac","secret_var":"CI","session":"agent:main:ci","tolerance_s":60}}"#,
        )
        .unwrap();
        assert_eq!(h["gh"].kind, HookKind::Github);
        assert_eq!(h["ci"].tolerance_s, 60);
        assert_eq!(h["gh"].tolerance_s, TOLERANCE_S);
        assert!(parse_hooks(r#"{"a b":{"type":"github","secret_var":"X","session":"s"}}"#).is_err());
        assert!(parse_hooks(r#"{"a":{"type":"gitlab","secret_var":"X","session":"s"}}"#).is_err());
        assert!(parse_hooks(r#"{"a":{"type":"hmac","secret_var":"X","session":"bad key"}}"#).is_err());
        assert!(parse_hooks(r#"{"a":{"type":"hmac","secret":"X","session":"s"}}"#).is_err());
        assert!(parse_hooks("[]").is_err());
    }

    #[test]
    fn tunables() {
        let c = HooksConfig::from_vars(|n| match n {
            "WEBHOOK_MAX_ATTEMPTS" => Some("3".into()),
            "WEBHOOKS_ALLOW_HTTP" => Some("1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((c.max_attempts, c.allow_http, c.allow_private, c.batch_events), (3, true, false, 100));
        let local = HooksConfig::from_vars(|n| (n == "WEBHOOKS_ALLOW_PRIVATE").then(|| "1".into())).unwrap();
        assert_eq!(local.url_policy(), UrlPolicy { allow_http: false, allow_private: true });
        assert!(HooksConfig::from_vars(|n| (n == "HOOK_MAX_BYTES").then(|| "big".into())).is_err());
    }
}
