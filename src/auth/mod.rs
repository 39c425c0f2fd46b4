//! Access control: who is calling, and may they call this route.
//!
//! People come through Cloudflare Access (an RS256 JWT checked against the team's JWKS),
//! machines with scoped bearer tokens whose SHA-256 digests are configured as a secret, and local
//! development with an explicit dev mode. One table ([`policy::rule`]) says what each route
//! needs; [`policy::decide`] turns a route and an [`Identity`] into allow (with the actor appends
//! are recorded as), 401 or 403.
//!
//! Everything here is pure and tested natively except [`web`], the Worker glue (headers, JWKS
//! fetch, the isolate's caches).

pub mod config;
pub mod jwks;
pub mod jwt;
pub mod policy;
pub mod request;
pub mod scope;
pub mod session_secret;
pub mod token;
#[cfg(target_arch = "wasm32")]
pub(crate) mod web;

/// Test-only JWT minting with the fixture keys, shared with the end-to-end tests.
#[cfg(test)]
#[path = "../../tests/auth_support/mint.rs"]
mod mint;

use moltlog_core::event::Actor;

use config::AuthConfig;
use request::Presented;
use scope::Scope;

/// The `WWW-Authenticate` challenge sent with every 401.
pub const CHALLENGE: &str = "Bearer realm=\"moltlog\"";

/// Who a request speaks for, once its credentials checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No credentials (and not in dev mode).
    Anonymous,
    /// A person (or an Access service token) let in by Cloudflare Access: an operator.
    AccessUser { subject: String, email: Option<String> },
    /// A machine token from `MOLTLOG_TOKENS`.
    Token { name: String, scopes: Vec<Scope> },
    /// Dev mode without credentials: everything, as the actor the request chose.
    Dev { actor: Actor },
}

impl Identity {
    /// Whom appends are recorded as: people and admin tokens are operators, other tokens the
    /// agent runtime.
    pub fn actor(&self) -> Option<Actor> {
        match self {
            Identity::Anonymous => None,
            Identity::AccessUser { .. } => Some(Actor::Operator),
            Identity::Token { scopes, .. } if scopes.contains(&Scope::Admin) => Some(Actor::Operator),
            Identity::Token { .. } => Some(Actor::Runtime),
            Identity::Dev { actor } => Some(*actor),
        }
    }
}

