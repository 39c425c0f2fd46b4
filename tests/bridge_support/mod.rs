//! Loopback stand-ins for the chat platforms' APIs and for webhook subscribers: small real HTTP
//! servers on 127.0.0.1 that speak enough of each wire format for the bridge, record every
//! request, and misbehave on command (an error status, 429 with Retry-After, no answer at all,
//! or an answer held back until the test releases it).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::Signer;
use serde_json::{Value, json};

/// A request as the stand-in received it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status the stand-in answered (0: no answer).
    pub answered: u16,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the stand-in answers.
#[derive(Clone, Debug)]
pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// No answer at all (the client times out).
    Hang,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string().into_bytes(),
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply::Respond { status, headers: vec![], body: format!("status {status}").into_bytes() }
    }

    pub fn too_many(retry_after_s: u32, body: Value) -> Reply {
        Reply::Respond {
            status: 429,
            headers: vec![
                ("retry-after".into(), retry_after_s.to_string()),
                ("content-type".into(), "application/json".into()),
            ],
            body: body.to_string().into_bytes(),
        }
    }
}

type App = Box<dyn FnMut(&Req) -> Reply + Send>;

struct Inner {
    log: Vec<Req>,
    /// Replies for the next requests, before the app is asked (the app does not see those).
    queue: VecDeque<Reply>,
    /// Answers wait while held (the app has already acted: the platform "did it").
    held: bool,
    app: App,
}

struct Shared {
    inner: Mutex<Inner>,
    cv: Condvar,
    stopped: AtomicBool,
}

/// One stand-in HTTP server.
pub struct Server {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Server {
    pub fn start(app: impl FnMut(&Req) -> Reply + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner { log: vec![], queue: VecDeque::new(), held: false, app: Box::new(app) }),
            cv: Condvar::new(),
            stopped: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        Server { port, shared }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.shared.inner.lock().unwrap().log.clone()
    }

    /// Requests whose path contains `part`.
    pub fn requests_to(&self, part: &str) -> Vec<Req> {
        self.requests().into_iter().filter(|r| r.path.contains(part)).collect()
    }

    /// The next request gets `reply` (the app does not see it).
    pub fn push(&self, reply: Reply) {
        self.shared.inner.lock().unwrap().queue.push_back(reply);
    }

    pub fn hold(&self) {
        self.shared.inner.lock().unwrap().held = true;
    }

    pub fn release(&self) {
        self.shared.inner.lock().unwrap().held = false;
        self.shared.cv.notify_all();
    }

    /// Waits until at least `n` requests to paths containing `part` arrived.
    pub fn wait_for(&self, n: usize, part: &str, secs: u64) -> Vec<Req> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.requests_to(part);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "stand-in got {} of {n} requests to {part}: {got:#?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.release();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut line = String::new();
    stream.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(len) = get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        stream.read_exact(&mut body).ok()?;
    } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            stream.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            stream.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(Req { method, path, headers, body, answered: 0 })
}

fn serve(stream: TcpStream, s: &Shared) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else { return };
    let reply = {
        let mut inner = s.inner.lock().unwrap();
        let reply = match inner.queue.pop_front() {
            Some(r) => r,
            None => (inner.app)(&req),
        };
        let answered = match &reply {
            Reply::Respond { status, .. } => *status,
            Reply::Hang => 0,
        };
        inner.log.push(Req { answered, ..req });
        reply
    };
    // Held: the request was taken (and acted on); its answer waits.
    {
        let mut inner = s.inner.lock().unwrap();
        while inner.held && !s.stopped.load(Ordering::SeqCst) {
            inner = s.cv.wait_timeout(inner, Duration::from_millis(100)).unwrap().0;
        }
    }
    let (status, headers, body) = match reply {
        Reply::Respond { status, headers, body } => (status, headers, body),
        Reply::Hang => {
            while !s.stopped.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                // The client gave up when its side of the connection is closed.
                let mut probe = [0u8; 1];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
                if matches!((&stream).read(&mut probe), Ok(0)) {
                    return;
                }
            }
            return;
        }
    };
    let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}

pub fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

static SNOWFLAKE_SEQ: AtomicU64 = AtomicU64::new(1);

/// A Discord snowflake id made `age_ms` ago, unique within the test process (its low bits
/// count), as Discord gives each interaction.
pub fn snowflake(age_ms: u64) -> String {
    const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
    let seq = SNOWFLAKE_SEQ.fetch_add(1, Ordering::SeqCst) & 0x3f_ffff;
    (((now_ms() - age_ms - DISCORD_EPOCH_MS) << 22) | seq).to_string()
}

// --- the platforms ---

/// Telegram Bot API: `sendMessage` answers with a new message id.
pub fn telegram() -> Server {
    let next = AtomicU64::new(100);
    Server::start(move |r| {
        if r.method == "POST" && r.path.ends_with("/sendMessage") {
            let id = next.fetch_add(1, Ordering::SeqCst);
            let chat = r.json()["chat_id"].clone();
            Reply::json(
                200,
                json!({"ok": true, "result": {"message_id": id, "chat": {"id": chat}, "text": r.json()["text"]}}),
            )
        } else {
            Reply::json(404, json!({"ok": false, "error_code": 404, "description": "Not Found"}))
        }
    })
}

