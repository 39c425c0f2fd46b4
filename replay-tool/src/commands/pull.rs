//! `pull`: a session's segments, snapshots, tail and blobs into a local bundle directory (see
//! `layout`), resumable.
//!
//! - From R2 (S3 API), a wrangler state directory or a bundle: the directory mirrors the source's
//!   objects. Objects already here with the same size are skipped; segments and snapshots the
//!   source no longer has are removed here too (the Worker deletes archived copies that held
//!   content a redaction erased, and a mirror must not keep it).
//! - From a Worker (`--url`): the first pull streams the export bundle (archived segments, the
//!   live tail, snapshots, blobs); later pulls fetch only the records after the local head, page by
//!   page through the events API, each page landing whole, and check that the Worker's log still
//!   continues the local one. `--no-export` uses pages from the start.
//!
//! After fetching, the local copy is walked with the verifier, which finds the blobs the log
//! references (fetched next) and the head recorded in the manifest. A copy that does not verify
//! is kept (it is the evidence) and reported, with exit status 1.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use moltlog_core::chain::{self, Hash};
use moltlog_core::key::SessionKey;
use moltlog_core::segment::{self, SegmentReader};
use moltlog_core::state::Head;

use crate::archive::SessionArchive;
use crate::cli::{PullArgs, Verdict, usage};
use crate::failure::Failure;
use crate::layout::{HeadJson, MANIFEST, Manifest, blob_key, object_path, write_atomic};
use crate::objects::{ObjectInfo, ObjectSource, segments_prefix, snapshots_prefix};
use crate::source::dir::DirSource;
use crate::source::http::Api;
use crate::source::{self, SourceSpec};
use crate::ui::Ui;
use crate::walk::{self, Stop, WalkError};

/// What a pull fetched and found.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    pub segments: u64,
    pub segments_new: u64,
    pub snapshots: u64,
    pub snapshots_new: u64,
    /// Local objects removed because the source no longer has them.
    pub removed: u64,
    pub blobs: u64,
    pub blobs_new: u64,
    pub blobs_missing: u64,
    /// Pages of records fetched through the events API.
    pub pages: u64,
}

/// How to pull.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Fetch the blobs the log references.
    pub blobs: bool,
    /// From a Worker: start with the export bundle (false: events pages only).
    pub export: bool,
}

/// The outcome of a pull.
#[derive(Debug)]
pub struct Pulled {
    pub key: SessionKey,
    pub tally: Tally,
    /// The head of the local copy, or why it does not verify.
    pub head: Result<Head, Failure>,
    pub blobs_referenced: usize,
}

pub fn run(a: &PullArgs, ui: &Ui) -> anyhow::Result<Verdict> {
    let spec = a.source.spec()?;
    let opts = PullOptions { blobs: !a.no_blobs, export: !a.no_export };
    let pulled = pull(&spec, a.source.session(), &a.out, &opts, ui)?;
    report(ui, &a.out, &pulled, a.no_blobs)
}

/// Pulls the session from `spec` into the bundle directory `out`.
pub fn pull(
    spec: &SourceSpec,
    session: Option<&str>,
    out: &Path,
    opts: &PullOptions,
    ui: &Ui,
) -> anyhow::Result<Pulled> {
    let existing = prepare_dir(out, spec)?;
    let mut tally = Tally::default();
    type Fetch = Box<dyn Fn(&Hash) -> anyhow::Result<Option<Vec<u8>>>>;
    let (key, mut manifest, fetch): (SessionKey, Manifest, Fetch) = match &spec {
        SourceSpec::Http { url, token } => {
            let key = session.map(str::to_owned).or(existing.as_ref().map(|m| m.session_key.clone()));
            let key = key.ok_or_else(|| usage("pulling from a Worker needs --session KEY"))?;
            let key = SessionKey::parse(&key).with_context(|| format!("--session {key:?}"))?;
            check_same_session(existing.as_ref(), &key)?;
            let api = Api::new(url, token.as_deref());
            let manifest = pull_http(&api, &key, out, opts, existing, ui, &mut tally)?;
            (key, manifest, Box::new(move |sha: &Hash| Ok(api.blob(sha)?)))
        }
        _ => {
            let opened = source::open(spec, session, ui, opts.blobs)?;
            let asked = session.or(existing.as_ref().map(|m| m.session_key.as_str()));
            let archive = source::archive_of(opened, asked)?;
            let key = archive.key.clone();
            check_same_session(existing.as_ref(), &key)?;
            mirror(&archive, out, ui, &mut tally)?;
            let mut m = Manifest::new(key.as_str(), spec.kind(), &spec.location());
            m.head = claimed(&archive);
            m.archived_seq = archive.archived_seq.or(archive.segments.last().map(|s| s.last));
            (key, m, Box::new(move |sha: &Hash| Ok(archive.read_blob(sha)?)))
        }
    };
    // The local copy, verified: the blobs it references, and its head for the manifest (when
    // the source stated none).
    let scan = scan_local(out, &key, ui)?;
    if opts.blobs {
        fetch_blobs(&scan.blobs, out, &mut tally, fetch)?;
    }
    if manifest.head.is_none()
        && let Ok(h) = &scan.head
    {
        manifest.head = Some(HeadJson::from_head(*h));
    }
    manifest.write(out)?;
    Ok(Pulled { key, tally, head: scan.head, blobs_referenced: scan.blobs.len() })
}

