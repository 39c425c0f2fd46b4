//! `restore --into DIR`: what a fresh agent sandbox needs to resume the session, from a log that
//! verified first (the whole audit: chain, segments, snapshots, blobs, claimed head).
//!
//! Writes, under DIR (the runtime's state directory):
//! - the runtime's session files, per ../shared/OPENCLAW.md, rendered by
//!   `moltlog_core::restore::openclaw` (the very files `GET /v1/sessions/{key}/restore?format=openclaw`
//!   serves): `agents/<agentId>/sessions/sessions.json` and `<sessionId>.jsonl`;
//! - `moltlog/restore.json`: core's restore bundle (open tool calls, browser state, compaction,
//!   outbox, head), as `GET /v1/sessions/{key}/restore` serves it;
//! - `moltlog/blobs/sha256/{hex}`: the blobs that state references (attachments, offloaded
//!   payloads, the last screenshot), when the source has them.
//!
//! A directory that is not empty is refused without `--force`, so a restore never silently
//! overwrites another session's files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use moltlog_core::chain::{self, Hash};
use moltlog_core::event::{BlobRef, Payload};
use moltlog_core::restore::{self, Item, openclaw};
use moltlog_core::state::SessionState;
use serde_json::json;

use crate::audit;
use crate::cli::{RestoreArgs, Verdict, usage};
use crate::layout::{object_path, write_atomic};
use crate::runtime::{self, Runtime};
use crate::transcript::Transcript;
use crate::ui::Ui;
use crate::{commands, source};

