//! Durability against real workerd: eviction and runtime restarts lose nothing that was
//! acknowledged and rebuild the same state; the alarm archives segments and snapshots to R2; a
//! session whose Durable Object storage is gone is recovered from R2.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::fs;

use common::{Worker, chat, session_key};
use serde_json::{Value, json};

fn mixed_events(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| match i % 5 {
            0 => json!({"kind":"chat_message","role":"user","text":format!("question {i}"),"author":"alice"}),
            1 => json!({"kind":"tool_call","call_id":format!("c{i}"),"tool":"bash","input":{"command":format!("echo {i}")}}),
            2 => json!({"kind":"tool_result","call_id":format!("c{}", i - 1),"output":{"stdout":i.to_string()},"is_error":false}),
            3 => json!({"kind":"model_call","provider":"anthropic","model":"m","input_tokens":i,"output_tokens":1}),
            _ => json!({"kind":"browser_action","action":"navigate","target_id":"t","url":format!("http://localhost/{i}")}),
        })
        .collect()
}

fn append_all(w: &Worker, key: &str, events: Vec<Value>) {
    for chunk in events.chunks(50) {
        let r = w.append(key, &json!({ "events": chunk }));
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
}

fn info(w: &Worker, key: &str) -> Value {
    w.get(&format!("/v1/sessions/{key}")).body
}

fn state(w: &Worker, key: &str) -> Value {
    let r = w.get(&format!("/v1/sessions/{key}/state"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

#[test]
fn eviction_and_restarts_keep_every_event_and_the_state() {
    let mut w = Worker::start();
    let k = session_key("evict");
    append_all(&w, &k, mixed_events(420));
    let events = w.all_events(&k);
    let before = state(&w, &k);
    assert_eq!(events.len(), 420);

    // Memory lost, storage kept: the next request rebuilds from the newest snapshot + tail.
    w.post(&format!("/__test/sessions/{k}/evict"), &json!({}));
    assert_eq!(state(&w, &k), before);
    assert_eq!(w.all_events(&k), events);

    // The whole runtime dies and comes back on the same state directory.
    let snapshotted = w.wait_for(20, "a local snapshot", || {
        let i = info(&w, &k);
        (!i["snapshots"]["local"].as_array()?.is_empty()).then_some(i)
    });
    w.restart();
    assert_eq!(state(&w, &k), before);
    assert_eq!(w.all_events(&k), events);
    let woke = info(&w, &k);
    assert_eq!(
        woke["wake"]["from_snapshot"],
        *snapshotted["snapshots"]["local"].as_array().unwrap().last().unwrap()
    );
    assert!(woke["wake"]["replayed"].as_u64().unwrap() < 420, "the snapshot shortened the rebuild: {woke:?}");
    assert_eq!(w.get(&format!("/v1/sessions/{k}/verify")).body["ok"], true);

    // And it keeps going where it stopped.
    let r = w.append(&k, &chat("after the restart"));
    assert_eq!(r.body["first_seq"], 421);
}

#[test]
fn the_alarm_archives_segments_and_snapshots_to_r2() {
    let w = Worker::start();
    let k = session_key("archive");
    append_all(&w, &k, mixed_events(450));
    let i = w.wait_for(30, "everything archived", || {
        let i = info(&w, &k);
        (i["archive"]["archived_seq"] == 450 && !i["snapshots"]["r2"].as_array()?.is_empty()).then_some(i)
    });
    let objects =
        w.get(&format!("/__test/r2?prefix=sessions/{k}/")).body["objects"].as_array().unwrap().clone();
    let keys: Vec<&str> = objects.iter().map(|o| o["key"].as_str().unwrap()).collect();
    let mut ranges: Vec<(u64, u64)> = keys
        .iter()
        .filter_map(|k| moltlog_core::segment::parse_object_key(k))
        .map(|(f, l, _)| (f, l))
        .collect();
    ranges.sort();
    assert_eq!(ranges.first().map(|r| r.0), Some(1));
    assert_eq!(ranges.last().map(|r| r.1), Some(450));
    assert!(ranges.windows(2).all(|p| p[1].0 == p[0].1 + 1), "segments are contiguous: {ranges:?}");
    for seq in i["snapshots"]["r2"].as_array().unwrap() {
        let want = moltlog_core::segment::snapshot_object_key(&k, seq.as_u64().unwrap());
        assert!(keys.contains(&want.as_str()), "{want} in R2");
    }
    // Every archived segment verifies and chains in the export bundle.
    let bundle = w.get(&format!("/v1/sessions/{k}/export")).bytes;
    let sections = moltlog_core::bundle::read(&bundle).unwrap();
    let mut prev = moltlog_core::chain::genesis(&k);
    for s in sections {
        if let moltlog_core::bundle::Section::Segment(b) = s {
            let seg = moltlog_core::segment::verify(b, &k, |_, _| {}).unwrap();
            assert_eq!(seg.header.prev_hash, prev);
            prev = seg.header.last_hash;
        }
    }
}

/// Archives everything, stops the runtime, removes the Durable Objects' SQLite files, restarts.
#[test]
fn a_session_whose_storage_is_gone_is_recovered_from_r2() {
    let mut w = Worker::start();
    let k = session_key("recover");
    append_all(&w, &k, mixed_events(260));
    w.wait_for(30, "everything archived", || (info(&w, &k)["archive"]["archived_seq"] == 260).then_some(()));
    let events = w.all_events(&k);
    let before = state(&w, &k);

    w.kill9();
    let dir = w.do_dir("SessionDO");
    let mut removed = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().contains(".sqlite") {
            fs::remove_file(&p).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "found the session's SQLite files in {}", dir.display());
    w.restart();

    let after = w.all_events(&k);
    assert_eq!(after.len(), 261, "the archive plus the recovery marker");
    assert_eq!(after[..260], events[..], "every archived event is back, byte for byte");
    assert_eq!(after[260]["kind"], "lifecycle");
    assert_eq!(after[260]["event"], "recovered_from_archive");
    assert_eq!(after[260]["last_seq"], 260);
    let now = state(&w, &k);
    assert_eq!(now["transcript"], before["transcript"]);
    assert_eq!(now["browser"], before["browser"]);
    assert_eq!(now["counters"]["recoveries"], 1);
    assert_eq!(w.get(&format!("/v1/sessions/{k}/verify")).body["ok"], true);
}

#[test]
fn event_keys_survive_a_recovery() {
    let w = Worker::start();
    let k = session_key("recover-keys");
    let keyed = json!({"kind":"chat_message","role":"user","text":"once","idempotency_key":"tg:update:1"});
    let first = w.append(&k, &keyed);
    assert_eq!(first.status, 201);
    append_all(&w, &k, mixed_events(10));
    w.wait_for(30, "everything archived", || (info(&w, &k)["archive"]["archived_seq"] == 11).then_some(()));
    let wiped = w.post(&format!("/__test/sessions/{k}/wipe"), &json!({}));
    assert_eq!(wiped.status, 200, "{:?}", wiped.body);
    let again = w.append(&k, &keyed);
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["first_seq"], 1);
    assert_eq!(w.all_events(&k).len(), 12, "11 recovered + the recovery marker; the retry appended nothing");
}
