//! The recording CDP proxy against real workerd: playwright-core drives Debian's headless
//! chromium through moltlog (behind a stand-in speaking the Browser Rendering binding protocol,
//! or as a plain DevTools upstream), the page behaves as without the proxy, and the session holds
//! the browser actions with real PNG blobs.
#![cfg(not(target_arch = "wasm32"))]

mod auth_support;
mod cdp;
mod common;

use std::sync::{Mutex, MutexGuard, OnceLock};

use auth_support::{JwksServer, assert_401, auth_vars, mint, now_s};
use cdp::{StandIn, call, connect, drive};
use common::{Options, Worker};
use moltlog::auth::session_secret;
use moltlog::auth::token::digest_hex;
use moltlog_core::key::SessionKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tungstenite::Message;

/// One Worker behind one stand-in for the binding tests. They take turns: the stand-in's socket
/// counts are global.
fn shared() -> (MutexGuard<'static, ()>, &'static Worker, &'static StandIn) {
    static RIG: OnceLock<&'static (Worker, StandIn)> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (w, s) = RIG.get_or_init(|| {
        // Started from a thread that lives as long as the process: children die with the
        // thread that started them (PR_SET_PDEATHSIG), and test threads end with their test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let s = StandIn::start();
            let vars = vec![("CDP_UPSTREAM".to_owned(), format!("binding:{}", s.origin()))];
            let rig: &'static (Worker, StandIn) =
                Box::leak(Box::new((Worker::start_with(Options { vars, ..Options::default() }), s)));
            tx.send(rig).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("the CDP rig started")
    });
    (turn, w, s)
}

