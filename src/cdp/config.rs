//! Where the proxy finds browsers: `CDP_UPSTREAM` and friends, parsed purely.
//!
//! | `CDP_UPSTREAM` | upstream |
//! |---|---|
//! | unset or `binding` | the Browser Rendering binding `BROWSER` (`[browser] binding = "BROWSER"`) |
//! | `binding:http://host:port` | the binding's protocol spoken over HTTP to that address (a stand-in) |
//! | `rest` or `rest:https://…/browser-rendering` | Cloudflare's REST devtools API with the secret `CDP_API_TOKEN` (account from `CDP_ACCOUNT_ID`) |
//! | `cdp:http://host:port` | a plain DevTools endpoint (a local `chromium --remote-debugging-port`) |
//!
//! `CDP_KEEP_ALIVE_MS` (default 600000, Browser Rendering allows 10000–600000) is how long an
//! idle remote browser is kept for the session.

/// The binding name the proxy looks for.
pub const BROWSER_BINDING: &str = "BROWSER";
pub const DEFAULT_KEEP_ALIVE_MS: u64 = 600_000;
const REST_API: &str = "https://api.cloudflare.com/client/v4/accounts";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamConfig {
    /// Browser Rendering through its Worker binding.
    Binding { binding: String, keep_alive_ms: u64 },
    /// The binding's protocol (`POST /v1/devtools/browser`, socket on `/v1/devtools/browser/{id}`)
    /// over plain HTTP to `base`.
    BindingUrl { base: String, keep_alive_ms: u64 },
    /// Browser Rendering's REST devtools API: `POST {base}/devtools/browser`, socket on
    /// `{base}/devtools/browser/{id}`, with a bearer API token.
    Rest { base: String, keep_alive_ms: u64 },
    /// A plain DevTools HTTP endpoint: `GET {base}/json/version` names the browser socket.
    Cdp { base: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamConfigError {
    #[error("CDP_UPSTREAM {0:?} is not binding, binding:URL, rest, rest:URL or cdp:URL")]
    Unknown(String),
    #[error("CDP_UPSTREAM {0:?}: the URL must be http(s)://host[:port][/path]")]
    BadUrl(String),
    #[error("CDP_UPSTREAM=rest needs CDP_ACCOUNT_ID")]
    NoAccount,
    #[error("CDP_KEEP_ALIVE_MS {0:?} is not between 10000 and 600000")]
    KeepAlive(String),
}

impl UpstreamConfig {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<UpstreamConfig, UpstreamConfigError> {
        let get = |n: &str| var(n).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let keep_alive_ms = match get("CDP_KEEP_ALIVE_MS") {
            None => DEFAULT_KEEP_ALIVE_MS,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if (10_000..=600_000).contains(&ms) => ms,
                _ => return Err(UpstreamConfigError::KeepAlive(v)),
            },
        };
        let spec = get("CDP_UPSTREAM").unwrap_or_else(|| "binding".to_owned());
        let (mode, arg) = match spec.split_once(':') {
            Some((m, rest)) if matches!(m, "binding" | "rest" | "cdp") => (m, Some(rest)),
            _ => (spec.as_str(), None),
        };
        let url = |u: &str| -> Result<String, UpstreamConfigError> {
            let host = u.strip_prefix("http://").or_else(|| u.strip_prefix("https://"));
            match host {
                Some(h) if !h.is_empty() && !h.starts_with('/') => Ok(u.trim_end_matches('/').to_owned()),
                _ => Err(UpstreamConfigError::BadUrl(spec.clone())),
            }
        };
        Ok(match (mode, arg) {
            ("binding", None) => {
                UpstreamConfig::Binding { binding: BROWSER_BINDING.to_owned(), keep_alive_ms }
            }
            ("binding", Some(u)) => UpstreamConfig::BindingUrl { base: url(u)?, keep_alive_ms },
            ("rest", None) => {
                let account = get("CDP_ACCOUNT_ID").ok_or(UpstreamConfigError::NoAccount)?;
                UpstreamConfig::Rest {
                    base: format!("{REST_API}/{account}/browser-rendering"),
                    keep_alive_ms,
                }
            }
            ("rest", Some(u)) => UpstreamConfig::Rest { base: url(u)?, keep_alive_ms },
            ("cdp", Some(u)) => UpstreamConfig::Cdp { base: url(u)? },
            _ => return Err(UpstreamConfigError::Unknown(spec.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<UpstreamConfig, UpstreamConfigError> {
        UpstreamConfig::from_vars(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn every_upstream_kind() {
        assert_eq!(
            from(&[]),
            Ok(UpstreamConfig::Binding { binding: "BROWSER".into(), keep_alive_ms: DEFAULT_KEEP_ALIVE_MS })
        );
        assert_eq!(
            from(&[("CDP_UPSTREAM", "binding:http://127.0.0.1:9/"), ("CDP_KEEP_ALIVE_MS", "60000")]),
            Ok(UpstreamConfig::BindingUrl { base: "http://127.0.0.1:9".into(), keep_alive_ms: 60_000 })
        );
        assert_eq!(
            from(&[("CDP_UPSTREAM", "rest"), ("CDP_ACCOUNT_ID", "acc")]),
            Ok(UpstreamConfig::Rest {
                base: "https://api.cloudflare.com/client/v4/accounts/acc/browser-rendering".into(),
                keep_alive_ms: DEFAULT_KEEP_ALIVE_MS
            })
        );
        assert_eq!(
            from(&[("CDP_UPSTREAM", "cdp:http://localhost:9222")]),
            Ok(UpstreamConfig::Cdp { base: "http://localhost:9222".into() })
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(from(&[("CDP_UPSTREAM", "rest")]), Err(UpstreamConfigError::NoAccount));
        assert!(matches!(from(&[("CDP_UPSTREAM", "cdp")]), Err(UpstreamConfigError::Unknown(_))));
        assert!(matches!(from(&[("CDP_UPSTREAM", "chrome")]), Err(UpstreamConfigError::Unknown(_))));
        assert!(matches!(from(&[("CDP_UPSTREAM", "cdp:ws://x")]), Err(UpstreamConfigError::BadUrl(_))));
        assert!(matches!(from(&[("CDP_UPSTREAM", "cdp:http:///x")]), Err(UpstreamConfigError::BadUrl(_))));
        assert!(matches!(from(&[("CDP_KEEP_ALIVE_MS", "5")]), Err(UpstreamConfigError::KeepAlive(_))));
    }
}
