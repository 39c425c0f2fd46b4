//! Session keys: the name a session's Durable Object is found by (`idFromName`).

use std::fmt;

/// Longest accepted session key, in bytes.
pub const SESSION_KEY_MAX_BYTES: usize = 256;

/// A validated session key: 1–256 bytes of `[A-Za-z0-9._:@-]`.
///
/// The alphabet keeps keys safe in URLs, R2 object keys and file names without escaping.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionKeyError {
    #[error("session key is empty")]
    Empty,
    #[error("session key is {len} bytes; at most {SESSION_KEY_MAX_BYTES} are allowed")]
    TooLong { len: usize },
    #[error("session key has the character {ch:?} at byte {at}; allowed are A-Z a-z 0-9 . _ : @ -")]
    BadChar { ch: char, at: usize },
}

impl SessionKey {
    pub fn parse(key: &str) -> Result<Self, SessionKeyError> {
        if key.is_empty() {
            return Err(SessionKeyError::Empty);
        }
        if key.len() > SESSION_KEY_MAX_BYTES {
            return Err(SessionKeyError::TooLong { len: key.len() });
        }
        if let Some((at, ch)) = key.char_indices().find(|&(_, c)| !is_key_char(c)) {
            return Err(SessionKeyError::BadChar { ch, at });
        }
        Ok(SessionKey(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SessionKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_shapes() {
        for k in ["agent:main:telegram:chat:42", "cron:job-1", "hook:a.b_c@d", "x"] {
            assert_eq!(SessionKey::parse(k).unwrap().as_str(), k);
        }
        assert!(SessionKey::parse(&"a".repeat(256)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_odd_characters() {
        assert_eq!(SessionKey::parse(""), Err(SessionKeyError::Empty));
        assert_eq!(SessionKey::parse(&"a".repeat(257)), Err(SessionKeyError::TooLong { len: 257 }));
        assert_eq!(SessionKey::parse("a/b"), Err(SessionKeyError::BadChar { ch: '/', at: 1 }));
        assert!(SessionKey::parse("a b").is_err());
        assert!(SessionKey::parse("é").is_err());
        assert!(SessionKey::parse("..%2f").is_err());
    }
}
