//! The Worker glue of access control: reads the configuration and the request, fetches the
//! Access JWKS, and turns the policy's decision into the actor or a 401/403.
//!
//! The configuration and the JWKS live as long as the isolate (thread-locals: one thread per
//! isolate), so a request costs no parse and, normally, no fetch.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use moltlog_core::event::Actor;
use worker::{AbortSignal, Date, Env, Fetch, Request, console_error, console_log, console_warn};

use super::config::{AccessConfig, AuthConfig};
use super::jwks::{Jwks, JwksCache, JwksError, Lookup};
use super::jwt::{Expect, UnverifiedJwt};
use super::policy::{self, Decision, Rule};
use super::request::{self, Facts};
use super::{AuthFailure, Identity, Resolved};
use crate::api::route::Route;
use crate::http::ApiError;

/// Longest wait for the JWKS; a hanging endpoint must not hang every request.
const JWKS_TIMEOUT_MS: u32 = 5_000;

thread_local! {
    static CONFIG: RefCell<Option<Rc<Option<AuthConfig>>>> = const { RefCell::new(None) };
    static JWKS: RefCell<JwksCache> = RefCell::new(JwksCache::default());
    static WARNED_DEV_REMOTE: Cell<bool> = const { Cell::new(false) };
}

/// The configuration, parsed once per isolate. None: misconfigured, so everything protected
/// is refused. Announces dev mode and a closed configuration in the log when first read.
fn config(env: &Env) -> Rc<Option<AuthConfig>> {
    if let Some(c) = CONFIG.with_borrow(|c| c.clone()) {
        return c;
    }
    let parsed = AuthConfig::from_vars(|n| env.var(n).ok().map(|v| v.to_string()));
    let cfg = match parsed {
        Ok(c) => {
            if c.dev_mode {
                console_warn!(
                    "moltlog: *** DEV MODE *** requests without credentials are served, as the actor \
                     X-Moltlog-Actor names (default runtime), from loopback addresses only. \
                     Never set MOLTLOG_DEV_MODE outside local development."
                );
            } else if !c.has_credentials() {
                console_warn!(
                    "moltlog: no access control is configured (ACCESS_TEAM_DOMAIN + ACCESS_AUD, or \
                     MOLTLOG_TOKENS): every route but /healthz answers 401"
                );
            }
            Some(c)
        }
        Err(e) => {
            console_error!("moltlog: access control is misconfigured, refusing all credentials: {e}");
            None
        }
    };
    let cfg = Rc::new(cfg);
    CONFIG.with_borrow_mut(|c| *c = Some(cfg.clone()));
    cfg
}

/// Authenticates and authorizes `req` for `route`. Ok: go ahead, with the actor appends are
/// recorded as. Err: 401 (the caller adds the challenge), 403, or 400 for a bad dev actor.
pub async fn authorize(req: &Request, env: &Env, route: &Route) -> Result<Option<Actor>, ApiError> {
    // Public and signature-checked routes need no identity: no parse, no JWKS fetch.
    if matches!(policy::rule(route), Rule::Public | Rule::Signed) {
        return Ok(None);
    }
    let cfg = config(env);
    let incoming = Incoming::read(req, route)?;
    let identity = match cfg.as_ref() {
        Some(cfg) => identify(&incoming, cfg, route).await,
        None => Err(AuthFailure::Misconfigured),
    };
    let identity = match identity {
        Ok(id) => id,
        Err(AuthFailure::BadDevActor(e)) => return Err(ApiError::bad_request("bad_actor", e.to_string())),
        Err(why) => {
            console_log!("moltlog auth: 401 {} {}: {why}", req.method().as_ref(), req.path());
            return Err(unauthenticated());
        }
    };
    match policy::decide(route, &identity) {
        Decision::Allow { actor } => Ok(actor),
        Decision::Unauthenticated => Err(unauthenticated()),
        Decision::Forbidden => {
            console_log!("moltlog auth: 403 {} {} for {}", req.method().as_ref(), req.path(), who(&identity));
            Err(ApiError::new(403, "forbidden", "these credentials do not allow this request"))
        }
    }
}

fn unauthenticated() -> ApiError {
    ApiError::new(401, "unauthenticated", "missing or invalid credentials")
}

/// A name for the log, never a secret.
fn who(id: &Identity) -> String {
    match id {
        Identity::Anonymous => "nobody".into(),
        Identity::AccessUser { subject, email } => {
            format!("access user {}", email.as_deref().unwrap_or(subject))
        }
        Identity::Token { name, .. } => format!("token {name:?}"),
        Identity::Dev { actor } => format!("dev mode as {}", actor.name()),
    }
}

/// What authentication reads from a request.
struct Incoming {
    authorization: Option<String>,
    access_jwt: Option<String>,
    cookie: Option<String>,
    origin: Option<String>,
    dev_actor: Option<String>,
    cors_protected: bool,
    fetch_site: Option<String>,
    own_origin: String,
    loopback: bool,
    query_token: Option<String>,
    query_secret: Option<String>,
}

