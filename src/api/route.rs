//! The HTTP routes, parsed from method and path. Pure, so the table is tested natively and the
//! Worker and the Durable Objects agree on it.

use moltlog_core::key::{SessionKey, SessionKeyError};

use crate::bridge::BridgePlatform;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    ListSessions,
    Session(SessionKey, SessionRoute),
    /// `GET /v1/blobs/{sha256}`.
    GetBlob(String),
    /// Test-only routes (compiled in with the `test-harness` feature only).
    TestHarness(String),
    /// `POST /bridge/{platform}`: a chat platform's webhook (authenticated by its signature).
    Bridge(BridgePlatform),
    /// `POST /hooks/{name}`: an inbound webhook integration (authenticated by its signature).
    Hook(String),
    /// `GET|POST /v1/subscriptions`: outbound webhook subscriptions for all sessions.
    Subscriptions,
    /// `GET|DELETE /v1/subscriptions/{id}`.
    Subscription(String),
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
    /// `GET …/inbound?after=SEQ`: messages and webhooks that arrived for the agent.
    Inbound,
    /// `GET|POST …/subscriptions`.
    Subscriptions,
    /// `GET|DELETE …/subscriptions/{id}` (the id: `session_subscription_id`).
    Subscription,
    /// `GET …/subscriptions/{id}/deliveries`: the delivery log.
    SubscriptionDeliveries,
    /// `POST …/subscriptions/{id}/resume`: resume a dead-lettered subscription.
    SubscriptionResume,
    /// `GET …/recovery`: normal or degraded, and the gaps recoveries recorded.
    Recovery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Other,
}

impl Method {
    pub fn parse(m: &str) -> Method {
        match m {
            "GET" | "HEAD" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
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
        ["bridge", platform] => {
            let p =
                BridgePlatform::from_name(platform).ok_or_else(|| RouteError::NotFound(path.to_owned()))?;
            allow(path, method, Method::Post, "POST").map(|_| Route::Bridge(p))
        }
        ["hooks", name] if !name.is_empty() => {
            allow(path, method, Method::Post, "POST").map(|_| Route::Hook(decode_segment(name)))
        }
        ["v1", "subscriptions"] => match method {
            Method::Get | Method::Post => Ok(Route::Subscriptions),
            _ => Err(RouteError::MethodNotAllowed { path: path.to_owned(), allowed: "GET, POST" }),
        },
        ["v1", "subscriptions", id] if !id.is_empty() => match method {
            Method::Get | Method::Delete => Ok(Route::Subscription((*id).to_owned())),
            _ => Err(RouteError::MethodNotAllowed { path: path.to_owned(), allowed: "GET, DELETE" }),
        },
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
                ["recovery"] => (SessionRoute::Recovery, Method::Get, "GET"),
                ["blobs"] => (SessionRoute::PutBlob, Method::Post, "POST"),
                ["inbound"] => (SessionRoute::Inbound, Method::Get, "GET"),
                ["subscriptions"] => match method {
                    Method::Post => (SessionRoute::Subscriptions, Method::Post, "GET, POST"),
                    _ => (SessionRoute::Subscriptions, Method::Get, "GET, POST"),
                },
                ["subscriptions", id] if !id.is_empty() => match method {
                    Method::Delete => (SessionRoute::Subscription, Method::Delete, "GET, DELETE"),
                    _ => (SessionRoute::Subscription, Method::Get, "GET, DELETE"),
                },
                ["subscriptions", _, "deliveries"] => {
                    (SessionRoute::SubscriptionDeliveries, Method::Get, "GET")
                }
                ["subscriptions", _, "resume"] => (SessionRoute::SubscriptionResume, Method::Post, "POST"),
                _ => return Err(RouteError::NotFound(path.to_owned())),
            };
            allow(path, method, want, allowed)?;
            Ok(Route::Session(key, route))
        }
        _ => Err(RouteError::NotFound(path.to_owned())),
    }
}

/// The subscription id in `/v1/sessions/{key}/subscriptions/{id}[/…]`.
pub fn session_subscription_id(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "sessions", _, "subscriptions", id, ..] if !id.is_empty() => Some(decode_segment(id)),
        _ => None,
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
    fn bridge_hook_and_subscription_routes() {
        assert_eq!(parse(Method::Post, "/bridge/telegram"), Ok(Route::Bridge(BridgePlatform::Telegram)));
        assert_eq!(parse(Method::Post, "/bridge/discord"), Ok(Route::Bridge(BridgePlatform::Discord)));
        assert_eq!(parse(Method::Get, "/bridge/slack").unwrap_err().status(), 405);
        assert_eq!(parse(Method::Post, "/bridge/irc").unwrap_err().status(), 404);
        assert_eq!(parse(Method::Post, "/hooks/github"), Ok(Route::Hook("github".into())));
        assert_eq!(parse(Method::Get, "/hooks/github").unwrap_err().status(), 405);
        assert_eq!(parse(Method::Post, "/v1/subscriptions"), Ok(Route::Subscriptions));
        assert_eq!(parse(Method::Delete, "/v1/subscriptions/sub_1"), Ok(Route::Subscription("sub_1".into())));
        assert_eq!(parse(Method::Post, "/v1/subscriptions/sub_1").unwrap_err().status(), 405);
        let k = "agent:main:x";
        let p = |m, s: &str| parse(m, &format!("/v1/sessions/{k}{s}"));
        assert_eq!(p(Method::Get, "/inbound"), Ok(Route::Session(key(k), SessionRoute::Inbound)));
        assert_eq!(
            p(Method::Post, "/subscriptions"),
            Ok(Route::Session(key(k), SessionRoute::Subscriptions))
        );
        assert_eq!(
            p(Method::Delete, "/subscriptions/sub_1"),
            Ok(Route::Session(key(k), SessionRoute::Subscription))
        );
        assert_eq!(p(Method::Put, "/subscriptions/sub_1").unwrap_err().status(), 405);
        assert_eq!(
            p(Method::Get, "/subscriptions/sub_1/deliveries"),
            Ok(Route::Session(key(k), SessionRoute::SubscriptionDeliveries))
        );
        assert_eq!(
            p(Method::Post, "/subscriptions/sub_1/resume"),
            Ok(Route::Session(key(k), SessionRoute::SubscriptionResume))
        );
        assert_eq!(
            session_subscription_id(&format!("/v1/sessions/{k}/subscriptions/sub_1/resume")),
            Some("sub_1".into())
        );
        assert_eq!(session_subscription_id(&format!("/v1/sessions/{k}/subscriptions")), None);
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
