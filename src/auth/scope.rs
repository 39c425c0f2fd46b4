//! Token scopes: what a machine token may do.
//!
//! `admin` | `audit:read` | `session:{key-or-prefix}:append|read|browser`. Session keys contain `:`, so the
//! operation is parsed from the end; a prefix ends with `*` (`session:agent:main:*:read`).

use std::fmt;

use moltlog_core::key::SessionKey;

/// What a session scope lets a token do to the sessions it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionOp {
    /// `POST …/events` and `POST …/blobs`.
    Append,
    /// Every `GET` route of the session (events, state, info, restore, tail, export, verify).
    Read,
    /// The session's recording CDP proxy (`/cdp/{key}/…`): driving the agent's browser is more
    /// than appending, so it is granted on its own.
    Browser,
}

impl SessionOp {
    pub fn name(self) -> &'static str {
        match self {
            SessionOp::Append => "append",
            SessionOp::Read => "read",
            SessionOp::Browser => "browser",
        }
    }
}

/// Which sessions a session scope names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyPattern {
    Exact(SessionKey),
    /// Every key starting with this (possibly empty) prefix.
    Prefix(String),
}

impl KeyPattern {
    pub fn matches(&self, key: &SessionKey) -> bool {
        match self {
            KeyPattern::Exact(k) => k == key,
            KeyPattern::Prefix(p) => key.as_str().starts_with(p.as_str()),
        }
    }
}

/// One grant of a token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything, acting as an operator.
    Admin,
    /// Export, events and verify of every session: what an auditor needs, nothing more.
    AuditRead,
    Session {
        pattern: KeyPattern,
        op: SessionOp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad scope {scope:?}: {reason}")]
pub struct ScopeError {
    pub scope: String,
    pub reason: &'static str,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, ScopeError> {
        let err = |reason| ScopeError { scope: s.to_owned(), reason };
        match s {
            "admin" => return Ok(Scope::Admin),
            "audit:read" => return Ok(Scope::AuditRead),
            _ => {}
        }
        let rest = s.strip_prefix("session:").ok_or_else(|| {
            err("expected admin, audit:read or session:{key-or-prefix}:append|read|browser")
        })?;
        let (pattern, op) = rest.rsplit_once(':').ok_or_else(|| err("missing :append, :read or :browser"))?;
        let op = match op {
            "append" => SessionOp::Append,
            "read" => SessionOp::Read,
            "browser" => SessionOp::Browser,
            _ => return Err(err("the operation must be append, read or browser")),
        };
        let pattern = match pattern.strip_suffix('*') {
            Some(prefix) => {
                // The same alphabet as keys, so a prefix cannot smuggle in a wildcard elsewhere.
                if !prefix.is_empty() {
                    SessionKey::parse(prefix)
                        .map_err(|_| err("the prefix has characters keys cannot have"))?;
                }
                KeyPattern::Prefix(prefix.to_owned())
            }
            None => {
                KeyPattern::Exact(SessionKey::parse(pattern).map_err(|_| err("not a valid session key"))?)
            }
        };
        Ok(Scope::Session { pattern, op })
    }

    /// Whether this scope allows `op` on the session `key`.
    pub fn allows_session(&self, key: &SessionKey, op: SessionOp) -> bool {
        matches!(self, Scope::Session { pattern, op: o } if *o == op && pattern.matches(key))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::AuditRead => f.write_str("audit:read"),
            Scope::Session { pattern: KeyPattern::Exact(k), op } => write!(f, "session:{k}:{}", op.name()),
            Scope::Session { pattern: KeyPattern::Prefix(p), op } => write!(f, "session:{p}*:{}", op.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> SessionKey {
        SessionKey::parse(k).unwrap()
    }

    #[test]
    fn parses_keys_with_colons_from_the_end() {
        let s = Scope::parse("session:agent:main:telegram:chat:42:append").unwrap();
        assert_eq!(
            s,
            Scope::Session {
                pattern: KeyPattern::Exact(key("agent:main:telegram:chat:42")),
                op: SessionOp::Append
            }
        );
        assert!(s.allows_session(&key("agent:main:telegram:chat:42"), SessionOp::Append));
        assert!(!s.allows_session(&key("agent:main:telegram:chat:42"), SessionOp::Read));
        assert!(!s.allows_session(&key("agent:main:telegram:chat:421"), SessionOp::Append));
    }

    #[test]
    fn prefixes_match_what_starts_with_them() {
        let s = Scope::parse("session:agent:main:*:read").unwrap();
        assert!(s.allows_session(&key("agent:main:x"), SessionOp::Read));
        assert!(!s.allows_session(&key("agent:other:x"), SessionOp::Read));
        assert!(!s.allows_session(&key("agent:main"), SessionOp::Read));
        let all = Scope::parse("session:*:read").unwrap();
        assert!(all.allows_session(&key("anything"), SessionOp::Read));
    }

    #[test]
    fn round_trips_through_display() {
        for s in [
            "admin",
            "audit:read",
            "session:a:b:append",
            "session:agent:*:read",
            "session:*:append",
            "session:agent:main:1:browser",
        ] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_what_is_not_a_scope() {
        for s in [
            "",
            "root",
            "audit:write",
            "session:a",
            "session:a:write",
            "session::read",
            "session:a*b:read",
            "session:a b:read",
            "session:**:read",
            "session:a:read:*",
        ] {
            assert!(Scope::parse(s).is_err(), "{s:?} should not parse");
        }
    }
}
