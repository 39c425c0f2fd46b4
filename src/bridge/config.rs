//! The bridge's configuration, from the Worker's vars and secrets. Platform credentials are
//! secrets (`wrangler secret put`); API base URLs are vars so that tests (and proxies) can point
//! them elsewhere.
//!
//! | name | meaning |
//! |---|---|
//! | `TELEGRAM_BOT_TOKEN` | the bot's token (outbound `sendMessage`) |
//! | `TELEGRAM_WEBHOOK_SECRET` | the `secret_token` given to `setWebhook` (inbound) |
//! | `SLACK_SIGNING_SECRET` | the app's signing secret (inbound) |
//! | `SLACK_BOT_TOKEN` | `xoxb-…` (outbound `chat.postMessage`, reconciliation) |
//! | `DISCORD_PUBLIC_KEY` | the application's public key, hex (inbound) |
//! | `DISCORD_BOT_TOKEN` | the bot's token (outbound channel messages) |
//! | `TELEGRAM_API_BASE`, `SLACK_API_BASE`, `DISCORD_API_BASE` | the platforms' API roots |
//! | `BRIDGE_AGENT`, `BRIDGE_BINDINGS` | the default agent and the binding rules (`binding`) |
//! | `BRIDGE_MAX_BYTES` | the largest inbound platform request (1 MiB) |
//! | `OUTBOX_MAX_ATTEMPTS`, `OUTBOX_BACKOFF_BASE_MS`, `OUTBOX_BACKOFF_MAX_MS` | retries |
//! | `OUTBOUND_TIMEOUT_MS` | how long one outbound request may take (10 s) |
//! | `OUTBOX_ON_UNCERTAIN` | `resend` (default) or `dead_letter`: see `outbox` |

use super::binding::{self, BindingError, BindingRule};

