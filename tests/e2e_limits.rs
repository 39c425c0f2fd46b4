//! Hostile numbers and bodies on real workerd: every client-supplied integer is a clear 400
//! (never a panic that takes the object, and other sessions' requests, down with it), and
//! every body is refused at its limit, at once when its length is declared, without reading it.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Options, Worker, chat, session_key};
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;
/// The limits the tests run with (small, so an over-limit body is quick to send).
const BRIDGE_MAX: u64 = MIB;
const HOOK_MAX: u64 = MIB;
const BLOB_MAX: u64 = 4 * MIB;
const REQUEST_MAX: u64 = 2 * MIB;

fn start() -> Worker {
    let hooks = json!({"x": {"type": "hmac", "secret_var": "X_SECRET", "session": "agent:main:x"}});
    let vars = [
        ("HOOKS", hooks.to_string()),
        ("X_SECRET", "x-hook-secret".into()),
        ("HOOK_MAX_BYTES", HOOK_MAX.to_string()),
        ("TELEGRAM_WEBHOOK_SECRET", "telegram-secret".into()),
        ("BRIDGE_MAX_BYTES", BRIDGE_MAX.to_string()),
        ("MAX_BLOB_BYTES", BLOB_MAX.to_string()),
        ("MAX_REQUEST_BYTES", REQUEST_MAX.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Worker::start_with(Options { vars, undrained_bodies: true, ..Options::default() })
}

const BAD_NUMBERS: &[&str] =
    &["9223372036854775807", "9223372036854775808", "18446744073709551615", "-1", "1e3", ""];

fn assert_invalid(r: &common::Reply, what: &str, param: &str) {
    assert_eq!(r.status, 400, "{what}: {:?}", r.body);
    assert_eq!(r.body["error"]["code"], "invalid_parameter", "{what}: {:?}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("{param}: ")), "{what}: {message}");
}

/// A route to probe: the path up to the value, the parameter's name, the request's headers.
type Probe = (String, &'static str, Vec<(&'static str, &'static str)>);

#[test]
fn every_numeric_parameter_is_checked_and_the_worker_keeps_serving() {
    let w = start();
    let k = session_key("limits-params");
    assert_eq!(w.append(&k, &chat("one")).status, 201);
    // The parameter is checked before the subscription is looked up.
    let sub_id = "sub_none";

    // Other sessions append throughout: none of their requests may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let (port, stop) = (w.port, stop.clone());
            std::thread::spawn(move || {
                let key = session_key(&format!("limits-busy-{i}"));
                let url = format!("http://127.0.0.1:{port}/v1/sessions/{key}/events");
                let agent: ureq::Agent =
                    ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) || n < 5 {
                    let r = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(chat("busy").to_string());
                    let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                    assert_eq!(status, 201, "append {n} to {key} failed while bad numbers were sent");
                    n += 1;
                }
                n
            })
        })
        .collect();

    let routes: Vec<Probe> = vec![
        (format!("/v1/sessions/{k}/events?after="), "after", vec![]),
        (format!("/v1/sessions/{k}/events?limit="), "limit", vec![]),
        (
            format!("/v1/sessions/{k}/events?after="),
            "after",
            vec![("accept", "application/vnd.moltlog.segment")],
        ),
        (format!("/v1/sessions/{k}/inbound?after="), "after", vec![]),
        (format!("/v1/sessions/{k}/inbound?limit="), "limit", vec![]),
        (format!("/v1/sessions/{k}/tail?after="), "after", vec![]),
        (format!("/v1/sessions/{k}/tail?after="), "after", vec![("upgrade", "websocket")]),
        (format!("/v1/sessions/{k}/subscriptions/{sub_id}/deliveries?limit="), "limit", vec![]),
        ("/v1/sessions?limit=".to_owned(), "limit", vec![]),
    ];
    for (prefix, param, headers) in &routes {
        for bad in BAD_NUMBERS {
            let path = format!("{prefix}{bad}");
            assert_invalid(&w.get_with(&path, headers), &format!("GET {path} {headers:?}"), param);
        }
    }
    // Seqs in an append body: above what the store holds is a 400 too, not a wrap.
    for bad in ["9223372036854775807", "9223372036854775808", "18446744073709551615"] {
        let body = format!(r#"{{"events":[{}],"expected_seq":{bad}}}"#, chat("x"));
        let r = w.post_raw(
            &format!("/v1/sessions/{k}/events"),
            body.as_bytes(),
            &[("content-type", "application/json")],
        );
        assert_invalid(&r, &format!("expected_seq {bad}"), "expected_seq");
    }

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in writers {
        assert!(t.join().expect("no append failed") >= 5);
    }
    // The object that got the bad numbers still serves, and never wrapped to the log's start.
    let page = w.get(&format!("/v1/sessions/{k}/events?after=1"));
    assert_eq!(
        (page.status, page.body["events"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{:?}",
        page.body
    );
    assert_eq!(w.append(&k, &chat("two")).status, 201);
    let other = session_key("limits-after");
    assert_eq!(w.append(&other, &chat("still here")).status, 201);
    assert_eq!(w.all_events(&k).len(), 2);
}

/// Sends request headers declaring `len` bytes and no body; returns the status and how long
/// the answer took.
fn declare_only(w: &Worker, path: &str, len: u64) -> (u16, Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", w.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    );
    let started = Instant::now();
    s.write_all(head.as_bytes()).unwrap();
    (read_status(&mut s), started.elapsed())
}

fn read_status(s: &mut TcpStream) -> u16 {
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&got);
    line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Posts `total` bytes chunked (no length declared) until the server answers; returns the
/// status and the bytes sent before it did.
fn post_chunked(w: &Worker, path: &str, headers: &[(&str, &str)], total: u64) -> (u16, u64) {
    let mut s = TcpStream::connect(("127.0.0.1", w.port)).unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut reader = s.try_clone().unwrap();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 << 10];
        let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
        while counter.load(std::sync::atomic::Ordering::SeqCst) < total {
            if s.write_all(&framed).is_err() {
                return;
            }
            counter.fetch_add(64 << 10, std::sync::atomic::Ordering::SeqCst);
        }
        let _ = s.write_all(b"0\r\n\r\n");
    });
    reader.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let status = read_status(&mut reader);
    let at = sent.load(std::sync::atomic::Ordering::SeqCst);
    let _ = reader.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    (status, at)
}

/// `post_chunked`, tried again when wrangler dev's proxy in front of the Worker loses the
/// answer: an answer that leaves the body unread sometimes reaches the client as a reset or
/// the proxy's 500 "Network connection lost" (a dev-proxy artifact; the Worker answered 413).
fn post_chunked_answered(w: &Worker, path: &str, total: u64) -> (u16, u64) {
    let mut last = (0, 0);
    for _ in 0..5 {
        last = post_chunked(w, path, &[], total);
        assert!(last.1 < total, "{path}: the whole body was read before any answer");
        if last.0 == 413 {
            break;
        }
    }
    last
}

/// The routes that take a body, with the limit each enforces.
fn body_routes(k: &str) -> Vec<(String, u64)> {
    vec![
        (format!("/v1/sessions/{k}/events"), REQUEST_MAX),
        (format!("/v1/sessions/{k}/blobs"), BLOB_MAX),
        (format!("/v1/sessions/{k}/subscriptions"), 64 << 10),
        ("/v1/subscriptions".to_owned(), 64 << 10),
        ("/bridge/telegram".to_owned(), BRIDGE_MAX),
        ("/hooks/x".to_owned(), HOOK_MAX),
    ]
}

#[test]
fn bodies_over_the_limit_are_refused_without_being_read() {
    let w = start();
    let k = session_key("limits-bodies");
    assert_eq!(w.append(&k, &chat("warm")).status, 201);
    for (path, _) in body_routes(&k) {
        let (status, took) = declare_only(&w, &path, 400 * MIB);
        assert_eq!(status, 413, "{path}: a declared 400 MiB body");
        assert!(took < Duration::from_secs(1), "{path}: the 413 took {took:?}");
    }
    // Chunked, nothing declared, no credentials: refused once the count passes the limit.
    for (path, max) in body_routes(&k) {
        let (status, sent) = post_chunked_answered(&w, &path, 400 * MIB);
        // 0 or 500: wrangler dev's proxy reset the connection or answered "Network connection
        // lost" instead of relaying the early 413 (`post_chunked_answered` retries those); either
        // way the Worker stopped reading, which `sent` shows.
        assert!(matches!(status, 413 | 0 | 500), "{path}: a chunked body over {max} bytes got {status}");
        assert!(sent < 400 * MIB, "{path}: the whole body was read before the answer");
    }
    let r = w.get(&format!("/v1/sessions/{k}/events"));
    assert_eq!((r.status, r.body["events"].as_array().map(Vec::len)), (200, Some(1)));
    let v: Value = w.get("/healthz").body;
    assert_eq!(v["ok"], true);
}

/// The resident memory of the runtime's workerd process, in KiB.
fn workerd_rss_kib(w: &Worker) -> u64 {
    w.workerd_rss_bytes() / 1024
}

/// Benchmark-style: what a 400 MiB chunked upload without credentials costs workerd, per route.
/// Run with `cargo test --test e2e_limits -- --include-ignored memory --nocapture`.
#[test]
#[ignore = "sends 400 MiB per route (about a minute)"]
fn memory_a_400_mib_attempt_costs() {
    let w = start();
    let k = session_key("limits-memory");
    assert_eq!(w.append(&k, &chat("warm")).status, 201);
    for (path, _) in body_routes(&k) {
        let before = workerd_rss_kib(&w);
        let (status, sent) = post_chunked_answered(&w, &path, 400 * MIB);
        std::thread::sleep(Duration::from_millis(500));
        let after = workerd_rss_kib(&w);
        let grew_mib = after.saturating_sub(before) as f64 / 1024.0;
        println!(
            "memory: POST {path} (400 MiB chunked): {status} after {:.1} MiB sent; workerd RSS {:.1} -> {:.1} MiB (+{grew_mib:.1} MiB)",
            sent as f64 / MIB as f64,
            before as f64 / 1024.0,
            after as f64 / 1024.0
        );
        // The status itself is `bodies_over_the_limit_are_refused_without_being_read`'s to check
        // (wrangler dev's proxy sometimes loses it); this measures what the attempt costs.
        assert_ne!(status, 200, "{path}");
        assert!(grew_mib < 64.0, "{path}: workerd grew by {grew_mib:.1} MiB");
    }
}
