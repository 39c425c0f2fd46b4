//! Redaction end to end: the content leaves the log and every archived copy (segments are
//! rewritten under a new generation, snapshots holding it are deleted), the chain still verifies,
//! and verifiers report the redacted seq.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::fs;
use std::path::Path;

use common::{Worker, chat, session_key};
use moltlog_core::bundle::{self, Section};
use moltlog_core::segment;
use moltlog_core::verify::Verifier;
use serde_json::json;

const SECRET: &str = "hunter2-correct-horse-battery-staple";

fn files_containing(dir: &Path, needle: &[u8], out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            files_containing(&p, needle, out);
        } else if let Ok(bytes) = fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            out.push(p.display().to_string());
        }
    }
}

#[test]
fn redaction_erases_content_everywhere_and_keeps_the_chain() {
    let w = Worker::start();
    let k = session_key("redact");
    for i in 1..=4 {
        assert_eq!(w.append(&k, &chat(&format!("hello {i}"))).status, 201);
    }
    let secret = json!({"kind":"chat_message","role":"user","text":format!("my password is {SECRET}")});
    assert_eq!(w.append(&k, &secret).body["first_seq"], 5);
    for i in 6..=20 {
        assert_eq!(w.append(&k, &chat(&format!("later {i}"))).status, 201);
    }
    let operator = [("content-type", "application/json"), ("x-moltlog-actor", "operator")];
    let snap = w.post_raw(&format!("/v1/sessions/{k}/snapshot"), b"{}", &operator);
    assert_eq!(snap.status, 201, "{:?}", snap.body);
    w.wait_for(30, "the archive", || {
        (w.get(&format!("/v1/sessions/{k}")).body["archive"]["archived_seq"] == 20).then_some(())
    });
    let r2_dir = w.state_dir.join("v3/r2");
    let mut found = Vec::new();
    files_containing(&r2_dir, SECRET.as_bytes(), &mut found);
    assert!(!found.is_empty(), "the archive holds the secret before the redaction");

    // Only an operator may redact.
    let redact = json!({"kind":"redaction","target_seq":5,"reason":"pasted a password"});
    let refused = w.append(&k, &redact);
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let r = w.post_raw(&format!("/v1/sessions/{k}/events"), redact.to_string().as_bytes(), &operator);
    assert_eq!(r.status, 201, "{:?}", r.body);

    let events = w.all_events(&k);
    assert_eq!(events[4]["redacted"], true);
    assert!(events[4].get("text").is_none());
    assert_eq!(events[4]["role"], "user", "the skeleton keeps the structure");
    assert_eq!(events[20]["kind"], "redaction");
    let v = w.get(&format!("/v1/sessions/{k}/verify")).body;
    assert_eq!(v["ok"], true, "{v:?}");
    assert_eq!(v["redacted"], json!([5]));

    // The alarm rewrites the segment and deletes the snapshot that held the content.
    w.wait_for(30, "the archived copies to be replaced", || {
        let mut found = Vec::new();
        files_containing(&r2_dir, SECRET.as_bytes(), &mut found);
        found.is_empty().then_some(())
    });
    let objects =
        w.get(&format!("/__test/r2?prefix=sessions/{k}/")).body["objects"].as_array().unwrap().clone();
    let keys: Vec<&str> = objects.iter().map(|o| o["key"].as_str().unwrap()).collect();
    let segs: Vec<(u64, u64, u32)> = keys.iter().filter_map(|k| segment::parse_object_key(k)).collect();
    assert!(
        segs.iter().any(|&(f, l, g)| f <= 5 && 5 <= l && g >= 1),
        "a new generation covers seq 5: {keys:?}"
    );
    assert!(!segs.iter().any(|&(f, l, g)| f <= 5 && 5 <= l && g == 0), "the old segment is gone: {keys:?}");
    let snap_seq = snap.body["seq"].as_u64().unwrap();
    assert!(
        !keys.contains(&segment::snapshot_object_key(&k, snap_seq).as_str()),
        "the snapshot holding it is gone"
    );

    // The export still verifies offline and reports the redaction.
    let bytes = w.get(&format!("/v1/sessions/{k}/export")).bytes;
    let mut verifier = Verifier::new(&k);
    for s in bundle::read(&bytes).unwrap() {
        if let Section::Segment(b) = s {
            let mut reader = segment::SegmentReader::open(b).unwrap();
            while let Some(f) = reader.next_frame() {
                verifier.push(&f.unwrap().1).unwrap();
            }
        }
    }
    let report = verifier.finish().unwrap();
    assert_eq!(report.redacted, vec![5]);
    assert!(report.not_erased.is_empty());

    // A rebuild over the skeleton reaches the live state.
    let before = w.get(&format!("/v1/sessions/{k}/state")).body;
    w.post(&format!("/__test/sessions/{k}/evict"), &json!({}));
    assert_eq!(w.get(&format!("/v1/sessions/{k}/state")).body, before);
}
