//! An export bundle file (`GET /v1/sessions/{key}/export`, schemas/FORMAT.md §7a) as an object
//! source: its sections get the keys the same objects have in R2, named from their own headers.
//!
//! The file is memory-mapped and read by `moltlog_core::bundle::read`, which checks the end digest
//! before anything is trusted (a truncated download has no valid end). Its pages are file cache,
//! released once the sections are indexed, so a large bundle does not sit in the heap.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use moltlog_core::bundle::{self, Manifest, Section};
use moltlog_core::segment::{self, SegmentReader};
use moltlog_core::snapshot;

use crate::layout::blob_key;
use crate::objects::{ObjectInfo, ObjectSource, SourceError, session_of};

pub struct BundleFile {
    path: PathBuf,
    map: Mmap,
    manifest: Manifest,
    /// Object key → (offset, length) of its bytes in the file.
    objects: BTreeMap<String, (usize, usize)>,
    /// Sections whose own header could not be read: they get no key, so a walk over the
    /// bundle finds the seqs they should hold missing.
    pub unnamed: Vec<String>,
}

impl BundleFile {
    pub fn open(path: &Path) -> Result<BundleFile, SourceError> {
        let file = File::open(path).map_err(SourceError::io("opening", path))?;
        // SAFETY: the map is read-only; moltlog never writes a bundle in place, and a file
        // changed underneath would at worst fail its digest checks.
        let map = unsafe { Mmap::map(&file) }.map_err(SourceError::io("mapping", path))?;
        let sections = bundle::read(&map).map_err(|e| {
            SourceError::Corrupt(format!(
                "{} is not a complete moltlog export bundle: {e}. Download it again (or pull with \
                 `moltlog-replay pull --url …`, which resumes)",
                path.display()
            ))
        })?;
        let base = map.as_ptr() as usize;
        let span = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
        let mut manifest = None;
        let mut objects = BTreeMap::new();
        let mut unnamed = Vec::new();
        for (i, section) in sections.iter().enumerate() {
            match section {
                Section::Manifest(m) => manifest = Some(m.clone()),
                Section::Segment(bytes) => {
                    let key = manifest.as_ref().and_then(|m: &Manifest| {
                        let h = SegmentReader::open(bytes).ok()?.header;
                        Some(segment::object_key(&m.session_key, h.first_seq, h.last_seq, 0))
                    });
                    match key {
                        Some(k) if !objects.contains_key(&k) => {
                            objects.insert(k, span(bytes));
                        }
                        _ => unnamed.push(format!("segment section #{i}")),
                    }
                }
                Section::Snapshot(bytes) => {
                    let key = manifest.as_ref().and_then(|m: &Manifest| {
                        let h = snapshot::decode_header(bytes).ok()?;
                        Some(segment::snapshot_object_key(&m.session_key, h.seq))
                    });
                    match key {
                        Some(k) if !objects.contains_key(&k) => {
                            objects.insert(k, span(bytes));
                        }
                        _ => unnamed.push(format!("snapshot section #{i}")),
                    }
                }
                Section::Blob { sha256, content } => {
                    objects.insert(blob_key(sha256), span(content));
                }
            }
        }
        let manifest = manifest.expect("bundle::read checks that the manifest comes first");
        #[cfg(unix)]
        // SAFETY: DontNeed on a read-only file mapping drops cached pages; touching them again
        // reads them back from the file.
        let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        Ok(BundleFile { path: path.to_path_buf(), map, manifest, objects, unnamed })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

impl ObjectSource for BundleFile {
    fn describe(&self) -> String {
        format!("bundle file {}", self.path.display())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, SourceError> {
        Ok(self
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('/'))
            .map(|(k, (_, len))| ObjectInfo { key: k.clone(), size: *len as u64 })
            .collect())
    }

    fn read_into(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, SourceError> {
        let Some(&(offset, len)) = self.objects.get(key) else { return Ok(false) };
        buf.clear();
        buf.extend_from_slice(&self.map[offset..offset + len]);
        Ok(true)
    }

    fn sessions(&self) -> Result<Vec<String>, SourceError> {
        let mut keys: Vec<String> =
            self.objects.keys().filter_map(|k| session_of(k)).map(str::to_owned).collect();
        keys.push(self.manifest.session_key.clone());
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}
