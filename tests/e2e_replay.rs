//! moltlog-replay against the real Worker on workerd: events appended over HTTP, archived and
//! snapshotted by the Durable Object, then pulled three ways (the Worker's export and events APIs,
//! R2 through wrangler's local S3 endpoint, and the wrangler state directory on disk). All three
//! copies verify clean and give the state the Worker serves; a restore matches the Worker's own
//! restore bundle; pulls resume; and copies of a pulled bundle, each tampered one way, fail at the
//! right seq.
//!
//! Redactions: a runtime may not redact (refused), an operator may; the pulled copy then reports
//! the redacted seq as redacted, not as tampering. Damaged redacted records are covered by
//! replay-tool/tests/tamper.rs, built through core's engine.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Options, Worker};
use moltlog_core::codec;
use moltlog_core::dto;
use moltlog_core::segment::{self, SegmentReader};
use moltlog_replay::audit::{self, Audit};
use moltlog_replay::commands::pull::{self, PullOptions, Pulled};
use moltlog_replay::commands::restore;
use moltlog_replay::source::s3::S3Config;
use moltlog_replay::source::{self, SourceSpec};
use moltlog_replay::transcript::Transcript;
use moltlog_replay::ui::Ui;
use serde_json::{Value, json};

const S3_KEY: (&str, &str) = ("e2e-access-key", "e2e-secret-key");

fn worker() -> Worker {
    Worker::start_with(Options {
        vars: vec![
            ("SEGMENT_MAX_EVENTS".into(), "100".into()),
            ("SNAPSHOT_EVERY_EVENTS".into(), "150".into()),
        ],
        s3_credentials: Some((S3_KEY.0.into(), S3_KEY.1.into())),
        ..Options::default()
    })
}

fn s3(w: &Worker) -> SourceSpec {
    SourceSpec::S3(S3Config {
        endpoint: w.s3_endpoint(),
        bucket: "moltlog-archive".into(),
        access_key_id: S3_KEY.0.into(),
        secret_access_key: S3_KEY.1.into(),
        region: "auto".into(),
    })
}

fn http(w: &Worker) -> SourceSpec {
    SourceSpec::Http { url: w.url(""), token: None }
}

fn state_dir(w: &Worker) -> SourceSpec {
    SourceSpec::StateDir { dir: w.state_dir.clone(), bucket: "moltlog-archive".into() }
}

/// One agent turn: an inbound message, a model call, a tool call and its result, a browser
/// navigation, the reply; with a compaction now and then.
fn turn(n: usize) -> Vec<Value> {
    let mut events = vec![
        json!({"kind": "chat_message", "role": "user", "author": "alice", "text": format!("please check build {n}"),
               "channel": {"type": "telegram", "chat_id": "42", "message_id": n.to_string()}}),
        json!({"kind": "model_call", "provider": "anthropic", "model": "claude-sonnet-4-5",
               "input_tokens": 1200 + n, "output_tokens": 80, "latency_ms": 900, "stop_reason": "tool_use"}),
        json!({"kind": "tool_call", "call_id": format!("c{n}"), "tool": "bash", "input": {"command": format!("make build-{n}")}}),
        json!({"kind": "tool_result", "call_id": format!("c{n}"), "output": {"stdout": format!("build {n} ok")}, "is_error": false, "duration_ms": 40}),
        json!({"kind": "browser_action", "action": "navigate", "target_id": "tab-1", "url": format!("https://ci.example.com/{n}")}),
        json!({"kind": "chat_message", "role": "assistant", "text": format!("build {n} passed")}),
    ];
    if n % 20 == 19 {
        events.push(
            json!({"kind": "lifecycle", "event": "compacted", "summary": format!("builds up to {n} passed"),
                           "first_kept_seq": 1 + 6 * n, "tokens_before": 9000}),
        );
    }
    events
}

/// Appends about `turns` turns in batches; returns the head seq.
fn append_turns(w: &Worker, key: &str, from: usize, turns: usize) -> u64 {
    let mut head = 0;
    for chunk in (from..from + turns).collect::<Vec<_>>().chunks(5) {
        let events: Vec<Value> = chunk.iter().flat_map(|&n| turn(n)).collect();
        let r = w.append(key, &json!({"events": events}));
        assert_eq!(r.status, 201, "{:?}", r.body);
        head = r.body["last_seq"].as_u64().unwrap();
    }
    head
}

