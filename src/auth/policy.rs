//! The route policy: the one table that says who may call which route, and the decision for a
//! request. Pure, so it is tested natively and the end-to-end matrix test checks the running
//! Worker against this same table.
//!
//! People (Cloudflare Access) and `admin` tokens are operators and may call every route; other
//! tokens get what their scopes name and append as the agent runtime.

use moltlog_core::event::Actor;

use super::Identity;
use super::scope::{Scope, SessionOp};
use crate::api::route::{Route, SessionRoute};

/// What a route requires of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Anyone.
    Public,
    /// Authenticated by the route's own handler (chat platform and webhook signatures), so open
    /// to the policy. The bridge and webhook routes belong here.
    Signed,
    /// Operators only: people through Access, `admin` tokens.
    Operator,
    /// Operators, or a token with `session:{key}:{op}` for the routed session; with `audit`, an
    /// `audit:read` token too.
    Session { op: SessionOp, audit: bool },
    /// Operators, or a token that may read some session: blobs are content-addressed, so a hash
    /// is only known to whoever read the event that references it.
    AnySessionRead,
}

/// The table. An exhaustive match: a new route does not compile until it is given a rule.
pub fn rule(route: &Route) -> Rule {
    use SessionOp::{Append, Browser, Read};
    match route {
        Route::Health => Rule::Public,
        // Only compiled in with the test-harness feature; the deployed Worker answers 404.
        Route::TestHarness(_) => Rule::Public,
        Route::ListSessions => Rule::Operator,
        Route::GetBlob(_) => Rule::AnySessionRead,
        // Chat platforms and webhook senders prove themselves by signature, in their handlers.
        Route::Bridge(_) | Route::Hook(_) => Rule::Signed,
        // Outbound webhooks are integrations an operator sets up (creating one returns its secret).
        Route::Subscriptions | Route::Subscription(_) => Rule::Operator,
        // Every CDP route drives (or lists) the session's browser and records into the session.
        Route::Cdp(_, _) => Rule::Session { op: Browser, audit: false },
        Route::Session(_, r) => match r {
            SessionRoute::Append | SessionRoute::PutBlob => Rule::Session { op: Append, audit: false },
            SessionRoute::Events | SessionRoute::Export | SessionRoute::Verify | SessionRoute::Recovery => {
                Rule::Session { op: Read, audit: true }
            }
            SessionRoute::Info
            | SessionRoute::State
            | SessionRoute::Restore
            | SessionRoute::Tail
            | SessionRoute::Inbound => Rule::Session { op: Read, audit: false },
            SessionRoute::Snapshot
            | SessionRoute::Subscriptions
            | SessionRoute::Subscription
            | SessionRoute::SubscriptionDeliveries
            | SessionRoute::SubscriptionResume => Rule::Operator,
        },
    }
}

/// The outcome for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; appends are recorded as `actor` (None: nobody authenticated, a public route).
    Allow { actor: Option<Actor> },
    /// 401: no credentials, or none that checked out.
    Unauthenticated,
    /// 403: valid credentials that do not cover this route.
    Forbidden,
}

impl Decision {
    pub fn status(self) -> Option<u16> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Unauthenticated => Some(401),
            Decision::Forbidden => Some(403),
        }
    }
}

