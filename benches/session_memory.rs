//! Memory per session on local workerd (issue 10, item 4): 64 clients load 100 sessions with
//! the production background intervals; prints workerd's RSS (from /proc) per session under load,
//! per idle loaded session, and after the runtime evicted the idle objects, with the isolate's
//! Wasm memory. A benchmark, not a test: nothing here fails on a slow machine.
//!
//! `make bench` (or `cargo bench -p moltlog --bench session_memory`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Options, Worker, session_key};
use serde_json::{Value, json};

const SESSIONS: usize = 100;
const CLIENTS: usize = 64;
/// Appends per session, of `BATCH` events each.
const REQUESTS_PER_SESSION: usize = 20;
const BATCH: usize = 20;

/// A chat message whose stored record is about 300 bytes.
fn event(i: usize) -> Value {
    json!({"kind":"chat_message","role":"user","author":"alice",
        "text": format!("{i:08} The quick brown fox jumps over the lazy dog while the agent reads the logs and plans its next tool call; {}", "x".repeat(80))})
}

/// A minimal keep-alive HTTP/1.1 client (one write per request).
struct Client {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Client {
    fn connect(w: &Worker) -> Client {
        let host = format!("127.0.0.1:{}", w.port);
        let stream = TcpStream::connect(&host).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client { stream: BufReader::new(stream), host }
    }

    fn post(&mut self, path: &str, body: &str) -> u16 {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body.as_bytes());
        self.stream.get_mut().write_all(&req).expect("send");
        let mut line = String::new();
        self.stream.read_line(&mut line).expect("status line");
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut sink = vec![0u8; len];
        self.stream.read_exact(&mut sink).expect("body");
        status
    }
}

fn wasm_memory_bytes(w: &Worker, key: &str) -> u64 {
    w.post(&format!("/__test/sessions/{key}/memory"), &json!({})).body["wasm_memory_bytes"]
        .as_u64()
        .unwrap_or(0)
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; nothing to list here
    }
    let w = Worker::start_with(Options { production_intervals: true, ..Options::default() });
    let keys: Vec<String> = (0..SESSIONS).map(|_| session_key("mem")).collect();
    // Warm the runtime (JS and Wasm compiled, one object loaded) before the baseline.
    let probe = session_key("mem-probe");
    assert_eq!(w.append(&probe, &event(0)).status, 201);
    std::thread::sleep(Duration::from_secs(1));
    let baseline = w.workerd_rss_bytes();

    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(baseline);
    let total = SESSIONS * REQUESTS_PER_SESSION;
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(w.workerd_rss_bytes(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Client::connect(&w);
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= total {
                            return;
                        }
                        // Round robin: every session is busy for the whole run.
                        let key = &keys[i % SESSIONS];
                        let events: Vec<Value> = (0..BATCH).map(|j| event(i * BATCH + j)).collect();
                        let path = format!("/v1/sessions/{key}/events");
                        assert_eq!(c.post(&path, &json!({ "events": events }).to_string()), 201);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
    });
    let load_s = start.elapsed().as_secs_f64();
    let under_load = peak.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(2));
    let idle_loaded = w.workerd_rss_bytes();
    let wasm_loaded = wasm_memory_bytes(&w, &probe);
    // workerd evicts an idle object after about 10 s (its memory, not its storage).
    std::thread::sleep(Duration::from_secs(30));
    let evicted = w.workerd_rss_bytes();

    let per = |b: u64| mib(b.saturating_sub(baseline)) * 1024.0 / SESSIONS as f64;
    println!("## session memory on local workerd ({SESSIONS} sessions, {CLIENTS} clients)");
    println!("load: {} appends of {BATCH} events ({} events) in {load_s:.1} s", total, total * BATCH);
    println!("| figure | workerd RSS | per session |");
    println!("|---|---:|---:|");
    println!("| before the load (one warm session) | {:.1} MiB | |", mib(baseline));
    println!("| peak under load | {:.1} MiB | {:.0} KiB |", mib(under_load), per(under_load));
    println!(
        "| idle, all sessions loaded (2 s after) | {:.1} MiB | {:.0} KiB |",
        mib(idle_loaded),
        per(idle_loaded)
    );
    println!("| idle 30 s (objects evicted) | {:.1} MiB | {:.0} KiB |", mib(evicted), per(evicted));
    println!("isolate wasm memory (shared by the sessions of the isolate): {:.1} MiB", mib(wasm_loaded));
}