/// The browser actions recorded in a session once `last` shows up.
fn actions_until(w: &Worker, key: &str, last: &str) -> Vec<Value> {
    w.wait_for(15, &format!("a recorded {last}"), || {
        let events = w.all_events(key);
        events.iter().any(|e| e["action"] == last).then_some(events)
    })
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["action"].as_str().unwrap_or("?")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn playwright_through_the_proxy_behaves_as_direct_and_is_recorded() {
    let (_turn, w, s) = shared();
    let key = common::session_key("cdp-playwright");
    let direct = drive(&s.chromium_url(), &s.origin(), "basic");
    let proxied = drive(&w.url(&format!("/cdp/{key}")), &s.origin(), "basic");
    eprintln!("direct {} ms, through moltlog {} ms", direct["total_ms"], proxied["total_ms"]);
    for field in ["title", "button", "input", "evaluated", "runtime_evaluate"] {
        assert_eq!(proxied[field], direct[field], "{field}");
    }
    assert_eq!(proxied["button"], "clicked 1");
    assert_eq!(proxied["input"], "hello moltlog");
    assert_eq!(proxied["screenshot"]["png"], true);

    let events = actions_until(w, &key, "raw_cdp");
    assert_eq!(
        kinds(&events),
        ["create_target", "navigate", "click", "type", "evaluate", "screenshot", "close_target", "raw_cdp"]
    );
    let tab = events[0]["target_id"].as_str().unwrap();
    let page = format!("{}/site/index.html", s.origin());
    for e in &events[..7] {
        assert_eq!(e["actor"], "runtime");
        assert_eq!(e["target_id"], tab, "{e}");
        assert!(e.get("error").is_none_or(Value::is_null), "{e}");
    }
    assert_eq!(events[1]["url"], page);
    assert_eq!(events[2]["detail"], "left click at (120, 120)");
    assert_eq!(events[3]["detail"], "hello moltlog{Enter}");
    assert_eq!(events[4]["detail"], "6 * 7");
    assert_eq!(events[4]["result"]["value"], 42);
    assert!(events[7]["result"]["Runtime.callFunctionOn"].as_u64().unwrap() > 0, "noise is counted");

    // The screenshot is the very PNG Playwright got, stored as a blob.
    let shot = &events[5]["screenshot"];
    let sha = shot["sha256"].as_str().unwrap();
    assert_eq!(sha, proxied["screenshot"]["sha256"].as_str().unwrap());
    assert_eq!(shot["content_type"], "image/png");
    let blob = w.get(&format!("/v1/blobs/{sha}"));
    assert_eq!(blob.status, 200);
    assert_eq!(&blob.bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(sha256_hex(&blob.bytes), sha);
    assert_eq!(shot["len"], blob.bytes.len());

    // The browser state follows: the tab is closed, the last screenshot is known.
    let state = w.get(&format!("/v1/sessions/{key}/state")).body;
    assert_eq!(state["browser"]["last_screenshot"]["seq"], events[5]["seq"]);
    assert_eq!(state["browser"]["actions"], 8);
    assert!(state["browser"]["targets"].as_array().unwrap().iter().all(|t| t["target_id"] != tab));
    // The closing summary (`raw_cdp`, no target) is in no tab: no phantom tab "" to restore.
    assert_eq!(state["browser"]["targets"], json!([]), "{}", state["browser"]);
    assert_eq!(state["browser"]["current_target"], Value::Null);
    // Closing the browser connection closed the socket to the browser service.
    s.wait_stats(10, "the upstream socket to close", |st| st["open"] == 0);
}

#[test]
fn a_large_screenshot_passes_through() {
    let (_turn, w, s) = shared();
    let key = common::session_key("cdp-big");
    let report = drive(&w.url(&format!("/cdp/{key}")), &s.origin(), "big");
    let bytes = report["screenshot"]["bytes"].as_u64().unwrap();
    assert!(bytes > 4 << 20, "the screenshot is only {bytes} bytes");
    let events = actions_until(w, &key, "raw_cdp");
    let shot = events.iter().find(|e| e["action"] == "screenshot").expect("a screenshot");
    assert_eq!(shot["screenshot"]["len"], bytes);
    assert_eq!(shot["screenshot"]["sha256"], report["screenshot"]["sha256"]);
}

#[test]
fn discovery_endpoints_and_page_sockets() {
    let (_turn, w, s) = shared();
    let key = common::session_key("cdp-discovery");
    let root = format!("/cdp/{key}");
    let v = w.get(&format!("{root}/json/version/"));
    assert_eq!(v.status, 200);
    assert_eq!(v.body["webSocketDebuggerUrl"], w.ws_url(&format!("{root}/devtools/browser")));
    // The upstream browser's own version and user agent, which clients read.
    let product = v.body["Browser"].as_str().unwrap_or_default();
    let agent = v.body["User-Agent"].as_str().unwrap_or_default();
    assert!(product.contains("Chrome/"), "{}", v.body);
    assert!(
        agent.starts_with("Mozilla/5.0")
            && agent.contains(&format!("Chrome/{}.", product.split(['/', '.']).nth(1).unwrap())),
        "{}",
        v.body
    );

    let page = format!("{}/site/index.html", s.origin());
    let created = w.request("PUT", &format!("{root}/json/new?{page}"), None);
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["webSocketDebuggerUrl"], w.ws_url(&format!("{root}/devtools/page/{id}")));
    let blank = w.get(&format!("{root}/json/new?about:blank"));
    assert_eq!(blank.status, 200, "older clients use GET");
    let blank_id = blank.body["id"].as_str().unwrap().to_owned();
    let list = w.get(&format!("{root}/json/list"));
    let ids: Vec<&str> = list.body.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&id.as_str()) && ids.contains(&blank_id.as_str()), "{ids:?}");

    // A page socket speaks to its tab without sessions, as chromium's own do.
    let mut ws = connect(created.body["webSocketDebuggerUrl"].as_str().unwrap());
    let mut title = Value::Null;
    for n in 1..50 {
        let r = call(
            &mut ws,
            n,
            "Runtime.evaluate",
            json!({"expression": "document.title", "returnByValue": true}),
        );
        assert!(r.get("sessionId").is_none(), "{r}");
        title = r["result"]["result"]["value"].clone();
        if title == "moltlog test page" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(title, "moltlog test page");
    ws.close(None).unwrap();
    for target in [&id, &blank_id] {
        let closed = w.get(&format!("{root}/json/close/{target}"));
        assert_eq!((closed.status, closed.bytes.as_slice()), (200, &b"Target is closing"[..]));
    }
    let events = w.wait_for(10, "both closes", || {
        let e = w.all_events(&key);
        (e.iter().filter(|e| e["action"] == "close_target").count() == 2).then_some(e)
    });
    let mut k = kinds(&events);
    k.sort_unstable();
    assert_eq!(k, ["close_target", "close_target", "create_target", "create_target", "evaluate"]);
    let eval = events.iter().find(|e| e["action"] == "evaluate").unwrap();
    assert_eq!((eval["target_id"].as_str(), eval["url"].as_str()), (Some(id.as_str()), Some(page.as_str())));
    s.wait_stats(10, "every upstream socket to close", |st| st["open"] == 0);
}

