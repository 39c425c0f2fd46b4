use serde_json::Value;

use super::*;
use crate::chain::Hash;
use crate::engine::{AppendRequest, Engine, Limits, Now};
use crate::event::{Actor, Attachment, BlobRef, ChatMessage, EventBody, Payload, Role};
use crate::key::SessionKey;
use crate::restore;
use crate::sample;
use crate::store::MemoryStore;

const T0_MS: u64 = 1_700_000_000_000;
const RESTORED_AT_MS: u64 = 1_800_000_000_000;

/// Appends `bodies` (one per second, redactions as the operator) and renders the session.
fn rendered(bodies: Vec<EventBody>) -> (Rendered, Vec<Value>) {
    let mut engine = Engine::new(SessionKey::parse("agent:main:main").unwrap(), Limits::default());
    let mut store = MemoryStore::new();
    for (i, b) in bodies.into_iter().enumerate() {
        let actor = if matches!(b, EventBody::Redaction(_)) { Actor::Operator } else { Actor::Runtime };
        let now = Now { now_ms: T0_MS + 1000 * i as u64, entropy: i as u128 };
        engine.append(&mut store, AppendRequest::one(actor, b), now).unwrap();
    }
    let items = restore::transcript(engine.state(), &store).unwrap();
    let r = render(engine.state(), &items, RESTORED_AT_MS);
    assert_eq!(render(engine.state(), &items, RESTORED_AT_MS), r, "rendering is deterministic");
    let lines = r.files[1].content.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (r, lines)
}

fn messages(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["type"] == "message").map(|l| &l["message"]).collect()
}

#[test]
fn iso_dates() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
}

#[test]
fn agent_and_session_ids() {
    assert_eq!(agent_id("agent:ops:telegram:chat:1"), "ops");
    assert_eq!(agent_id("cron:job"), "main");
    assert_eq!(session_id("k"), session_id("k"));
    assert_eq!(session_id("k").len(), 36);
}

#[test]
fn header_is_version_3_and_entries_form_a_chain() {
    let (r, lines) = rendered(vec![sample::user("hi"), sample::chat(Role::Assistant, "hello")]);
    assert_eq!(lines[0]["type"], "session");
    assert_eq!(lines[0]["version"], 3);
    assert_eq!(lines[0]["id"], r.session_id);
    assert_eq!(lines[1]["parentId"], Value::Null, "the first entry is the root");
    for w in lines[1..].windows(2) {
        assert_eq!(w[1]["parentId"], w[0]["id"], "entries form a chain");
    }
}

#[test]
fn sessions_json_is_stamped_with_the_restore_time() {
    let (r, _) = rendered(vec![sample::user("hi"), sample::chat(Role::Assistant, "hello")]);
    assert_eq!(r.files[0].path, "agents/main/sessions/sessions.json");
    let index: Value = serde_json::from_str(&r.files[0].content).unwrap();
    assert_eq!(index["agent:main:main"]["updatedAt"], RESTORED_AT_MS, "not the last event's time");
    assert_eq!(index["agent:main:main"]["sessionId"], r.session_id);
}