/// Checks the target directory: new, empty, or an earlier pull from the same kind of source.
fn prepare_dir(out: &Path, spec: &SourceSpec) -> anyhow::Result<Option<Manifest>> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let existing = Manifest::read(out)?;
    match &existing {
        Some(m) if m.source.kind != spec.kind() => bail!(
            "{} holds a pull from {} ({}); pull from {} into another directory",
            out.display(),
            m.source.kind,
            m.source.location,
            spec.kind()
        ),
        Some(_) => {}
        None => {
            let non_empty = fs::read_dir(out)?
                .filter_map(|e| e.ok())
                .any(|e| !e.file_name().to_string_lossy().starts_with('.'));
            if non_empty {
                bail!(
                    "{} is not empty and holds no {MANIFEST}: pull into a new or empty directory",
                    out.display()
                );
            }
        }
    }
    remove_temporaries(out);
    Ok(existing)
}

fn check_same_session(existing: Option<&Manifest>, key: &SessionKey) -> anyhow::Result<()> {
    if let Some(m) = existing
        && m.session_key != key.as_str()
    {
        bail!(
            "this bundle directory holds session {}, not {key}; pull into another directory",
            m.session_key
        );
    }
    Ok(())
}

/// Removes the hidden temporaries an interrupted pull left (they are never read).
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if path.is_dir() {
            remove_temporaries(&path);
        } else if name.starts_with('.') && name.contains(".tmp-") {
            let _ = fs::remove_file(path);
        }
    }
}