impl Incoming {
    fn read(req: &Request, route: &Route) -> Result<Incoming, ApiError> {
        let h = req.headers();
        let url = req.url()?;
        // Only CDP clients carry credentials in the URL (they cannot set headers on the socket
        // URLs they are handed); elsewhere a URL credential would only end up in logs.
        let query = |name: &str| {
            matches!(route, Route::Cdp(..))
                .then(|| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()))
                .flatten()
        };
        Ok(Incoming {
            query_token: query("token"),
            query_secret: query("secret"),
            authorization: h.get("authorization")?,
            access_jwt: h.get(request::ACCESS_JWT_HEADER)?,
            cookie: h.get("cookie")?,
            origin: h.get("origin")?,
            dev_actor: h.get(request::DEV_ACTOR_HEADER)?,
            cors_protected: request::cors_protected(
                matches!(req.method(), worker::Method::Get | worker::Method::Head),
                h.get("upgrade")?.is_some_and(|u| u.eq_ignore_ascii_case("websocket")),
                route,
            ),
            fetch_site: h.get("sec-fetch-site")?,
            own_origin: url.origin().ascii_serialization(),
            loopback: request::is_loopback_host(url.host_str().unwrap_or("")),
        })
    }
}

/// Who the request is, or why its credentials were refused.
async fn identify(inc: &Incoming, cfg: &AuthConfig, route: &Route) -> Result<Identity, AuthFailure> {
    let facts = Facts {
        query_token: inc.query_token.as_deref(),
        query_secret: inc.query_secret.as_deref(),
        authorization: inc.authorization.as_deref(),
        access_jwt: inc.access_jwt.as_deref(),
        cookie: inc.cookie.as_deref(),
        origin: inc.origin.as_deref(),
        cors_protected: inc.cors_protected,
        fetch_site: inc.fetch_site.as_deref(),
        own_origin: &inc.own_origin,
    };
    let dev = match (cfg.dev_mode, inc.loopback) {
        (true, true) => Some(request::dev_actor(inc.dev_actor.as_deref())?),
        (true, false) => {
            if !WARNED_DEV_REMOTE.replace(true) {
                console_error!(
                    "moltlog: MOLTLOG_DEV_MODE is set but ignored: requests come to a non-loopback host"
                );
            }
            None
        }
        (false, _) => None,
    };
    match super::resolve(request::presented(&facts), cfg, dev)? {
        Resolved::Known(id) => Ok(id),
        Resolved::SessionSecret(secret) => {
            let key = match route {
                Route::Cdp(key, _) => Some(key),
                _ => None,
            };
            super::session_identity(&secret, cfg, key)
        }
        Resolved::AccessJwt(jwt) => {
            let access = cfg.access.as_ref().ok_or(AuthFailure::AccessNotConfigured)?;
            verify_access(&jwt, access).await
        }
    }
}

/// Verifies an Access JWT: header first (RS256 with a kid), then the key by kid from the cached
/// JWKS (fetched when needed, rate-limited), then signature and claims.
async fn verify_access(jwt: &str, access: &AccessConfig) -> Result<Identity, AuthFailure> {
    let unverified = UnverifiedJwt::parse(jwt)?;
    let kid = unverified.kid().to_owned();
    let now_ms = Date::now().as_millis();
    let lookup = JWKS.with_borrow_mut(|c| c.lookup(&access.jwks_url, &kid, now_ms, access.refetch_min_ms));
    let key = match lookup {
        Lookup::Key(k) => k,
        Lookup::Unknown => return Err(super::jwt::JwtError::UnknownKid.into()),
        Lookup::Fetch => {
            let fetched = fetch_jwks(&access.jwks_url).await;
            let failed = fetched.as_ref().err().cloned();
            let key = JWKS.with_borrow_mut(|c| {
                c.store(fetched, Date::now().as_millis());
                c.get(&kid)
            });
            match (key, failed) {
                (Some(k), _) => k,
                (None, Some(e)) => return Err(e.into()),
                (None, None) => return Err(super::jwt::JwtError::UnknownKid.into()),
            }
        }
    };
    let expect = Expect { issuer: &access.issuer, audiences: &access.audiences };
    let claims = unverified.verify(&key, &expect, now_ms / 1000)?;
    Ok(Identity::AccessUser { subject: claims.subject, email: claims.email })
}

async fn fetch_jwks(url: &str) -> Result<Jwks, JwksError> {
    let fail = |e: worker::Error| JwksError::Fetch(e.to_string());
    let url = worker::Url::parse(url).map_err(|e| JwksError::Fetch(e.to_string()))?;
    let signal = AbortSignal::from(web_sys::AbortSignal::timeout_with_u32(JWKS_TIMEOUT_MS));
    let mut resp = Fetch::Url(url).send_with_signal(&signal).await.map_err(fail)?;
    if resp.status_code() != 200 {
        return Err(JwksError::Fetch(format!("status {}", resp.status_code())));
    }
    let text = resp.text().await.map_err(fail)?;
    let jwks = Jwks::parse(&text);
    if let Err(e) = &jwks {
        console_error!("moltlog: the Access JWKS is unusable: {e}");
    }
    jwks
}
