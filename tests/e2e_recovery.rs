//! The archive against damage, on workerd: the archiver reads every segment back before counting
//! it as archived, `GET …/verify` checks the archive, and a session whose local storage is lost
//! while one archived segment is damaged recovers what is intact, records the gap and goes on
//! serving with fresh seqs; moltlog-replay verifies the result and reports the gap.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{Worker, session_key};
use moltlog_core::segment;
use moltlog_replay::audit;
use moltlog_replay::source::{self, SourceSpec};
use moltlog_replay::ui::Ui;
use serde_json::{Value, json};

/// Appends `n` chat messages as one batch (one batch: the archiver makes one segment of it).
fn append_batch(w: &Worker, key: &str, n: usize, tag: &str) -> Value {
    let events: Vec<Value> =
        (0..n).map(|i| json!({"kind":"chat_message","role":"user","text":format!("{tag} {i}")})).collect();
    let r = w.append(key, &json!({"events": events}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

fn archived_to(w: &Worker, key: &str, seq: u64) {
    w.wait_for(30, &format!("archived to seq {seq}"), || {
        (w.get(&format!("/v1/sessions/{key}")).body["archive"]["archived_seq"] == seq).then_some(())
    });
}

fn object_path(r2_key: &str) -> String {
    format!("/__test/r2/object?key={}", urlencode(r2_key))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Flips one byte in the middle of an R2 object.
fn damage(w: &Worker, r2_key: &str) {
    let got = w.get(&object_path(r2_key));
    assert_eq!(got.status, 200, "{r2_key} is in R2");
    let mut bytes = got.bytes.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let put = w.request("PUT", &object_path(r2_key), Some(&bytes));
    assert_eq!(put.status, 200, "{:?}", put.body);
}

#[test]
fn a_damaged_archived_segment_fails_verify() {
    let w = Worker::start();
    let k = session_key("verify-archive");
    append_batch(&w, &k, 12, "m");
    archived_to(&w, &k, 12);
    let v = w.get(&format!("/v1/sessions/{k}/verify"));
    assert_eq!(v.body["ok"], true, "{:?}", v.body);
    assert_eq!(v.body["archive"]["ok"], true);
    assert_eq!(v.body["archive"]["segments_checked"], 1);

    let seg = segment::object_key(&k, 1, 12, 0);
    damage(&w, &seg);
    let v = w.get(&format!("/v1/sessions/{k}/verify"));
    assert_eq!(v.status, 200);
    assert_eq!(v.body["ok"], false, "a damaged archive is not ok: {:?}", v.body);
    assert_eq!(v.body["archive"]["ok"], false);
    assert_eq!(v.body["archive"]["first_bad"]["key"], seg.as_str());
    assert!(v.body["archive"]["first_bad"]["reason"].as_str().unwrap().len() > 5);

    // The local log is intact; skipping the archive says so.
    let v = w.get(&format!("/v1/sessions/{k}/verify?archive=0"));
    assert_eq!(v.body["ok"], true, "{:?}", v.body);
    assert_eq!(v.body["archive"], Value::Null);
    let bad = w.get(&format!("/v1/sessions/{k}/verify?archive=yes"));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["code"], "bad_query");
}

#[test]
fn lost_storage_with_a_damaged_segment_recovers_records_the_gap_and_serves() {
    let w = Worker::start();
    let k = session_key("degraded");
    for (i, seq) in [10u64, 20, 30].into_iter().enumerate() {
        append_batch(&w, &k, 10, &format!("batch{i}"));
        archived_to(&w, &k, seq);
    }
    assert_eq!(w.get(&format!("/v1/sessions/{k}/recovery")).body["state"], "normal");
    let before = w.all_events(&k);
    let damaged = segment::object_key(&k, 11, 20, 0);
    damage(&w, &damaged);
    let wiped = w.post(&format!("/__test/sessions/{k}/wipe"), &json!({}));
    assert_eq!(wiped.status, 200, "{:?}", wiped.body);

    // The session answers; the operator route names the gap.
    let info = w.get(&format!("/v1/sessions/{k}"));
    assert_eq!(info.status, 200, "{:?}", info.body);
    let r = w.get(&format!("/v1/sessions/{k}/recovery"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["state"], "degraded");
    let gap = &r.body["gaps"][0];
    assert_eq!((gap["first_seq"].as_u64(), gap["last_seq"].as_u64()), (Some(11), Some(30)), "{gap}");
    assert!(gap["reason"].as_str().unwrap().contains(&damaged), "{gap}");
    assert_eq!(gap["recorded_at_seq"], 31);
    assert!(gap["at_ms"].as_u64().is_some());

    // What was intact is back, the gap is an event, and nothing reuses a lost seq.
    let after = w.all_events(&k);
    assert_eq!(after[..10], before[..10], "seqs 1..=10 are back byte for byte");
    assert_eq!(after[10]["seq"], 31);
    assert_eq!(after[10]["event"], "records_lost");
    assert_eq!((after[10]["first_seq"].as_u64(), after[10]["last_seq"].as_u64()), (Some(11), Some(30)));
    assert_eq!(after[11]["event"], "recovered_from_archive");
    assert_eq!(after[11]["seq"], 32);
    let appended = w.append(&k, &common::chat("after the damage"));
    assert_eq!(appended.status, 201, "{:?}", appended.body);
    assert_eq!(appended.body["first_seq"], 33);

    // The chain verifies across the gap, locally and (once archived again) in the archive.
    archived_to(&w, &k, 33);
    let v = w.get(&format!("/v1/sessions/{k}/verify"));
    assert_eq!(v.body["ok"], true, "{:?}", v.body);
    assert_eq!(v.body["gaps"][0]["first_seq"], 11);
    assert_eq!(v.body["archive"]["ok"], true, "{:?}", v.body);

    // Evicted, the object rebuilds across the gap too.
    assert_eq!(w.post(&format!("/__test/sessions/{k}/evict"), &json!({})).status, 200);
    assert_eq!(w.get(&format!("/v1/sessions/{k}")).body["head"]["seq"], 33);

    // The replay tool verifies the session's export and reports the gap, not tampering.
    let ui = Ui { color: false, err_color: false, progress: false };
    let spec = SourceSpec::Http { url: w.url(""), token: None };
    let archive = source::open_archive(&spec, Some(&k), &ui, true).unwrap();
    let a = audit::audit(&archive, true, &ui.bar(0, "", "")).unwrap();
    assert!(a.ok(), "{:?}", a.failure);
    assert_eq!(a.head.seq, 33);
    assert_eq!(a.gaps.len(), 1);
    assert_eq!((a.gaps[0].first_seq, a.gaps[0].last_seq), (11, 30));
}
