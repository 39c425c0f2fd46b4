//! Prints moltlog-core's performance figures in one table, with the machine they were measured on.
//!
//! `cargo run --release -p moltlog-core --example figures` (the release profile is the Worker's:
//! opt-level "s" with LTO), or `cargo run --profile bench -p moltlog-core --example figures` for
//! the profile `cargo bench` uses. Criterion's statistics for the same operations are in
//! `benches/engine.rs`; this program gives the headline numbers in one place.
//!
//! - append: `Engine::append` into a `MemoryStore` (validate, fingerprint, encode, hash, seal,
//!   commit, fold into the state), one event per request and 100 per request;
//! - replay: `verify::Verifier` (decode, check the chain and digests, fold) and `Engine::rebuild`
//!   (the same through the store's paged reads) over a stored log;
//! - snapshot: a 10,000-message chat session, `Engine::snapshot` (Deflate) against the state as
//!   compact JSON (`dto::state_json`).

#[path = "../benches/support/workload.rs"]
mod workload;

use std::time::{Duration, Instant};

use moltlog_core::engine::{Engine, Limits};
use moltlog_core::verify::Verifier;
use workload::Shape;

/// Time this thread has spent on a CPU (Linux schedstat), if the kernel tells. On a shared machine
/// wall time also counts the time other processes held the CPU; on-CPU time does not.
fn on_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

/// One run's wall time and on-CPU time.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Option<Duration>,
}

/// Runs `f` `runs` times on fresh input from `setup` (not timed).
fn time<I>(runs: usize, mut setup: impl FnMut() -> I, mut f: impl FnMut(I)) -> Vec<Sample> {
    (0..runs)
        .map(|_| {
            let input = setup();
            let cpu = on_cpu();
            let start = Instant::now();
            f(input);
            let wall = start.elapsed();
            Sample { wall, cpu: cpu.zip(on_cpu()).map(|(a, b)| b.saturating_sub(a)) }
        })
        .collect()
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

struct Row {
    what: String,
    events: u64,
    bytes_per_event: f64,
    samples: Vec<Sample>,
}

impl Row {
    fn rate(&self, d: Duration) -> f64 {
        self.events as f64 / d.as_secs_f64()
    }

    fn wall(&self) -> Duration {
        median(self.samples.iter().map(|s| s.wall).collect())
    }

    fn best(&self) -> Duration {
        self.samples.iter().map(|s| s.wall).min().expect("runs")
    }

    fn cpu(&self) -> Option<Duration> {
        self.samples.iter().map(|s| s.cpu).collect::<Option<Vec<_>>>().map(median)
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let load_at_start = load_average();
    let runs = 7;
    let mut rows = Vec::new();
    for shape in [Shape::Chat280, Shape::Tool2K] {
        let n: u64 = match shape {
            Shape::Chat280 => 100_000,
            Shape::Tool2K => 30_000,
        };
        let (_, store) = workload::log(shape, n);
        let size = workload::stored_bytes(store.records());
        for batch in [1usize, 100] {
            let times = time(
                runs,
                || workload::requests(shape, n, batch, 42),
                |reqs| {
                    std::hint::black_box(workload::append_all(reqs));
                },
            );
            let what = format!(
                "append {}, {batch} event{} per request",
                shape.name(),
                if batch == 1 { "" } else { "s" }
            );
            rows.push(Row { what, events: n, bytes_per_event: size, samples: times });
        }
        let times = time(
            runs,
            || (),
            |()| {
                let mut v = Verifier::new(workload::SESSION);
                for r in store.records() {
                    v.push(&r.into()).expect("the log verifies");
                }
                std::hint::black_box(v.finish().expect("the log verifies"));
            },
        );
        rows.push(Row {
            what: format!("replay {} (Verifier)", shape.name()),
            events: n,
            bytes_per_event: size,
            samples: times,
        });
        let times = time(
            runs,
            || (),
            |()| {
                let rebuilt = Engine::rebuild(workload::key(), &store, Limits::default()).expect("rebuilds");
                std::hint::black_box(rebuilt);
            },
        );
        rows.push(Row {
            what: format!("replay {} (Engine::rebuild)", shape.name()),
            events: n,
            bytes_per_event: size,
            samples: times,
        });
    }

    let (engine, _) = workload::chat_session(10_000);
    let snapshot = engine.snapshot(workload::T0_MS);
    let json = serde_json::to_vec(&moltlog_core::dto::state_json(engine.state())).expect("state serializes");
    let state_bytes = moltlog_core::codec::encode(engine.state()).len();
    let snap_times = time(
        runs,
        || (),
        |()| {
            std::hint::black_box(engine.snapshot(workload::T0_MS));
        },
    );

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("moltlog-core figures");
    println!("machine: {} ({cores} cores available), {}", cpu_model(), std::env::consts::ARCH);
    println!(
        "build: {}",
        if cfg!(debug_assertions) { "DEBUG (figures meaningless; use --release)" } else { "optimized" }
    );
    println!("load average (1, 5, 15 min): {load_at_start} at start, {} at end", load_average());
    println!(
        "runs per figure: {runs}; events/s from the median run (wall clock, and this thread's on-CPU time)\n"
    );
    println!(
        "| operation | events | stored B/event | events/s (wall) | events/s (on-CPU) | best run events/s | MB/s (wall) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let cpu = r.cpu().map_or("n/a".to_owned(), |d| format!("{:.0}", r.rate(d)));
        println!(
            "| {} | {} | {:.0} | {:.0} | {cpu} | {:.0} | {:.1} |",
            r.what,
            r.events,
            r.bytes_per_event,
            r.rate(r.wall()),
            r.rate(r.best()),
            r.rate(r.wall()) * r.bytes_per_event / 1e6
        );
    }
    let ratio = snapshot.len() as f64 / json.len() as f64;
    println!();
    println!("| 10,000-message chat session | bytes |");
    println!("|---|---:|");
    println!("| state as compact JSON (dto::state_json) | {} |", json.len());
    println!("| state encoded (postcard, uncompressed) | {state_bytes} |");
    println!("| snapshot (Engine::snapshot, Deflate) | {} |", snapshot.len());
    println!("| snapshot / JSON | {ratio:.3} (target <= 0.5) |");
    let snap_ms = median(snap_times.iter().map(|s| s.wall).collect()).as_secs_f64() * 1e3;
    println!("| snapshot encode time (median) | {snap_ms:.1} ms |");
}
