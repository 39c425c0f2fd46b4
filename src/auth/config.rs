//! Access-control settings from the Worker's environment. Nothing configured means nothing but
//! the public routes answers (fail closed); a configuration error does the same, loudly.
//!
//! | variable | meaning |
//! |---|---|
//! | `ACCESS_TEAM_DOMAIN` | `myteam.cloudflareaccess.com` (or `myteam`): the JWT issuer and JWKS host |
//! | `ACCESS_AUD` | the Access application's AUD tag (several: comma-separated) |
//! | `ACCESS_JWKS_URL` | override the JWKS URL (default `https://<team>/cdn-cgi/access/certs`) |
//! | `ACCESS_JWKS_REFETCH_MS` | least time between JWKS fetches for unknown kids (default 30000) |
//! | `MOLTLOG_TOKENS` | secret: JSON list of machine tokens, see [`super::token`] |
//! | `MOLTLOG_DEV_MODE` | `1`: local development without credentials (never in production) |
//! | `MOLTLOG_CDP_SECRET` | secret: the master of the per-session CDP secrets, see [`super::session_secret`] |

use super::token::{TokenConfigError, TokenSet};

pub const DEFAULT_REFETCH_MIN_MS: u64 = 30_000;

/// How to accept Cloudflare Access JWTs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessConfig {
    /// `https://<team>.cloudflareaccess.com`: the expected `iss`.
    pub issuer: String,
    /// AUD tags of the Access applications in front of this Worker.
    pub audiences: Vec<String>,
    pub jwks_url: String,
    pub refetch_min_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub dev_mode: bool,
    pub tokens: TokenSet,
    pub access: Option<AccessConfig>,
    /// The master of the per-session CDP secrets.
    pub cdp_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error(transparent)]
    Tokens(#[from] TokenConfigError),
    #[error("ACCESS_TEAM_DOMAIN and ACCESS_AUD must be set together")]
    AccessHalfSet,
    #[error("ACCESS_TEAM_DOMAIN {0:?} is not a host name like myteam.cloudflareaccess.com")]
    TeamDomain(String),
    #[error("ACCESS_JWKS_URL must be an http(s) URL")]
    JwksUrl,
    #[error("ACCESS_JWKS_REFETCH_MS {0:?} is not a number of milliseconds")]
    RefetchMs(String),
    #[error("MOLTLOG_DEV_MODE {0:?} is neither 1 nor 0")]
    DevMode(String),
    #[error("MOLTLOG_CDP_SECRET is shorter than 16 characters; use e.g. `openssl rand -hex 32`")]
    CdpSecretShort,
}

impl AuthConfig {
    /// Reads the settings through `var` (unset and empty are the same).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<AuthConfig, AuthConfigError> {
        let get = |n: &str| var(n).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let dev_mode = match get("MOLTLOG_DEV_MODE").as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => return Err(AuthConfigError::DevMode(other.to_owned())),
        };
        let tokens = match get("MOLTLOG_TOKENS") {
            Some(json) => TokenSet::parse(&json)?,
            None => TokenSet::default(),
        };
        let access = match (get("ACCESS_TEAM_DOMAIN"), get("ACCESS_AUD")) {
            (None, None) => None,
            (Some(team), Some(aud)) => {
                Some(access(&team, &aud, get("ACCESS_JWKS_URL"), get("ACCESS_JWKS_REFETCH_MS"))?)
            }
            _ => return Err(AuthConfigError::AccessHalfSet),
        };
        let cdp_secret = get("MOLTLOG_CDP_SECRET");
        if cdp_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(AuthConfigError::CdpSecretShort);
        }
        Ok(AuthConfig { dev_mode, tokens, access, cdp_secret })
    }

    /// Whether any way to authenticate is configured (dev mode aside).
    pub fn has_credentials(&self) -> bool {
        self.access.is_some() || !self.tokens.is_empty() || self.cdp_secret.is_some()
    }
}

