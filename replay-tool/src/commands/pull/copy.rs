//! Copying objects into the bundle directory, and walking the copy.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, bail};
use moltlog_core::chain::Hash;
use moltlog_core::key::SessionKey;

use super::Tally;
use crate::archive::SessionArchive;
use crate::failure::Failure;
use crate::layout::{blob_key, object_path, write_atomic};
use crate::objects::{ObjectInfo, ObjectSource, segments_prefix, snapshots_prefix};
use crate::source::dir::DirSource;
use crate::ui::Ui;
use crate::walk::{self, Stop, WalkError};

/// Copies the archive's segment and snapshot objects into `out`, skipping what is there already,
/// and removes local ones the source no longer has.
pub(super) fn mirror(archive: &SessionArchive, out: &Path, ui: &Ui, tally: &mut Tally) -> anyhow::Result<()> {
    let key = archive.session_key();
    let mut objects: Vec<ObjectInfo> = Vec::new();
    for s in archive.segments.iter().chain(&archive.superseded) {
        objects.push(ObjectInfo { key: s.key.clone(), size: s.size });
    }
    objects.extend(archive.snapshots.values().cloned());
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let bar = ui.bar(total, "bytes", "pulling");
    let local = DirSource::open(out)?;
    let mut buf = Vec::new();
    for o in &objects {
        let is_segment = o.key.ends_with(".seg");
        if is_segment {
            tally.segments += 1;
        } else {
            tally.snapshots += 1;
        }
        let path = object_path(out, &o.key)?;
        if fs::metadata(&path).is_ok_and(|m| m.len() == o.size) {
            bar.inc(o.size);
            continue;
        }
        if !archive.source.read_into(&o.key, &mut buf)? {
            bail!("{} vanished from {} during the pull; run the pull again", o.key, archive.describe());
        }
        write_atomic(&path, &buf)?;
        if is_segment {
            tally.segments_new += 1;
        } else {
            tally.snapshots_new += 1;
        }
        bar.inc(o.size);
    }
    bar.finish_and_clear();
    let wanted: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    for prefix in [segments_prefix(key), snapshots_prefix(key)] {
        for o in local.list(&prefix)? {
            if !wanted.contains(o.key.as_str()) {
                fs::remove_file(object_path(out, &o.key)?).with_context(|| format!("removing {}", o.key))?;
                tally.removed += 1;
            }
        }
    }
    Ok(())
}

/// What a walk over the local copy found.
pub(super) struct Scan {
    pub head: Result<moltlog_core::state::Head, Failure>,
    /// Referenced blobs: digest → length.
    pub blobs: BTreeMap<Hash, u64>,
}

pub(super) fn scan_local(out: &Path, key: &SessionKey, ui: &Ui) -> anyhow::Result<Scan> {
    let archive = SessionArchive::open(Box::new(DirSource::open(out)?), key.clone())?;
    let mut blobs = BTreeMap::new();
    let mut collect = |c: &moltlog_core::record::CheckedRecord, _redacted: bool| {
        for b in c.body.blob_refs() {
            blobs.insert(b.sha256, b.len);
        }
        Ok(())
    };
    let bar = ui.bar(archive.last_named_seq(), "records", "checking the copy");
    let result = walk::walk(&archive, Stop::End, &bar, &mut collect);
    bar.finish_and_clear();
    let head = match result {
        Ok(w) => Ok(w.verifier.head()),
        Err(WalkError::Tampered { error, object }) => Err(Failure::from_verify(&error, object)),
        Err(e) => return Err(e.into()),
    };
    Ok(Scan { head, blobs })
}

/// Fetches the referenced blobs that are not here yet, stored as the source has them (`verify`
/// checks their digests: a wrong one is evidence, not something to drop).
pub(super) fn fetch_blobs(
    blobs: &BTreeMap<Hash, u64>,
    out: &Path,
    tally: &mut Tally,
    fetch: impl Fn(&Hash) -> anyhow::Result<Option<Vec<u8>>>,
) -> anyhow::Result<()> {
    for sha in blobs.keys() {
        tally.blobs += 1;
        let path = object_path(out, &blob_key(sha))?;
        if path.exists() {
            continue;
        }
        match fetch(sha)? {
            Some(bytes) => {
                write_atomic(&path, &bytes)?;
                tally.blobs_new += 1;
            }
            None => tally.blobs_missing += 1,
        }
    }
    Ok(())
}
