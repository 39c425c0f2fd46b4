//! TEST-ONLY support for the access-control end-to-end tests: a loopback JWKS server standing in
//! for `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`, tokens, and requests that
//! carry credentials and show the challenge header.
#![allow(dead_code)]

pub mod mint;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::Worker;

pub fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Serves a JWKS on 127.0.0.1 from a thread, counting fetches; the keys can be swapped.
pub struct JwksServer {
    pub port: u16,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl JwksServer {
    pub fn start(jwks: &Value) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = Arc::new(Mutex::new(jwks.to_string()));
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, h, s) = (body.clone(), hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let body = b.lock().unwrap().clone();
                let _ = respond(conn, &body);
            }
        });
        JwksServer { port, body, hits, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/cdn-cgi/access/certs", self.port)
    }

    /// Serves `jwks` from now on.
    pub fn serve(&self, jwks: &Value) {
        *self.body.lock().unwrap() = jwks.to_string();
    }

    /// How many times the JWKS was fetched.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
    }
}

fn respond(conn: TcpStream, body: &str) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear(); // skip the request head up to the blank line
    }
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Machine tokens of the tests: (plain token, name, scopes).
pub const ADMIN: &str = "test-admin-5d1e9b0c7a";
pub const AUDIT: &str = "test-audit-8c2f41aa09";
/// May append to and read `agent:own:*`.
pub const OWN: &str = "test-own-3b7e55d2f1";
/// May append to and read `agent:other:*` only.
pub const OTHER: &str = "test-other-e04a9c6b13";

pub fn token_scopes() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (ADMIN, "admin", vec!["admin"]),
        (AUDIT, "auditor", vec!["audit:read"]),
        (OWN, "runtime-own", vec!["session:agent:own:*:append", "session:agent:own:*:read"]),
        (OTHER, "runtime-other", vec!["session:agent:other:*:append", "session:agent:other:*:read"]),
    ]
}

/// `MOLTLOG_TOKENS` for [`token_scopes`]: digests only.
pub fn tokens_config() -> String {
    let list: Vec<Value> = token_scopes()
        .into_iter()
        .map(|(t, name, scopes)| json!({"name": name, "sha256": moltlog::auth::token::digest_hex(t), "scopes": scopes}))
        .collect();
    Value::Array(list).to_string()
}

/// Worker variables for Access (against `jwks`) and the test tokens, dev mode off.
pub fn auth_vars(jwks: &JwksServer, refetch_ms: u64) -> Vec<(String, String)> {
    [
        ("MOLTLOG_DEV_MODE", "0".to_owned()),
        ("ACCESS_TEAM_DOMAIN", "moltlog-test.cloudflareaccess.com".to_owned()),
        ("ACCESS_AUD", format!("some-other-app,{}", mint::AUD)),
        ("ACCESS_JWKS_URL", jwks.url()),
        ("ACCESS_JWKS_REFETCH_MS", refetch_ms.to_string()),
        ("MOLTLOG_TOKENS", tokens_config()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A reply with the challenge header.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub challenge: Option<String>,
    pub body: Value,
}

/// `method path` with `headers` and `body`.
pub fn call(w: &Worker, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
    let mut req = ureq::http::Request::builder().method(method).uri(w.url(path));
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut resp = agent.run(req.body(body.to_vec()).unwrap()).expect("HTTP request");
    let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or_default().to_owned());
    let bytes = resp.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap_or_default();
    Answer {
        status: resp.status().as_u16(),
        challenge,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

pub fn access(jwt: &str) -> (&'static str, String) {
    ("cf-access-jwt-assertion", jwt.to_owned())
}

/// Asserts a 401 with the challenge and a body that names no check.
pub fn assert_401(a: &Answer, what: &str) {
    assert_eq!(a.status, 401, "{what}: {:?}", a.body);
    assert_eq!(a.challenge.as_deref(), Some("Bearer realm=\"moltlog\""), "{what}");
    assert_eq!(
        a.body,
        json!({"error": {"code": "unauthenticated", "message": "missing or invalid credentials"}}),
        "{what}"
    );
}
