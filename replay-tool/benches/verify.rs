//! The figures of issue 5: `moltlog-replay verify` over a local bundle of 1,000,000 events of
//! ~280 bytes (a realistic agent session with compactions and a snapshot every 1000 events),
//! as throughput and peak memory; and the same for 100,000 events, to show that memory does not
//! grow with the log. Not a timed test: it prints, it does not judge.
//!
//! The real binary runs in its own process (so its peak RSS is its own, from `wait4`): once to
//! warm the page cache, then five times, the fastest reported (the machine is shared: other work
//! only ever slows a run down), with its CPU time beside the wall time. The bundles are built
//! once through core's engine (see `synth`) and kept under target/replay-bench/.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use moltlog_replay::synth::{self, Synth};

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("replay-bench")
}

const KEY: &str = "agent:main:telegram:chat:bench";

/// The bundle of `events` events, built if it is not there yet.
fn bundle(events: u64) -> PathBuf {
    // The name changes with what `synth` writes, so a stale bundle is never measured.
    let dir = bench_dir().join(format!("bundle-{events}-v2"));
    let done = dir.join("built");
    if done.exists() && !verifies(&dir) {
        // Built by an older core (its snapshots encode another state): build it again.
        eprintln!("{} no longer verifies with this build; rebuilding it", dir.display());
        let _ = std::fs::remove_file(&done);
    }
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("building a {events}-event bundle in {} (once)…", dir.display());
        let t = Instant::now();
        let s = Synth { events, batch: 1000, snapshot_every: 1000, compact_every: 200, ..Synth::default() };
        let built = synth::build(&dir, KEY, &s).expect("build the bundle");
        let mut m = moltlog_replay::layout::Manifest::new(KEY, "bundle", "benchmark");
        m.head = Some(moltlog_replay::layout::HeadJson::from_head(built.head));
        m.write(&dir).unwrap();
        std::fs::write(&done, format!("{}\n", built.head.seq)).unwrap();
        eprintln!("  built in {:.1} s", t.elapsed().as_secs_f64());
    }
    dir
}

/// Whether the bundle verifies (exit status 0).
fn verifies(dir: &Path) -> bool {
    Command::new(env!("CARGO_BIN_EXE_moltlog-replay"))
        .args(["verify", dir.to_str().unwrap(), "--no-blobs"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn dir_bytes(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            let (b, f) = dir_bytes(&e.path());
            bytes += b;
            files += f;
        } else {
            bytes += e.metadata().unwrap().len();
            files += 1;
        }
    }
    (bytes, files)
}

/// One run of `moltlog-replay verify DIR --json`.
struct Run {
    wall: f64,
    /// User + system CPU time of the process (both of its threads).
    cpu: f64,
    peak_rss_kib: i64,
    report: serde_json::Value,
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

fn verify(dir: &Path) -> Run {
    let t = Instant::now();
    // Reaped by `wait4` below, which also reports the child's peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_moltlog-replay"))
        .args(["verify", dir.to_str().unwrap(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run moltlog-replay");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.expect("stdout");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut out, &mut text).unwrap();
    let mut status = 0;
    // SAFETY: waiting for our own child, with valid pointers to locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r, pid, "wait4");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "verify failed:\n{text}");
    Run {
        wall: secs,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss,
        report: serde_json::from_str(&text).expect("a JSON report"),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and a debug build of this
    // would take minutes to say nothing useful.
    if !std::env::args().any(|a| a == "--bench") || std::env::var_os("MOLTLOG_BENCH_SKIP").is_some() {
        println!("verify benchmark: run it with `cargo bench -p moltlog-replay --bench verify`");
        return;
    }
    println!("moltlog-replay verify (the whole audit: chain, segments, snapshots byte for byte, blobs)");
    println!("best of 5 runs after a warm-up; the machine is shared, load average now {}", load_average());
    println!(
        "{:>10}  {:>8}  {:>8}  {:>6}  {:>8}  {:>8}  {:>8}  {:>13}  {:>13}  {:>9}",
        "events",
        "MB",
        "B/event",
        "files",
        "wall s",
        "median",
        "CPU s",
        "events/s",
        "events/CPU-s",
        "peak RSS"
    );
    for events in [100_000u64, 1_000_000] {
        let dir = bundle(events);
        let (bytes, files) = dir_bytes(&dir);
        let _ = verify(&dir); // warm the page cache
        let runs: Vec<Run> = (0..5).map(|_| verify(&dir)).collect();
        let best = runs.iter().min_by(|a, b| a.wall.total_cmp(&b.wall)).expect("five runs");
        let mut walls: Vec<f64> = runs.iter().map(|r| r.wall).collect();
        walls.sort_by(f64::total_cmp);
        let median = walls[walls.len() / 2];
        let records = best.report["records"].as_u64().unwrap();
        assert_eq!(best.report["ok"], true);
        println!(
            "{:>10}  {:>8.1}  {:>8.0}  {:>6}  {:>8.3}  {:>8.3}  {:>8.3}  {:>13.0}  {:>13.0}  {:>6.1} MB",
            records,
            bytes as f64 / 1e6,
            bytes as f64 / records as f64,
            files,
            best.wall,
            median,
            best.cpu,
            records as f64 / best.wall,
            records as f64 / best.cpu,
            runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        );
        let snaps = best.report["snapshots"]["checked"].as_array().map_or(0, Vec::len);
        println!("{:>10}  ({snaps} snapshots checked against the replayed state)", "");
    }
}
