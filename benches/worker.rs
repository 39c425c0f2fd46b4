//! Figures for the session engine on local workerd (issue "SessionDO"): prints them with the
//! machine they ran on. A benchmark, not a test: nothing here fails on a slow machine.
//!
//! `make bench` (or `cargo bench -p moltlog --bench worker`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Options, Worker, session_key};
use serde_json::{Value, json};

/// A chat message whose stored record is about 280 bytes.
fn event(i: usize) -> Value {
    json!({"kind":"chat_message","role":"user","author":"alice",
        "text": format!("{i:08} The quick brown fox jumps over the lazy dog while the agent reads the logs and plans its next tool call carefully; {}", "x".repeat(60))})
}

/// A minimal keep-alive HTTP/1.1 client: each request goes out in one write with TCP_NODELAY, so
/// the figures measure the server, not the client's buffering.
struct Client {
    stream: std::io::BufReader<std::net::TcpStream>,
    host: String,
}

impl Client {
    fn connect(w: &Worker) -> Client {
        let host = format!("127.0.0.1:{}", w.port);
        let stream = std::net::TcpStream::connect(&host).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client { stream: std::io::BufReader::new(stream), host }
    }

    /// POSTs JSON to `path`; returns the status once the whole answer is read.
    fn post(&mut self, path: &str, body: &str) -> u16 {
        use std::io::{BufRead, Read, Write};
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

fn fill(w: &Worker, key: &str, total: usize, batch: usize) -> Duration {
    fill_concurrently(w, key, total, batch, 1)
}

/// Appends `total` events in requests of `batch`, from `clients` threads at once.
fn fill_concurrently(w: &Worker, key: &str, total: usize, batch: usize, clients: usize) -> Duration {
    let path = format!("/v1/sessions/{key}/events");
    let requests: Vec<Vec<usize>> =
        (0..total).collect::<Vec<_>>().chunks(batch).map(<[usize]>::to_vec).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                let mut c = Client::connect(w);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(chunk) = requests.get(i) else { return };
                    let events: Vec<Value> = chunk.iter().map(|&i| event(i)).collect();
                    assert_eq!(c.post(&path, &json!({ "events": events }).to_string()), 201, "fill failed");
                }
            });
        }
    });
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Single-event appends from `clients` threads: (requests/s, p50, p99).
fn singles(w: &Worker, key: &str, clients: usize, per_client: usize) -> (f64, Duration, Duration) {
    let path = format!("/v1/sessions/{key}/events");
    let start = Instant::now();
    let mut lat: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|c| {
                let path = path.clone();
                s.spawn(move || {
                    let mut client = Client::connect(w);
                    (0..per_client)
                        .map(|i| {
                            let body = event(c * 1_000_000 + i).to_string();
                            let t = Instant::now();
                            assert_eq!(client.post(&path, &body), 201);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed();
    lat.sort();
    ((clients * per_client) as f64 / elapsed.as_secs_f64(), percentile(&lat, 0.5), percentile(&lat, 0.99))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0) / 1024 / 1024)
        })
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {mem} GiB RAM")
}

/// RSS of the workerd processes of this runtime, in MiB (peak and current).
fn workerd_rss(port: u16) -> (u64, u64) {
    let mut peak = 0;
    let mut now = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = entry.path();
        let Ok(cmd) = std::fs::read_to_string(p.join("cmdline")) else { continue };
        if cmd.contains("workerd")
            && cmd.contains(&format!("127.0.0.1:{port}"))
            && let Ok(status) = std::fs::read_to_string(p.join("status"))
        {
            let kb = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            peak += kb("VmHWM:") / 1024;
            now += kb("VmRSS:") / 1024;
        }
    }
    (peak, now)
}

/// CPU time (user + system, ms) used so far by every process of the runtime's process group.
fn runtime_cpu_ms(w: &Worker) -> u64 {
    let pgid = w.pgid();
    let tick_ms = 1000 / 100; // USER_HZ
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[2] = pgrp, f[11] = utime, f[12] = stime (fields 5, 14, 15 of stat).
        if f.len() > 12 && f[2].parse::<i32>().ok() == Some(pgid) {
            total += (f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)) * tick_ms;
        }
    }
    total
}

/// The same append loads against any Worker serving `POST /v1/sessions/{key}/events`.
struct Loads {
    batched: f64,
    batched_cpu_us: f64,
    batched_c4: f64,
    batched_1000: f64,
    singles: (f64, Duration, Duration),
}

