//! The HTTP routes, parsed from method and path. Pure, so the table is tested natively and the
//! Worker and the Durable Objects agree on it.

use moltlog_core::key::{SessionKey, SessionKeyError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    ListSessions,
    Session(SessionKey, SessionRoute),
    /// `GET /v1/blobs/{sha256}`.
    GetBlob(String),
    /// Test-only routes (compiled in with the `test-harness` feature only).
    TestHarness(String),
    /// `/cdp/{key}/…`: the session's recording CDP proxy.
    Cdp(SessionKey, CdpRoute),
}

/// Routes under `/cdp/{key}`: the DevTools HTTP discovery endpoints and the sockets they name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CdpRoute {
    /// `json/version` (Playwright asks with a trailing slash).
    Version,
    /// `json/list` or `json`.
    List,
    /// `json/new?{url}`, PUT (newer Chrome) or GET (older clients).
    New,
    /// `json/close/{targetId}`.
    Close(String),
    /// `devtools/browser[/{id}]` or the root itself: the browser socket.
    BrowserSocket,
    /// `devtools/page/{targetId}`: one tab's socket.
    PageSocket(String),
}

/// Routes under `/v1/sessions/{key}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRoute {
    Info,
    Append,
    Events,
    State,
    Snapshot,
    Restore,
    Export,
    Tail,
    Verify,
    PutBlob,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Other,
}

