//! The local bundle directory: what `pull` writes and every command reads.
//!
//! It mirrors the R2 layout (schemas/FORMAT.md §7), so the same code reads it, R2 and a wrangler
//! state directory, and a copy can be inspected with ordinary tools:
//!
//! ```text
//! DIR/moltlog-bundle.json                                   manifest (below)
//! DIR/sessions/{key}/segments/{first:020}-{last:020}.seg     archived segments (R2 copies) and
//! DIR/sessions/{key}/segments/{first:020}-{last:020}.gN.seg  the unarchived tail, as segments
//! DIR/sessions/{key}/snapshots/{seq:020}.snap
//! DIR/blobs/sha256/{hex}
//! ```
//!
//! Files land atomically (written beside, then renamed), so an interrupted pull leaves only whole
//! files and the next one skips them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use moltlog_core::chain::{self, Hash};
use moltlog_core::state::Head;
use serde::{Deserialize, Serialize};

use crate::objects::SourceError;

/// The manifest's file name.
pub const MANIFEST: &str = "moltlog-bundle.json";
pub const MANIFEST_FORMAT: &str = "moltlog-bundle-dir";
pub const MANIFEST_VERSION: u32 = 1;

/// What a pull recorded about its bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub session_key: String,
    /// Where it was pulled from.
    pub source: PulledFrom,
    /// The head the source stated (the export's manifest, or the last record pulled). `verify`
    /// checks that the bundle still reaches it, so a truncated copy does not pass as complete.
    pub head: Option<HeadJson>,
    /// Records up to here are R2 archive copies; later segments are the live tail.
    pub archived_seq: Option<u64>,
    pub pulled_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledFrom {
    /// `http`, `s3`, `state-dir` or `bundle`.
    pub kind: String,
    pub location: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadJson {
    pub seq: u64,
    pub hash: String,
}

impl HeadJson {
    pub fn from_head(h: Head) -> HeadJson {
        HeadJson { seq: h.seq, hash: chain::to_hex(&h.hash) }
    }

    pub fn to_head(&self) -> Option<Head> {
        Some(Head { seq: self.seq, hash: chain::from_hex(&self.hash)? })
    }
}

impl Manifest {
    pub fn new(session_key: &str, kind: &str, location: &str) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            session_key: session_key.into(),
            source: PulledFrom { kind: kind.into(), location: location.into() },
            head: None,
            archived_seq: None,
            pulled_ms: now_ms(),
        }
    }

    /// Reads `DIR/moltlog-bundle.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, SourceError> {
        let path = dir.join(MANIFEST);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SourceError::io("reading", path)(e)),
        };
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| SourceError::Invalid(format!("{} is not a bundle manifest: {e}", path.display())))?;
        if m.format != MANIFEST_FORMAT || m.version != MANIFEST_VERSION {
            return Err(SourceError::Invalid(format!(
                "{} is format {:?} version {}; this tool reads {MANIFEST_FORMAT:?} version {MANIFEST_VERSION}",
                path.display(),
                m.format,
                m.version
            )));
        }
        Ok(Some(m))
    }

    pub fn write(&self, dir: &Path) -> Result<(), SourceError> {
        let text = serde_json::to_string_pretty(self).expect("manifest serializes") + "\n";
        write_atomic(&dir.join(MANIFEST), text.as_bytes())
    }

    pub fn claimed_head(&self) -> Option<Head> {
        self.head.as_ref().and_then(HeadJson::to_head)
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The local path of an object key. Keys come from `moltlog_core::segment::object_key` and
/// friends (session keys are restricted to `[A-Za-z0-9._:@-]`), never from a remote listing as
/// such, so they cannot climb out of `dir`; the check is a second line of defence.
pub fn object_path(dir: &Path, key: &str) -> Result<PathBuf, SourceError> {
    let safe = !key.is_empty()
        && !key.starts_with('/')
        && key.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if !safe {
        return Err(SourceError::Invalid(format!("refusing the object key {key:?}: not a relative path")));
    }
    Ok(dir.join(key))
}

/// Writes a file so that it either appears whole or not at all: into a hidden temporary file
/// beside it, flushed to disk, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SourceError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(SourceError::io("creating", dir))?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(SourceError::io("writing", path))
}

/// The hidden temporary name `write_atomic` uses for `path` (listings skip dot files).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Hex of a blob's digest → its key.
pub fn blob_key(sha256: &Hash) -> String {
    moltlog_core::engine::blob_object_key(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_stay_inside() {
        let d = Path::new("/b");
        assert_eq!(
            object_path(d, "sessions/a:b/segments/x.seg").unwrap(),
            d.join("sessions/a:b/segments/x.seg")
        );
        for bad in ["", "/etc/passwd", "sessions/../../x", "a//b", "./a"] {
            assert!(object_path(d, bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn manifest_round_trips_and_atomic_writes_leave_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::new("k", "http", "http://x");
        m.head = Some(HeadJson::from_head(Head { seq: 3, hash: [7; 32] }));
        m.write(dir.path()).unwrap();
        let back = Manifest::read(dir.path()).unwrap().unwrap();
        assert_eq!(back, m);
        assert_eq!(back.claimed_head(), Some(Head { seq: 3, hash: [7; 32] }));
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(MANIFEST)]);
    }
}