#[test]
fn a_client_disconnect_closes_the_upstream() {
    let (_turn, w, s) = shared();
    let key = common::session_key("cdp-disconnect");
    let url = w.ws_url(&format!("/cdp/{key}/devtools/browser"));
    // A clean close, then a dropped connection (no close frame: 1006 on the proxy's side).
    for abrupt in [false, true] {
        let mut ws = connect(&url);
        let v = call(&mut ws, 1, "Browser.getVersion", json!({}));
        assert!(v["result"]["product"].as_str().unwrap().contains("Chrome"), "{v}");
        s.wait_stats(10, "the upstream socket", |st| st["open"] == 1);
        if abrupt {
            drop(ws);
        } else {
            ws.close(None).unwrap();
            // The proxy completes the close handshake.
            let done = loop {
                match ws.read() {
                    Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break true,
                    Ok(_) => continue,
                    Err(_) => break false,
                }
            };
            assert!(done, "no close reply");
        }
        s.wait_stats(10, "the upstream socket to close", |st| st["open"] == 0);
    }
    // Both connections went to the session's one browser.
    assert_eq!(actions_until(w, &key, "raw_cdp").len(), 2);
}

#[test]
fn discovery_rides_on_an_open_browser_socket() {
    // Browser Rendering takes one connection per browser: while the agent is connected, the
    // discovery endpoints use its socket instead of opening another.
    let (_turn, w, s) = shared();
    let key = common::session_key("cdp-inject");
    let root = format!("/cdp/{key}");
    let mut ws = connect(&w.ws_url(&format!("{root}/devtools/browser")));
    call(&mut ws, 1, "Target.setDiscoverTargets", json!({"discover": true}));
    let total = s.stats()["total"].clone();
    let created = w.request("PUT", &format!("{root}/json/new?about:blank"), None);
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let list = w.get(&format!("{root}/json/list"));
    assert!(list.body.as_array().unwrap().iter().any(|t| t["id"] == id.as_str()), "{:?}", list.body);
    assert_eq!(w.get(&format!("{root}/json/close/{id}")).status, 200);
    assert_eq!(s.stats()["total"], total, "no other socket to the browser was opened");
    // The agent saw the tab come and go, and never an answer to a command it did not send.
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &Value| m["method"] == "Target.targetDestroyed") {
        let Message::Text(t) = ws.read().unwrap() else { continue };
        seen.push(serde_json::from_str(t.as_str()).unwrap());
    }
    assert!(seen.iter().all(|m| m.get("id").is_none()), "{seen:?}");
    assert!(seen.iter().any(|m| m["method"] == "Target.targetCreated"));
    ws.close(None).unwrap();
    let events = w.wait_for(10, "the recorded tab", || {
        let e = w.all_events(&key);
        (e.iter().filter(|e| e["action"] == "close_target" || e["action"] == "create_target").count() == 2)
            .then_some(e)
    });
    assert!(events.iter().any(|e| e["action"] == "create_target" && e["target_id"] == id.as_str()));
}

const BROWSER_TOKEN: &str = "cdp-browser-token-0123456789abcdef";
const READER_TOKEN: &str = "cdp-reader-token-0123456789abcdef";
const MASTER: &str = "cdp-master-secret-0123456789abcdef";

