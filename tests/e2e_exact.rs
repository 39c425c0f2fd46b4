//! What comes back is what was stored, on real workerd: JSON payloads exactly as appended (events
//! API, tail, restore bundle); blob references only to blobs R2 holds; and an export that cannot
//! complete ends in a failure the replay tool reports, never in a clean or silent end.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::fs;
use std::net::TcpStream;
use std::time::Duration;

use common::{Worker, session_key};
use moltlog_replay::commands::pull::{self, PullOptions};
use moltlog_replay::source::SourceSpec;
use moltlog_replay::ui::Ui;
use serde_json::json;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The payloads issue 10 saw change on the way out, at the depth limit, and with spacing.
fn payloads() -> Vec<String> {
    vec![
        r#"{"id":123456789012345678901234567890}"#.into(),
        "0.1000000000000000055511151231257827".into(),
        r#"{"n":1e400}"#.into(),
        r#"["\ud800","\udc00 x"]"#.into(),
        r#"{ "b" : [ 1 , 2.50 ] }"#.into(),
        format!("{}{}", "[".repeat(100), "]".repeat(100)),
    ]
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8")
}

fn tail_frames(w: &Worker, key: &str, n: usize) -> Vec<String> {
    let (mut ws, _): (WebSocket<MaybeTlsStream<TcpStream>>, _) =
        tungstenite::connect(w.ws_url(&format!("/v1/sessions/{key}/tail?after=0"))).expect("connect tail");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let mut out = Vec::new();
    while out.len() < n {
        if let Message::Text(t) = ws.read().expect("tail message")
            && !t.as_str().contains(r#""type":"live""#)
        {
            out.push(t.as_str().to_owned());
        }
    }
    out
}

#[test]
fn json_payloads_come_back_byte_for_byte() {
    let w = Worker::start();
    let k = session_key("exact");
    let mut body = String::from(r#"{"events":["#);
    for (i, p) in payloads().iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(r#"{{"kind":"tool_call","call_id":"c{i}","tool":"t","input":{p}}}"#));
    }
    body.push_str("]}");
    let r = w.post_raw(
        &format!("/v1/sessions/{k}/events"),
        body.as_bytes(),
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 201, "{:?}", r.body);

    let events = w.get(&format!("/v1/sessions/{k}/events"));
    let restore = w.get(&format!("/v1/sessions/{k}/restore"));
    let frames = tail_frames(&w, &k, payloads().len()).join("\n");
    for p in payloads() {
        let want = format!(r#""input":{p}"#);
        assert!(text(&events.bytes).contains(&want), "events API changed {p}: {}", text(&events.bytes));
        assert!(text(&restore.bytes).contains(&want), "restore bundle changed {p}");
        assert!(frames.contains(&want), "tail changed {p}: {frames}");
    }

    let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
    let refused = w.post_raw(
        &format!("/v1/sessions/{k}/events"),
        format!(r#"{{"kind":"tool_call","call_id":"d","tool":"t","input":{deep}}}"#).as_bytes(),
        &[("content-type", "application/json")],
    );
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "json_too_deep");
}

fn attach(blob: serde_json::Value) -> serde_json::Value {
    json!({"kind":"chat_message","role":"user","text":"see attached","attachments":[{"name":"x.bin","blob":blob}]})
}

#[test]
fn dangling_blob_references_are_refused_and_a_broken_export_fails_visibly() {
    let w = Worker::start();
    let k = session_key("dangling");
    let missing = "ab".repeat(32);
    let r = w.append(&k, &attach(json!({"sha256": missing, "len": 3})));
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "blob_missing");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(&missing));

    let up = w.post_raw(
        &format!("/v1/sessions/{k}/blobs"),
        b"attachment bytes",
        &[("content-type", "text/plain")],
    );
    assert_eq!(up.status, 201, "{:?}", up.body);
    let sha = up.body["sha256"].as_str().unwrap().to_owned();
    let r = w.append(&k, &attach(json!({"sha256": sha, "len": 99})));
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "blob_length_mismatch");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(&sha));
    assert_eq!(w.get(&format!("/v1/sessions/{k}/events")).body["events"].as_array().unwrap().len(), 0);

    assert_eq!(w.append(&k, &attach(up.body.clone())).status, 201);
    let quiet = Ui { color: false, err_color: false, progress: false };
    let spec = SourceSpec::Http { url: w.url(""), token: None };
    let opts = PullOptions { blobs: true, export: true };
    let scratch = |name: &str| {
        let d = w.state_dir.with_file_name(name);
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    };
    let out = scratch("pulled-ok");
    pull::pull(&spec, Some(k.as_str()), &out, &opts, &quiet).expect("the intact session pulls");

    // The blob goes from R2 after the append: the export now cannot complete.
    let deleted = w.post(&format!("/__test/sessions/{k}/delete-blobs"), &json!({}));
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    let export = w.get(&format!("/v1/sessions/{k}/export?blobs=1"));
    assert_eq!(export.status, 200, "the status was sent before the blob was read");
    let err = moltlog_core::bundle::read(&export.bytes).unwrap_err();
    assert!(matches!(err, moltlog_core::bundle::BundleError::Failed(ref m) if m.contains(&sha)), "{err}");

    let out = scratch("pulled-broken");
    let err = pull::pull(&spec, Some(k.as_str()), &out, &opts, &quiet)
        .expect_err("the replay tool reports the failure");
    let message = format!("{err:#}");
    assert!(message.contains("export failed") && message.contains(&sha), "{message}");
}