fn loads(w: &Worker, tag: &str) -> Loads {
    let k = session_key(&format!("{tag}-batch"));
    // Warm up: V8 compiles wasm and JS in tiers, and the optimizing tier takes a few hundred
    // requests to kick in for every path; measure what a long-running object does.
    fill(w, &k, 20_000, 100);
    singles(w, &session_key(&format!("{tag}-warm")), 8, 50);
    let n = 20_000;
    let cpu0 = runtime_cpu_ms(w);
    let t = fill(w, &k, n, 100);
    let batched_cpu_us = (runtime_cpu_ms(w) - cpu0) as f64 * 1000.0 / n as f64;
    let batched = n as f64 / t.as_secs_f64();
    let batched_c4 =
        n as f64 / fill_concurrently(w, &session_key(&format!("{tag}-c4")), n, 100, 4).as_secs_f64();
    let batched_1000 = n as f64 / fill(w, &session_key(&format!("{tag}-1000")), n, 1000).as_secs_f64();
    let k2 = session_key(&format!("{tag}-single"));
    singles(w, &k2, 8, 20); // warm up
    let singles = singles(w, &k2, 8, 250);
    Loads { batched, batched_cpu_us, batched_c4, batched_1000, singles }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench --list
    }
    common::ensure_built();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("moltlog session engine on local workerd ({})", machine());
    println!("load average before: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let opts = Options { production_intervals: true, ..Options::default() };

    // The baseline: a minimal JavaScript Durable Object, same machine, same run.
    let baseline_main = common::repo().join("benches/baseline/worker.js");
    let baseline_config = format!(
        "name = \"baseline\"\nmain = {:?}\ncompatibility_date = \"2026-08-01\"\n\
         [[durable_objects.bindings]]\nname = \"LOG\"\nclass_name = \"Log\"\n\
         [[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Log\"]\n",
        baseline_main.display().to_string()
    );
    let base = Worker::start_with(Options { config: Some(baseline_config), ..opts.clone() });
    let b = loads(&base, "baseline");
    drop(base);

    let w = Worker::start_with(opts.clone());
    let m = loads(&w, "moltlog");

    // Append cost as the session grows: p50 at ~100 events vs at 50,000.
    let k3 = session_key("bench-flat");
    fill(&w, &k3, 100, 100);
    let (_, small_p50, _) = singles(&w, &k3, 1, 200);
    fill(&w, &k3, 50_000, 500);
    let (_, big_p50, _) = singles(&w, &k3, 1, 200);
    drop(w);

    // Cold rebuild of a 100,000-event session: evicted (memory dropped), then its first request.
    let w = Worker::start_with(opts);
    let k4 = session_key("bench-rebuild");
    fill(&w, &k4, 100_000, 500);
    let snap = w.post(&format!("/v1/sessions/{k4}/snapshot"), &json!({}));
    assert_eq!(snap.status, 201);
    fill(&w, &k4, 500, 500); // a tail after the snapshot, as in life
    let (_, rss_before) = workerd_rss(w.port);
    w.post(&format!("/__test/sessions/{k4}/evict"), &json!({}));
    let t = Instant::now();
    let info = w.get(&format!("/v1/sessions/{k4}"));
    let rebuild = t.elapsed();
    assert_eq!(info.status, 200);
    let (rss_peak, rss_after) = workerd_rss(w.port);
    let wasm = w.post(&format!("/__test/sessions/{k4}/memory"), &json!({})).body["wasm_memory_bytes"]
        .as_u64()
        .unwrap_or(0);
    // And with no snapshot at all: every event replayed.
    w.post(&format!("/__test/sessions/{k4}/drop-snapshots"), &json!({}));
    w.post(&format!("/__test/sessions/{k4}/evict"), &json!({}));
    let t = Instant::now();
    let full = w.get(&format!("/v1/sessions/{k4}"));
    let rebuild_full = t.elapsed();
    let wasm_full = w.post(&format!("/__test/sessions/{k4}/memory"), &json!({})).body["wasm_memory_bytes"]
        .as_u64()
        .unwrap_or(0);

    let (rps, p50, p99) = m.singles;
    let (brps, bp50, bp99) = b.singles;
    println!();
    println!("| figure | moltlog | baseline JS DO | target |");
    println!("|---|---|---|---|");
    println!(
        "| batched appends, 100/request, 1 client | {:.0} events/s | {:.0} events/s | >= 20,000 |",
        m.batched, b.batched
    );
    println!(
        "| batched appends, 100/request, 4 clients | {:.0} events/s | {:.0} events/s | >= 20,000 |",
        m.batched_c4, b.batched_c4
    );
    println!(
        "| batched appends, 1000/request, 1 client | {:.0} events/s | {:.0} events/s | |",
        m.batched_1000, b.batched_1000
    );
    println!(
        "| runtime CPU per batched event (workerd + wrangler) | {:.1} µs | {:.1} µs | |",
        m.batched_cpu_us, b.batched_cpu_us
    );
    println!("| single-event appends, concurrency 8 | {rps:.0} requests/s | {brps:.0} requests/s | >= 400 |");
    println!(
        "| single-event latency p50 / p99 | {:.1} / {:.1} ms | {:.1} / {:.1} ms | p99 <= 50 ms |",
        ms(p50),
        ms(p99),
        ms(bp50),
        ms(bp99)
    );
    println!(
        "| append p50 at 100 vs 50,000 events | {:.2} / {:.2} ms ({:.2}x) | | <= 1.2x |",
        ms(small_p50),
        ms(big_p50),
        ms(big_p50) / ms(small_p50)
    );
    println!(
        "| cold rebuild, 100,500 events (snapshot + 500 tail) | {:.0} ms | | <= 1,000 ms |",
        ms(rebuild)
    );
    println!(
        "| cold rebuild, 100,500 events, no snapshot (all replayed: {}) | {:.0} ms | | |",
        full.body["wake"]["replayed"],
        ms(rebuild_full)
    );
    println!(
        "| isolate wasm memory after the rebuilds (peak) | {:.1} / {:.1} MiB | | well under 128 MiB |",
        wasm as f64 / 1048576.0,
        wasm_full as f64 / 1048576.0
    );
    println!(
        "| workerd RSS before / after rebuild (peak) | {rss_before} / {rss_after} ({rss_peak}) MiB | | (whole runtime) |"
    );
    println!(
        "| info after rebuild | from snapshot {}, replayed {} | | |",
        info.body["wake"]["from_snapshot"], info.body["wake"]["replayed"]
    );
}