/// Slack Web API: `chat.postMessage` keeps the message (with its metadata) so that
/// `conversations.history` / `.replies` can list it.
pub fn slack() -> (Server, Arc<Mutex<Vec<Value>>>) {
    let posted: Arc<Mutex<Vec<Value>>> = Arc::default();
    let p = posted.clone();
    let next = AtomicU64::new(1);
    let server = Server::start(move |r| {
        if r.header("authorization") != Some("Bearer xoxb-test") {
            return Reply::json(200, json!({"ok": false, "error": "invalid_auth"}));
        }
        if r.path.starts_with("/api/chat.postMessage") {
            let b = r.json();
            let ts = format!("{}.{:06}", now_s(), next.fetch_add(1, Ordering::SeqCst));
            let msg = json!({"ts": ts, "channel": b["channel"], "text": b["text"], "thread_ts": b["thread_ts"], "metadata": b["metadata"]});
            p.lock().unwrap().push(msg);
            Reply::json(200, json!({"ok": true, "channel": b["channel"], "ts": ts}))
        } else if r.path.starts_with("/api/conversations.history")
            || r.path.starts_with("/api/conversations.replies")
        {
            let channel = query(&r.path, "channel").unwrap_or_default();
            let msgs: Vec<Value> =
                p.lock().unwrap().iter().filter(|m| m["channel"] == channel.as_str()).cloned().collect();
            Reply::json(200, json!({"ok": true, "messages": msgs, "has_more": false}))
        } else {
            Reply::json(404, json!({"ok": false, "error": "unknown_method"}))
        }
    });
    (server, posted)
}

/// Discord API: channel messages de-duplicated on `nonce` when `enforce_nonce` is set, and the
/// interaction's original response, edited in place.
pub fn discord() -> (Server, Arc<Mutex<Vec<Value>>>) {
    let created: Arc<Mutex<Vec<Value>>> = Arc::default();
    let c = created.clone();
    let next = AtomicU64::new(9000);
    let server = Server::start(move |r| {
        let b = r.json();
        if r.method == "POST" && r.path.contains("/channels/") && r.path.ends_with("/messages") {
            if r.header("authorization") != Some("Bot discord-bot-token") {
                return Reply::json(401, json!({"message": "401: Unauthorized", "code": 0}));
            }
            let mut list = c.lock().unwrap();
            if b["enforce_nonce"] == true
                && let Some(m) = list.iter().find(|m| m["nonce"] == b["nonce"] && m["kind"] == "message")
            {
                return Reply::json(200, m.clone());
            }
            let id = next.fetch_add(1, Ordering::SeqCst).to_string();
            let m = json!({"kind": "message", "id": id, "content": b["content"], "nonce": b["nonce"], "path": r.path});
            list.push(m.clone());
            Reply::json(200, m)
        } else if r.method == "PATCH" && r.path.ends_with("/messages/@original") {
            let mut list = c.lock().unwrap();
            list.retain(|m| !(m["kind"] == "original" && m["path"] == r.path.as_str()));
            let m = json!({"kind": "original", "id": "orig", "content": b["content"], "path": r.path});
            list.push(m.clone());
            Reply::json(200, m)
        } else {
            Reply::json(404, json!({"message": "404: Not Found", "code": 0}))
        }
    });
    (server, created)
}

fn query(path: &str, name: &str) -> Option<String> {
    let q = path.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
}

// --- signing as the platforms do ---

pub fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

pub const SLACK_SECRET: &str = "slack-signing-secret";
pub const TELEGRAM_SECRET: &str = "telegram-webhook-secret";

pub fn slack_headers(body: &[u8], ts: u64) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let sig = format!("v0={}", hmac_hex(SLACK_SECRET.as_bytes(), &[b"v0:", ts.as_bytes(), b":", body]));
    vec![("x-slack-request-timestamp".into(), ts), ("x-slack-signature".into(), sig)]
}

/// The Discord application's key pair (fixed for the tests).
pub fn discord_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

pub fn discord_public_hex() -> String {
    hex::encode(discord_key().verifying_key().to_bytes())
}

pub fn discord_headers(body: &[u8], ts: &str) -> Vec<(String, String)> {
    let msg = [ts.as_bytes(), body].concat();
    let sig = discord_key().sign(&msg);
    vec![
        ("x-signature-timestamp".into(), ts.into()),
        ("x-signature-ed25519".into(), hex::encode(sig.to_bytes())),
    ]
}

/// The vars that point a Worker's bridge at the stand-ins.
pub fn bridge_vars(telegram: &Server, slack: &Server, discord: &Server) -> Vec<(String, String)> {
    [
        ("TELEGRAM_WEBHOOK_SECRET", TELEGRAM_SECRET.to_owned()),
        ("TELEGRAM_BOT_TOKEN", "123456:telegram-bot-token".into()),
        ("TELEGRAM_API_BASE", telegram.url()),
        ("SLACK_SIGNING_SECRET", SLACK_SECRET.into()),
        ("SLACK_BOT_TOKEN", "xoxb-test".into()),
        ("SLACK_API_BASE", format!("{}/api", slack.url())),
        ("DISCORD_PUBLIC_KEY", discord_public_hex()),
        ("DISCORD_BOT_TOKEN", "discord-bot-token".into()),
        ("DISCORD_API_BASE", format!("{}/api", discord.url())),
        ("OUTBOX_BACKOFF_BASE_MS", "200".into()),
        ("OUTBOX_BACKOFF_MAX_MS", "800".into()),
        ("OUTBOX_MAX_ATTEMPTS", "4".into()),
        ("OUTBOUND_TIMEOUT_MS", "2000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
