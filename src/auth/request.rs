//! Which credentials a request presents, read from its headers.
//!
//! `Authorization: Bearer …` wins (a machine behind Access may carry both); then the Access JWT
//! from `Cf-Access-Jwt-Assertion` (set by Access at the edge), then the `CF_Authorization`
//! cookie. The cookie is a browser's ambient credential that a foreign page can make the browser
//! send, so it counts cross-site (foreign `Origin`, or `Sec-Fetch-Site: cross-site|same-site`)
//! only where the same-origin policy keeps that page from seeing the answer and nothing changes:
//! a plain GET or HEAD, not a write, not a WebSocket upgrade, not a GET that changes state (the
//! CDP proxy's `json/new` and `json/close`, see [`changes_state`]). A cross-site GET sends no
//! `Origin`, so `Sec-Fetch-Site` is what tells it apart there.

use moltlog_core::event::Actor;

use crate::api::route::{CdpRoute, Route};

/// The header Access adds to every request it lets through.
pub const ACCESS_JWT_HEADER: &str = "cf-access-jwt-assertion";
/// The cookie Access sets in the browser on the application's domain.
pub const ACCESS_COOKIE: &str = "CF_Authorization";
/// Dev mode only: the actor a credential-less request appends as (default `runtime`).
pub const DEV_ACTOR_HEADER: &str = "x-moltlog-actor";

/// Credentials found on a request; not checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    Nothing,
    /// An `Authorization` header that is not `Bearer <token>`.
    NotBearer,
    Bearer(String),
    AccessJwt(String),
    /// A per-session CDP secret from the query (`?secret=`), see [`super::session_secret`].
    SessionSecret(String),
}

/// The parts of a request that carry or qualify credentials.
#[derive(Clone, Copy, Debug, Default)]
pub struct Facts<'a> {
    pub authorization: Option<&'a str>,
    pub access_jwt: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub origin: Option<&'a str>,
    /// A GET or HEAD that changes nothing and is not a WebSocket upgrade: a foreign page cannot
    /// read the answer (see [`cors_protected`]).
    pub cors_protected: bool,
    /// `Sec-Fetch-Site` as the browser sent it.
    pub fetch_site: Option<&'a str>,
    /// `scheme://host[:port]` of the request URL.
    pub own_origin: &'a str,
    /// `?token=` on a route whose clients can only carry credentials in the URL (CDP).
    pub query_token: Option<&'a str>,
    /// `?secret=` on such a route.
    pub query_secret: Option<&'a str>,
}

pub fn presented(f: &Facts<'_>) -> Presented {
    let query_token = f.query_token.map(str::trim).filter(|t| !t.is_empty());
    if f.authorization.is_none()
        && let Some(token) = query_token
    {
        return Presented::Bearer(token.to_owned());
    }
    if f.authorization.is_none()
        && let Some(secret) = f.query_secret.map(str::trim).filter(|s| !s.is_empty())
    {
        return Presented::SessionSecret(secret.to_owned());
    }
    if let Some(auth) = f.authorization {
        return match auth.trim().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                Presented::Bearer(token.trim().to_owned())
            }
            _ => Presented::NotBearer,
        };
    }
    if let Some(jwt) = f.access_jwt.map(str::trim).filter(|j| !j.is_empty()) {
        return Presented::AccessJwt(jwt.to_owned());
    }
    let foreign_origin = f.origin.is_some_and(|o| !o.eq_ignore_ascii_case(f.own_origin));
    let foreign_fetch = f.fetch_site.is_some_and(|s| {
        s.trim().eq_ignore_ascii_case("cross-site") || s.trim().eq_ignore_ascii_case("same-site")
    });
    let same_site = f.cors_protected || !(foreign_origin || foreign_fetch);
    match f.cookie.and_then(|c| cookie(c, ACCESS_COOKIE)) {
        Some(jwt) if same_site => Presented::AccessJwt(jwt.to_owned()),
        _ => Presented::Nothing,
    }
}

/// GET routes that change state: a cross-site page can make the browser send them (a link, an
/// image) without reading the answer, so they are writes as far as the cookie is concerned.
pub fn changes_state(route: &Route) -> bool {
    matches!(route, Route::Cdp(_, CdpRoute::New | CdpRoute::Close(_)))
}

/// Whether the same-origin policy alone keeps a request harmless: a GET or HEAD, not a WebSocket
/// upgrade, on a route that changes nothing.
pub fn cors_protected(get_or_head: bool, websocket: bool, route: &Route) -> bool {
    get_or_head && !websocket && !changes_state(route)
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie<'c>(header: &'c str, name: &str) -> Option<&'c str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("X-Moltlog-Actor must be runtime, operator, bridge or webhook")]
pub struct BadDevActor;

/// The actor a dev-mode request chose. `system` is the Durable Object's own and never a caller's.
pub fn dev_actor(header: Option<&str>) -> Result<Actor, BadDevActor> {
    match header.map(str::trim) {
        None | Some("") => Ok(Actor::Runtime),
        Some(name) => Actor::from_name(name).filter(|a| *a != Actor::System).ok_or(BadDevActor),
    }
}

