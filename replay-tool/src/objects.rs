//! Stored objects by key, in R2's layout, wherever they live.
//!
//! Every source of a session's archive (a local bundle directory, an export bundle file, a
//! wrangler state directory, R2 through its S3 API) is read through `ObjectSource`, with the keys
//! moltlog writes to R2 (schemas/FORMAT.md §7): `sessions/{key}/segments/…`,
//! `sessions/{key}/snapshots/…`, `blobs/sha256/{hex}`. Everything above this trait (choosing
//! segments, verifying, pulling) is then the same for all of them.

use std::path::PathBuf;

/// One object in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// Why a source could not be read. Distinct from a failed verification: these mean "could not
/// look", not "looked and found it wrong".
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Http(String),
    #[error("S3: {0}")]
    S3(String),
    #[error("wrangler state: {0}")]
    StateDir(String),
    /// The source is not what it should be (a missing layout, an unknown format).
    #[error("{0}")]
    Invalid(String),
    /// The source is damaged as a whole (an export bundle that fails its end digest): like a
    /// failed verification, exit status 1.
    #[error("{0}")]
    Corrupt(String),
}

impl SourceError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SourceError {
        let path = path.into();
        move |source| SourceError::Io { what, path, source }
    }
}

/// A store of objects in R2's layout.
///
/// `Send + Sync` so that a reader thread can fetch the next segment while the caller verifies
/// the current one.
pub trait ObjectSource: Send + Sync {
    /// What this is, for messages: "bundle directory ./x", "s3://bucket at http://…".
    fn describe(&self) -> String;

    /// The objects directly under `prefix` (which ends with `/`), in key order.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, SourceError>;

    /// Reads an object into `buf` (replacing its content, reusing its allocation). `Ok(false)`
    /// when there is no such object.
    fn read_into(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, SourceError>;

    /// The session keys this source holds objects for.
    fn sessions(&self) -> Result<Vec<String>, SourceError>;

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let mut buf = Vec::new();
        Ok(self.read_into(key, &mut buf)?.then_some(buf))
    }
}

/// The session key of an object key `sessions/{key}/…`.
pub fn session_of(object_key: &str) -> Option<&str> {
    let rest = object_key.strip_prefix("sessions/")?;
    let (key, _) = rest.split_once('/')?;
    (!key.is_empty()).then_some(key)
}

/// Prefix of a session's segment objects.
pub fn segments_prefix(session_key: &str) -> String {
    format!("sessions/{session_key}/segments/")
}

/// Prefix of a session's snapshot objects.
pub fn snapshots_prefix(session_key: &str) -> String {
    format!("sessions/{session_key}/snapshots/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_of_object_keys() {
        assert_eq!(session_of("sessions/agent:main:x/segments/1.seg"), Some("agent:main:x"));
        assert_eq!(session_of("blobs/sha256/ab"), None);
        assert_eq!(session_of("sessions//x"), None);
    }
}
