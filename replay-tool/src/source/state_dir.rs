//! The R2 objects of a local wrangler state directory (`wrangler dev --persist-to DIR`, by
//! default `.wrangler/state`), read straight from disk, with no runtime running.
//!
//! Layout (wrangler 4 / miniflare, verified against a state directory the end-to-end harness
//! produced): `v3/r2/miniflare-R2BucketObject/<hash>.sqlite` indexes one bucket's objects in the
//! table `_mf_objects(key, blob_id, size, …)` (SQLite in WAL mode), and each object's bytes are the
//! file `v3/r2/<bucket>/blobs/<blob_id>`. Multipart objects have `blob_id` NULL and their parts in
//! `_mf_multipart_parts`. The index file for a bucket is the one whose blob ids exist in that
//! bucket's blob directory. The database is opened read-only, so reading while `wrangler dev`
//! runs is safe.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::objects::{ObjectInfo, ObjectSource, SourceError, session_of};

const INDEX_DIR: &str = "miniflare-R2BucketObject";

pub struct StateDirSource {
    state_dir: PathBuf,
    bucket: String,
    blobs: PathBuf,
    db: Mutex<Connection>,
}

fn sql(e: rusqlite::Error) -> SourceError {
    SourceError::StateDir(e.to_string())
}

/// `v3/r2` under whatever the user pointed at: the `--persist-to` directory, its `v3`, or the
/// `.wrangler` directory above `state`.
fn r2_root(dir: &Path) -> Option<PathBuf> {
    [dir.join("v3/r2"), dir.join("r2"), dir.join("state/v3/r2")]
        .into_iter()
        .find(|p| p.join(INDEX_DIR).is_dir())
}

impl StateDirSource {
    pub fn open(state_dir: &Path, bucket: &str) -> Result<StateDirSource, SourceError> {
        let root = r2_root(state_dir).ok_or_else(|| {
            SourceError::StateDir(format!(
                "{} holds no local R2 data (no v3/r2/{INDEX_DIR}); point --state-dir at the directory \
                 given to `wrangler dev --persist-to` (by default .wrangler/state)",
                state_dir.display()
            ))
        })?;
        let buckets: Vec<String> = fs::read_dir(&root)
            .map_err(SourceError::io("listing", &root))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != INDEX_DIR)
            .collect();
        if !buckets.iter().any(|b| b == bucket) {
            return Err(SourceError::StateDir(format!(
                "no bucket {bucket:?} in {}; it has {}. Pass --bucket NAME",
                root.display(),
                if buckets.is_empty() { "none".to_owned() } else { buckets.join(", ") }
            )));
        }
        let blobs = root.join(bucket).join("blobs");
        let index_dir = root.join(INDEX_DIR);
        let mut candidates: Vec<PathBuf> = fs::read_dir(&index_dir)
            .map_err(SourceError::io("listing", &index_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
            .filter(|p| p.file_name().is_some_and(|n| n != "metadata.sqlite"))
            .collect();
        candidates.sort();
        for path in candidates {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sql)?;
            let probe: Option<String> = conn
                .query_row("SELECT blob_id FROM _mf_objects WHERE blob_id IS NOT NULL LIMIT 1", [], |r| {
                    r.get(0)
                })
                .optional()
                .unwrap_or(None);
            if probe.is_some_and(|id| blobs.join(id).is_file()) {
                return Ok(StateDirSource {
                    state_dir: state_dir.to_path_buf(),
                    bucket: bucket.to_owned(),
                    blobs,
                    db: Mutex::new(conn),
                });
            }
        }
        Err(SourceError::StateDir(format!(
            "bucket {bucket:?} in {} has no objects yet (nothing archived: moltlog archives after \
             ARCHIVE_AFTER_MS or ARCHIVE_EVERY_EVENTS)",
            root.display()
        )))
    }

    fn read_file(&self, blob_id: &str, buf: &mut Vec<u8>) -> Result<(), SourceError> {
        let path = self.blobs.join(blob_id);
        if blob_id.contains('/') || blob_id.contains("..") {
            return Err(SourceError::StateDir(format!("odd blob id {blob_id:?} in the R2 index")));
        }
        let mut f = fs::File::open(&path).map_err(SourceError::io("opening", &path))?;
        f.read_to_end(buf).map_err(SourceError::io("reading", &path))?;
        Ok(())
    }
}

impl ObjectSource for StateDirSource {
    fn describe(&self) -> String {
        format!("wrangler state {} (bucket {})", self.state_dir.display(), self.bucket)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, SourceError> {
        let db = self.db.lock().expect("state db lock");
        let mut stmt = db
            .prepare_cached("SELECT key, size FROM _mf_objects WHERE substr(key, 1, ?2) = ?1 ORDER BY key")
            .map_err(sql)?;
        let rows = stmt
            .query_map(rusqlite::params![prefix, prefix.chars().count() as i64], |r| {
                Ok(ObjectInfo { key: r.get(0)?, size: r.get::<_, i64>(1)? as u64 })
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let o = row.map_err(sql)?;
            if !o.key[prefix.len()..].contains('/') {
                out.push(o);
            }
        }
        Ok(out)
    }

    fn read_into(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, SourceError> {
        let (blob_id, parts) = {
            let db = self.db.lock().expect("state db lock");
            let row: Option<Option<String>> = db
                .query_row("SELECT blob_id FROM _mf_objects WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            let Some(blob_id) = row else { return Ok(false) };
            let parts: Vec<String> = if blob_id.is_none() {
                let mut stmt = db
                    .prepare(
                        "SELECT blob_id FROM _mf_multipart_parts WHERE object_key = ?1 ORDER BY part_number",
                    )
                    .map_err(sql)?;
                stmt.query_map([key], |r| r.get(0)).map_err(sql)?.collect::<Result<_, _>>().map_err(sql)?
            } else {
                Vec::new()
            };
            (blob_id, parts)
        };
        buf.clear();
        match blob_id {
            Some(id) => self.read_file(&id, buf)?,
            None => {
                for id in parts {
                    self.read_file(&id, buf)?;
                }
            }
        }
        Ok(true)
    }

    fn sessions(&self) -> Result<Vec<String>, SourceError> {
        let db = self.db.lock().expect("state db lock");
        let mut stmt =
            db.prepare("SELECT key FROM _mf_objects WHERE substr(key, 1, 9) = 'sessions/'").map_err(sql)?;
        let keys: Vec<String> =
            stmt.query_map([], |r| r.get(0)).map_err(sql)?.collect::<Result<_, _>>().map_err(sql)?;
        let mut out: Vec<String> = keys.iter().filter_map(|k| session_of(k)).map(str::to_owned).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}
