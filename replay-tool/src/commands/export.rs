//! `export`: the whole verified log as JSON lines or one JSON document, or the transcript in
//! the agent runtime's session JSONL (core's OpenClaw rendering, as the restore API serves it).
//!
//! Streams: events are written as they are verified. With `--out`, the file appears only once
//! the whole export verified (written beside, then renamed).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use moltlog_core::chain;
use moltlog_core::dto;
use moltlog_core::record::CheckedRecord;
use moltlog_core::restore::openclaw;
use serde_json::json;

use crate::cli::{ExportArgs, ExportFormat, Verdict};
use crate::commands::state::{state_at, stop_of};
use crate::layout::temp_path;
use crate::transcript::Transcript;
use crate::ui::Ui;
use crate::walk;
use crate::{commands, source};

pub fn run(a: &ExportArgs, ui: &Ui) -> anyhow::Result<Verdict> {
    let stop = stop_of(a.at.as_deref())?;
    let spec = a.source.spec()?;
    let archive = source::open_archive(&spec, a.source.session(), ui, false)?;
    let (mut out, tmp): (Box<dyn Write>, _) = match &a.out {
        Some(path) => {
            let tmp = temp_path(path);
            let f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            (Box::new(BufWriter::with_capacity(256 << 10, f)), Some(tmp))
        }
        None => (Box::new(commands::stdout()), None),
    };
    let verdict = match a.format {
        ExportFormat::Openclaw => {
            let mut transcript = Transcript::default();
            let replayed = state_at(&archive, stop, ui, &mut |c, redacted| {
                transcript.visit(c, redacted);
                Ok(())
            })?;
            match replayed {
                Ok(state) => {
                    let rendered =
                        openclaw::render(&state, &transcript.items(&state)?, crate::layout::now_ms());
                    let file = rendered
                        .files
                        .iter()
                        .find(|f| f.path.ends_with(".jsonl"))
                        .context("the OpenClaw rendering has no transcript file")?;
                    out.write_all(file.content.as_bytes())?;
                    Verdict::Clean
                }
                Err(v) => v,
            }
        }
        ExportFormat::Jsonl | ExportFormat::Json => {
            let json_doc = a.format == ExportFormat::Json;
            if json_doc {
                write!(out, "{{\"session_key\":{},\"events\":[", json!(archive.session_key()))?;
            }
            let mut first = true;
            let mut visit = |c: &CheckedRecord, redacted: bool| -> std::io::Result<()> {
                let v = dto::event_json(&c.header, &c.hash, &c.body, redacted);
                if json_doc {
                    out.write_all(if first { b"\n" } else { b",\n" })?;
                }
                first = false;
                out.write_all(v.to_line().as_bytes())?; // stored payloads as they are, one line
                if !json_doc {
                    out.write_all(b"\n")?;
                }
                Ok(())
            };
            let bar = ui.bar(archive.last_named_seq(), "records", "exporting");
            let result = walk::walk(&archive, stop, &bar, &mut visit);
            bar.finish_and_clear();
            match commands::walked(result, ui, &archive.describe())? {
                Ok(w) => {
                    if json_doc {
                        let h = w.verifier.head();
                        let head = json!({"seq": h.seq, "hash": chain::to_hex(&h.hash)});
                        write!(out, "\n],\"head\":{head}}}\n")?;
                    }
                    Verdict::Clean
                }
                Err(v) => v,
            }
        }
    };
    out.flush()?;
    drop(out);
    if let (Some(tmp), Some(path)) = (tmp, &a.out) {
        finish_file(&tmp, path, verdict)?;
    }
    Ok(verdict)
}

/// Puts a verified export in place, or removes an unverified one.
fn finish_file(tmp: &Path, path: &Path, verdict: Verdict) -> anyhow::Result<()> {
    if verdict == Verdict::Clean {
        fs::rename(tmp, path).with_context(|| format!("writing {}", path.display()))
    } else {
        let _ = fs::remove_file(tmp);
        Ok(())
    }
}
