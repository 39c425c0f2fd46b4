//! Pulling from a Worker: the export bundle first, then pages of records after the local head.

use std::fs;
use std::path::Path;

use anyhow::{Context, bail};
use moltlog_core::chain;
use moltlog_core::key::SessionKey;
use moltlog_core::segment::{self, SegmentReader};

use super::{PullOptions, Tally, claimed, copy::mirror};
use crate::archive::SessionArchive;
use crate::layout::{Manifest, object_path, write_atomic};
use crate::source;
use crate::source::dir::DirSource;
use crate::source::http::Api;
use crate::ui::Ui;

/// The HTTP pull: the export on the first pull, then pages of records after the local head.
pub(super) fn pull_http(
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
