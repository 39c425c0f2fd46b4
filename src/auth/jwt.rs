//! Cloudflare Access JWTs: a compact JWS signed RS256 by the team's key (`kid`), with `iss`,
//! `aud`, `exp` and `nbf` claims.
//!
//! Verification happens in two steps so the key lookup (the JWKS, possibly fetched) can sit in
//! between: [`UnverifiedJwt::parse`] accepts only `alg: RS256` with a `kid` (so `none`, HS256 and
//! every other algorithm are refused before any key is chosen), then [`UnverifiedJwt::verify`]
//! checks the signature and only then reads the claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::{Pkcs1v15Sign, PublicKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Allowance for clock differences between Cloudflare's edge and this isolate.
pub const CLOCK_SKEW_S: u64 = 60;

/// Longest token looked at (Access tokens are ~1 KB); bounds the work a stranger can cause.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a JWT was refused. Logged for the operator; callers only ever see "unauthenticated".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWS (three base64url parts with JSON header and claims)")]
    Malformed,
    #[error("algorithm {0:?} is not accepted; only RS256")]
    Algorithm(String),
    #[error("the header has no kid")]
    NoKid,
    #[error("the header has crit extensions, which are not understood")]
    Critical,
    #[error("no key with this kid in the JWKS")]
    UnknownKid,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("issued by another issuer")]
    WrongIssuer,
    #[error("for another audience")]
    WrongAudience,
    #[error("the {0} claim is missing")]
    MissingClaim(&'static str),
}

/// What the checks need to know about the Access application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect<'a> {
    /// `https://<team>.cloudflareaccess.com`.
    pub issuer: &'a str,
    /// The application AUD tags; the token must name one of them.
    pub audiences: &'a [String],
}

/// Who a verified Access token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub` for a person; the client id (`common_name`) for an Access service token.
    pub subject: String,
    pub email: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nbf: Option<f64>,
    sub: Option<String>,
    email: Option<String>,
    common_name: Option<String>,
}

/// A token whose header is acceptable; nothing in it is trusted yet.
#[derive(Debug)]
pub struct UnverifiedJwt<'t> {
    kid: String,
    signing_input: &'t str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)
}

impl<'t> UnverifiedJwt<'t> {
    pub fn parse(token: &'t str) -> Result<UnverifiedJwt<'t>, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed)?;
        if header.alg != "RS256" {
            return Err(JwtError::Algorithm(header.alg.chars().take(16).collect()));
        }
        if header.crit.is_some() {
            return Err(JwtError::Critical);
        }
        let kid = header.kid.filter(|k| !k.is_empty()).ok_or(JwtError::NoKid)?;
        let signature = b64(s)?;
        if signature.is_empty() {
            return Err(JwtError::BadSignature);
        }
        Ok(UnverifiedJwt { kid, signing_input: &token[..h.len() + 1 + p.len()], payload: b64(p)?, signature })
    }

    /// The key id to look up in the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Checks the signature with `key`, then issuer, audience and validity at `now_s` (Unix
    /// seconds, with [`CLOCK_SKEW_S`] either way).
    pub fn verify(self, key: &PublicKey, expect: &Expect<'_>, now_s: u64) -> Result<AccessClaims, JwtError> {
        let hashed = Sha256::digest(self.signing_input.as_bytes());
        key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, &self.signature)
            .map_err(|_| JwtError::BadSignature)?;
        let c: Claims = serde_json::from_slice(&self.payload).map_err(|_| JwtError::Malformed)?;
        if c.iss.as_deref().ok_or(JwtError::MissingClaim("iss"))? != expect.issuer {
            return Err(JwtError::WrongIssuer);
        }
        let named = match c.aud.ok_or(JwtError::MissingClaim("aud"))? {
            Audience::One(a) => vec![a],
            Audience::Many(list) => list,
        };
        if !named.iter().any(|a| expect.audiences.contains(a)) {
            return Err(JwtError::WrongAudience);
        }
        let now = now_s as f64;
        let skew = CLOCK_SKEW_S as f64;
        let exp = c.exp.ok_or(JwtError::MissingClaim("exp"))?;
        if now >= exp + skew {
            return Err(JwtError::Expired);
        }
        if c.nbf.is_some_and(|nbf| now + skew < nbf) {
            return Err(JwtError::NotYetValid);
        }
        let subject = c
            .sub
            .filter(|s| !s.is_empty())
            .or(c.common_name.filter(|s| !s.is_empty()))
            .ok_or(JwtError::MissingClaim("sub"))?;
        Ok(AccessClaims { subject, email: c.email.filter(|e| !e.is_empty()) })
    }
}

#[cfg(test)]
mod tests;
