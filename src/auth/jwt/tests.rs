use serde_json::json;

use super::*;
use crate::auth::mint;

const NOW: u64 = 1_800_000_000;

fn expect() -> (String, Vec<String>) {
    (mint::ISSUER.to_owned(), vec!["other-app".to_owned(), mint::AUD.to_owned()])
}

fn check(token: &str, key: &mint::TestKey, now: u64) -> Result<AccessClaims, JwtError> {
    let (issuer, audiences) = expect();
    let jwt = UnverifiedJwt::parse(token)?;
    assert_eq!(jwt.kid(), key.kid);
    jwt.verify(&key.public(), &Expect { issuer: &issuer, audiences: &audiences }, now)
}

#[test]
fn a_good_token_verifies_and_names_its_user() {
    let k = mint::TestKey::load(0, "k1");
    let who = check(&k.sign(&mint::claims(NOW)), &k, NOW).unwrap();
    assert_eq!(who.email.as_deref(), Some("alice@example.com"));
    assert_eq!(who.subject, "7335d417-61da-459d-899c-0a01c76a2f94");
    // A single-string aud, and a service token (no sub, a common_name) verify too.
    let mut c = mint::claims(NOW);
    c["aud"] = mint::AUD.into();
    c["sub"] = "".into();
    c["common_name"] = "88bf3b6d86161464f6509f7219099e57.access".into();
    c.as_object_mut().unwrap().remove("email");
    let svc = check(&k.sign(&c), &k, NOW).unwrap();
    assert_eq!((svc.subject.as_str(), svc.email), ("88bf3b6d86161464f6509f7219099e57.access", None));
}

#[test]
fn time_is_checked_with_a_small_skew() {
    let k = mint::TestKey::load(0, "k1");
    let t = k.sign(&mint::claims(NOW)); // valid NOW..NOW+600
    assert!(check(&t, &k, NOW + 600 + CLOCK_SKEW_S - 1).is_ok());
    assert_eq!(check(&t, &k, NOW + 600 + CLOCK_SKEW_S), Err(JwtError::Expired));
    assert!(check(&t, &k, NOW - CLOCK_SKEW_S).is_ok());
    assert_eq!(check(&t, &k, NOW - CLOCK_SKEW_S - 1), Err(JwtError::NotYetValid));
    let mut no_exp = mint::claims(NOW);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(&k.sign(&no_exp), &k, NOW), Err(JwtError::MissingClaim("exp")));
}

#[test]
fn issuer_and_audience_must_match() {
    let k = mint::TestKey::load(0, "k1");
    let mut c = mint::claims(NOW);
    c["iss"] = "https://evil.cloudflareaccess.com".into();
    assert_eq!(check(&k.sign(&c), &k, NOW), Err(JwtError::WrongIssuer));
    let mut c = mint::claims(NOW);
    c["aud"] = json!(["someone-else"]);
    assert_eq!(check(&k.sign(&c), &k, NOW), Err(JwtError::WrongAudience));
    let mut c = mint::claims(NOW);
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(check(&k.sign(&c), &k, NOW), Err(JwtError::MissingClaim("aud")));
}

#[test]
fn forged_signatures_are_refused() {
    let k1 = mint::TestKey::load(0, "k1");
    let k2 = mint::TestKey::load(1, "k1");
    let t = k1.sign(&mint::claims(NOW));
    assert_eq!(check(&mint::tampered(&t), &k1, NOW), Err(JwtError::BadSignature));
    // Signed by another key under the same kid.
    assert_eq!(check(&k2.sign(&mint::claims(NOW)), &k1, NOW), Err(JwtError::BadSignature));
    // Claims swapped under a good signature.
    let mut more = mint::claims(NOW);
    more["email"] = "mallory@example.com".into();
    assert_eq!(check(&mint::with_claims(&t, &more), &k1, NOW), Err(JwtError::BadSignature));
}

#[test]
fn only_rs256_with_a_kid_is_considered() {
    let k = mint::TestKey::load(0, "k1");
    let c = mint::claims(NOW);
    let none = mint::unsigned("k1", &c);
    assert_eq!(UnverifiedJwt::parse(&none).unwrap_err(), JwtError::Algorithm("none".into()));
    let hs = mint::hs256(k.public_pem().as_bytes(), "k1", &c);
    assert_eq!(UnverifiedJwt::parse(&hs).unwrap_err(), JwtError::Algorithm("HS256".into()));
    // An RS256 header over a HMAC "signature" still fails at the signature.
    let (hs_input, hs_sig) = hs.rsplit_once('.').unwrap();
    let rs_header = mint::b64(json!({"alg":"RS256","kid":"k1"}).to_string().as_bytes());
    let relabelled = format!("{rs_header}.{}.{hs_sig}", hs_input.split('.').nth(1).unwrap());
    assert_eq!(check(&relabelled, &k, NOW), Err(JwtError::BadSignature));
    let no_kid = k.sign_with_header(&json!({"alg": "RS256"}), &c);
    assert_eq!(UnverifiedJwt::parse(&no_kid).unwrap_err(), JwtError::NoKid);
    let crit = k.sign_with_header(&json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]}), &c);
    assert_eq!(UnverifiedJwt::parse(&crit).unwrap_err(), JwtError::Critical);
}

#[test]
fn garbage_is_malformed() {
    for t in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.", &"x".repeat(20_000)] {
        assert!(UnverifiedJwt::parse(t).is_err(), "{t:.20}");
    }
    assert_eq!(UnverifiedJwt::parse("e30.e30.AAAA").unwrap_err(), JwtError::Malformed); // {} has no alg
}
