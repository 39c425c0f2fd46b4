//! Where a session is read from, chosen on the command line, and opening it as a
//! `SessionArchive`.

pub mod dir;
pub mod file;
pub mod http;
pub mod s3;
pub mod state_dir;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use moltlog_core::key::SessionKey;

use crate::archive::{ClaimedHead, SessionArchive};
use crate::layout::Manifest;
use crate::objects::ObjectSource;
use crate::ui::Ui;

use self::s3::S3Config;

/// A source, as the command line named it.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// A bundle directory (from `pull`) or an export bundle file.
    Bundle(PathBuf),
    Http {
        url: String,
        token: Option<String>,
    },
    S3(S3Config),
    StateDir {
        dir: PathBuf,
        bucket: String,
    },
}

impl SourceSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Bundle(_) => "bundle",
            SourceSpec::Http { .. } => "http",
            SourceSpec::S3(_) => "s3",
            SourceSpec::StateDir { .. } => "state-dir",
        }
    }

    pub fn location(&self) -> String {
        match self {
            SourceSpec::Bundle(p) => p.display().to_string(),
            SourceSpec::Http { url, .. } => url.clone(),
            SourceSpec::S3(c) => format!("s3://{} at {}", c.bucket, c.endpoint),
            SourceSpec::StateDir { dir, bucket } => format!("{} (bucket {bucket})", dir.display()),
        }
    }
}

/// An object source opened from a spec, with what it says about itself.
pub struct Opened {
    pub source: Box<dyn ObjectSource>,
    /// The session the source is about, when it says (bundles do).
    pub session: Option<String>,
    pub claimed_head: Option<ClaimedHead>,
    pub archived_seq: Option<u64>,
}

/// Opens a local bundle: a directory written by `pull`, or an export bundle file.
pub fn open_bundle(path: &Path) -> anyhow::Result<Opened> {
    if path.is_dir() {
        let manifest = Manifest::read(path)?;
        let source = dir::DirSource::open(path)?;
        return Ok(Opened {
            session: manifest.as_ref().map(|m| m.session_key.clone()),
            claimed_head: manifest.as_ref().and_then(Manifest::claimed_head).map(ClaimedHead::from),
            archived_seq: manifest.as_ref().and_then(|m| m.archived_seq),
            source: Box::new(source),
        });
    }
    if !path.exists() {
        bail!(
            "{} does not exist; give a bundle directory (from `moltlog-replay pull`) or an export bundle file",
            path.display()
        );
    }
    let file = file::BundleFile::open(path)?;
    let m = file.manifest().clone();
    Ok(Opened {
        session: Some(m.session_key.clone()),
        claimed_head: Some(ClaimedHead { seq: m.head_seq, hash: Some(m.head_hash) }),
        archived_seq: Some(m.archived_seq),
        source: Box::new(file),
    })
}

/// Opens a source. A Worker URL is read through its export: streamed to a temporary file (so
/// memory stays flat), then read like any bundle file.
pub fn open(spec: &SourceSpec, session: Option<&str>, ui: &Ui, blobs: bool) -> anyhow::Result<Opened> {
    match spec {
        SourceSpec::Bundle(p) => open_bundle(p),
        SourceSpec::Http { url, token } => {
            let key = session.context(
                "reading from a Worker needs --session KEY (list sessions with `curl URL/v1/sessions`)",
            )?;
            let api = http::Api::new(url, token.as_deref());
            let temp = tempfile::Builder::new().prefix("moltlog-export-").suffix(".moltlog").tempfile()?;
            let path = temp.into_temp_path();
            let bar = ui.bytes_spinner(&format!("downloading the export of {key}"));
            api.download_export(key, blobs, &path, &bar)?;
            bar.finish_and_clear();
            // The bundle is mapped: the temporary file can go now (the mapping keeps its data).
            open_bundle(&path)
        }
        SourceSpec::S3(cfg) => Ok(plain(Box::new(s3::S3Source::open(cfg)?))),
        SourceSpec::StateDir { dir, bucket } => {
            Ok(plain(Box::new(state_dir::StateDirSource::open(dir, bucket)?)))
        }
    }
}

fn plain(source: Box<dyn ObjectSource>) -> Opened {
    Opened { source, session: None, claimed_head: None, archived_seq: None }
}

/// Decides the session: the one asked for, or the only one the source holds.
pub fn pick_session(opened: &Opened, asked: Option<&str>) -> anyhow::Result<SessionKey> {
    let key = match (asked, &opened.session) {
        (Some(a), Some(s)) if a != s => {
            bail!(
                "{} holds session {s}, not {a}; drop --session or pick another source",
                opened.source.describe()
            )
        }
        (Some(a), _) => a.to_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => {
            let sessions = opened.source.sessions()?;
            match sessions.as_slice() {
                [only] => only.clone(),
                [] => bail!("{} holds no sessions", opened.source.describe()),
                many => {
                    let shown: Vec<&str> = many.iter().take(20).map(String::as_str).collect();
                    let more = if many.len() > 20 {
                        format!(" (and {} more)", many.len() - 20)
                    } else {
                        String::new()
                    };
                    bail!(
                        "{} holds {} sessions; pick one with --session KEY: {}{more}",
                        opened.source.describe(),
                        many.len(),
                        shown.join(", ")
                    )
                }
            }
        }
    };
    SessionKey::parse(&key).with_context(|| format!("--session {key:?}"))
}

/// Opens the session's archive from a spec.
pub fn open_archive(
    spec: &SourceSpec,
    session: Option<&str>,
    ui: &Ui,
    blobs: bool,
) -> anyhow::Result<SessionArchive> {
    let opened = open(spec, session, ui, blobs)?;
    archive_of(opened, session)
}

/// The session's archive in an opened source.
pub fn archive_of(opened: Opened, session: Option<&str>) -> anyhow::Result<SessionArchive> {
    let key = pick_session(&opened, session)?;
    let Opened { source, claimed_head, archived_seq, .. } = opened;
    let mut archive = SessionArchive::open(source, key)?;
    archive.claimed_head = claimed_head;
    archive.archived_seq = archived_seq;
    Ok(archive)
}