#[test]
fn one_assistant_message_per_model_turn_with_the_calls_usage() {
    let (_, lines) = rendered(vec![
        sample::user("list files"),
        sample::model_call("claude-x", 120, 30),
        sample::chat(Role::Assistant, "Let me look."),
        sample::tool_call("c1", "bash", r#"{"cmd":"ls"}"#),
        sample::tool_call("c2", "read", r#"{"path":"a"}"#),
        sample::tool_result("c1", r#""a.txt""#, false),
        sample::tool_result("c2", r#"{"text":"A"}"#, false),
        sample::chat(Role::Assistant, "done"),
    ]);
    let m = messages(&lines);
    let roles: Vec<&str> = m.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "toolResult", "toolResult", "assistant"]);
    let turn = m[1];
    let kinds: Vec<&str> =
        turn["content"].as_array().unwrap().iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["text", "toolCall", "toolCall"], "text and tool calls of one turn in one message");
    assert_eq!(turn["content"][1]["arguments"]["cmd"], "ls");
    assert_eq!(turn["stopReason"], "toolUse");
    assert_eq!(turn["api"], "anthropic-messages");
    assert_eq!(turn["provider"], "anthropic");
    assert_eq!(turn["model"], "claude-x");
    assert_eq!(turn["usage"]["input"], 120);
    assert_eq!(turn["usage"]["output"], 30);
    assert_eq!(turn["usage"]["totalTokens"], 150);
    assert_eq!(turn["usage"]["cost"]["total"], 0);
    assert!(turn["timestamp"].is_u64());
    // The last turn had no model call: zeros, but the full shape.
    assert_eq!(m[4]["stopReason"], "stop");
    assert_eq!(m[4]["usage"]["totalTokens"], 0);
    assert_eq!(m[4]["usage"]["cacheRead"], 0);
    assert_eq!(m[4]["model"], "claude-x", "the session's model");
}

#[test]
fn tool_results_name_their_call_and_carry_array_content() {
    let (_, lines) = rendered(vec![
        sample::user("go"),
        sample::tool_call("c1", "bash", r#"{"cmd":"ls"}"#),
        sample::tool_result("c1", r#""a.txt""#, true),
    ]);
    let r = messages(&lines)[2];
    assert_eq!(r["role"], "toolResult");
    assert_eq!(r["toolCallId"], "c1");
    assert_eq!(r["toolName"], "bash");
    assert_eq!(r["isError"], true);
    assert_eq!(r["content"], serde_json::json!([{"type": "text", "text": "a.txt"}]));
    assert!(r["timestamp"].is_u64());
}

#[test]
fn a_result_whose_call_was_compacted_away_is_not_a_message() {
    let (_, lines) = rendered(vec![
        sample::tool_call("c1", "bash", "{}"),
        sample::compacted("ran bash", 2),
        sample::tool_result("c1", r#""ok""#, false),
        sample::chat(Role::Assistant, "ok"),
    ]);
    assert!(messages(&lines).iter().all(|m| m["role"] != "toolResult"));
    assert!(lines.iter().any(|l| l["type"] == "custom" && l["data"]["toolCallId"] == "c1"));
}

#[test]
fn compaction_keeps_its_place_and_names_the_first_kept_entry() {
    let (_, lines) = rendered(vec![
        sample::user("old"),
        sample::user("hello"),
        sample::tool_call("c1", "bash", r#"{"cmd":"ls"}"#),
        sample::tool_result("c1", r#""a.txt""#, false),
        sample::compacted("earlier: said old", 2),
        sample::chat(Role::Assistant, "done"),
    ]);
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["session", "message", "message", "message", "compaction", "message"]);
    assert_eq!(lines[4]["firstKeptEntryId"], lines[1]["id"]);
    assert_eq!(lines[4]["summary"], "earlier: said old");
    assert_eq!(lines[4]["tokensBefore"], 1000);
    assert!(!lines.iter().any(|l| l.to_string().contains("\"old\"")), "compacted messages are not there");
}

#[test]
fn redacted_content_stays_redacted() {
    let (_, lines) = rendered(vec![
        sample::user("my password is hunter2"),
        sample::chat(Role::Assistant, "noted"),
        sample::redaction(1, "secret"),
    ]);
    assert!(!lines.iter().any(|l| l.to_string().contains("hunter2")));
    assert_eq!(messages(&lines)[0]["content"][0]["text"], "[redacted]");
}

#[test]
fn attachments_stay_references() {
    let blob = BlobRef { sha256: Hash::default(), len: 2048, content_type: "image/png".into() };
    let (_, lines) = rendered(vec![
        EventBody::ChatMessage(ChatMessage {
            role: Role::User,
            channel: None,
            author: None,
            text: Payload::Inline("look".into()),
            attachments: vec![Attachment { name: Some("cat.png".into()), blob }],
        }),
        sample::chat(Role::Assistant, "a cat"),
    ]);
    let content = &messages(&lines)[0]["content"];
    assert_eq!(content[0]["text"], "look");
    let reference = content[1]["text"].as_str().unwrap();
    assert!(reference.contains("cat.png") && reference.contains("moltlog/blobs/sha256/"), "{reference}");
    assert!(reference.contains("2048 bytes"));
}

#[test]
fn browser_actions_are_not_tool_calls() {
    let (_, lines) = rendered(vec![
        sample::user("open it"),
        sample::navigate("tab1", "http://localhost/a"),
        sample::chat(Role::Assistant, "opened"),
    ]);
    let m = messages(&lines);
    assert_eq!(m.len(), 2);
    assert!(!lines.iter().any(|l| l.to_string().contains("localhost/a")));
}

#[test]
fn model_calls_ride_along_but_stay_out_of_the_bundle() {
    let mut engine = Engine::new(SessionKey::parse("agent:main:main").unwrap(), Limits::default());
    let mut store = MemoryStore::new();
    for (i, b) in [sample::user("a"), sample::model_call("m", 1, 2), sample::chat(Role::Assistant, "b")]
        .into_iter()
        .enumerate()
    {
        let now = Now { now_ms: T0_MS + i as u64, entropy: i as u128 };
        engine.append(&mut store, AppendRequest::one(Actor::Runtime, b), now).unwrap();
    }
    let items = restore::transcript(engine.state(), &store).unwrap();
    assert_eq!(items.iter().map(|i| i.header.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let bundle: serde_json::Value =
        serde_json::from_str(&restore::bundle_json(engine.state(), &items).to_string()).unwrap();
    assert_eq!(bundle["transcript"].as_array().unwrap().len(), 2);
}
