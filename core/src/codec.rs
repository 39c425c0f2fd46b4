//! The one way persisted values become bytes: a format version byte, then postcard.

use serde::{Deserialize, Serialize};

/// Version byte that starts every stored record, state and snapshot/segment header of format v1.
pub const FORMAT_V1: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty input")]
    Empty,
    #[error("unknown format version {found} (this build reads version {expected})")]
    UnknownVersion { found: u8, expected: u8 },
    #[error("malformed postcard: {0}")]
    Postcard(String),
    #[error("{0} bytes left over after the value")]
    TrailingBytes(usize),
    #[error("truncated: needed {needed} more bytes")]
    Truncated { needed: usize },
    #[error("bad magic: not a {0}")]
    BadMagic(&'static str),
    #[error("{0}")]
    Invalid(String),
}

/// `[FORMAT_V1] ++ postcard(value)`.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    encode_as(FORMAT_V1, value)
}

/// `[version] ++ postcard(value)`, for values versioned on their own (the session state).
pub fn encode_as<T: Serialize>(version: u8, value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_into_as(version, value, &mut out);
    out
}

/// Appends `[FORMAT_V1] ++ postcard(value)` to `out`.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    encode_into_as(FORMAT_V1, value, out)
}

fn encode_into_as<T: Serialize>(version: u8, value: &T, out: &mut Vec<u8>) {
    out.push(version);
    // Serializing our own types into a Vec cannot fail: no maps of unknown length, no custom
    // serializers that error.
    postcard::serialize_with_flavor(value, VecFlavor(out)).expect("postcard encoding into a Vec cannot fail");
}

/// A postcard output appending to a borrowed Vec with `push` and `extend_from_slice`.
///
/// Postcard's generic `Extend` output goes through iterator adapters for every byte (and digests
/// and ids are serialized byte by byte); at the size-optimized level the Worker builds with, those
/// adapters are not inlined and made encoding a fifth of an append. The bytes are postcard's
/// whatever the output.
struct VecFlavor<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for VecFlavor<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes `[version] ++ postcard(value)`, rejecting other versions and trailing bytes so that a
/// value has exactly one stored form.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    decode_as(FORMAT_V1, bytes)
}

/// `decode` for a value versioned on its own: only `expected` is accepted as its version byte.
pub fn decode_as<'a, T: Deserialize<'a>>(expected: u8, bytes: &'a [u8]) -> Result<T, DecodeError> {
    let (&version, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != expected {
        return Err(DecodeError::UnknownVersion { found: version, expected });
    }
    let (value, left) = postcard::take_from_bytes(rest).map_err(|e| DecodeError::Postcard(e.to_string()))?;
    if !left.is_empty() {
        return Err(DecodeError::TrailingBytes(left.len()));
    }
    Ok(value)
}

/// A cursor over framed bytes (segments, snapshots, export bundles).
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated { needed: n - self.bytes.len() });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `u32 LE length ++ bytes` field.
    pub(crate) fn framed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32_le()? as usize;
        self.take(len)
    }
}

/// Appends a `u32 LE length ++ bytes` field.
pub(crate) fn put_framed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("framed field over 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Splits off and checks a trailing SHA-256 of everything before it; None if it does not match.
pub(crate) fn strip_checksum(bytes: &[u8]) -> Option<&[u8]> {
    let split = bytes.len().checked_sub(32)?;
    let (body, digest) = bytes.split_at(split);
    (crate::chain::sha256(body).as_slice() == digest).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_versions_and_trailing_bytes() {
        let mut bytes = encode(&(7u64, String::from("x")));
        assert_eq!(decode::<(u64, String)>(&bytes), Ok((7, "x".into())));
        bytes.push(0);
        assert_eq!(decode::<(u64, String)>(&bytes), Err(DecodeError::TrailingBytes(1)));
        bytes[0] = 2;
        assert_eq!(
            decode::<(u64, String)>(&bytes),
            Err(DecodeError::UnknownVersion { found: 2, expected: FORMAT_V1 })
        );
        assert_eq!(decode::<u64>(&[]), Err(DecodeError::Empty));
    }
}