pub fn run(a: &RestoreArgs, ui: &Ui) -> anyhow::Result<Verdict> {
    if let Some(agent) = &a.agent {
        return super::restore_agent::run(a, agent, ui);
    }
    if !a.force && is_non_empty_dir(&a.into)? {
        return Err(usage(format!(
            "{} is not empty; restore into an empty directory, or pass --force to write over files of the \
             same name",
            a.into.display()
        ))
        .into());
    }
    let runtime = runtime_of(a)?;
    let spec = a.source.spec()?;
    let archive = source::open_archive(&spec, a.source.session(), ui, true)?;
    let bar = ui.bar(archive.last_named_seq(), "records", "verifying");
    let mut transcript = Transcript::default();
    let keep = &mut |c: &moltlog_core::record::CheckedRecord, redacted: bool| {
        transcript.visit(c, redacted);
        Ok(())
    };
    let audit = audit::audit_with(&archive, true, &bar, keep).context("verifying before the restore")?;
    bar.finish_and_clear();
    if let Some(f) = &audit.failure {
        commands::print_failure(ui, f, &archive.describe());
        eprintln!("Nothing was written to {}: a restore needs a log that verifies.", a.into.display());
        return Ok(Verdict::Failed);
    }
    let state = audit.state.as_ref().expect("a clean audit has the state");
    let items = transcript.items(state)?;
    let restored_at_ms = a.restored_at.unwrap_or_else(crate::layout::now_ms);
    let written = write_restore(&a.into, state, &items, restored_at_ms, |sha| Ok(archive.read_blob(sha)?))?;
    let mut out = commands::stdout();
    if a.json {
        let j = json!({
            "session_key": state.session_key,
            "head": {"seq": state.head.seq, "hash": chain::to_hex(&state.head.hash)},
            "into": a.into.display().to_string(),
            "files": written.files,
            "blobs_missing": written.blobs_missing,
            "redacted": state.redacted,
            "runtime": runtime.as_ref().map(|r| match r { Runtime::Jsonl { version } | Runtime::SqliteImport { version } => version.clone() }),
            "next_step": runtime.as_ref().and_then(Runtime::next_step),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        writeln!(
            out,
            "{} {} at seq {} into {}",
            ui.good("restored"),
            state.session_key,
            state.head.seq,
            a.into.display()
        )?;
        for f in &written.files {
            writeln!(out, "  {f}")?;
        }
        if !written.blobs_missing.is_empty() {
            writeln!(
                out,
                "{} {} blob(s) the state references are not in the source; pull without --no-blobs, or \
                 fetch them from the Worker (GET /v1/blobs/SHA256)",
                ui.bad("missing"),
                written.blobs_missing.len()
            )?;
        }
        match runtime.as_ref().map(|r| (r, r.next_step())) {
            Some((_, Some(step))) => writeln!(
                out,
                "OpenClaw 2026.9.x imports these files once: OPENCLAW_STATE_DIR={} {step}",
                a.into.display()
            )?,
            Some((_, None)) => {}
            None => writeln!(
                out,
                "No openclaw on PATH: 2026.2.x reads these files as they are; 2026.9.x needs `{}` once first",
                runtime::IMPORT_STEP
            )?,
        }
        writeln!(
            out,
            "The runtime can now start from these files; it may record the resume with a `restored` lifecycle \
             event at head seq {}.",
            state.head.seq
        )?;
    }
    out.flush()?;
    Ok(Verdict::Clean)
}

/// The runtime `--runtime` names (`auto`: the `openclaw` package on PATH, None without one).
pub fn runtime_of(a: &RestoreArgs) -> anyhow::Result<Option<Runtime>> {
    Ok(match a.runtime.as_str() {
        "auto" => match runtime::installed_version(&std::env::var_os("PATH").unwrap_or_default())? {
            Some(v) => Some(Runtime::from_version(&v)?),
            None => None,
        },
        v => Some(Runtime::from_version(v)?),
    })
}

fn is_non_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(usage(format!("{} is a file, not a directory", dir.display())).into())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// What a restore wrote (paths relative to DIR).
pub struct Written {
    pub files: Vec<String>,
    pub blobs_missing: Vec<String>,
}

/// Writes the restore of `state` (with its transcript's events, `items`) under `dir`, fetching
/// blobs through `blob`; `restored_at_ms` stamps the runtime's index (see `openclaw::render`).
pub fn write_restore(
    dir: &Path,
    state: &SessionState,
    items: &[Item],
    restored_at_ms: u64,
    blob: impl Fn(&Hash) -> anyhow::Result<Option<Vec<u8>>>,
) -> anyhow::Result<Written> {
    let mut files = Vec::new();
    let rendered = openclaw::render(state, items, restored_at_ms);
    for f in &rendered.files {
        write_atomic(&object_path(dir, &f.path)?, f.content.as_bytes())?;
        files.push(f.path.clone());
    }
    let bundle = serde_json::to_string_pretty(&restore::bundle_json(state, items))? + "\n";
    write_atomic(&dir.join("moltlog/restore.json"), bundle.as_bytes())?;
    files.push("moltlog/restore.json".into());
    let mut blobs_missing = Vec::new();
    for (sha, b) in state_blobs(state, items) {
        let rel = format!("moltlog/{}", crate::layout::blob_key(&sha));
        match blob(&sha)? {
            Some(bytes) if chain::sha256(&bytes) == sha && bytes.len() as u64 == b.len => {
                write_atomic(&object_path(dir, &rel)?, &bytes)?;
                files.push(rel);
            }
            _ => blobs_missing.push(chain::to_hex(&sha)),
        }
    }
    Ok(Written { files, blobs_missing })
}

/// Every blob the restored session references (its transcript's events, open tool calls, the
/// compaction summary, the last screenshot, replies waiting for delivery): what a resumed agent
/// may need to read.
pub fn state_blobs(s: &SessionState, items: &[Item]) -> BTreeMap<Hash, BlobRef> {
    let mut out = BTreeMap::new();
    let mut add = |b: &BlobRef| {
        out.entry(b.sha256).or_insert_with(|| b.clone());
    };
    for item in items {
        item.body.blob_refs().into_iter().for_each(&mut add);
    }
    let payloads = s
        .open_tool_calls
        .values()
        .map(|c| &c.input)
        .chain(s.compaction.as_ref().map(|c| &c.summary))
        .chain(s.browser.last_screenshot.as_ref().map(|shot| &shot.image))
        .chain(s.outbox.values().map(|o| &o.text));
    for p in payloads {
        if let Payload::Blob(b) = p {
            add(b);
        }
    }
    out
}
