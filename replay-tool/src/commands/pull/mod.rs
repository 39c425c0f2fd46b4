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

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use moltlog_core::chain::{self, Hash};
use moltlog_core::key::SessionKey;
use moltlog_core::state::Head;

mod copy;
mod http;

use copy::{fetch_blobs, mirror, scan_local};
use http::pull_http;

use crate::archive::SessionArchive;
use crate::cli::{PullArgs, Verdict, usage};
use crate::failure::Failure;
use crate::layout::{HeadJson, MANIFEST, Manifest};
use crate::source::http::Api;
use crate::source::{self, SourceSpec};
use crate::ui::Ui;

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

/// The head an archive's source states, for the manifest.
fn claimed(archive: &SessionArchive) -> Option<HeadJson> {
    let c = archive.claimed_head?;
    Some(HeadJson::from_head(Head { seq: c.seq, hash: c.hash? }))
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