/// Copies the archive's segment and snapshot objects into `out`, skipping what is there already,
/// and removes local ones the source no longer has.
fn mirror(archive: &SessionArchive, out: &Path, ui: &Ui, tally: &mut Tally) -> anyhow::Result<()> {
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

/// The HTTP pull: the export on the first pull, then pages of records after the local head.
fn pull_http(
    api: &Api,
    key: &SessionKey,
    out: &Path,
    opts: &PullOptions,
    existing: Option<Manifest>,
    ui: &Ui,
    tally: &mut Tally,
) -> anyhow::Result<Manifest> {
    let local = SessionArchive::open(Box::new(DirSource::open(out)?), key.clone())?;
    if local.segments.is_empty() && opts.export {
        let tmp = out.join(".export.moltlog.tmp-download");
        let bar = ui.bytes_spinner(&format!("downloading the export of {key}"));
        api.download_export(key.as_str(), opts.blobs, &tmp, &bar)?;
        bar.finish_and_clear();
        let opened = source::open_bundle(&tmp);
        let _ = fs::remove_file(&tmp); // mapped already (or unreadable): the file itself can go
        let archive = source::archive_of(opened?, Some(key.as_str()))?;
        mirror(&archive, out, ui, tally)?;
        let blobs = archive.source.list("blobs/sha256/")?;
        let mut buf = Vec::new();
        for b in &blobs {
            let path = object_path(out, &b.key)?;
            if archive.source.read_into(&b.key, &mut buf)? && !path.exists() {
                write_atomic(&path, &buf)?;
                tally.blobs_new += 1;
            }
        }
        let mut m = Manifest::new(key.as_str(), "http", api.base());
        m.head = claimed(&archive);
        m.archived_seq = archive.archived_seq;
        return Ok(m);
    }
    // Resume after the local head: read it from the last local segment.
    let (mut after, mut prev) = match local.segments.last() {
        None => (0, chain::genesis(key.as_str())),
        Some(last) => {
            let bytes = local.source.read(&last.key)?.context("reading the last local segment")?;
            let h = SegmentReader::open(&bytes)
                .with_context(|| format!("{} is damaged; pull into a new directory", last.key))?
                .header;
            (h.last_seq, h.last_hash)
        }
    };
    let bar = ui.bytes_spinner(&format!("fetching records of {key} after seq {after}"));
    while let Some(page) = api.events_segment(key.as_str(), after)? {
        let h = SegmentReader::open(&page)
            .map_err(|e| anyhow::anyhow!("the Worker sent a damaged page: {e}"))?
            .header;
        if h.session_key != key.as_str() || h.first_seq != after + 1 || h.prev_hash != prev {
            bail!(
                "the Worker's log does not continue this bundle at seq {after} (its page starts at seq {} after \
                 hash {}, this bundle ends with hash {}): the copies diverge. Pull into a new directory and \
                 compare them with `moltlog-replay diff`",
                h.first_seq,
                chain::to_hex(&h.prev_hash),
                chain::to_hex(&prev)
            );
        }
        let name = segment::object_key(key.as_str(), h.first_seq, h.last_seq, 0);
        write_atomic(&object_path(out, &name)?, &page)?;
        (after, prev) = (h.last_seq, h.last_hash);
        tally.pages += 1;
        tally.segments_new += 1;
        bar.inc(page.len() as u64);
    }
    bar.finish_and_clear();
    let mut m = existing.unwrap_or_else(|| Manifest::new(key.as_str(), "http", api.base()));
    m.pulled_ms = crate::layout::now_ms();
    m.head = None; // the walk over the copy states the head reached
    tally.segments = local.segments.len() as u64 + tally.pages;
    tally.snapshots = local.snapshots.len() as u64;
    Ok(m)
}

/// The head an archive's source states, for the manifest.
fn claimed(archive: &SessionArchive) -> Option<HeadJson> {
    let c = archive.claimed_head?;
    Some(HeadJson::from_head(Head { seq: c.seq, hash: c.hash? }))
}

/// What a walk over the local copy found.
struct Scan {
    head: Result<Head, Failure>,
    /// Referenced blobs: digest → length.
    blobs: BTreeMap<Hash, u64>,
}

fn scan_local(out: &Path, key: &SessionKey, ui: &Ui) -> anyhow::Result<Scan> {
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

/// Fetches the referenced blobs that are not here yet (each checked against its digest).
fn fetch_blobs(
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

fn report(ui: &Ui, out: &Path, pulled: &Pulled, no_blobs: bool) -> anyhow::Result<Verdict> {
    let t = &pulled.tally;
    let mut o = super::stdout();
    writeln!(o, "{} {} into {}", ui.good("pulled"), pulled.key, out.display())?;
    if t.pages > 0 {
        writeln!(o, "  records    {} new page(s) of up to 1000 records", t.pages)?;
    }
    writeln!(o, "  segments   {} ({} new)", t.segments, t.segments_new)?;
    writeln!(o, "  snapshots  {} ({} new)", t.snapshots, t.snapshots_new)?;
    if t.removed > 0 {
        writeln!(o, "  removed    {} object(s) the source no longer has", t.removed)?;
    }
    if no_blobs {
        writeln!(o, "  blobs      skipped (--no-blobs)")?;
    } else {
        writeln!(
            o,
            "  blobs      {} referenced, {} new, {} not in the source",
            pulled.blobs_referenced, t.blobs_new, t.blobs_missing
        )?;
    }
    let verdict = match &pulled.head {
        Ok(h) => {
            writeln!(o, "  log        seqs 1..={}, verifies (head {})", h.seq, chain::to_hex(&h.hash))?;
            Verdict::Clean
        }
        Err(f) => {
            writeln!(
                o,
                "{} the copy fails verification at seq {}: {}. It was kept as evidence; run `moltlog-replay verify {}` \
                 for the full report.",
                ui.bad("warning:"),
                f.seq,
                f.message,
                out.display()
            )?;
            Verdict::Failed
        }
    };
    o.flush()?;
    Ok(verdict)
}
