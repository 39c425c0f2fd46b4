//! `restore --agent ID --into DIR`: every session of an agent (`agent:<id>:main`,
//! `agent:<id>:telegram:…`) into one runtime state dir, with one `sessions.json` holding every
//! session's entry. Sessions come from the Worker's session list (`GET /v1/sessions?prefix=`,
//! paged) or from R2's key listing (`--s3-endpoint`, `--state-dir`).
//!
//! Order, so that nothing is written unless all of it can be:
//! 1. every session is read and verified (the same audit as `restore`); one failure writes nothing;
//! 2. the target sessions dir is checked: a lock file (`sessions.json.lock`, `*.jsonl.lock`: the
//!    runtime is running there) or a transcript newer than the log (`transcript_newer`) refuses,
//!    exit 2;
//! 3. each transcript, `moltlog/sessions/<key>/restore.json` and the blobs are written (temp name,
//!    then rename), and the merged `sessions.json` last.
//!
//! Re-running converges: the files are rendered from the log alone, so with the same
//! `--restored-at` a re-run writes the same bytes, and a transcript left by an interrupted run is
//! either the same bytes or an older rendering (never "newer").

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use moltlog_core::chain;
use moltlog_core::restore::{self, openclaw};
use serde_json::{Map, Value, json};

use crate::audit;
use crate::cli::{RestoreArgs, Verdict, usage};
use crate::layout::{object_path, write_atomic};
use crate::runtime::Runtime;
use crate::source::{self, SourceSpec, http};
use crate::transcript::Transcript;
use crate::ui::Ui;

/// One verified session, rendered.
struct Ready {
    key: String,
    head_seq: u64,
    last_ts_ms: u64,
    rendered: openclaw::Rendered,
    bundle: String,
    blobs: Vec<(String, Option<Vec<u8>>)>,
}

/// The sessions of `agent` a source holds, in key order.
fn list_sessions(spec: &SourceSpec, agent: &str, ui: &Ui) -> anyhow::Result<Vec<String>> {
    let prefix = format!("agent:{agent}:");
    let mut keys = match spec {
        SourceSpec::Http { url, token } => http::Api::new(url, token.as_deref()).session_keys(&prefix)?,
        SourceSpec::S3(_) | SourceSpec::StateDir { .. } => source::open(spec, None, ui, false)?
            .source
            .sessions()?
            .into_iter()
            .filter(|k| k.starts_with(&prefix))
            .collect(),
        SourceSpec::Bundle(_) => {
            return Err(usage(
                "--agent needs a source that lists sessions: --url, --s3-endpoint or --state-dir (a bundle holds one \
                 session; restore it without --agent)",
            )
            .into());
        }
    };
    keys.sort();
    keys.dedup();
    Ok(keys)
}

fn valid_agent_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