pub fn decide(route: &Route, identity: &Identity) -> Decision {
    let rule = rule(route);
    if matches!(rule, Rule::Public | Rule::Signed) {
        return Decision::Allow { actor: identity.actor() };
    }
    let scopes = match identity {
        Identity::Anonymous => return Decision::Unauthenticated,
        Identity::AccessUser { .. } | Identity::Dev { .. } => {
            return Decision::Allow { actor: identity.actor() };
        }
        Identity::Token { scopes, .. } if scopes.contains(&Scope::Admin) => {
            return Decision::Allow { actor: identity.actor() };
        }
        Identity::Token { scopes, .. } => scopes,
    };
    let granted = match (rule, route) {
        (Rule::Session { op, audit }, Route::Session(key, _) | Route::Cdp(key, _)) => {
            scopes.iter().any(|s| s.allows_session(key, op) || (audit && *s == Scope::AuditRead))
        }
        (Rule::AnySessionRead, _) => {
            scopes.iter().any(|s| matches!(s, Scope::Session { op: SessionOp::Read, .. }))
        }
        _ => false,
    };
    if granted { Decision::Allow { actor: identity.actor() } } else { Decision::Forbidden }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::route::{Method, parse};

    fn token(scopes: &[&str]) -> Identity {
        Identity::Token {
            name: "t".into(),
            scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
        }
    }

    fn at(method: Method, path: &str, who: &Identity) -> Decision {
        decide(&parse(method, path).unwrap(), who)
    }

    const K: &str = "/v1/sessions/agent:main:chat:1";

    #[test]
    fn health_is_public_and_the_rest_is_not() {
        assert_eq!(at(Method::Get, "/healthz", &Identity::Anonymous), Decision::Allow { actor: None });
        for (m, p) in [
            (Method::Get, "/v1/sessions".to_owned()),
            (Method::Get, format!("/v1/blobs/{}", "a".repeat(64))),
            (Method::Post, format!("{K}/events")),
            (Method::Get, format!("{K}/events")),
            (Method::Get, format!("{K}/tail")),
            (Method::Post, format!("{K}/snapshot")),
        ] {
            assert_eq!(at(m, &p, &Identity::Anonymous), Decision::Unauthenticated, "{p}");
        }
    }

    #[test]
    fn people_and_admins_are_operators_everywhere() {
        let person = Identity::AccessUser { subject: "u".into(), email: Some("a@b.c".into()) };
        let admin = token(&["admin"]);
        for who in [&person, &admin] {
            let op = Decision::Allow { actor: Some(Actor::Operator) };
            assert_eq!(at(Method::Get, "/v1/sessions", who), op);
            assert_eq!(at(Method::Post, &format!("{K}/events"), who), op);
            assert_eq!(at(Method::Post, &format!("{K}/snapshot"), who), op);
        }
    }

    #[test]
    fn session_tokens_reach_their_sessions_only_as_the_runtime() {
        let rt = token(&["session:agent:main:*:append", "session:agent:main:chat:1:read"]);
        let allow = Decision::Allow { actor: Some(Actor::Runtime) };
        assert_eq!(at(Method::Post, &format!("{K}/events"), &rt), allow);
        assert_eq!(at(Method::Post, &format!("{K}/blobs"), &rt), allow);
        assert_eq!(at(Method::Get, &format!("{K}/restore"), &rt), allow);
        assert_eq!(at(Method::Get, &format!("{K}/tail"), &rt), allow);
        assert_eq!(at(Method::Post, "/v1/sessions/agent:main:chat:2/events", &rt), allow);
        // Appending elsewhere under the prefix is granted; reading there is not.
        assert_eq!(at(Method::Get, "/v1/sessions/agent:main:chat:2/events", &rt), Decision::Forbidden);
        assert_eq!(at(Method::Post, "/v1/sessions/agent:other:1/events", &rt), Decision::Forbidden);
        assert_eq!(at(Method::Post, &format!("{K}/snapshot"), &rt), Decision::Forbidden);
        assert_eq!(at(Method::Get, "/v1/sessions", &rt), Decision::Forbidden);
        assert_eq!(at(Method::Get, &format!("/v1/blobs/{}", "a".repeat(64)), &rt), allow);
        let append_only = token(&["session:agent:main:chat:1:append"]);
        assert_eq!(at(Method::Get, &format!("{K}/events"), &append_only), Decision::Forbidden);
        assert_eq!(
            at(Method::Get, &format!("/v1/blobs/{}", "a".repeat(64)), &append_only),
            Decision::Forbidden
        );
    }

    #[test]
    fn audit_tokens_export_events_and_verify_only() {
        let audit = token(&["audit:read"]);
        let allow = Decision::Allow { actor: Some(Actor::Runtime) };
        for r in ["events", "export", "verify"] {
            assert_eq!(at(Method::Get, &format!("{K}/{r}"), &audit), allow, "{r}");
        }
        for r in ["state", "restore", "tail", ""] {
            assert_eq!(at(Method::Get, &format!("{K}/{r}"), &audit), Decision::Forbidden, "{r}");
        }
        assert_eq!(at(Method::Post, &format!("{K}/events"), &audit), Decision::Forbidden);
        assert_eq!(at(Method::Get, "/v1/sessions", &audit), Decision::Forbidden);
    }

    #[test]
    fn the_cdp_proxy_needs_the_browser_scope_of_its_session() {
        let browser = token(&["session:agent:main:chat:1:browser"]);
        let allow = Decision::Allow { actor: Some(Actor::Runtime) };
        let cdp = "/cdp/agent:main:chat:1";
        for p in ["/json/version/", "/json/list", "/devtools/browser", "/devtools/page/T"] {
            assert_eq!(at(Method::Get, &format!("{cdp}{p}"), &browser), allow, "{p}");
            assert_eq!(
                at(Method::Get, &format!("{cdp}{p}"), &Identity::Anonymous),
                Decision::Unauthenticated
            );
        }
        assert_eq!(at(Method::Put, &format!("{cdp}/json/new"), &browser), allow);
        assert_eq!(at(Method::Get, "/cdp/agent:main:chat:2/json/list", &browser), Decision::Forbidden);
        // Appending or reading the session is not driving its browser, nor the other way round.
        let runtime = token(&["session:agent:main:*:append", "session:agent:main:*:read"]);
        assert_eq!(at(Method::Get, &format!("{cdp}/json/version"), &runtime), Decision::Forbidden);
        assert_eq!(at(Method::Post, &format!("{K}/events"), &browser), Decision::Forbidden);
        let person = Identity::AccessUser { subject: "u".into(), email: None };
        assert_eq!(at(Method::Get, &format!("{cdp}/json/list"), &person).status(), None);
    }

    #[test]
    fn dev_mode_acts_as_the_chosen_actor() {
        let dev = Identity::Dev { actor: Actor::Operator };
        assert_eq!(
            at(Method::Post, &format!("{K}/events"), &dev),
            Decision::Allow { actor: Some(Actor::Operator) }
        );
        assert_eq!(at(Method::Get, "/v1/sessions", &dev).status(), None);
    }
}