/// Why credentials were refused. For the log only: the caller just gets 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("the Authorization header is not a Bearer token")]
    NotBearer,
    #[error("the bearer token is not a configured token")]
    UnknownToken,
    #[error("an Access JWT was presented but Access is not configured")]
    AccessNotConfigured,
    #[error("Access JWT refused: {0}")]
    Jwt(#[from] jwt::JwtError),
    #[error("Access JWT refused: the team's keys are unavailable: {0}")]
    Jwks(#[from] jwks::JwksError),
    #[error("access control is misconfigured; see the error logged at start")]
    Misconfigured,
    #[error("a CDP secret was presented but MOLTLOG_CDP_SECRET is not configured")]
    SecretNotConfigured,
    #[error("the CDP secret is not this session's")]
    BadSessionSecret,
    #[error("a CDP secret only opens a CDP route")]
    SecretOffRoute,
    /// A dev-mode request named an actor it cannot be: a 400, not a 401.
    #[error(transparent)]
    BadDevActor(#[from] request::BadDevActor),
}

/// The first step of authentication, before any network: either the identity is known, or an
/// Access JWT must be verified against the JWKS.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    Known(Identity),
    AccessJwt(String),
    /// A per-session CDP secret, checked against the routed session's key by [`session_identity`].
    SessionSecret(String),
}

/// Resolves presented credentials. Credentials, when presented, are always checked (also in dev
/// mode); `dev` is the actor of a credential-less request when dev mode applies to it.
pub fn resolve(presented: Presented, cfg: &AuthConfig, dev: Option<Actor>) -> Result<Resolved, AuthFailure> {
    match presented {
        Presented::Nothing => {
            Ok(Resolved::Known(dev.map_or(Identity::Anonymous, |actor| Identity::Dev { actor })))
        }
        Presented::NotBearer => Err(AuthFailure::NotBearer),
        Presented::Bearer(token) => cfg
            .tokens
            .authenticate(&token)
            .map(|e| Resolved::Known(Identity::Token { name: e.name.clone(), scopes: e.scopes.clone() }))
            .ok_or(AuthFailure::UnknownToken),
        Presented::AccessJwt(jwt) if cfg.access.is_some() => Ok(Resolved::AccessJwt(jwt)),
        Presented::AccessJwt(_) => Err(AuthFailure::AccessNotConfigured),
        Presented::SessionSecret(_) if cfg.cdp_secret.is_none() => Err(AuthFailure::SecretNotConfigured),
        Presented::SessionSecret(s) => Ok(Resolved::SessionSecret(s)),
    }
}

/// The identity a per-session CDP secret stands for: `session:{key}:browser` for the routed
/// session, if the secret is that session's.
pub fn session_identity(
    secret: &str,
    cfg: &AuthConfig,
    key: Option<&moltlog_core::key::SessionKey>,
) -> Result<Identity, AuthFailure> {
    let master = cfg.cdp_secret.as_deref().ok_or(AuthFailure::SecretNotConfigured)?;
    let key = key.ok_or(AuthFailure::SecretOffRoute)?;
    if !session_secret::verify(master, key, secret) {
        return Err(AuthFailure::BadSessionSecret);
    }
    Ok(Identity::Token {
        name: "cdp-secret".into(),
        scopes: vec![Scope::Session {
            pattern: scope::KeyPattern::Exact(key.clone()),
            op: scope::SessionOp::Browser,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use token::digest_hex;

    fn cfg() -> AuthConfig {
        let tokens =
            format!(r#"[{{"name":"rt","sha256":"{}","scopes":["session:a:read"]}}]"#, digest_hex("s3cret"));
        AuthConfig::from_vars(|n| (n == "MOLTLOG_TOKENS").then(|| tokens.clone())).unwrap()
    }

    #[test]
    fn credentials_decide_before_dev_mode() {
        let c = cfg();
        let dev = Some(Actor::Operator);
        assert_eq!(resolve(Presented::Nothing, &c, None), Ok(Resolved::Known(Identity::Anonymous)));
        assert_eq!(
            resolve(Presented::Nothing, &c, dev),
            Ok(Resolved::Known(Identity::Dev { actor: Actor::Operator }))
        );
        let Ok(Resolved::Known(Identity::Token { name, .. })) =
            resolve(Presented::Bearer("s3cret".into()), &c, dev)
        else {
            panic!("token not recognised")
        };
        assert_eq!(name, "rt");
        assert_eq!(resolve(Presented::Bearer("nope".into()), &c, dev), Err(AuthFailure::UnknownToken));
        assert_eq!(resolve(Presented::NotBearer, &c, dev), Err(AuthFailure::NotBearer));
        assert_eq!(resolve(Presented::AccessJwt("x".into()), &c, dev), Err(AuthFailure::AccessNotConfigured));
        assert_eq!(
            resolve(Presented::SessionSecret("x".into()), &c, dev),
            Err(AuthFailure::SecretNotConfigured)
        );
    }

    #[test]
    fn a_session_secret_opens_the_browser_of_its_session() {
        let c = AuthConfig { cdp_secret: Some("master".into()), ..AuthConfig::default() };
        let k = moltlog_core::key::SessionKey::parse("agent:main:1").unwrap();
        let other = moltlog_core::key::SessionKey::parse("agent:main:2").unwrap();
        let s = session_secret::derive("master", &k);
        assert_eq!(
            resolve(Presented::SessionSecret(s.clone()), &c, None),
            Ok(Resolved::SessionSecret(s.clone()))
        );
        let id = session_identity(&s, &c, Some(&k)).unwrap();
        let Identity::Token { scopes, .. } = &id else { panic!("not a token identity") };
        assert!(scopes[0].allows_session(&k, scope::SessionOp::Browser));
        assert!(!scopes[0].allows_session(&k, scope::SessionOp::Append));
        assert_eq!(session_identity(&s, &c, Some(&other)), Err(AuthFailure::BadSessionSecret));
        assert_eq!(session_identity(&s, &c, None), Err(AuthFailure::SecretOffRoute));
    }

    #[test]
    fn actors_follow_the_identity() {
        let tok = |s: &str| Identity::Token { name: "t".into(), scopes: vec![Scope::parse(s).unwrap()] };
        assert_eq!(Identity::Anonymous.actor(), None);
        assert_eq!(Identity::AccessUser { subject: "s".into(), email: None }.actor(), Some(Actor::Operator));
        assert_eq!(tok("admin").actor(), Some(Actor::Operator));
        assert_eq!(tok("session:a:append").actor(), Some(Actor::Runtime));
        assert_eq!(Identity::Dev { actor: Actor::Bridge }.actor(), Some(Actor::Bridge));
    }
}