pub fn run(a: &RestoreArgs, agent: &str, ui: &Ui) -> anyhow::Result<Verdict> {
    if !valid_agent_id(agent) {
        return Err(usage(format!("--agent {agent:?}: an agent id is [A-Za-z0-9._@-]+")).into());
    }
    if a.source.session().is_some() {
        return Err(
            usage("give either --session KEY (one session) or --agent ID (all of its sessions)").into()
        );
    }
    let runtime = super::restore::runtime_of(a)?;
    let spec = a.source.spec()?;
    let keys = list_sessions(&spec, agent, ui)?;
    if keys.is_empty() {
        return Err(usage(format!(
            "{} holds no sessions of agent {agent} (keys agent:{agent}:…)",
            spec.location()
        ))
        .into());
    }
    let restored_at_ms = a.restored_at.unwrap_or_else(crate::layout::now_ms);

    // 1. Verify and render every session before anything is written.
    let mut ready = Vec::new();
    for key in &keys {
        let archive = source::open_archive(&spec, Some(key), ui, true)?;
        let bar = ui.bar(archive.last_named_seq(), "records", &format!("verifying {key}"));
        let mut transcript = Transcript::default();
        let keep = &mut |c: &moltlog_core::record::CheckedRecord, redacted: bool| {
            transcript.visit(c, redacted);
            Ok(())
        };
        let audit = audit::audit_with(&archive, true, &bar, keep)
            .with_context(|| format!("verifying {key} before the restore"))?;
        bar.finish_and_clear();
        if let Some(f) = &audit.failure {
            crate::commands::print_failure(ui, f, &archive.describe());
            eprintln!("Nothing was written to {}: session {key} does not verify.", a.into.display());
            return Ok(Verdict::Failed);
        }
        let state = audit.state.as_ref().expect("a clean audit has the state");
        let items = transcript.items(state)?;
        let rendered = openclaw::render(state, &items, restored_at_ms);
        let bundle = serde_json::to_string_pretty(&restore::bundle_json(state, &items))? + "\n";
        let mut blobs = Vec::new();
        for (sha, b) in super::restore::state_blobs(state, &items) {
            let bytes =
                archive.read_blob(&sha)?.filter(|x| chain::sha256(x) == sha && x.len() as u64 == b.len);
            blobs.push((chain::to_hex(&sha), bytes));
        }
        ready.push(Ready {
            key: key.clone(),
            head_seq: state.head.seq,
            last_ts_ms: state.last_ts_ms,
            rendered,
            bundle,
            blobs,
        });
    }

    // 2. Check the target: the runtime must not be running there, nor hold newer transcripts.
    let sessions_rel = format!("agents/{}/sessions", openclaw::agent_id(&keys[0]));
    let sessions_dir = object_path(&a.into, &sessions_rel)?;
    let names = file_names(&sessions_dir)?;
    let locks = lock_files(&names);
    if !locks.is_empty() {
        return Err(usage(format!(
            "{} holds lock files ({}): the runtime is running there; stop it first. Nothing was written",
            sessions_dir.display(),
            locks.join(", ")
        ))
        .into());
    }
    let mut renders = Vec::new();
    for r in &ready {
        let transcript = r.rendered.files.iter().find(|f| f.path.ends_with(".jsonl")).expect("a transcript");
        let index = r.rendered.files.iter().find(|f| f.path.ends_with("/sessions.json")).expect("an index");
        let path = object_path(&a.into, &transcript.path)?;
        match fs::read_to_string(&path) {
            Ok(existing) => {
                if let Some(why) = transcript_newer(&existing, &transcript.content, r.last_ts_ms) {
                    return Err(usage(format!(
                        "{} is newer than the log of {} (head seq {}): {why}. The runtime went on after the log \
                         ends; nothing was written (move the file away to restore over it)",
                        path.display(),
                        r.key,
                        r.head_seq
                    ))
                    .into());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        renders.push((transcript, index));
    }
    let index_path = object_path(&a.into, &format!("{sessions_rel}/sessions.json"))?;
    let existing_index = match fs::read_to_string(&index_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", index_path.display())),
    };
    let merged = merge_index(existing_index.as_deref(), renders.iter().map(|(_, i)| i.content.as_str()))
        .map_err(|e| usage(format!("{}: {e}; nothing was written", index_path.display())))?;

    // 3. Write: transcripts, bundles and blobs, then the index last.
    let mut files = Vec::new();
    let mut blobs_missing = Vec::new();
    for (r, (transcript, _)) in ready.iter().zip(&renders) {
        write_atomic(&object_path(&a.into, &transcript.path)?, transcript.content.as_bytes())?;
        files.push(transcript.path.clone());
        let rel = format!("moltlog/sessions/{}/restore.json", r.key);
        write_atomic(&object_path(&a.into, &rel)?, r.bundle.as_bytes())?;
        files.push(rel);
        for (hex, bytes) in &r.blobs {
            match bytes {
                Some(b) => {
                    let rel = format!("moltlog/blobs/sha256/{hex}");
                    write_atomic(&object_path(&a.into, &rel)?, b)?;
                    files.push(rel);
                }
                None => blobs_missing.push(hex.clone()),
            }
        }
    }
    write_atomic(&index_path, merged.as_bytes())?;
    files.push(format!("{sessions_rel}/sessions.json"));
    files.sort();
    files.dedup();

    let mut out = super::stdout();
    if a.json {
        let j = json!({
            "agent": agent,
            "into": a.into.display().to_string(),
            "sessions": ready.iter().map(|r| json!({
                "session_key": r.key, "session_id": r.rendered.session_id, "head_seq": r.head_seq,
            })).collect::<Vec<_>>(),
            "files": files,
            "blobs_missing": blobs_missing,
            "runtime": runtime.as_ref().map(|r| match r { Runtime::Jsonl { version } | Runtime::SqliteImport { version } => version.clone() }),
            "next_step": runtime.as_ref().and_then(Runtime::next_step),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        for r in &ready {
            writeln!(out, "{} {} at seq {}", ui.good("restored"), r.key, r.head_seq)?;
        }
        writeln!(out, "into {} ({} files, one {sessions_rel}/sessions.json)", a.into.display(), files.len())?;
        if !blobs_missing.is_empty() {
            writeln!(
                out,
                "{} {} blob(s) referenced are not in the source",
                ui.bad("missing"),
                blobs_missing.len()
            )?;
        }
        match runtime.as_ref().map(Runtime::next_step) {
            Some(Some(step)) => writeln!(
                out,
                "OpenClaw 2026.9.x imports these files once: OPENCLAW_STATE_DIR={} {step}",
                a.into.display()
            )?,
            Some(None) => {}
            None => writeln!(
                out,
                "No openclaw on PATH: 2026.2.x reads these files as they are; 2026.9.x needs `{}` once first",
                crate::runtime::IMPORT_STEP
            )?,
        }
    }
    out.flush()?;
    Ok(Verdict::Clean)
}

/// The names of the files in `dir` (none when it does not exist).
fn file_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut names = Vec::new();
            for e in entries {
                names.push(e?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// The runtime's lock files among `names` (a sessions dir's listing): `sessions.json.lock` and
/// `<transcript>.jsonl.lock`. Any of them means the runtime is running there.
pub fn lock_files(names: &[String]) -> Vec<String> {
    names.iter().filter(|n| *n == "sessions.json.lock" || n.ends_with(".jsonl.lock")).cloned().collect()
}

/// Merges the index entries of the restored sessions (`rendered`: each a whole `sessions.json` of
/// one session) into the existing `sessions.json` (if any): restored keys take the log's entry,
/// other keys keep theirs. Keys are sorted, so the result depends only on the inputs.
pub fn merge_index<'a>(
    existing: Option<&str>,
    rendered: impl IntoIterator<Item = &'a str>,
) -> Result<String, String> {
    let mut all: Map<String, Value> = match existing.map(serde_json::from_str::<Value>) {
        None => Map::new(),
        Some(Ok(Value::Object(m))) => m,
        Some(Ok(_)) => return Err("not a JSON object of session entries".into()),
        Some(Err(e)) => return Err(format!("not JSON ({e})")),
    };
    for r in rendered {
        match serde_json::from_str::<Value>(r) {
            Ok(Value::Object(m)) => all.extend(m),
            _ => return Err("a rendered index is not a JSON object".into()),
        }
    }
    all.sort_keys();
    Ok(serde_json::to_string_pretty(&Value::Object(all)).expect("a JSON value serializes") + "\n")
}

/// Whether a transcript found in the target (`existing`) is newer than what the log renders
/// (`rendered`, whose last event is at `log_last_ts_ms`), and why. The rule:
/// - the same bytes are not newer (a re-run);
/// - more entries than the log renders are newer (the runtime appended after the restore);
/// - an entry stamped later than the log's last event is newer (the runtime wrote it after the
///   log ends), looking at each line's `timestamp` (ISO 8601 or ms) and its message's `timestamp`;
/// - a line that is not a JSON object is treated as newer: it is not a file this tool wrote, so it
///   is not overwritten.
///
/// Anything else (fewer or older entries: an earlier restore, or an interrupted one) is replaced.
pub fn transcript_newer(existing: &str, rendered: &str, log_last_ts_ms: u64) -> Option<String> {
    if existing == rendered {
        return None;
    }
    let lines = |t: &str| t.lines().filter(|l| !l.trim().is_empty()).count();
    let (have, want) = (lines(existing), lines(rendered));
    if have > want {
        return Some(format!("it has {have} lines, the log renders {want}"));
    }
    for (n, line) in existing.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(line) else {
            return Some(format!("line {} is not a JSON object", n + 1));
        };
        let stamps = [entry.get("timestamp"), entry.get("message").and_then(|m| m.get("timestamp"))];
        for ts in stamps.into_iter().flatten().filter_map(ts_ms) {
            if ts > log_last_ts_ms {
                return Some(format!(
                    "line {} is stamped {}, after the log's last event at {}",
                    n + 1,
                    openclaw::iso8601(ts),
                    openclaw::iso8601(log_last_ts_ms)
                ));
            }
        }
    }
    None
}

fn ts_ms(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => crate::time::parse_time(s).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lock_files_are_the_index_lock_and_transcript_locks() {
        assert!(lock_files(&names(&["sessions.json", "a.jsonl", ".a.jsonl.tmp-1"])).is_empty());
        assert_eq!(
            lock_files(&names(&["a.jsonl", "a.jsonl.lock", "sessions.json", "sessions.json.lock"])),
            names(&["a.jsonl.lock", "sessions.json.lock"])
        );
        assert!(lock_files(&names(&["notes.lock"])).is_empty());
    }

    #[test]
    fn merge_keeps_other_keys_takes_the_logs_entries_and_sorts() {
        let a = r#"{"agent:main:main": {"sessionId": "a", "updatedAt": 2}}"#;
        let b = r#"{"agent:main:telegram:chat:1": {"sessionId": "b", "updatedAt": 2}}"#;
        let existing = r#"{"agent:main:zz": {"sessionId": "z"}, "agent:main:main": {"sessionId": "old"}}"#;
        let m = merge_index(Some(existing), [b, a]).unwrap();
        let v: Value = serde_json::from_str(&m).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["agent:main:main", "agent:main:telegram:chat:1", "agent:main:zz"]);
        assert_eq!(v["agent:main:main"]["sessionId"], "a");
        assert_eq!(v["agent:main:zz"]["sessionId"], "z");
        // Merging again into the result is the same bytes (a re-run), in any order.
        assert_eq!(merge_index(Some(&m), [a, b]).unwrap(), m);
        assert_eq!(merge_index(None, [a, b]).unwrap(), merge_index(None, [b, a]).unwrap());
        assert!(merge_index(Some("[1]"), [a]).is_err());
        assert!(merge_index(Some("{"), [a]).is_err());
    }

    const T0: u64 = 1_700_000_000_000;

    fn line(id: u32, ts_ms: u64) -> String {
        json!({"type": "message", "id": id.to_string(), "timestamp": openclaw::iso8601(ts_ms),
               "message": {"role": "user", "timestamp": ts_ms}})
        .to_string()
    }

    #[test]
    fn a_transcript_is_newer_with_more_lines_or_a_later_stamp() {
        let rendered = format!("{}\n{}\n", line(1, T0), line(2, T0 + 10));
        assert_eq!(transcript_newer(&rendered, &rendered, T0 + 10), None);
        // An earlier or interrupted restore: fewer lines, older stamps.
        assert_eq!(transcript_newer(&format!("{}\n", line(1, T0)), &rendered, T0 + 10), None);
        // The runtime appended a turn.
        let more = format!("{rendered}{}\n", line(3, T0 + 20));
        assert!(transcript_newer(&more, &rendered, T0 + 10).unwrap().contains("3 lines"));
        // Same count, but an entry the log never had, stamped after its end.
        let later = format!("{}\n{}\n", line(1, T0), line(9, T0 + 5_000));
        assert!(transcript_newer(&later, &rendered, T0 + 10).unwrap().contains("after the log's last event"));
        let ms_only =
            format!("{}\n{}\n", line(1, T0), json!({"type": "x", "message": {"timestamp": T0 + 11}}));
        assert!(transcript_newer(&ms_only, &rendered, T0 + 10).is_some());
        assert!(transcript_newer("not json\n", &rendered, T0 + 10).unwrap().contains("not a JSON object"));
    }
}