/// Dev mode is honoured only for requests addressed to this machine, so a dev-mode variable that
/// slipped into a deployment opens nothing: Cloudflare routes by host, and no route is loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "https://moltlog.example.com";

    fn facts() -> Facts<'static> {
        Facts { own_origin: ME, cors_protected: true, ..Facts::default() }
    }

    #[test]
    fn bearer_wins_then_the_access_header_then_the_cookie() {
        let all = Facts {
            authorization: Some("Bearer abc"),
            access_jwt: Some("h.p.s"),
            cookie: Some("CF_Authorization=c.p.s"),
            ..facts()
        };
        assert_eq!(presented(&all), Presented::Bearer("abc".into()));
        assert_eq!(presented(&Facts { authorization: None, ..all }), Presented::AccessJwt("h.p.s".into()));
        let cookie_only = Facts { cookie: Some("a=1; CF_Authorization=c.p.s; b=2"), ..facts() };
        assert_eq!(presented(&cookie_only), Presented::AccessJwt("c.p.s".into()));
        assert_eq!(presented(&facts()), Presented::Nothing);
        assert_eq!(presented(&Facts { cookie: Some("CF_Authorization="), ..facts() }), Presented::Nothing);
    }

    #[test]
    fn other_schemes_are_not_bearer() {
        for h in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"] {
            assert_eq!(presented(&Facts { authorization: Some(h), ..facts() }), Presented::NotBearer, "{h}");
        }
        assert_eq!(
            presented(&Facts { authorization: Some("bearer  t0k "), ..facts() }),
            Presented::Bearer("t0k".into())
        );
    }

    #[test]
    fn the_cookie_does_not_authorize_cross_site_writes_or_websockets() {
        let post = Facts { cookie: Some("CF_Authorization=c.p.s"), cors_protected: false, ..facts() };
        assert_eq!(presented(&Facts { origin: Some("https://evil.example"), ..post }), Presented::Nothing);
        assert_eq!(presented(&Facts { origin: Some(ME), ..post }), Presented::AccessJwt("c.p.s".into()));
        assert_eq!(presented(&post), Presented::AccessJwt("c.p.s".into()));
    }

    /// `GET /cdp/{key}/json/new?{url}` opens a tab: a cross-site link or image must not do it
    /// with the Access cookie. Such GETs carry no `Origin`; `Sec-Fetch-Site` says cross-site.
    #[test]
    fn the_cookie_does_not_authorize_cross_site_state_changing_gets() {
        use crate::api::route::{Method, parse};
        let at = |path: &str| parse(Method::Get, path).unwrap();
        let new = at("/cdp/agent:main:1/json/new");
        let close = at("/cdp/agent:main:1/json/close/T1");
        assert!(!cors_protected(true, false, &new) && !cors_protected(true, false, &close));
        assert!(cors_protected(true, false, &at("/cdp/agent:main:1/json/version")));
        assert!(cors_protected(true, false, &at("/cdp/agent:main:1/json/list")));
        assert!(!cors_protected(true, true, &at("/cdp/agent:main:1/devtools/browser")));
        let get = Facts {
            cookie: Some("CF_Authorization=c.p.s"),
            cors_protected: cors_protected(true, false, &new),
            ..facts()
        };
        for site in ["cross-site", "same-site", "Cross-Site"] {
            assert_eq!(presented(&Facts { fetch_site: Some(site), ..get }), Presented::Nothing, "{site}");
        }
        for site in ["same-origin", "none"] {
            assert_eq!(
                presented(&Facts { fetch_site: Some(site), ..get }),
                Presented::AccessJwt("c.p.s".into())
            );
        }
        assert_eq!(presented(&Facts { origin: Some("https://evil.example"), ..get }), Presented::Nothing);
        // Reads stay readable with the cookie from a link: the page cannot see the answer.
        let read = Facts { cors_protected: true, fetch_site: Some("cross-site"), ..get };
        assert_eq!(presented(&read), Presented::AccessJwt("c.p.s".into()));
    }

    #[test]
    fn query_credentials_come_after_the_authorization_header() {
        let q = Facts { query_token: Some("qt"), cookie: Some("CF_Authorization=c.p.s"), ..facts() };
        assert_eq!(presented(&q), Presented::Bearer("qt".into()));
        assert_eq!(presented(&Facts { authorization: Some("Bearer h"), ..q }), Presented::Bearer("h".into()));
        let s = Facts { query_secret: Some("ab12"), ..facts() };
        assert_eq!(presented(&s), Presented::SessionSecret("ab12".into()));
        assert_eq!(presented(&Facts { query_token: Some("qt"), ..s }), Presented::Bearer("qt".into()));
        assert_eq!(presented(&Facts { query_token: Some(" "), ..facts() }), Presented::Nothing);
    }

    #[test]
    fn dev_actors_and_loopback_hosts() {
        assert_eq!(dev_actor(None), Ok(Actor::Runtime));
        assert_eq!(dev_actor(Some("operator")), Ok(Actor::Operator));
        assert_eq!(dev_actor(Some("system")), Err(BadDevActor));
        assert_eq!(dev_actor(Some("root")), Err(BadDevActor));
        for h in ["127.0.0.1", "localhost", "[::1]", "127.1.2.3"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["moltlog.example.com", "10.0.0.1", "localhost.evil.com", "0.0.0.0"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
