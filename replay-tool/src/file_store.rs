//! A `LogStore` over a bundle directory: the layout `pull` writes (see `layout`), so the same
//! files are an archive copy to audit and a log the engine can append to and rebuild from. The
//! benchmarks and tests build realistic bundles with it through core's own `Engine`, and it
//! passes core's store conformance suite, so it means what every other store means.
//!
//! On disk, as in R2: each committed batch is one segment file named by its seq range
//! (`segments/{first:020}-{last:020}.seg`); an erasure rewrites the segment holding the erased
//! body under the next generation (`….g{n}.seg`) and removes the old file; snapshots are
//! `snapshots/{seq:020}.snap`. Idempotency keys are JSON lines in `store/idempotency.jsonl`.
//!
//! Atomicity: the commit point of an append is the rename of its segment file. Keys are written
//! just before it; on open, entries past the head (a batch that never committed) are dropped. An
//! erasure runs after the commit; if the process dies in between, the redaction event is in the
//! log and its target still holds its content, which verifiers report as "erasure pending", and
//! superseded generations left behind are removed on open.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use moltlog_core::StoredRecord;
use moltlog_core::chain::{self, Hash};
use moltlog_core::segment::{self, SegmentReader};
use moltlog_core::state::Head;
use moltlog_core::store::{CommitBatch, CommitError, KeyEntry, LogStore};
use serde::{Deserialize, Serialize};

