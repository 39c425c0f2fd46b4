//! TEST-ONLY: mints fake Cloudflare Access JWTs with the fixture keys in tests/fixtures/auth/,
//! and the forgeries the verifier must refuse. Shared by the unit tests (`src/auth/jwt/tests.rs`,
//! through `#[path]`) and the end-to-end tests.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use serde_json::{Value, json};
use sha2::Sha256;

const PEMS: [&str; 2] = [
    include_str!("../fixtures/auth/test-only-key-1.pem"),
    include_str!("../fixtures/auth/test-only-key-2.pem"),
];

pub const ISSUER: &str = "https://moltlog-test.cloudflareaccess.com";
pub const AUD: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(v: &Value) -> String {
    b64(v.to_string().as_bytes())
}

/// One of the two fixture keys under a key id.
pub struct TestKey {
    pub kid: String,
    key: PrivateKey,
}

impl TestKey {
    /// `which` is 0 or 1.
    pub fn load(which: usize, kid: &str) -> TestKey {
        TestKey { kid: kid.to_owned(), key: PrivateKey::from_pkcs8_pem(PEMS[which]).expect("fixture key") }
    }

    pub fn public(&self) -> PublicKey {
        self.key.to_public_key()
    }

    /// The public key as a JWKS entry, as Cloudflare serves it.
    pub fn jwk(&self) -> Value {
        let p = self.public();
        json!({
            "kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": b64(&p.n().to_be_bytes_trimmed_vartime()),
            "e": b64(&p.e().to_be_bytes_trimmed_vartime()),
        })
    }

    /// The public key in PEM: the "secret" of the HS256 key-confusion forgery.
    pub fn public_pem(&self) -> String {
        self.public().to_public_key_pem(LineEnding::LF).unwrap()
    }

    /// An RS256 JWT with this key's kid and the given claims.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"}), claims)
    }

    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64_json(header), b64_json(claims));
        let sig = SigningKey::<Sha256>::new(self.key.clone()).sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }
}

/// `{"keys": [...]}` for these keys.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// Claims of a person's Access token valid from `now_s` for ten minutes.
pub fn claims(now_s: u64) -> Value {
    json!({
        "aud": [AUD], "email": "alice@example.com", "exp": now_s + 600, "iat": now_s,
        "nbf": now_s, "iss": ISSUER, "type": "app", "identity_nonce": "n0nce",
        "sub": "7335d417-61da-459d-899c-0a01c76a2f94", "country": "US",
    })
}

/// An HS256 JWT keyed with `secret` (the algorithm-confusion forgery).
pub fn hs256(secret: &[u8], kid: &str, claims: &Value) -> String {
    let input =
        format!("{}.{}", b64_json(&json!({"alg": "HS256", "kid": kid, "typ": "JWT"})), b64_json(claims));
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// An `alg: none` JWT (no signature).
pub fn unsigned(kid: &str, claims: &Value) -> String {
    format!("{}.{}.", b64_json(&json!({"alg": "none", "kid": kid, "typ": "JWT"})), b64_json(claims))
}

/// `token` with one signature bit flipped.
pub fn tampered(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[10] ^= 0x01;
    format!("{input}.{}", b64(&bytes))
}

/// `token` with its claims replaced but the original signature kept.
pub fn with_claims(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let (h, _, s) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    format!("{h}.{}.{s}", b64_json(claims))
}
