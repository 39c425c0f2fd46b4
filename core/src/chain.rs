//! The hash chain: every header is linked to its predecessor, and commits to its body by digest.
//!
//! `hash_n = SHA-256("moltlog.chain.v1" ‖ hash_{n-1} ‖ header_bytes_n)`, with the genesis
//! predecessor `SHA-256("moltlog.genesis.v1" ‖ session key)`. The stored header bytes are hashed,
//! never a re-encoding.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

pub const CHAIN_TAG: &[u8] = b"moltlog.chain.v1";
pub const GENESIS_TAG: &[u8] = b"moltlog.genesis.v1";

/// The predecessor of seq 1.
pub fn genesis(session_key: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(GENESIS_TAG);
    h.update(session_key.as_bytes());
    h.finalize().into()
}

/// The hash of a record given its predecessor's hash and its stored header bytes.
pub fn link(prev: &Hash, header_bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(CHAIN_TAG);
    h.update(prev);
    h.update(header_bytes);
    h.finalize().into()
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Lower-case hex, as the JSON API and file names show digests.
pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

pub fn from_hex(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_depends_on_the_key() {
        assert_ne!(genesis("a"), genesis("b"));
        assert_eq!(genesis("a"), genesis("a"));
    }

    #[test]
    fn link_is_domain_separated() {
        let prev = genesis("k");
        let plain = sha256(&[prev.as_slice(), b"h"].concat());
        assert_ne!(link(&prev, b"h"), plain);
    }

    #[test]
    fn hex_round_trips() {
        let h = sha256(b"x");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
    }
}
