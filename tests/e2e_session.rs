//! The session API against real workerd: round trips, idempotency and conflicts under concurrent
//! clients, the restore bundle, the export bundle, and every bad-input case.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::OnceLock;

use common::{Worker, chat, session_key};
use moltlog_core::bundle::{self, Section};
use moltlog_core::{segment, snapshot, verify::Verifier};
use serde_json::{Value, json};

/// One Worker shared by the tests of this file (each test uses its own session keys).
fn worker() -> &'static Worker {
    static W: OnceLock<Worker> = OnceLock::new();
    W.get_or_init(Worker::start)
}

#[test]
fn append_read_and_state_round_trip() {
    let w = worker();
    let k = session_key("roundtrip");
    let r = w.append(
        &k,
        &json!({"kind":"chat_message","role":"user","text":"hi","author":"alice",
        "channel":{"type":"telegram","chat_id":"42","message_id":"7"}}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!((r.body["first_seq"].as_u64(), r.body["last_seq"].as_u64()), (Some(1), Some(1)));
    let batch = json!({"events": [
        {"kind":"tool_call","call_id":"c1","tool":"bash","input":{"command":"ls","args":[1,2.5,null]}},
        {"kind":"tool_result","call_id":"c1","output":{"stdout":"a.txt"},"is_error":false,"duration_ms":12},
        {"kind":"model_call","provider":"anthropic","model":"claude","input_tokens":10,"output_tokens":5},
        {"kind":"browser_action","action":"navigate","target_id":"t1","url":"https://example.com/"},
    ], "expected_seq": 1});
    let r = w.append(&k, &batch);
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!((r.body["first_seq"].as_u64(), r.body["last_seq"].as_u64()), (Some(2), Some(5)));
    let head = r.body["head"].as_str().unwrap().to_owned();

    let events = w.all_events(&k);
    assert_eq!(events.len(), 5);
    assert_eq!(events[0]["text"], "hi");
    assert_eq!(events[0]["channel"]["chat_id"], "42");
    assert_eq!(events[1]["input"], json!({"command":"ls","args":[1,2.5,null]}), "tool input round-trips");
    assert_eq!(events[4]["hash"], head.as_str());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert_eq!(e["actor"], "runtime");
        assert_eq!(e["id"].as_str().unwrap().len(), 26);
    }
    assert!(events.windows(2).all(|p| p[0]["ts_ms"].as_u64() <= p[1]["ts_ms"].as_u64()));

    let state = w.get(&format!("/v1/sessions/{k}/state")).body;
    assert_eq!(state["head"]["seq"], 5);
    assert_eq!(state["head"]["hash"], head.as_str());
    assert_eq!(state["transcript"].as_array().unwrap().len(), 3);
    assert_eq!(state["open_tool_calls"], json!([]));
    assert_eq!(state["browser"]["current_url"], "https://example.com/");
    assert_eq!(state["counters"]["input_tokens"], 10);

    let page = w.get(&format!("/v1/sessions/{k}/events?after=2&limit=2")).body;
    assert_eq!(
        page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_eq!(page["next_after"], 4);

    let v = w.get(&format!("/v1/sessions/{k}/verify")).body;
    assert_eq!(v["ok"], true, "{v:?}");
    assert_eq!(v["state_matches_live"], true);
}

#[test]
fn segment_listing_verifies_with_core() {
    let w = worker();
    let k = session_key("segment");
    for i in 0..5 {
        assert_eq!(w.append(&k, &chat(&format!("m{i}"))).status, 201);
    }
    let r = w.get_with(
        &format!("/v1/sessions/{k}/events?after=2&limit=10"),
        &[("accept", "application/vnd.moltlog.segment")],
    );
    assert_eq!(r.status, 200);
    let seg = segment::verify(&r.bytes, &k, |_, _| {}).expect("segment verifies");
    assert_eq!((seg.header.first_seq, seg.header.last_seq), (3, 5));
    let events = w.all_events(&k);
    assert_eq!(moltlog_core::chain::to_hex(&seg.header.prev_hash), events[1]["hash"].as_str().unwrap());
}

#[test]
fn retries_and_conflicts_under_concurrent_clients() {
    let w = worker();
    let k = session_key("concurrent");
    // 8 clients each send 10 keyed batches, and every batch twice: retries must dedupe.
    let handles: Vec<_> = (0..8)
        .map(|c| {
            let k = k.clone();
            std::thread::spawn(move || {
                let w = worker();
                let mut seen = Vec::new();
                for i in 0..10 {
                    let body = json!({"events":[chat(&format!("c{c}-{i}-a")), chat(&format!("c{c}-{i}-b"))], "idempotency_key": format!("c{c}-{i}")});
                    let first = w.append(&k, &body);
                    let again = w.append(&k, &body);
                    assert_eq!(first.status, 201, "{:?}", first.body);
                    assert_eq!(again.status, 200, "{:?}", again.body);
                    assert_eq!(again.body["duplicate"], true);
                    assert_eq!(again.body["first_seq"], first.body["first_seq"]);
                    assert_eq!(again.body["head"], first.body["head"]);
                    seen.push(first.body["first_seq"].as_u64().unwrap());
                }
                seen
            })
        })
        .collect();
    let mut firsts: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    firsts.sort();
    assert_eq!(
        firsts,
        (0..80).map(|i| 1 + 2 * i).collect::<Vec<_>>(),
        "every batch landed once, contiguously"
    );
    let events = w.all_events(&k);
    assert_eq!(events.len(), 160);
    let mut texts: Vec<&str> = events.iter().map(|e| e["text"].as_str().unwrap()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 160, "no text appears twice");

    // Optimistic concurrency: of clients racing on the same expected_seq, exactly one wins.
    let head = 160;
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let k = k.clone();
            std::thread::spawn(move || {
                worker().append(&k, &json!({"events":[chat(&format!("race{i}"))], "expected_seq": head}))
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.status == 201).count(), 1);
    for r in results.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409);
        assert_eq!(r.body["error"]["code"], "seq_conflict");
        assert_eq!(r.body["error"]["head"]["seq"], 161);
    }
}