use crate::archive::choose_segments;
use crate::layout::write_atomic;
use crate::objects::{ObjectInfo, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    #[error(transparent)]
    Io(#[from] SourceError),
    #[error("{0} is damaged: {1}")]
    Corrupt(String, String),
    #[error("idempotency key {0:?} already exists")]
    KeyExists(String),
    #[error("batch is malformed: {0}")]
    BadBatch(String),
}

/// One segment file of the log.
#[derive(Clone, Debug)]
struct SegFile {
    last: u64,
    generation: u32,
}

pub struct FileStore {
    key: String,
    segments_dir: PathBuf,
    snapshots_dir: PathBuf,
    keys_path: PathBuf,
    /// Segment files by first seq (the highest generation only).
    index: BTreeMap<u64, SegFile>,
    head: Option<Head>,
    keys: HashMap<String, KeyEntry>,
    snapshots: BTreeSet<u64>,
    /// The last segment read, decoded (reads walk forward through a segment).
    cache: RefCell<Option<(u64, Rc<Vec<StoredRecord>>)>>,
}

#[derive(Serialize, Deserialize)]
struct KeyLine {
    key: String,
    first_seq: u64,
    last_seq: u64,
    last_hash: String,
    fingerprint: String,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileStoreError {
    let f = SourceError::io(what, path);
    move |e| FileStoreError::Io(f(e))
}

fn list_dir(dir: &Path) -> Result<Vec<(String, u64)>, FileStoreError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io("listing", dir))? {
        let e = e.map_err(io("listing", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push((name, e.metadata().map_err(io("reading", &e.path()))?.len()));
        }
    }
    Ok(out)
}

impl FileStore {
    /// Opens (creating if need be) the store of session `key` in bundle directory `root`.
    pub fn open(root: &Path, key: &str) -> Result<FileStore, FileStoreError> {
        let base = root.join("sessions").join(key);
        let mut s = FileStore {
            key: key.to_owned(),
            segments_dir: base.join("segments"),
            snapshots_dir: base.join("snapshots"),
            keys_path: base.join("store/idempotency.jsonl"),
            index: BTreeMap::new(),
            head: None,
            keys: HashMap::new(),
            snapshots: BTreeSet::new(),
            cache: RefCell::new(None),
        };
        for d in [&s.segments_dir, &s.snapshots_dir] {
            fs::create_dir_all(d).map_err(io("creating", d))?;
        }
        let listing: Vec<ObjectInfo> = list_dir(&s.segments_dir)?
            .into_iter()
            .map(|(name, size)| ObjectInfo { key: name, size })
            .collect();
        let (chosen, superseded, _) = choose_segments(&listing);
        for old in superseded {
            // A rewrite or a longer batch file replaced it before a crash could remove it.
            let p = s.segments_dir.join(&old.key);
            fs::remove_file(&p).map_err(io("removing", &p))?;
        }
        for c in chosen {
            s.index.insert(c.first, SegFile { last: c.last, generation: c.generation });
        }
        if let Some((&first, f)) = s.index.iter().next_back() {
            let path = s.seg_path(first, f.last, f.generation);
            let bytes = fs::read(&path).map_err(io("reading", &path))?;
            let h = SegmentReader::open(&bytes)
                .map_err(|e| FileStoreError::Corrupt(path.display().to_string(), e.to_string()))?
                .header;
            s.head = Some(Head { seq: h.last_seq, hash: h.last_hash });
        }
        for (name, _) in list_dir(&s.snapshots_dir)? {
            if let Some(seq) = segment::parse_snapshot_key(&name) {
                s.snapshots.insert(seq);
            }
        }
        s.load_keys()?;
        Ok(s)
    }

    fn seg_path(&self, first: u64, last: u64, generation: u32) -> PathBuf {
        let key = segment::object_key(&self.key, first, last, generation);
        self.segments_dir.join(key.rsplit('/').next().expect("object keys have a file name"))
    }

    fn snap_path(&self, seq: u64) -> PathBuf {
        let key = segment::snapshot_object_key(&self.key, seq);
        self.snapshots_dir.join(key.rsplit('/').next().expect("object keys have a file name"))
    }

    fn head_seq(&self) -> u64 {
        self.head.map_or(0, |h| h.seq)
    }

    /// Loads the idempotency keys of committed batches, dropping those of a batch that never
    /// committed (past the head) so that they cannot come to name other records later.
    fn load_keys(&mut self) -> Result<(), FileStoreError> {
        let text = match fs::read_to_string(&self.keys_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("reading", &self.keys_path)(e)),
        };
        let head = self.head_seq();
        let mut dropped = false;
        for line in text.lines() {
            let parsed: Option<(String, KeyEntry)> =
                serde_json::from_str::<KeyLine>(line).ok().and_then(|k| {
                    Some((
                        k.key,
                        KeyEntry {
                            first_seq: k.first_seq,
                            last_seq: k.last_seq,
                            last_hash: chain::from_hex(&k.last_hash)?,
                            fingerprint: chain::from_hex(&k.fingerprint)?,
                        },
                    ))
                });
            match parsed {
                Some((k, e)) if e.last_seq <= head => {
                    self.keys.insert(k, e);
                }
                _ => dropped = true, // past the head, or a line cut short by a crash
            }
        }
        if dropped {
            let mut kept: Vec<(&String, &KeyEntry)> = self.keys.iter().collect();
            kept.sort_by_key(|(_, e)| e.first_seq);
            let text: String = kept.into_iter().map(|(k, e)| key_line(k, e) + "\n").collect();
            write_atomic(&self.keys_path, text.as_bytes())?;
        }
        Ok(())
    }

    /// The records of the segment starting at `first`, decoded once and cached.
    fn load(&self, first: u64) -> Result<Rc<Vec<StoredRecord>>, FileStoreError> {
        if let Some((f, recs)) = self.cache.borrow().as_ref()
            && *f == first
        {
            return Ok(recs.clone());
        }
        let seg = &self.index[&first];
        let path = self.seg_path(first, seg.last, seg.generation);
        let bytes = fs::read(&path).map_err(io("reading", &path))?;
        let corrupt =
            |e: segment::SegmentError| FileStoreError::Corrupt(path.display().to_string(), e.to_string());
        let mut reader = SegmentReader::open(&bytes).map_err(corrupt)?;
        let mut recs = Vec::with_capacity((seg.last - first + 1) as usize);
        while let Some(frame) = reader.next_frame() {
            let (seq, frame) = frame.map_err(corrupt)?;
            recs.push(frame.to_stored(seq));
        }
        let recs = Rc::new(recs);
        *self.cache.borrow_mut() = Some((first, recs.clone()));
        Ok(recs)
    }

    fn write_segment(
        &self,
        prev: Hash,
        records: &[StoredRecord],
        generation: u32,
    ) -> Result<(), FileStoreError> {
        let (first, last) = (records[0].seq, records[records.len() - 1].seq);
        // The creation time is the last record's: the store has no clock, and the same log then
        // gives the same files.
        let created = records[records.len() - 1].decode_header().map_or(0, |h| h.ts_ms);
        let bytes = segment::encode(&self.key, prev, records, created);
        Ok(write_atomic(&self.seg_path(first, last, generation), &bytes)?)
    }

    /// The chain hash before `first` (genesis for seq 1).
    fn hash_before(&self, first: u64) -> Result<Hash, FileStoreError> {
        if first == 1 {
            return Ok(chain::genesis(&self.key));
        }
        let rec = moltlog_core::store::read_one(self, first - 1)?.ok_or_else(|| {
            FileStoreError::Corrupt(self.key.clone(), format!("record {} is missing", first - 1))
        })?;
        Ok(rec.hash)
    }

    /// Replaces the body of `seq` by `skeleton`: its segment is written again under the next
    /// generation, then the old file goes.
    fn erase(&mut self, seq: u64, skeleton: &[u8]) -> Result<(), FileStoreError> {
        let (&first, seg) =
            self.index.range(..=seq).next_back().filter(|(_, s)| s.last >= seq).ok_or_else(|| {
                FileStoreError::BadBatch(format!("erasure of seq {seq}, which is not stored"))
            })?;
        let seg = seg.clone();
        let mut records = (*self.load(first)?).clone();
        let r = &mut records[(seq - first) as usize];
        r.body = skeleton.to_vec();
        r.redacted = true;
        let prev = self.hash_before(first)?;
        self.write_segment(prev, &records, seg.generation + 1)?;
        let old = self.seg_path(first, seg.last, seg.generation);
        fs::remove_file(&old).map_err(io("removing", &old))?;
        self.index.insert(first, SegFile { last: seg.last, generation: seg.generation + 1 });
        *self.cache.borrow_mut() = None;
        Ok(())
    }
}

