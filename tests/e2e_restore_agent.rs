//! `moltlog-replay restore --agent main` against the real Worker on workerd: two sessions of agent
//! `main` (`agent:main:main`, `agent:main:telegram:chat:1`), found through the Worker's session
//! list, restored in one go into one state dir with one `sessions.json` holding both; a re-run
//! gives the same bytes; the runtime's lock file and a transcript newer than the log each refuse
//! with exit status 2 and write nothing.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::Worker;
use moltlog_core::restore::openclaw;
use moltlog_replay::cli::{self, RemoteArgs, RestoreArgs, SourceArgs, Verdict};
use moltlog_replay::commands::restore;
use moltlog_replay::ui::Ui;
use serde_json::{Value, json};

const KEYS: [&str; 2] = ["agent:main:main", "agent:main:telegram:chat:1"];
const RESTORED_AT: u64 = 1_780_000_000_000;

fn args(w: &Worker, into: &Path) -> RestoreArgs {
    RestoreArgs {
        source: SourceArgs {
            bundle: None,
            remote: RemoteArgs {
                url: Some(w.url("")),
                token: None,
                s3_endpoint: None,
                bucket: "moltlog-archive".into(),
                access_key_id: None,
                secret_access_key: None,
                region: "auto".into(),
                state_dir: None,
                session: None,
            },
        },
        into: into.to_path_buf(),
        agent: Some("main".into()),
        force: false,
        runtime: "2026.2.3".into(),
        restored_at: Some(RESTORED_AT),
        json: true,
    }
}

fn run(w: &Worker, into: &Path) -> (u8, String) {
    let ui = Ui { color: false, err_color: false, progress: false };
    let r = restore::run(&args(w, into), &ui);
    let code = cli::exit_code(&r);
    (code, r.err().map(|e| format!("{e:#}")).unwrap_or_default())
}

/// Every file under `dir`, relative path → bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((p.strip_prefix(root).unwrap().to_path_buf(), fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn every_session_of_an_agent_in_one_go() {
    let w = Worker::start();
    for (n, key) in KEYS.iter().enumerate() {
        let events = json!({"events": [
            {"kind": "chat_message", "role": "user", "text": format!("hello from session {n}")},
            {"kind": "model_call", "provider": "anthropic", "model": "claude-sonnet-4-5",
             "input_tokens": 100, "output_tokens": 20, "latency_ms": 300, "stop_reason": "end_turn"},
            {"kind": "chat_message", "role": "assistant", "text": format!("hi, session {n}")},
        ]});
        let r = w.append(key, &events);
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    w.wait_for(20, "the directory to list both sessions", || {
        let r = w.get("/v1/sessions?prefix=agent:main:");
        let listed = r.body["sessions"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|e| KEYS.contains(&e["key"].as_str().unwrap_or(""))).count());
        (listed == 2).then_some(())
    });

    let into = w.state_dir.with_extension("restored");
    let _ = fs::remove_dir_all(&into);
    assert_eq!(run(&w, &into), (0, String::new()));

    let sessions = into.join("agents/main/sessions");
    let index: Value = serde_json::from_slice(&fs::read(sessions.join("sessions.json")).unwrap()).unwrap();
    let keys: Vec<&String> = index.as_object().unwrap().keys().collect();
    assert_eq!(keys, KEYS, "one sessions.json holding both sessions");
    for (n, key) in KEYS.iter().enumerate() {
        let sid = openclaw::session_id(key);
        assert_eq!(index[key]["sessionId"], sid.as_str());
        assert_eq!(index[key]["updatedAt"], RESTORED_AT);
        let jsonl = fs::read_to_string(sessions.join(format!("{sid}.jsonl"))).unwrap();
        assert!(jsonl.starts_with(r#"{"type":"session","version":3"#), "{jsonl}");
        assert!(jsonl.contains(&format!("hello from session {n}")), "{jsonl}");
        assert!(jsonl.contains(&format!("hi, session {n}")), "{jsonl}");
        assert!(into.join(format!("moltlog/sessions/{key}/restore.json")).is_file());
    }

    // A re-run converges on the same bytes (same --restored-at).
    let first = snapshot(&into);
    assert_eq!(run(&w, &into), (0, String::new()));
    assert_eq!(snapshot(&into), first, "a re-run writes the same bytes");

    // An interrupted restore (a transcript and the index gone) converges on re-run.
    fs::remove_file(sessions.join("sessions.json")).unwrap();
    fs::remove_file(sessions.join(format!("{}.jsonl", openclaw::session_id(KEYS[1])))).unwrap();
    assert_eq!(run(&w, &into), (0, String::new()));
    assert_eq!(snapshot(&into), first, "an interrupted restore converges");

    // The runtime running there: its lock file refuses, exit 2, nothing written.
    let lock = sessions.join("sessions.json.lock");
    fs::write(&lock, b"").unwrap();
    let (code, msg) = run(&w, &into);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("lock files") && msg.contains("sessions.json.lock"), "{msg}");
    fs::remove_file(&lock).unwrap();
    assert_eq!(snapshot(&into), first);

    // A transcript newer than the log (the runtime went on: one more turn) refuses, exit 2.
    let main_jsonl = sessions.join(format!("{}.jsonl", openclaw::session_id(KEYS[0])));
    let mut text = fs::read_to_string(&main_jsonl).unwrap();
    let later = json!({"type": "message", "id": "runtime-1", "parentId": null,
                       "timestamp": openclaw::iso8601(RESTORED_AT + 60_000),
                       "message": {"role": "user", "content": [{"type": "text", "text": "one more"}],
                                   "timestamp": RESTORED_AT + 60_000}});
    text.push_str(&format!("{later}\n"));
    fs::write(&main_jsonl, &text).unwrap();
    let before = snapshot(&into);
    let (code, msg) = run(&w, &into);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("newer than the log of agent:main:main"), "{msg}");
    assert_eq!(snapshot(&into), before, "a refused restore writes nothing");

    // Moving the newer file away lets the restore go on, back to the log's bytes.
    fs::remove_file(&main_jsonl).unwrap();
    assert_eq!(run(&w, &into), (0, String::new()));
    assert_eq!(snapshot(&into), first);

    // A session given with --agent is a usage error.
    let mut a = args(&w, &into);
    a.source.remote.session = Some(KEYS[0].into());
    let ui = Ui { color: false, err_color: false, progress: false };
    let r = restore::run(&a, &ui);
    assert_eq!(cli::exit_code(&r), 2);
    assert!(!matches!(r, Ok(Verdict::Clean)));
}