impl Method {
    pub fn parse(m: &str) -> Method {
        match m {
            "GET" | "HEAD" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            _ => Method::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no such route: {0}")]
    NotFound(String),
    #[error("{path} does not accept this method; use {allowed}")]
    MethodNotAllowed { path: String, allowed: &'static str },
    #[error("bad session key: {0}")]
    BadKey(#[from] SessionKeyError),
}

impl RouteError {
    pub fn status(&self) -> u16 {
        match self {
            RouteError::NotFound(_) => 404,
            RouteError::MethodNotAllowed { .. } => 405,
            RouteError::BadKey(_) => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            RouteError::NotFound(_) => "not_found",
            RouteError::MethodNotAllowed { .. } => "method_not_allowed",
            RouteError::BadKey(_) => "bad_session_key",
        }
    }
}

fn allow(path: &str, method: Method, want: Method, allowed: &'static str) -> Result<(), RouteError> {
    if method == want { Ok(()) } else { Err(RouteError::MethodNotAllowed { path: path.to_owned(), allowed }) }
}

/// Percent-decodes a path segment (session keys never need it, but clients may encode `:`/`@`).
fn decode_segment(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse(method: Method, path: &str) -> Result<Route, RouteError> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["healthz"] => allow(path, method, Method::Get, "GET").map(|_| Route::Health),
        ["v1", "sessions"] | ["v1", "sessions", ""] => {
            allow(path, method, Method::Get, "GET").map(|_| Route::ListSessions)
        }
        ["v1", "blobs", sha] => {
            allow(path, method, Method::Get, "GET").map(|_| Route::GetBlob((*sha).to_owned()))
        }
        ["__test", rest @ ..] => Ok(Route::TestHarness(rest.join("/"))),
        ["cdp", key, rest @ ..] => {
            let key = SessionKey::parse(&decode_segment(key))?;
            let get = |r: CdpRoute| allow(path, method, Method::Get, "GET").map(|_| r);
            let route = match rest {
                [] | [""] | ["devtools", "browser"] | ["devtools", "browser", _] => {
                    get(CdpRoute::BrowserSocket)?
                }
                ["json", "version"] | ["json", "version", ""] => get(CdpRoute::Version)?,
                ["json"] | ["json", ""] | ["json", "list"] | ["json", "list", ""] => get(CdpRoute::List)?,
                ["json", "new"] | ["json", "new", ""] => match method {
                    Method::Get | Method::Put => CdpRoute::New,
                    _ => {
                        return Err(RouteError::MethodNotAllowed {
                            path: path.to_owned(),
                            allowed: "PUT, GET",
                        });
                    }
                },
                ["json", "close", id] if !id.is_empty() => match method {
                    Method::Get | Method::Put => CdpRoute::Close(decode_segment(id)),
                    _ => {
                        return Err(RouteError::MethodNotAllowed {
                            path: path.to_owned(),
                            allowed: "GET, PUT",
                        });
                    }
                },
                ["devtools", "page", id] if !id.is_empty() => get(CdpRoute::PageSocket(decode_segment(id)))?,
                _ => return Err(RouteError::NotFound(path.to_owned())),
            };
            Ok(Route::Cdp(key, route))
        }
        ["v1", "sessions", key, rest @ ..] => {
            let key = SessionKey::parse(&decode_segment(key))?;
            let (route, want, allowed) = match rest {
                [] | [""] => (SessionRoute::Info, Method::Get, "GET"),
                ["events"] => match method {
                    Method::Post => (SessionRoute::Append, Method::Post, "GET, POST"),
                    _ => (SessionRoute::Events, Method::Get, "GET, POST"),
                },
                ["state"] => (SessionRoute::State, Method::Get, "GET"),
                ["snapshot"] => (SessionRoute::Snapshot, Method::Post, "POST"),
                ["restore"] => (SessionRoute::Restore, Method::Get, "GET"),
                ["export"] => (SessionRoute::Export, Method::Get, "GET"),
                ["tail"] => (SessionRoute::Tail, Method::Get, "GET"),
                ["verify"] => (SessionRoute::Verify, Method::Get, "GET"),
                ["blobs"] => (SessionRoute::PutBlob, Method::Post, "POST"),
                _ => return Err(RouteError::NotFound(path.to_owned())),
            };
            allow(path, method, want, allowed)?;
            Ok(Route::Session(key, route))
        }
        _ => Err(RouteError::NotFound(path.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> SessionKey {
        SessionKey::parse(k).unwrap()
    }

    #[test]
    fn parses_the_session_routes() {
        let k = "agent:main:telegram:chat:42";
        let p = |m, s: &str| parse(m, &format!("/v1/sessions/{k}{s}"));
        assert_eq!(p(Method::Post, "/events"), Ok(Route::Session(key(k), SessionRoute::Append)));
        assert_eq!(p(Method::Get, "/events"), Ok(Route::Session(key(k), SessionRoute::Events)));
        assert_eq!(p(Method::Get, ""), Ok(Route::Session(key(k), SessionRoute::Info)));
        assert_eq!(p(Method::Get, "/tail"), Ok(Route::Session(key(k), SessionRoute::Tail)));
        assert_eq!(p(Method::Post, "/snapshot"), Ok(Route::Session(key(k), SessionRoute::Snapshot)));
        assert_eq!(parse(Method::Get, "/v1/sessions"), Ok(Route::ListSessions));
        assert_eq!(parse(Method::Get, "/healthz"), Ok(Route::Health));
    }

    #[test]
    fn percent_encoded_keys_decode() {
        assert_eq!(
            parse(Method::Get, "/v1/sessions/agent%3Amain%3Ax/state"),
            Ok(Route::Session(key("agent:main:x"), SessionRoute::State))
        );
    }

    #[test]
    fn wrong_methods_bad_keys_and_unknown_paths() {
        assert_eq!(parse(Method::Put, "/v1/sessions/a/events").unwrap_err().status(), 405);
        assert_eq!(parse(Method::Get, "/v1/sessions/a/snapshot").unwrap_err().status(), 405);
        assert_eq!(parse(Method::Post, "/healthz").unwrap_err().status(), 405);
        assert_eq!(parse(Method::Get, "/v1/sessions/a b/state").unwrap_err().status(), 400);
        assert_eq!(parse(Method::Get, "/v1/sessions/a%2Fb/state").unwrap_err().code(), "bad_session_key");
        assert_eq!(parse(Method::Get, "/v1/nope").unwrap_err().status(), 404);
        assert_eq!(parse(Method::Get, "/v1/sessions/a/nope").unwrap_err().status(), 404);
    }

    #[test]
    fn parses_the_cdp_routes() {
        let k = "agent:main:1";
        let p = |m, s: &str| parse(m, &format!("/cdp/{k}{s}"));
        let cdp = |r| Ok(Route::Cdp(key(k), r));
        assert_eq!(p(Method::Get, "/json/version"), cdp(CdpRoute::Version));
        assert_eq!(p(Method::Get, "/json/version/"), cdp(CdpRoute::Version));
        assert_eq!(p(Method::Get, "/json/list"), cdp(CdpRoute::List));
        assert_eq!(p(Method::Get, "/json"), cdp(CdpRoute::List));
        assert_eq!(p(Method::Put, "/json/new"), cdp(CdpRoute::New));
        assert_eq!(p(Method::Get, "/json/new"), cdp(CdpRoute::New));
        assert_eq!(p(Method::Get, "/json/close/ABC"), cdp(CdpRoute::Close("ABC".into())));
        assert_eq!(p(Method::Get, "/devtools/browser"), cdp(CdpRoute::BrowserSocket));
        assert_eq!(p(Method::Get, "/devtools/browser/abc-123"), cdp(CdpRoute::BrowserSocket));
        assert_eq!(p(Method::Get, ""), cdp(CdpRoute::BrowserSocket));
        assert_eq!(p(Method::Get, "/devtools/page/T1"), cdp(CdpRoute::PageSocket("T1".into())));
        assert_eq!(p(Method::Post, "/json/new").unwrap_err().status(), 405);
        assert_eq!(p(Method::Post, "/json/version").unwrap_err().status(), 405);
        assert_eq!(p(Method::Get, "/json/close/").unwrap_err().status(), 404);
        assert_eq!(p(Method::Get, "/devtools/other/x").unwrap_err().status(), 404);
        assert_eq!(parse(Method::Get, "/cdp/a b/json/version").unwrap_err().status(), 400);
    }
}
