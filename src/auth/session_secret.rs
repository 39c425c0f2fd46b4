//! Per-session CDP secrets: `HMAC-SHA256(MOLTLOG_CDP_SECRET, "moltlog.cdp.v1" ‖ 0 ‖ key)` in hex.
//!
//! A CDP client puts its credential in the URL's query (it copies the query onto every WebSocket
//! URL it is handed, and cannot set headers there), so what it carries should open one session's
//! browser and nothing else. Deriving the secret from one configured master means an operator
//! hands a sandbox `?secret=…` for its own session without configuring a token per session
//! (`scripts/mint-cdp-secret.sh KEY`), and rotating the master revokes them all.

use hmac::{Hmac, KeyInit, Mac};
use moltlog_core::key::SessionKey;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const DOMAIN: &[u8] = b"moltlog.cdp.v1\0";

/// The secret that opens `key`'s CDP proxy.
pub fn derive(master: &str, key: &SessionKey) -> String {
    hex::encode(mac(master, key))
}

fn mac(master: &str, key: &SessionKey) -> [u8; 32] {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(master.as_bytes()).expect("HMAC takes any key length");
    m.update(DOMAIN);
    m.update(key.as_str().as_bytes());
    m.finalize().into_bytes().into()
}

/// Whether `presented` is `key`'s secret (constant time in its content).
pub fn verify(master: &str, key: &SessionKey, presented: &str) -> bool {
    let Some(bytes) = hex::decode(presented.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
        return false;
    };
    bool::from(mac(master, key).ct_eq(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> SessionKey {
        SessionKey::parse(k).unwrap()
    }

    #[test]
    fn a_secret_opens_its_own_session_only() {
        let s = derive("master", &key("agent:main:1"));
        assert_eq!(s.len(), 64);
        assert!(verify("master", &key("agent:main:1"), &s));
        assert!(verify("master", &key("agent:main:1"), &s.to_uppercase()));
        assert!(!verify("master", &key("agent:main:2"), &s));
        assert!(!verify("other", &key("agent:main:1"), &s));
        assert!(!verify("master", &key("agent:main:1"), &s[..62]));
        assert!(!verify("master", &key("agent:main:1"), "not hex"));
    }

    #[test]
    fn pinned_value() {
        // The mint script computes the same with openssl; keep them in step.
        assert_eq!(
            derive("master", &key("agent:main:1")),
            "0f787d956d688f5e9bd71335bb6f3319442199419ef1dec0b1f5c18ef4b61c51"
        );
    }
}
