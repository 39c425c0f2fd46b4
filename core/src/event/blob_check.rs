//! Whether a blob reference names a stored blob: an event may only point at content that is
//! there, or every later export with blobs would break on it.

use super::{BlobRef, EventBody};
use crate::chain::{self, Hash};

/// Why a referenced blob is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobRefError {
    #[error("blob {sha256} is not stored; upload it first (POST /v1/blobs)")]
    Missing { sha256: String },
    #[error("blob {sha256} is {stored} bytes, the reference says {claimed}")]
    LengthMismatch { sha256: String, claimed: u64, stored: u64 },
}

impl BlobRefError {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            BlobRefError::Missing { .. } => "blob_missing",
            BlobRefError::LengthMismatch { .. } => "blob_length_mismatch",
        }
    }
}

/// Checks a reference against what storage holds under its key (`None`: nothing; else its size).
pub fn check(r: &BlobRef, stored_len: Option<u64>) -> Result<(), BlobRefError> {
    let sha256 = || chain::to_hex(&r.sha256);
    match stored_len {
        None => Err(BlobRefError::Missing { sha256: sha256() }),
        Some(stored) if stored != r.len => {
            Err(BlobRefError::LengthMismatch { sha256: sha256(), claimed: r.len, stored })
        }
        Some(_) => Ok(()),
    }
}

/// The distinct references in `bodies` (first occurrence of each (sha256, len)), in order.
pub fn distinct_refs<'a>(bodies: impl IntoIterator<Item = &'a EventBody>) -> Vec<&'a BlobRef> {
    let mut seen: std::collections::BTreeSet<(Hash, u64)> = Default::default();
    bodies.into_iter().flat_map(EventBody::blob_refs).filter(|r| seen.insert((r.sha256, r.len))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attachment, ChatMessage, Payload, Role};

    fn blob(byte: u8, len: u64) -> BlobRef {
        BlobRef { sha256: [byte; 32], len, content_type: "image/png".into() }
    }

    #[test]
    fn a_reference_must_match_a_stored_blob_of_its_length() {
        let r = blob(0xab, 10);
        assert_eq!(check(&r, Some(10)), Ok(()));
        let missing = check(&r, None).unwrap_err();
        assert_eq!(missing.code(), "blob_missing");
        assert!(missing.to_string().contains(&"ab".repeat(32)), "{missing}");
        let wrong = check(&r, Some(9)).unwrap_err();
        assert_eq!(wrong.code(), "blob_length_mismatch");
        assert_eq!(wrong, BlobRefError::LengthMismatch { sha256: "ab".repeat(32), claimed: 10, stored: 9 });
    }

    #[test]
    fn distinct_references_across_a_batch() {
        let msg = |blobs: Vec<BlobRef>| {
            EventBody::ChatMessage(ChatMessage {
                role: Role::User,
                channel: None,
                author: None,
                text: Payload::Inline("hi".into()),
                attachments: blobs.into_iter().map(|blob| Attachment { name: None, blob }).collect(),
            })
        };
        let bodies = [msg(vec![blob(1, 5), blob(2, 5)]), msg(vec![blob(1, 5), blob(1, 6)]), msg(vec![])];
        let refs: Vec<_> = distinct_refs(&bodies).into_iter().map(|r| (r.sha256[0], r.len)).collect();
        assert_eq!(refs, [(1, 5), (2, 5), (1, 6)]);
    }
}