/// Waits until the Worker archived every event and put a snapshot of the head in R2.
fn settle(w: &Worker, key: &str, head: u64) {
    w.wait_for(60, "archive and snapshot to reach the head", || {
        let info = w.get(&format!("/v1/sessions/{key}")).body;
        let archived = info["archive"]["archived_seq"].as_u64() == Some(head);
        let snapped =
            info["snapshots"]["r2"].as_array().is_some_and(|s| s.iter().any(|x| x.as_u64() == Some(head)));
        (archived && snapped).then_some(())
    });
}

fn quiet() -> Ui {
    Ui { color: false, err_color: false, progress: false }
}

fn audit_of(spec: &SourceSpec, session: Option<&str>) -> (Audit, moltlog_replay::archive::SessionArchive) {
    let ui = quiet();
    let archive = source::open_archive(spec, session, &ui, true).unwrap();
    let a = audit::audit(&archive, true, &ui.bar(0, "", "")).unwrap();
    (a, archive)
}

fn pull_into(spec: &SourceSpec, key: &str, out: &Path) -> Pulled {
    pull::pull(spec, Some(key), out, &PullOptions { blobs: true, export: true }, &quiet()).unwrap()
}

/// A fresh directory beside the Worker's state (removed with it).
fn scratch(w: &Worker, name: &str) -> PathBuf {
    let d = w.state_dir.with_file_name("replay").join(name);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn bundle(dir: &Path) -> SourceSpec {
    SourceSpec::Bundle(dir.to_path_buf())
}

#[test]
fn pulled_three_ways_verifies_clean_agrees_restores_resumes_and_catches_tampering() {
    let w = worker();
    let key = common::session_key("replay");

    let turns_head = append_turns(&w, &key, 0, 70);
    assert!(turns_head > 400, "{turns_head}");
    // Blobs, after the last compaction so that the restored transcript holds them: an
    // attachment, and a tool output large enough to be offloaded.
    let up = w.post_raw(
        &format!("/v1/sessions/{key}/blobs"),
        b"quarterly numbers",
        &[("content-type", "text/plain")],
    );
    assert_eq!(up.status, 201, "{:?}", up.body);
    let r = w.append(
        &key,
        &json!({"kind": "chat_message", "role": "user", "text": "see attached",
                                   "attachments": [{"name": "numbers.txt", "blob": up.body}]}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let big = "x".repeat(70_000);
    let r = w.append(
        &key,
        &json!({"events": [
        {"kind": "tool_call", "call_id": "big", "tool": "cat", "input": {"path": "/var/log/build.log"}},
        {"kind": "tool_result", "call_id": "big", "output": {"stdout": big}, "is_error": false}]}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let head = r.body["last_seq"].as_u64().unwrap();
    settle(&w, &key, head);

    let work = scratch(&w, "pulls");
    let dirs: Vec<(&str, SourceSpec, PathBuf)> = vec![
        ("http", http(&w), work.join("http")),
        ("s3", s3(&w), work.join("s3")),
        ("state-dir", state_dir(&w), work.join("state")),
    ];
    let served_state = w.get(&format!("/v1/sessions/{key}/state")).body;
    let mut states = Vec::new();
    for (name, spec, dir) in &dirs {
        let pulled = pull_into(spec, &key, dir);
        assert_eq!(pulled.head.as_ref().map(|h| h.seq).ok(), Some(head), "{name}: {:?}", pulled.head);
        let (a, _) = audit_of(&bundle(dir), None);
        assert!(a.ok(), "{name}: {:?}", a.failure);
        assert_eq!(a.head.seq, head, "{name}");
        assert!(!a.snapshots_checked.is_empty(), "{name}: snapshots were checked");
        assert!(a.blobs_checked >= 2 && a.blobs_missing.is_empty(), "{name}: blobs {a:?}");
        let state = a.state.unwrap();
        assert_eq!(
            dto::state_json(&state).to_value_lossy().unwrap(),
            served_state,
            "{name}: the state the Worker serves"
        );
        states.push(codec::encode(&state));
        // Read in place, without pulling, the source gives the same.
        let (direct, _) = audit_of(spec, Some(&key));
        assert!(direct.ok(), "{name} read directly: {:?}", direct.failure);
        assert_eq!(codec::encode(&direct.state.unwrap()), states[0], "{name} read directly");
    }
    assert!(states.windows(2).all(|s| s[0] == s[1]), "the three copies fold to identical states");

    restore_matches_the_workers_bundle(&w, &key, &dirs[0].2);
    pulls_resume(&w, &key, &dirs[0].2, &dirs[1].2, head);
    tampered_copies_fail_at_the_right_seq(&w, &dirs[0].2, &key);
    redaction_through_the_api(&w, &key);
}

fn restore_matches_the_workers_bundle(w: &Worker, key: &str, pulled: &Path) {
    let ui = quiet();
    let archive = source::open_archive(&bundle(pulled), None, &ui, true).unwrap();
    let mut transcript = Transcript::default();
    let keep = &mut |c: &moltlog_core::record::CheckedRecord, redacted: bool| {
        transcript.visit(c, redacted);
        Ok(())
    };
    let a = audit::audit_with(&archive, true, &ui.bar(0, "", ""), keep).unwrap();
    let state = a.state.as_ref().unwrap();
    let items = transcript.items(state).unwrap();
    let into = scratch(w, "restore");
    let at_ms = 1_900_000_000_000;
    let written =
        restore::write_restore(&into, state, &items, at_ms, |sha| Ok(archive.read_blob(sha)?)).unwrap();
    let served = w.get(&format!("/v1/sessions/{key}/restore?format=openclaw&restored_at_ms={at_ms}")).body;
    let files = served["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for f in files {
        let path = f["path"].as_str().unwrap();
        let ours = fs::read_to_string(into.join(path)).unwrap();
        assert_eq!(ours, f["content"].as_str().unwrap(), "{path} differs from the Worker's");
        assert!(written.files.iter().any(|x| x == path));
    }
    let bundle_json: Value =
        serde_json::from_slice(&fs::read(into.join("moltlog/restore.json")).unwrap()).unwrap();
    assert_eq!(bundle_json, w.get(&format!("/v1/sessions/{key}/restore")).body);
    assert!(written.blobs_missing.is_empty(), "{:?}", written.blobs_missing);
    assert!(
        written.files.iter().any(|f| f.starts_with("moltlog/blobs/sha256/")),
        "the attachment came along"
    );
}

fn pulls_resume(w: &Worker, key: &str, http_dir: &Path, s3_dir: &Path, head: u64) {
    // New events, not archived yet: the HTTP pull fetches only them, as pages after its head.
    let new_head = append_turns(w, key, 70, 5);
    let pulled = pull_into(&http(w), key, http_dir);
    assert!(pulled.tally.pages >= 1, "{:?}", pulled.tally);
    assert_eq!(pulled.tally.segments_new, pulled.tally.pages, "nothing already here was fetched again");
    let (a, _) = audit_of(&bundle(http_dir), None);
    assert!(a.ok(), "{:?}", a.failure);
    assert_eq!(a.head.seq, new_head);
    assert!(new_head > head);

    // Once archived, the S3 pull fetches the new segments only.
    settle(w, key, new_head);
    let before = segment_count(s3_dir, key);
    let pulled = pull_into(&s3(w), key, s3_dir);
    assert_eq!(pulled.tally.segments_new, segment_count(s3_dir, key) - before, "{:?}", pulled.tally);
    assert!(pulled.tally.segments_new >= 1);
    let (a, _) = audit_of(&bundle(s3_dir), None);
    assert!(a.ok() && a.head.seq == new_head, "{:?} at {}", a.failure, a.head.seq);
}

fn segment_count(dir: &Path, key: &str) -> u64 {
    fs::read_dir(dir.join("sessions").join(key).join("segments")).unwrap().count() as u64
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The segment files of a bundle, in seq order, with their ranges.
fn segments(dir: &Path, key: &str) -> Vec<(u64, u64, PathBuf)> {
    let mut v: Vec<(u64, u64, PathBuf)> = fs::read_dir(dir.join("sessions").join(key).join("segments"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let (f, l, _) = segment::parse_object_key(p.file_name()?.to_str()?)?;
            Some((f, l, p))
        })
        .collect();
    v.sort();
    v
}

/// The byte ranges of record `seq`'s header and body in a segment file.
fn frame_of(bytes: &[u8], seq: u64) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let base = bytes.as_ptr() as usize;
    let span = |s: &[u8]| (s.as_ptr() as usize - base)..(s.as_ptr() as usize - base + s.len());
    let mut r = SegmentReader::open(bytes).unwrap();
    while let Some(f) = r.next_frame() {
        let (s, f) = f.unwrap();
        if s == seq {
            return (span(f.header), span(f.body));
        }
    }
    panic!("seq {seq} is not in this segment")
}

fn expect_failure(dir: &Path, seq: u64, kind: &str) {
    let (a, _) = audit_of(&bundle(dir), None);
    let f = a.failure.unwrap_or_else(|| panic!("a tampered copy verified clean ({kind} at {seq})"));
    assert_eq!((f.seq, f.kind), (seq, kind), "{f:?}");
}

fn tampered_copies_fail_at_the_right_seq(w: &Worker, pulled: &Path, key: &str) {
    let work = scratch(w, "tampered");
    let copy = |name: &str| {
        let d = work.join(name);
        copy_dir(pulled, &d);
        d
    };
    let segs = segments(pulled, key);
    assert!(segs.len() >= 4, "{segs:?}");
    let (first, _, _) = &segs[2];
    let target = first + 10;

    // A flipped byte in a body.
    let d = copy("flip");
    let (_, _, path) = segments(&d, key).into_iter().find(|s| (s.0..=s.1).contains(&target)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let (_, body) = frame_of(&bytes, target);
    bytes[body.start + 2] ^= 0x04;
    fs::write(&path, bytes).unwrap();
    expect_failure(&d, target, "body_digest");

    // A flipped byte in a header (its timestamp).
    let d = copy("header");
    let (_, _, path) = segments(&d, key).into_iter().find(|s| (s.0..=s.1).contains(&target)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let (header, _) = frame_of(&bytes, target);
    bytes[header.start + 20] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    expect_failure(&d, target, "broken_link");

    // A segment dropped.
    let d = copy("drop");
    let (f, _, path) = segments(&d, key).remove(1);
    fs::remove_file(path).unwrap();
    expect_failure(&d, f, "missing_records");

    // Two events swapped, the file re-sealed.
    let d = copy("reorder");
    let (_, _, path) = segments(&d, key).into_iter().find(|s| (s.0..=s.1).contains(&target)).unwrap();
    let bytes = fs::read(&path).unwrap();
    let mut r = SegmentReader::open(&bytes).unwrap();
    let (prev, created) = (r.header.prev_hash, r.header.created_ms);
    let mut recs = Vec::new();
    while let Some(f) = r.next_frame() {
        let (s, f) = f.unwrap();
        recs.push(f.to_stored(s));
    }
    let i = recs.iter().position(|r| r.seq == target).unwrap();
    recs.swap(i, i + 1);
    fs::write(&path, segment::encode(key, prev, &recs, created)).unwrap();
    expect_failure(&d, target, "missing_records");

    // The tail cut off: the bundle no longer reaches the head it was pulled at.
    let d = copy("truncate");
    let (f, _, path) = segments(&d, key).pop().unwrap();
    fs::remove_file(path).unwrap();
    expect_failure(&d, f, "head");

    // A snapshot of another session swapped in.
    let other = common::session_key("other");
    let other_head = append_turns(w, &other, 0, 30);
    settle(w, &other, other_head);
    let other_dir = work.join("other");
    pull_into(&http(w), &other, &other_dir);
    let theirs: PathBuf = fs::read_dir(other_dir.join("sessions").join(&other).join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let d = copy("snapshot");
    let ours: PathBuf = fs::read_dir(d.join("sessions").join(key).join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let seq = segment::parse_snapshot_key(ours.file_name().unwrap().to_str().unwrap()).unwrap();
    fs::copy(theirs, &ours).unwrap();
    expect_failure(&d, seq, "snapshot_mismatch");
}

fn redaction_through_the_api(w: &Worker, key: &str) {
    let redaction = json!({"kind": "redaction", "target_seq": 1, "reason": "pii"});
    let r = w.append(key, &redaction);
    assert_eq!(r.status, 403, "a runtime may not redact: {:?}", r.body);
    // In dev mode a local tool may act as an operator (see README, "Dev mode").
    let r = w.post_raw(
        &format!("/v1/sessions/{key}/events"),
        redaction.to_string().as_bytes(),
        &[("content-type", "application/json"), ("x-moltlog-actor", "operator")],
    );
    assert_eq!(r.status, 201, "an operator may redact: {:?}", r.body);
    let head = r.body["last_seq"].as_u64().unwrap();
    let dir = scratch(w, "redacted");
    pull_into(&http(w), key, &dir);
    let (a, _) = audit_of(&bundle(&dir), None);
    assert!(a.ok(), "{:?}", a.failure);
    assert_eq!(a.head.seq, head);
    assert!(a.redacted.contains(&1), "the redacted body reads as redacted: {a:?}");
}