fn key_line(key: &str, e: &KeyEntry) -> String {
    serde_json::to_string(&KeyLine {
        key: key.to_owned(),
        first_seq: e.first_seq,
        last_seq: e.last_seq,
        last_hash: chain::to_hex(&e.last_hash),
        fingerprint: chain::to_hex(&e.fingerprint),
    })
    .expect("key lines serialize")
}

impl LogStore for FileStore {
    type Error = FileStoreError;

    fn head(&self) -> Result<Option<Head>, Self::Error> {
        Ok(self.head)
    }

    fn read(&self, from_seq: u64, limit: u32) -> Result<Vec<StoredRecord>, Self::Error> {
        let from = from_seq.max(1);
        let mut out = Vec::new();
        let start = self.index.range(..=from).next_back().map_or(from, |(f, _)| *f);
        for (&first, seg) in self.index.range(start..) {
            if out.len() >= limit as usize {
                break;
            }
            if seg.last < from {
                continue;
            }
            let recs = self.load(first)?;
            let skip = from.saturating_sub(first) as usize;
            out.extend(recs.iter().skip(skip).take(limit as usize - out.len()).cloned());
        }
        Ok(out)
    }

    fn append(&mut self, batch: &CommitBatch) -> Result<(), CommitError<Self::Error>> {
        let head_seq = self.head_seq();
        if batch.expected_seq != head_seq {
            return Err(CommitError::Conflict { expected_seq: batch.expected_seq, head_seq });
        }
        let bad = |m: String| CommitError::Store(FileStoreError::BadBatch(m));
        for (i, r) in batch.records.iter().enumerate() {
            if r.seq != head_seq + 1 + i as u64 {
                return Err(bad(format!("record {i} has seq {}", r.seq)));
            }
        }
        let mut fresh = BTreeSet::new();
        for (key, _) in &batch.keys {
            if self.keys.contains_key(key) || !fresh.insert(key.as_str()) {
                return Err(CommitError::Store(FileStoreError::KeyExists(key.clone())));
            }
        }
        if let Some(e) = batch.erasures.iter().find(|e| e.seq == 0 || e.seq > head_seq) {
            return Err(bad(format!("erasure of seq {} beyond the head", e.seq)));
        }
        if !batch.keys.is_empty() {
            let text: String = batch.keys.iter().map(|(k, e)| key_line(k, e) + "\n").collect();
            let write = || -> std::io::Result<()> {
                if let Some(d) = self.keys_path.parent() {
                    fs::create_dir_all(d)?;
                }
                let mut f = OpenOptions::new().create(true).append(true).open(&self.keys_path)?;
                f.write_all(text.as_bytes())?;
                f.sync_data()
            };
            write().map_err(|e| CommitError::Store(io("writing", &self.keys_path)(e)))?;
        }
        if let Some(new_head) = batch.new_head() {
            let prev = self.head.map_or_else(|| chain::genesis(&self.key), |h| h.hash);
            self.write_segment(prev, &batch.records, 0).map_err(CommitError::Store)?;
            let first = batch.records[0].seq;
            self.index.insert(first, SegFile { last: new_head.seq, generation: 0 });
            self.head = Some(new_head);
        }
        self.keys.extend(batch.keys.iter().cloned());
        for e in &batch.erasures {
            self.erase(e.seq, &e.skeleton).map_err(CommitError::Store)?;
            let stale: Vec<u64> = self.snapshots.range(e.seq..=head_seq).copied().collect();
            for s in stale {
                self.remove_snapshot(s).map_err(CommitError::Store)?;
            }
        }
        Ok(())
    }

    fn lookup_key(&self, key: &str) -> Result<Option<KeyEntry>, Self::Error> {
        Ok(self.keys.get(key).cloned())
    }

    fn put_snapshot(&mut self, seq: u64, bytes: &[u8]) -> Result<(), Self::Error> {
        write_atomic(&self.snap_path(seq), bytes)?;
        self.snapshots.insert(seq);
        Ok(())
    }

    fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, Self::Error> {
        let Some(&seq) = self.snapshots.iter().next_back() else { return Ok(None) };
        let path = self.snap_path(seq);
        Ok(Some((seq, fs::read(&path).map_err(io("reading", &path))?)))
    }

    fn snapshot_seqs(&self) -> Result<Vec<u64>, Self::Error> {
        Ok(self.snapshots.iter().copied().collect())
    }

    fn prune_snapshots_before(&mut self, seq: u64) -> Result<(), Self::Error> {
        let old: Vec<u64> = self.snapshots.range(..seq).copied().collect();
        for s in old {
            self.remove_snapshot(s)?;
        }
        Ok(())
    }
}

impl FileStore {
    fn remove_snapshot(&mut self, seq: u64) -> Result<(), FileStoreError> {
        let path = self.snap_path(seq);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing", &path)(e)),
        }
        self.snapshots.remove(&seq);
        Ok(())
    }
}