#[test]
fn a_reused_key_with_other_content_is_refused() {
    let w = worker();
    let k = session_key("reuse");
    assert_eq!(w.append(&k, &json!({"events":[chat("a")], "idempotency_key":"k1"})).status, 201);
    let r = w.append(&k, &json!({"events":[chat("b")], "idempotency_key":"k1"}));
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["code"], "idempotency_key_reused");
    assert_eq!(w.all_events(&k).len(), 1);
}

fn assert_error(r: &common::Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn bad_input_gets_clear_errors_and_appends_nothing() {
    let w = worker();
    let k = session_key("bad");
    let path = format!("/v1/sessions/{k}/events");
    let raw = |b: &[u8]| w.post_raw(&path, b, &[("content-type", "application/json")]);
    assert_error(&raw(b"{not json"), 400, "invalid_json");
    assert_error(&raw(b"[]"), 400, "invalid_json");
    assert_error(&raw(&[0xff, 0xfe]), 400, "invalid_json");
    assert_error(&w.append(&k, &json!({"kind":"teleport"})), 400, "unknown_kind");
    assert_error(
        &w.append(&k, &json!({"kind":"chat_message","role":"user","text":"x","colour":"red"})),
        400,
        "unknown_field",
    );
    assert_error(
        &w.append(&k, &json!({"kind":"chat_message","role":"bot","text":"x"})),
        400,
        "invalid_field",
    );
    assert_error(&w.append(&k, &json!({"kind":"tool_call","tool":"bash"})), 400, "missing_field");
    assert_error(&w.append(&k, &json!({"events":[]})), 400, "empty_batch");
    assert_error(
        &w.append(&k, &json!({"kind":"tool_call","call_id":"","tool":"bash"})),
        400,
        "invalid_event",
    );
    let many: Vec<Value> = (0..1001).map(|i| chat(&i.to_string())).collect();
    assert_error(&w.append(&k, &json!({"events": many})), 413, "too_many_events");
    let huge_author = "a".repeat(1_100_000);
    assert_error(
        &w.append(&k, &json!({"kind":"chat_message","role":"user","text":"x","author":huge_author})),
        413,
        "event_too_large",
    );
    let big = "b".repeat(40 << 20);
    assert_error(
        &w.append(&k, &json!({"kind":"chat_message","role":"user","text":big})),
        413,
        "payload_too_large",
    );
    assert_error(
        &w.append(&k, &json!({"kind":"delivery_receipt","outbox_seq":1,"attempt":1,"outcome":"delivered"})),
        403,
        "kind_not_allowed",
    );
    assert_error(&w.get("/v1/sessions/bad%20key/state"), 400, "bad_session_key");
    assert_error(&w.get(&format!("/v1/sessions/{}/state", "k".repeat(257))), 400, "bad_session_key");
    assert_error(&w.request("PUT", &path, Some(b"{}")), 405, "method_not_allowed");
    assert_error(&w.request("DELETE", &format!("/v1/sessions/{k}"), None), 405, "method_not_allowed");
    assert_error(&w.get(&format!("/v1/sessions/{k}/snapshot")), 405, "method_not_allowed");
    assert_error(&w.get("/v1/nothing-here"), 404, "not_found");
    assert_error(&w.get(&format!("/v1/sessions/{k}/events?after=x")), 400, "invalid_parameter");
    assert_error(&w.get(&format!("/v1/sessions/{k}/tail")), 426, "upgrade_required");
    assert!(w.all_events(&k).is_empty(), "nothing was appended");
}

#[test]
fn large_payloads_go_to_blobs_and_come_back() {
    let w = worker();
    let k = session_key("blob");
    let text = "lorem ipsum ".repeat(20_000);
    let r = w.append(&k, &json!({"kind":"chat_message","role":"user","text":text}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let e = &w.all_events(&k)[0];
    assert!(e.get("text").is_none());
    let sha = e["text_blob"]["sha256"].as_str().unwrap();
    assert_eq!(e["text_blob"]["len"], text.len());
    let blob = w.get(&format!("/v1/blobs/{sha}"));
    assert_eq!(blob.status, 200);
    assert_eq!(blob.bytes, text.as_bytes());
    assert_error(&w.get(&format!("/v1/blobs/{}", "0".repeat(64))), 404, "no_such_blob");

    let up = w.post_raw(
        &format!("/v1/sessions/{k}/blobs"),
        b"\x89PNG fake image",
        &[("content-type", "image/png")],
    );
    assert_eq!(up.status, 201);
    let attach = json!({"kind":"chat_message","role":"user","text":"see attached","attachments":[{"name":"x.png","blob":up.body}]});
    assert_eq!(w.append(&k, &attach).status, 201);
    assert_eq!(w.all_events(&k)[1]["attachments"][0]["blob"]["content_type"], "image/png");
}

#[test]
fn restore_bundle_and_openclaw_layout() {
    let w = worker();
    let k = session_key("restore");
    let events = json!({"events":[
        chat("old message"),
        chat("hello"),
        {"kind":"tool_call","call_id":"c1","tool":"bash","input":{"command":"ls"}},
        {"kind":"lifecycle","event":"compacted","summary":"talked about old things","first_kept_seq":2,"tokens_before":900},
        {"kind":"tool_call","call_id":"c2","tool":"read","input":{"path":"/etc/hosts"}},
        {"kind":"browser_action","action":"navigate","target_id":"tab1","url":"http://localhost/a"},
    ]});
    assert_eq!(w.append(&k, &events).status, 201);
    let b = w.get(&format!("/v1/sessions/{k}/restore")).body;
    assert_eq!(b["head"]["seq"], 6);
    assert_eq!(b["compaction"]["summary"], "talked about old things");
    let seqs: Vec<u64> =
        b["transcript"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![2, 3, 5], "the transcript starts at the first kept entry");
    let open: Vec<&str> =
        b["open_tool_calls"].as_array().unwrap().iter().map(|c| c["call_id"].as_str().unwrap()).collect();
    assert_eq!(open, vec!["c1", "c2"]);
    assert_eq!(b["browser"]["current_url"], "http://localhost/a");

    let oc = w.get(&format!("/v1/sessions/{k}/restore?format=openclaw")).body;
    assert_eq!(oc["agent_id"], "test");
    let files = oc["files"].as_array().unwrap();
    assert_eq!(files[0]["path"], "agents/test/sessions/sessions.json");
    let jsonl = files[1]["content"].as_str().unwrap();
    let lines: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["type"], "session");
    assert!(lines.iter().any(|l| l["type"] == "compaction"));
    let index: Value = serde_json::from_str(files[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(index[&k]["sessionId"], oc["session_id"]);
    let at = w.get(&format!("/v1/sessions/{k}/restore?format=openclaw&restored_at_ms=1900000000000")).body;
    let index: Value = serde_json::from_str(at["files"][0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(index[&k]["updatedAt"], 1_900_000_000_000u64, "stamped with the restore time");
    assert!(!jsonl.contains("localhost/a"), "the browser action is no tool call");
    assert_error(
        &w.get(&format!("/v1/sessions/{k}/restore?format=openclaw&restored_at_ms=soon")),
        400,
        "bad_query",
    );
    assert_error(&w.get(&format!("/v1/sessions/{k}/restore?format=tarball")), 400, "bad_query");
}

#[test]
fn export_bundle_verifies_offline() {
    let w = worker();
    let k = session_key("export");
    for i in 0..30 {
        assert_eq!(w.append(&k, &chat(&format!("message {i}"))).status, 201);
    }
    assert_eq!(w.post(&format!("/v1/sessions/{k}/snapshot"), &json!({})).status, 201);
    for i in 30..40 {
        assert_eq!(w.append(&k, &chat(&format!("message {i}"))).status, 201);
    }
    let r = w.get(&format!("/v1/sessions/{k}/export"));
    assert_eq!(r.status, 200);
    let sections = bundle::read(&r.bytes).expect("bundle reads");
    let Section::Manifest(m) = &sections[0] else { panic!("manifest first") };
    assert_eq!(m.head_seq, 40);
    let mut v = Verifier::new(&k);
    let snaps: Vec<_> = sections
        .iter()
        .filter_map(|s| match s {
            Section::Snapshot(b) => Some(snapshot::decode(b, &k).unwrap()),
            _ => None,
        })
        .collect();
    assert!(!snaps.is_empty(), "the snapshot is in the bundle");
    for s in &sections {
        if let Section::Segment(bytes) = s {
            let mut reader = segment::SegmentReader::open(bytes).unwrap();
            while let Some(f) = reader.next_frame() {
                let (_, frame) = f.unwrap();
                v.push(&frame).unwrap();
                let at = v.head().seq;
                for snap in snaps.iter().filter(|s| s.header.seq == at) {
                    v.check_snapshot(snap).unwrap();
                }
            }
        }
    }
    let report = v.finish().unwrap();
    assert_eq!(report.records, 40);
    assert_eq!(
        moltlog_core::chain::to_hex(&report.head.hash),
        m.head_hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    assert_eq!(report.snapshots_checked as usize, snaps.len());
}

#[test]
fn sessions_are_listed() {
    let w = worker();
    let k = session_key("listed");
    assert_eq!(w.append(&k, &chat("x")).status, 201);
    let found = w.wait_for(10, "the directory to list the session", || {
        let r = w.get("/v1/sessions?prefix=agent:test:listed");
        r.body["sessions"].as_array().and_then(|s| s.iter().find(|e| e["key"] == k.as_str()).cloned())
    });
    assert_eq!(found["head"]["seq"], 1);
}

#[test]
fn store_conformance_inside_workerd() {
    let w = worker();
    let r = w.post("/__test/conformance", &json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
    assert_eq!(r.body["passed"].as_array().unwrap().len(), moltlog_core::store::conformance::CHECKS.len());
}