pub const TELEGRAM_API: &str = "https://api.telegram.org";
pub const SLACK_API: &str = "https://slack.com/api";
pub const DISCORD_API: &str = "https://discord.com/api/v10";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TelegramConfig {
    pub bot_token: Option<String>,
    pub webhook_secret: Option<String>,
    pub api_base: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlackConfig {
    pub signing_secret: Option<String>,
    pub bot_token: Option<String>,
    pub api_base: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscordConfig {
    pub public_key: Option<String>,
    pub bot_token: Option<String>,
    pub api_base: String,
}

/// What to do with a message whose last send attempt has an unknown outcome (the runtime died
/// or the request timed out mid-send) on a platform without idempotent sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnUncertain {
    /// Send again: at least once (a duplicate is possible, a loss is not).
    Resend,
    /// Give up: at most once (a loss is possible, a duplicate is not).
    DeadLetter,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub timeout_ms: u64,
    pub on_uncertain: OnUncertain,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_attempts: 8,
            backoff_base_ms: 2_000,
            backoff_max_ms: 600_000,
            timeout_ms: 10_000,
            on_uncertain: OnUncertain::Resend,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    pub agent: String,
    pub bindings: Vec<BindingRule>,
    pub max_body_bytes: u64,
    pub telegram: TelegramConfig,
    pub slack: SlackConfig,
    pub discord: DiscordConfig,
    pub outbox: OutboxConfig,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            agent: "main".into(),
            bindings: Vec::new(),
            max_body_bytes: 1 << 20,
            telegram: TelegramConfig { api_base: TELEGRAM_API.into(), ..Default::default() },
            slack: SlackConfig { api_base: SLACK_API.into(), ..Default::default() },
            discord: DiscordConfig { api_base: DISCORD_API.into(), ..Default::default() },
            outbox: OutboxConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeConfigError {
    #[error("configuration variable {name} = {value:?} is not valid: {why}")]
    Bad { name: &'static str, value: String, why: &'static str },
    #[error(transparent)]
    Bindings(#[from] BindingError),
}

fn bad(name: &'static str, value: &str, why: &'static str) -> BridgeConfigError {
    BridgeConfigError::Bad { name, value: value.to_owned(), why }
}

/// A set, non-blank variable.
fn get(var: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub(crate) fn num<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    slot: &mut T,
) -> Result<(), BridgeConfigError> {
    if let Some(v) = get(var, name) {
        *slot = v.parse().map_err(|_| bad(name, &v, "not a non-negative integer"))?;
    }
    Ok(())
}

pub(crate) fn base_url(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<String, BridgeConfigError> {
    let v = get(var, name).unwrap_or_else(|| default.to_owned());
    if !(v.starts_with("https://") || v.starts_with("http://")) {
        return Err(bad(name, &v, "not an http(s) URL"));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

impl BridgeConfig {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<BridgeConfig, BridgeConfigError> {
        let mut c = BridgeConfig::default();
        if let Some(a) = get(&var, "BRIDGE_AGENT") {
            c.agent = a;
        }
        if let Some(b) = get(&var, "BRIDGE_BINDINGS") {
            c.bindings = binding::parse_rules(&b)?;
        }
        num(&var, "BRIDGE_MAX_BYTES", &mut c.max_body_bytes)?;
        c.telegram = TelegramConfig {
            bot_token: get(&var, "TELEGRAM_BOT_TOKEN"),
            webhook_secret: get(&var, "TELEGRAM_WEBHOOK_SECRET"),
            api_base: base_url(&var, "TELEGRAM_API_BASE", TELEGRAM_API)?,
        };
        c.slack = SlackConfig {
            signing_secret: get(&var, "SLACK_SIGNING_SECRET"),
            bot_token: get(&var, "SLACK_BOT_TOKEN"),
            api_base: base_url(&var, "SLACK_API_BASE", SLACK_API)?,
        };
        let public_key = get(&var, "DISCORD_PUBLIC_KEY");
        if let Some(pk) = &public_key
            && !crate::sig::ed25519_key_ok(pk)
        {
            return Err(bad("DISCORD_PUBLIC_KEY", pk, "not a 32-byte Ed25519 public key in hex"));
        }
        c.discord = DiscordConfig {
            public_key,
            bot_token: get(&var, "DISCORD_BOT_TOKEN"),
            api_base: base_url(&var, "DISCORD_API_BASE", DISCORD_API)?,
        };
        let o = &mut c.outbox;
        num(&var, "OUTBOX_MAX_ATTEMPTS", &mut o.max_attempts)?;
        num(&var, "OUTBOX_BACKOFF_BASE_MS", &mut o.backoff_base_ms)?;
        num(&var, "OUTBOX_BACKOFF_MAX_MS", &mut o.backoff_max_ms)?;
        num(&var, "OUTBOUND_TIMEOUT_MS", &mut o.timeout_ms)?;
        o.max_attempts = o.max_attempts.max(1);
        o.backoff_base_ms = o.backoff_base_ms.max(1);
        o.backoff_max_ms = o.backoff_max_ms.max(o.backoff_base_ms);
        o.timeout_ms = o.timeout_ms.max(100);
        if let Some(u) = get(&var, "OUTBOX_ON_UNCERTAIN") {
            o.on_uncertain = match u.as_str() {
                "resend" => OnUncertain::Resend,
                "dead_letter" => OnUncertain::DeadLetter,
                _ => return Err(bad("OUTBOX_ON_UNCERTAIN", &u, "use resend or dead_letter")),
            };
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |n| map.get(n).cloned()
    }

    #[test]
    fn defaults() {
        let c = BridgeConfig::from_vars(|_| None).unwrap();
        assert_eq!(c.telegram.api_base, TELEGRAM_API);
        assert_eq!(c.agent, "main");
        assert_eq!(c.outbox.on_uncertain, OnUncertain::Resend);
        assert!(c.slack.signing_secret.is_none());
    }

    #[test]
    fn overrides_and_errors() {
        let c = BridgeConfig::from_vars(vars(&[
            ("SLACK_API_BASE", "http://127.0.0.1:9/api/"),
            ("OUTBOX_MAX_ATTEMPTS", "3"),
            ("TELEGRAM_WEBHOOK_SECRET", "  s3cret "),
            ("BRIDGE_BINDINGS", r#"[{"platform":"slack","agent":"x"}]"#),
        ]))
        .unwrap();
        assert_eq!(c.slack.api_base, "http://127.0.0.1:9/api");
        assert_eq!(c.outbox.max_attempts, 3);
        assert_eq!(c.telegram.webhook_secret.as_deref(), Some("s3cret"));
        assert_eq!(c.bindings.len(), 1);
        let e = BridgeConfig::from_vars(vars(&[("OUTBOX_MAX_ATTEMPTS", "lots")])).unwrap_err();
        assert!(e.to_string().contains("OUTBOX_MAX_ATTEMPTS"));
        assert!(BridgeConfig::from_vars(vars(&[("DISCORD_PUBLIC_KEY", "abcd")])).is_err());
        assert!(BridgeConfig::from_vars(vars(&[("TELEGRAM_API_BASE", "ftp://x")])).is_err());
        assert!(BridgeConfig::from_vars(vars(&[("OUTBOX_ON_UNCERTAIN", "maybe")])).is_err());
    }
}
