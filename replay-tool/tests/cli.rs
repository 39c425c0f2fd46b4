//! The commands as a user runs them: help, exit statuses, filters, points in time, exports,
//! restores, diffs, bundle files and resumable pulls, on synthetic bundles.

mod support;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use moltlog_replay::synth::{Built, Synth};
use serde_json::Value;
use support::*;

/// A small clean session (no redactions): 1000 events in segments of 250.
fn small() -> &'static (tempfile::TempDir, Built) {
    static DIR: OnceLock<(tempfile::TempDir, Built)> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let b = bundle(
            d.path(),
            KEY,
            &Synth { events: 1000, batch: 250, snapshot_every: 250, ..Synth::default() },
        );
        (d, b)
    })
}

fn dir() -> &'static Path {
    small().0.path()
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in ["pull", "verify", "log", "state", "export", "restore", "diff"] {
        let r = replay(&[cmd, "--help"]);
        assert_eq!(r.code, 0, "{cmd}: {}", r.stderr);
        assert!(r.stdout.contains("Example"), "{cmd} --help has no examples:\n{}", r.stdout);
    }
    let top = replay(&["--help"]);
    assert!(top.stdout.contains("--state-dir DIR") && top.stdout.contains("--url URL"), "{}", top.stdout);
}

#[test]
fn usage_and_io_errors_exit_2_and_say_what_to_do() {
    let r = replay(&["verify"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no source"), "{}", r.stderr);
    let r = replay(&["verify", "/nonexistent/bundle"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    let r = replay(&["log", p(dir()), "--kind", "chat"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("chat_message"), "names the valid kinds: {}", r.stderr);
    let r = replay(&["verify", "--state-dir", "/tmp", "--session", "k"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--persist-to"), "{}", r.stderr);
    let r = replay(&["verify", "--url", "http://127.0.0.1:9", "--session", "k"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);
    let r = replay(&["state", p(dir()), "--at", "99999"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("past its end"), "{}", r.stderr);
}

#[test]
fn log_filters_by_kind_actor_seq_and_time() {
    let r = replay(&["log", p(dir()), "--json", "--kind", "tool_call", "--from", "100", "--to", "300"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|e| e["kind"] == "tool_call"));
    assert!(lines.iter().all(|e| (100..=300).contains(&e["seq"].as_u64().unwrap())));
    // Batches are a second apart from 2026-01-01T00:00:00Z: the second one holds seqs 251..=500.
    let r = replay(&[
        "log",
        p(dir()),
        "--json",
        "--since",
        "2026-01-01T00:00:01Z",
        "--until",
        "2026-01-01T00:00:01.999Z",
    ]);
    let seqs: Vec<u64> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!((seqs.first(), seqs.last(), seqs.len()), (Some(&251), Some(&500), 250));
    let r = replay(&["log", p(dir()), "--actor", "operator"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    let human = replay(&["log", p(dir()), "--to", "3"]);
    let first = human.stdout.lines().next().unwrap();
    assert!(first.starts_with("2026-01-01T00:00:00.000Z") && first.contains("chat_message"), "{first}");
    assert_eq!(human.stdout.lines().count(), 3);
}

#[test]
fn state_at_a_seq_and_at_a_time() {
    let at = replay(&["state", p(dir()), "--at", "250"]);
    assert_eq!(at.code, 0, "{}", at.stderr);
    let s: Value = serde_json::from_str(&at.stdout).unwrap();
    assert_eq!(s["head"]["seq"], 250);
    let by_time = replay(&["state", p(dir()), "--at", "2026-01-01T00:00:00.500Z"]);
    assert_eq!(serde_json::from_str::<Value>(&by_time.stdout).unwrap(), s, "the first batch is all at :00");
    let end = replay(&["state", p(dir())]);
    let e: Value = serde_json::from_str(&end.stdout).unwrap();
    assert_eq!(e["head"]["seq"], 1000);
    assert!(e["counters"]["compactions"].as_u64().unwrap() >= 3, "the synthetic agent compacts");
}

#[test]
fn exports_as_jsonl_json_and_openclaw() {
    let jsonl = replay(&["export", p(dir()), "--format", "jsonl"]);
    assert_eq!(jsonl.code, 0, "{}", jsonl.stderr);
    assert_eq!(jsonl.stdout.lines().count(), 1000);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("all.json");
    let r = replay(&["export", p(dir()), "--format", "json", "--out", p(&file)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["events"].as_array().unwrap().len(), 1000);
    assert_eq!(doc["head"]["seq"], 1000);
    let first_line: Value = serde_json::from_str(jsonl.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(doc["events"][0], first_line);
    let oc = replay(&["export", p(dir()), "--format", "openclaw", "--at", "100"]);
    let lines: Vec<Value> = oc.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["type"], "session");
    assert!(lines[1..].iter().all(|l| l["type"] == "message" || l["type"] == "compaction"));
}

#[test]
fn restore_writes_the_runtime_files_and_refuses_a_non_empty_dir() {
    let into = tempfile::tempdir().unwrap();
    let r = replay(&["restore", p(dir()), "--into", p(into.path()), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    let files: Vec<&str> = j["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(files.contains(&"agents/main/sessions/sessions.json"), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".jsonl")));
    let bundle: Value =
        serde_json::from_slice(&fs::read(into.path().join("moltlog/restore.json")).unwrap()).unwrap();
    assert_eq!(bundle["head"]["seq"], 1000);
    let index: Value =
        serde_json::from_slice(&fs::read(into.path().join("agents/main/sessions/sessions.json")).unwrap())
            .unwrap();
    assert!(index[KEY]["sessionId"].is_string());

    let again = replay(&["restore", p(dir()), "--into", p(into.path())]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(replay(&["restore", p(dir()), "--into", p(into.path()), "--force"]).code, 0);
}

#[test]
fn a_tampered_source_is_never_restored() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(dir(), d.path());
    let seg = segment_holding(d.path(), KEY, 600);
    let mut bytes = fs::read(&seg).unwrap();
    let f = frame(&bytes, 600);
    bytes[f.body.start + 3] ^= 1;
    fs::write(&seg, bytes).unwrap();
    let into = tempfile::tempdir().unwrap();
    let r = replay(&["restore", p(d.path()), "--into", p(&into.path().join("new"))]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("at seq 600"), "{}", r.stderr);
    assert!(!into.path().join("new/agents").exists(), "nothing was written");
    // Reading commands stop at the damage too.
    assert_eq!(replay(&["state", p(d.path())]).code, 1);
    assert_eq!(replay(&["export", p(d.path()), "--format", "jsonl"]).code, 1);
}

#[test]
fn diff_finds_where_two_points_and_two_copies_diverge() {
    let r = replay(&["diff", &format!("{}@100", p(dir())), &format!("{}@250", p(dir())), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["identical_through"], 100);
    assert_eq!(j["first_difference"]["seq"], 101);
    assert!(j["first_difference"]["a"].is_null());
    assert!(j["state_differences"].as_array().unwrap().iter().any(|d| d["path"] == "head.seq"));

    // Another session with the same content is the same events, under another chain.
    let other = tempfile::tempdir().unwrap();
    bundle(
        other.path(),
        "agent:main:copy",
        &Synth { events: 1000, batch: 250, snapshot_every: 250, ..Synth::default() },
    );
    let r = replay(&["diff", p(dir()), p(other.path()), "--json"]);
    let j = r.json();
    assert_eq!(j["same_session"], false);
    assert_eq!(j["identical_through"], 1000, "{j:#}");
    assert!(j["first_difference"].is_null());

    // A copy whose agent said something else from seq 1 on.
    let fork = tempfile::tempdir().unwrap();
    bundle(fork.path(), KEY, &Synth { events: 1000, batch: 250, seed: 9, ..Synth::default() });
    let r = replay(&["diff", p(dir()), p(fork.path())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("diverge at seq 1:"), "{}", r.stdout);
}

#[test]
fn a_bundle_file_verifies_and_a_cut_one_is_corrupt() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("session.moltlog");
    export_file(dir(), KEY, &file);
    let r = replay(&["verify", p(&file), "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["head"]["seq"], 1000);
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..bytes.len() - 1000]).unwrap();
    let r = replay(&["verify", p(&file)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not a complete moltlog export bundle"), "{}", r.stderr);
}

#[test]
fn pulls_resume_and_mirror() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("session.moltlog");
    export_file(dir(), KEY, &file);
    let target = out.path().join("pulled");
    let r = replay(&["pull", p(&file), "--out", p(&target)]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("segments   4 (4 new)"), "{}", r.stdout);
    let again = replay(&["pull", p(&file), "--out", p(&target)]);
    assert!(again.stdout.contains("segments   4 (0 new)"), "a second pull fetches nothing: {}", again.stdout);
    assert_eq!(replay(&["verify", p(&target)]).code, 0);

    // An interrupted pull: a file lost mid-way is fetched again, nothing else.
    let seg = segment_files(&target, KEY)[2].clone();
    fs::remove_file(&seg).unwrap();
    let r = replay(&["pull", p(&file), "--out", p(&target)]);
    assert!(r.stdout.contains("segments   4 (1 new)"), "{}", r.stdout);

    // A mirror drops what its source dropped: a segment rewritten as a new generation (as the
    // Worker does after a redaction) replaces the old copy here too.
    let source_dir = out.path().join("source");
    copy_dir(dir(), &source_dir);
    let mirror = out.path().join("mirror");
    assert_eq!(replay(&["pull", p(&source_dir), "--out", p(&mirror)]).code, 0);
    let old = segment_files(&source_dir, KEY)[1].clone();
    let rewritten = old.with_file_name(old.file_name().unwrap().to_str().unwrap().replace(".seg", ".g1.seg"));
    fs::rename(&old, &rewritten).unwrap();
    let r = replay(&["pull", p(&source_dir), "--out", p(&mirror)]);
    assert!(r.stdout.contains("removed    1 object(s)"), "{}", r.stdout);
    let names: Vec<String> = segment_files(&mirror, KEY)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".g1.seg")), "{names:?}");
    assert!(!segments_dir(&mirror, KEY).join(old.file_name().unwrap()).exists());
    assert_eq!(replay(&["verify", p(&mirror)]).code, 0);

    // A directory that is not a bundle is not written into; nor is another kind of pull's.
    let busy = out.path().join("busy");
    fs::create_dir_all(&busy).unwrap();
    fs::write(busy.join("notes.txt"), "x").unwrap();
    assert_eq!(replay(&["pull", p(&file), "--out", p(&busy)]).code, 2);
    let r = replay(&["pull", "--url", "http://127.0.0.1:9", "--session", KEY, "--out", p(&target)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("holds a pull from bundle"), "{}", r.stderr);
}
