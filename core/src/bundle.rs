//! The export bundle: one stream holding everything needed to verify a session offline.
//!
//! `"MOLTBNDL" ‖ u8 version ‖ section* ‖ end`, where a section is `u8 tag ‖ u64 LE len ‖ bytes`:
//! tag 1 manifest (`codec::encode(Manifest)`, first), 2 snapshot (snapshot file bytes), 3 segment
//! (segment file bytes, in seq order; the unarchived tail comes as a last segment), 4 blob
//! (`sha256[32] ‖ content`), and tag 0 ends the bundle with `sha256[32]` of every byte before
//! the end section's tag, so truncation is detected. A writer that cannot complete (a blob gone
//! from R2 mid-stream) sends tag 5, the failure trailer (`u64 LE len ‖ UTF-8 message`), instead
//! of the end: the stream then stops, and readers report the message.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chain::Hash;
use crate::codec::{self, DecodeError, FORMAT_V1};

pub const BUNDLE_MAGIC: &[u8; 8] = b"MOLTBNDL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    End = 0,
    Manifest = 1,
    Snapshot = 2,
    Segment = 3,
    Blob = 4,
    /// The export failed after it started streaming: the last section, in place of the end.
    Failed = 5,
}

impl Tag {
    fn from_u8(b: u8) -> Option<Tag> {
        Some(match b {
            0 => Tag::End,
            1 => Tag::Manifest,
            2 => Tag::Snapshot,
            3 => Tag::Segment,
            4 => Tag::Blob,
            5 => Tag::Failed,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub session_key: String,
    /// The head when the export started: the bundle's segments end here.
    pub head_seq: u64,
    pub head_hash: Hash,
    /// Records up to here came from the R2 archive, the rest from the live log.
    pub archived_seq: u64,
    pub created_ms: u64,
}

/// Writes a bundle incrementally (the Worker streams it).
pub struct Writer {
    hasher: Sha256,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Writer {
        Writer { hasher: Sha256::new() }
    }

    fn emit(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        self.hasher.update(&bytes);
        bytes
    }

    /// The magic and version.
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = BUNDLE_MAGIC.to_vec();
        out.push(FORMAT_V1);
        self.emit(out)
    }

    /// A section's tag and length; the caller sends `len` content bytes next through `content`.
    pub fn section_header(&mut self, tag: Tag, len: u64) -> Vec<u8> {
        let mut out = vec![tag as u8];
        out.extend_from_slice(&len.to_le_bytes());
        self.emit(out)
    }

    /// Content bytes of the current section (may be called in chunks).
    pub fn content(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        self.emit(bytes)
    }

    pub fn section(&mut self, tag: Tag, bytes: Vec<u8>) -> Vec<u8> {
        let mut out = self.section_header(tag, bytes.len() as u64);
        out.extend(self.content(bytes));
        out
    }

    pub fn manifest(&mut self, m: &Manifest) -> Vec<u8> {
        self.section(Tag::Manifest, codec::encode(m))
    }

    pub fn blob_header(&mut self, sha256: &Hash, len: u64) -> Vec<u8> {
        let mut out = self.section_header(Tag::Blob, 32 + len);
        out.extend(self.content(sha256.to_vec()));
        out
    }

    /// The failure trailer, sent in place of the end section when the export cannot complete:
    /// nothing follows it, so no reader takes what came before for a whole bundle. Consumes the
    /// writer.
    pub fn fail(self, message: &str) -> Vec<u8> {
        let mut out = vec![Tag::Failed as u8];
        out.extend_from_slice(&(message.len() as u64).to_le_bytes());
        out.extend_from_slice(message.as_bytes());
        out
    }

    /// The end section. Consumes the writer.
    pub fn finish(self) -> Vec<u8> {
        let digest: Hash = self.hasher.finalize().into();
        let mut out = vec![Tag::End as u8];
        out.extend_from_slice(&digest);
        out
    }
}

/// A section read back from a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section<'a> {
    Manifest(Manifest),
    Snapshot(&'a [u8]),
    Segment(&'a [u8]),
    Blob { sha256: Hash, content: &'a [u8] },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("unknown section tag {0}")]
    UnknownTag(u8),
    #[error("bundle is truncated: no end section")]
    NoEnd,
    #[error("bundle checksum mismatch: the bundle was damaged or truncated")]
    Checksum,
    #[error("the first section must be the manifest")]
    NoManifest,
    #[error("the export failed on the server before it was complete: {0}")]
    Failed(String),
}

/// Reads a whole bundle held in memory: its sections in order, after checking the end checksum.
pub fn read(bytes: &[u8]) -> Result<Vec<Section<'_>>, BundleError> {
    if bytes.len() < 9 || &bytes[..8] != BUNDLE_MAGIC {
        return Err(DecodeError::BadMagic("moltlog bundle").into());
    }
    if bytes[8] != FORMAT_V1 {
        return Err(DecodeError::UnknownVersion { found: bytes[8], expected: FORMAT_V1 }.into());
    }
    let mut pos = 9usize;
    let mut sections = Vec::new();
    loop {
        let Some(&tag) = bytes.get(pos) else { return Err(BundleError::NoEnd) };
        let tag = Tag::from_u8(tag).ok_or(BundleError::UnknownTag(tag))?;
        if tag == Tag::Failed {
            return Err(BundleError::Failed(failure_message(&bytes[pos + 1..])));
        }
        if tag == Tag::End {
            let digest = bytes.get(pos + 1..pos + 33).ok_or(BundleError::NoEnd)?;
            if crate::chain::sha256(&bytes[..pos]).as_slice() != digest {
                return Err(BundleError::Checksum);
            }
            if bytes.len() != pos + 33 {
                return Err(DecodeError::TrailingBytes(bytes.len() - pos - 33).into());
            }
            break;
        }
        let len_bytes: [u8; 8] =
            bytes.get(pos + 1..pos + 9).ok_or(BundleError::NoEnd)?.try_into().expect("8 bytes");
        let len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| BundleError::NoEnd)?;
        let start = pos + 9;
        let content =
            bytes.get(start..start.checked_add(len).ok_or(BundleError::NoEnd)?).ok_or(BundleError::NoEnd)?;
        pos = start + len;
        sections.push(match tag {
            Tag::Manifest => Section::Manifest(codec::decode(content)?),
            Tag::Snapshot => Section::Snapshot(content),
            Tag::Segment => Section::Segment(content),
            Tag::Blob => {
                if content.len() < 32 {
                    return Err(DecodeError::Truncated { needed: 32 - content.len() }.into());
                }
                let (sha, rest) = content.split_at(32);
                Section::Blob { sha256: sha.try_into().expect("32 bytes"), content: rest }
            }
            Tag::End | Tag::Failed => unreachable!("handled above"),
        });
    }
    if !matches!(sections.first(), Some(Section::Manifest(_))) {
        return Err(BundleError::NoManifest);
    }
    Ok(sections)
}

/// The message of a failure trailer (`rest` follows its tag), as far as it arrived.
fn failure_message(rest: &[u8]) -> String {
    let Some(len_bytes) = rest.get(..8) else { return "(message cut off)".into() };
    let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
    let text = &rest[8..];
    let text = usize::try_from(len).ok().and_then(|l| text.get(..l)).unwrap_or(text);
    String::from_utf8_lossy(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_truncation() {
        let m = Manifest {
            session_key: "k".into(),
            head_seq: 3,
            head_hash: [1; 32],
            archived_seq: 2,
            created_ms: 9,
        };
        let mut w = Writer::new();
        let mut out = w.start();
        out.extend(w.manifest(&m));
        out.extend(w.section(Tag::Segment, b"seg".to_vec()));
        out.extend(w.blob_header(&[7; 32], 2));
        out.extend(w.content(b"hi".to_vec()));
        out.extend(w.finish());
        let s = read(&out).unwrap();
        assert_eq!(s[0], Section::Manifest(m));
        assert_eq!(s[1], Section::Segment(b"seg"));
        assert_eq!(s[2], Section::Blob { sha256: [7; 32], content: b"hi" });
        for cut in 0..out.len() {
            assert!(read(&out[..cut]).is_err(), "truncation at {cut} went unnoticed");
        }
        let mut bad = out.clone();
        bad[20] ^= 1;
        assert!(read(&bad).is_err());
    }

    #[test]
    fn a_failure_trailer_is_an_error_that_names_the_cause() {
        let m = Manifest {
            session_key: "k".into(),
            head_seq: 1,
            head_hash: [1; 32],
            archived_seq: 0,
            created_ms: 9,
        };
        let mut w = Writer::new();
        let mut out = w.start();
        out.extend(w.manifest(&m));
        out.extend(w.section(Tag::Segment, b"seg".to_vec()));
        out.extend(w.fail("blobs/sha256/ab is missing from R2"));
        let err = read(&out).unwrap_err();
        assert_eq!(err, BundleError::Failed("blobs/sha256/ab is missing from R2".into()));
        assert!(err.to_string().contains("blobs/sha256/ab is missing from R2"), "{err}");
        // Whatever part of the trailer arrived, it is still a failure, never a complete bundle.
        let trailer_at = out.len() - 8 - "blobs/sha256/ab is missing from R2".len() - 1;
        for cut in trailer_at + 1..out.len() {
            assert!(matches!(read(&out[..cut]), Err(BundleError::Failed(_))), "cut at {cut}");
        }
    }
}