fn access(
    team: &str,
    aud: &str,
    jwks_url: Option<String>,
    refetch: Option<String>,
) -> Result<AccessConfig, AuthConfigError> {
    let host = team.trim_start_matches("https://").trim_end_matches('/').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with(['.', '-']);
    if !valid {
        return Err(AuthConfigError::TeamDomain(team.to_owned()));
    }
    let host = if host.contains('.') { host } else { format!("{host}.cloudflareaccess.com") };
    let issuer = format!("https://{host}");
    let jwks_url = match jwks_url {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => u,
        Some(_) => return Err(AuthConfigError::JwksUrl),
        None => format!("{issuer}/cdn-cgi/access/certs"),
    };
    let refetch_min_ms = match refetch {
        Some(v) => v.parse().map_err(|_| AuthConfigError::RefetchMs(v))?,
        None => DEFAULT_REFETCH_MIN_MS,
    };
    let audiences: Vec<String> =
        aud.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
    if audiences.is_empty() {
        return Err(AuthConfigError::AccessHalfSet);
    }
    Ok(AccessConfig { issuer, audiences, jwks_url, refetch_min_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<AuthConfig, AuthConfigError> {
        AuthConfig::from_vars(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn nothing_configured_is_closed() {
        let c = from(&[]).unwrap();
        assert!(!c.dev_mode && !c.has_credentials());
        assert!(!from(&[("MOLTLOG_DEV_MODE", "0"), ("MOLTLOG_TOKENS", " ")]).unwrap().dev_mode);
        assert!(from(&[("MOLTLOG_DEV_MODE", "1")]).unwrap().dev_mode);
        assert_eq!(from(&[("MOLTLOG_DEV_MODE", "yes")]), Err(AuthConfigError::DevMode("yes".into())));
    }

    #[test]
    fn access_from_a_team_domain() {
        let c =
            from(&[("ACCESS_TEAM_DOMAIN", "https://MyTeam.cloudflareaccess.com/"), ("ACCESS_AUD", "a1, a2")])
                .unwrap()
                .access
                .unwrap();
        assert_eq!(c.issuer, "https://myteam.cloudflareaccess.com");
        assert_eq!(c.jwks_url, "https://myteam.cloudflareaccess.com/cdn-cgi/access/certs");
        assert_eq!(c.audiences, ["a1", "a2"]);
        assert_eq!(c.refetch_min_ms, DEFAULT_REFETCH_MIN_MS);
        let short = from(&[("ACCESS_TEAM_DOMAIN", "myteam"), ("ACCESS_AUD", "a")]).unwrap().access.unwrap();
        assert_eq!(short.issuer, "https://myteam.cloudflareaccess.com");
        let custom = from(&[
            ("ACCESS_TEAM_DOMAIN", "t.cloudflareaccess.com"),
            ("ACCESS_AUD", "a"),
            ("ACCESS_JWKS_URL", "http://127.0.0.1:9/certs"),
            ("ACCESS_JWKS_REFETCH_MS", "250"),
        ])
        .unwrap()
        .access
        .unwrap();
        assert_eq!((custom.jwks_url.as_str(), custom.refetch_min_ms), ("http://127.0.0.1:9/certs", 250));
    }

    #[test]
    fn half_or_bad_access_settings_are_errors() {
        assert_eq!(from(&[("ACCESS_AUD", "a")]), Err(AuthConfigError::AccessHalfSet));
        assert!(matches!(
            from(&[("ACCESS_TEAM_DOMAIN", "a/b"), ("ACCESS_AUD", "a")]),
            Err(AuthConfigError::TeamDomain(_))
        ));
        assert_eq!(
            from(&[("ACCESS_TEAM_DOMAIN", "t"), ("ACCESS_AUD", "a"), ("ACCESS_JWKS_URL", "file:///x")]),
            Err(AuthConfigError::JwksUrl)
        );
        assert!(matches!(
            from(&[("MOLTLOG_TOKENS", "[{]")]),
            Err(AuthConfigError::Tokens(TokenConfigError::Json(_)))
        ));
    }
}
