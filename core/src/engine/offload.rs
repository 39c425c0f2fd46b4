//! Moving large payloads out of event bodies into content-addressed blobs.

use crate::chain::{self, Hash};
use crate::codec;
use crate::event::{BlobRef, EventBody, Lifecycle, Payload};

/// A blob the runtime must store (at `blobs/sha256/{hex}`) before the events referencing it are
/// committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobPut {
    pub sha256: Hash,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The R2 object key of a blob.
pub fn blob_object_key(sha256: &Hash) -> String {
    format!("blobs/sha256/{}", chain::to_hex(sha256))
}

pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
pub(crate) const JSON: &str = "application/json";

/// The body's inline payloads that may move to blobs, with the content type each would get.
fn payloads(body: &mut EventBody) -> Vec<(&mut Payload, String)> {
    match body {
        EventBody::ChatMessage(m) => vec![(&mut m.text, TEXT.into())],
        EventBody::ToolCall(c) => vec![(&mut c.input, JSON.into())],
        EventBody::ToolResult(r) => vec![(&mut r.output, JSON.into())],
        EventBody::BrowserAction(a) => vec![(&mut a.detail, TEXT.into()), (&mut a.result, JSON.into())],
        EventBody::WebhookReceived(w) => {
            let ct = w.content_type.clone();
            vec![(&mut w.payload, ct)]
        }
        EventBody::Lifecycle(Lifecycle::Compacted { summary, .. }) => vec![(summary, TEXT.into())],
        _ => vec![],
    }
}

/// The largest inline payload, in bytes.
pub(crate) fn largest_inline(body: &mut EventBody) -> usize {
    payloads(body).iter().filter_map(|(p, _)| p.inline().map(str::len)).max().unwrap_or(0)
}

/// Moves the body's largest inline payloads to blobs until its encoding is at most
/// `threshold` bytes or nothing is left to move. `encoded` is the body's encoding as given;
/// returns its final encoding (the same bytes when nothing moved, which is the common case).
pub(crate) fn offload(
    body: &mut EventBody,
    encoded: Vec<u8>,
    threshold: usize,
    blobs: &mut Vec<BlobPut>,
) -> Vec<u8> {
    let mut encoded = encoded;
    while encoded.len() > threshold {
        let mut fields = payloads(body);
        let Some((slot, content_type)) = fields
            .iter_mut()
            .filter(|(p, _)| p.inline().is_some_and(|s| !s.is_empty()))
            .max_by_key(|(p, _)| p.inline().map_or(0, str::len))
        else {
            break;
        };
        let Payload::Inline(text) = std::mem::replace(*slot, Payload::Redacted) else {
            unreachable!("filtered to inline payloads")
        };
        let bytes = text.into_bytes();
        let sha256 = chain::sha256(&bytes);
        **slot =
            Payload::Blob(BlobRef { sha256, len: bytes.len() as u64, content_type: content_type.clone() });
        if !blobs.iter().any(|b| b.sha256 == sha256) {
            blobs.push(BlobPut { sha256, content_type: content_type.clone(), bytes });
        }
        encoded = codec::encode(body);
    }
    encoded
}