#[test]
fn credentials_in_the_query_and_the_plain_cdp_upstream() {
    let s = StandIn::start();
    let key = common::session_key("cdp-auth");
    let other = common::session_key("cdp-auth-other");
    let tokens = json!([
        {"name": "browser", "sha256": digest_hex(BROWSER_TOKEN), "scopes": [format!("session:{key}:browser")]},
        {"name": "reader", "sha256": digest_hex(READER_TOKEN), "scopes": [format!("session:{key}:read"), format!("session:{key}:append")]},
    ]);
    let vars = [
        ("MOLTLOG_DEV_MODE", "0".to_owned()),
        ("MOLTLOG_TOKENS", tokens.to_string()),
        ("MOLTLOG_CDP_SECRET", MASTER.to_owned()),
        ("CDP_UPSTREAM", format!("cdp:{}", s.chromium_url())),
    ];
    let w = Worker::start_with(Options {
        vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ..Options::default()
    });
    let version = |root: &str, query: &str| w.get(&format!("{root}/json/version{query}"));
    let root = format!("/cdp/{key}");
    let secret = session_secret::derive(MASTER, &SessionKey::parse(&key).unwrap());
    let others = session_secret::derive(MASTER, &SessionKey::parse(&other).unwrap());

    assert_eq!(version(&root, "").status, 401);
    assert_eq!(version(&root, "?token=nope").status, 401);
    assert_eq!(version(&root, &format!("?secret={others}")).status, 401, "another session's secret");
    assert_eq!(version(&root, "?secret=00").status, 401);
    assert_eq!(version(&root, &format!("?token={READER_TOKEN}")).status, 403, "reading is not driving");
    assert_eq!(version(&format!("/cdp/{other}"), &format!("?token={BROWSER_TOKEN}")).status, 403);
    // Query credentials count on the CDP routes only.
    assert_eq!(w.get(&format!("/v1/sessions/{key}/state?token={READER_TOKEN}")).status, 401);
    let ok = version(&root, &format!("?token={BROWSER_TOKEN}"));
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.body["webSocketDebuggerUrl"],
        w.ws_url(&format!("{root}/devtools/browser?token={BROWSER_TOKEN}"))
    );
    // A socket without the credential is refused at the handshake.
    let refused = tungstenite::connect(w.ws_url(&format!("{root}/devtools/browser?secret={others}")));
    match refused {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected a 401 handshake, got {:?}", other.map(|(_, r)| r.status())),
    }

    // Playwright with the secret in its endpoint URL: the query rides along onto the socket URL.
    let report = drive(&w.url(&format!("{root}?secret={secret}")), &s.origin(), "basic");
    assert_eq!(
        (report["button"].as_str(), report["input"].as_str()),
        (Some("clicked 1"), Some("hello moltlog"))
    );
    let events = w.wait_for(15, "the recording", || {
        let r = w.get_with(
            &format!("/v1/sessions/{key}/events?after=0&limit=100"),
            &[("authorization", &format!("Bearer {READER_TOKEN}"))],
        );
        let events = r.body["events"].as_array().cloned().unwrap_or_default();
        events.iter().any(|e| e["action"] == "raw_cdp").then_some(events)
    });
    assert_eq!(
        kinds(&events),
        ["create_target", "navigate", "click", "type", "evaluate", "screenshot", "close_target", "raw_cdp"]
    );
    assert!(events.iter().all(|e| e["actor"] == "runtime"));
}

/// `json/new` and `json/close` change state on GET, so a cross-site link or image must not reach
/// them with the Access cookie (such a GET has no `Origin`; `Sec-Fetch-Site` says cross-site).
#[test]
fn the_access_cookie_opens_no_tab_from_another_site() {
    let s = StandIn::start();
    let k1 = mint::TestKey::load(0, "k1");
    let jwks = JwksServer::start(&mint::jwks(&[&k1]));
    let mut vars = auth_vars(&jwks, 1500);
    vars.push(("CDP_UPSTREAM".into(), format!("cdp:{}", s.chromium_url())));
    let w = Worker::start_with(Options { vars, ..Options::default() });
    let key = common::session_key("cdp-cookie");
    let root = format!("/cdp/{key}");
    let cookie = ("cookie", format!("CF_Authorization={}", k1.sign(&mint::claims(now_s()))));
    let site = |v: &str| ("sec-fetch-site", v.to_owned());
    let get = |path: &str, headers: &[(&str, String)]| auth_support::call(&w, "GET", path, headers, b"");
    for path in [format!("{root}/json/new?about:blank"), format!("{root}/json/close/T1")] {
        assert_401(&get(&path, &[cookie.clone(), site("cross-site")]), &path);
        assert_401(&get(&path, &[cookie.clone(), site("same-site")]), &path);
    }
    // Reading stays open to the cookie from a link; the application's own page opens tabs.
    assert_eq!(get(&format!("{root}/json/version"), &[cookie.clone(), site("cross-site")]).status, 200);
    let opened = get(&format!("{root}/json/new?about:blank"), &[cookie, site("same-origin")]);
    assert_eq!(opened.status, 200, "{:?}", opened.body);
}
