//! Signature primitives shared by the chat bridge and the webhooks: HMAC-SHA256, Ed25519
//! verification and constant-time comparison. Pure, so every scheme is unit-tested natively
//! with the platforms' published examples.
//!
//! Every check runs over the raw request bytes as received, before anything parses them: a
//! parser never sees unauthenticated input, and a re-encoding can never make a forged body pass.

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<Sha256>;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `tag_hex` (hex, either case) is the HMAC-SHA256 of `parts` under `key`. The
/// comparison is constant-time in the tag's content.
pub fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], tag_hex: &str) -> bool {
    let Ok(tag) = hex::decode(tag_hex.trim()) else { return false };
    if tag.len() != 32 {
        return false;
    }
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(&tag).is_ok()
}

/// Constant-time equality of two byte strings (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Ed25519 verification of `signature_hex` over the concatenation of `parts` with the public key
/// `public_key_hex` (both hex, as Discord sends and shows them). Strict verification: rejects
/// small-order keys and non-canonical signatures.
pub fn ed25519_verify(public_key_hex: &str, parts: &[&[u8]], signature_hex: &str) -> bool {
    let (Ok(pk), Ok(sig)) = (hex::decode(public_key_hex.trim()), hex::decode(signature_hex.trim())) else {
        return false;
    };
    let (Ok(pk), Ok(sig)) = (<[u8; 32]>::try_from(pk), <[u8; 64]>::try_from(sig)) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else { return false };
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    let msg: Vec<u8> = parts.concat();
    key.verify_strict(&msg, &sig).is_ok()
}

/// Whether an Ed25519 public key (hex) is well-formed, for configuration checks.
pub fn ed25519_key_ok(public_key_hex: &str) -> bool {
    hex::decode(public_key_hex.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .is_some_and(|pk| ed25519_dalek::VerifyingKey::from_bytes(&pk).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex::encode(tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(hmac_sha256_matches(
            b"Jefe",
            &[b"what do ya want for nothing?"],
            "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"
        ));
        assert!(!hmac_sha256_matches(b"Jefe", &[b"what do ya want for nothing!"], &hex::encode(tag)));
        assert!(!hmac_sha256_matches(b"Jefe", &[b"x"], "zz"));
        assert!(!hmac_sha256_matches(b"Jefe", &[b"x"], "abcd"));
    }

    #[test]
    fn ed25519_rfc8032_test_1() {
        let pk = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        assert!(ed25519_key_ok(pk));
        assert!(ed25519_verify(pk, &[b"", b""], sig));
        assert!(!ed25519_verify(pk, &[b"x"], sig));
        let mut bad = sig.to_owned();
        bad.replace_range(0..2, "e4");
        assert!(!ed25519_verify(pk, &[b""], &bad));
        assert!(!ed25519_verify("00", &[b""], sig));
        assert!(!ed25519_key_ok("not hex"));
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secrets"));
    }
}
