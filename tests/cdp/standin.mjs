// A loopback stand-in for Cloudflare's Browser Rendering binding, in front of local headless
// Debian chromium, for the end-to-end tests (miniflare's own browser binding downloads Chrome).
//
// Speaks the binding's devtools protocol as @cloudflare/puppeteer >= 1.1 does:
//   POST /v1/devtools/browser?keep_alive=MS      -> {"sessionId": "..."}   (acquire)
//   GET  /v1/devtools/browser/{sessionId}        WebSocket upgrade, plain text frames
// The upgrade is passed through to chromium's browser socket byte for byte (TCP pipe), with
// the Host chromium wants and without Origin (chromium refuses foreign origins).
// Also: GET /site/* serves the test pages, GET /__stats counts sockets (open, total).
//
// With CHROMIUM_PORT set it fronts that chromium (the Rust tests start chromium themselves, so
// that it dies with them); without, it starts its own and takes it down when stdin closes.
// Prints {"port":P,"chromium":Q} on stdout once chromium answers; exits when stdin closes.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";

const chromiumBin = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = process.env.CHROMIUM_PORT ? null : mkdtempSync(path.join(os.tmpdir(), "moltlog-chromium-"));

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let shuttingDown = false;
let chromium = null;
let chromiumLog = "";
const cdpPort = process.env.CHROMIUM_PORT ? Number(process.env.CHROMIUM_PORT) : await freePort();
if (!process.env.CHROMIUM_PORT) {
  chromium = spawn(
    chromiumBin,
    [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
      `--user-data-dir=${profile}`, "--remote-debugging-address=127.0.0.1",
      `--remote-debugging-port=${cdpPort}`, "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  chromium.stderr.on("data", (d) => { chromiumLog = (chromiumLog + d).slice(-4000); });
  chromium.on("exit", (code) => {
    if (!shuttingDown) {
      console.error(`chromium exited (${code}):\n${chromiumLog}`);
      process.exit(1);
    }
  });
}

function shutdown() {
  shuttingDown = true;
  try { chromium?.kill("SIGKILL"); } catch {}
  try { if (profile) rmSync(profile, { recursive: true, force: true }); } catch {}
  process.exit(0);
}
process.stdin.on("end", shutdown);
process.stdin.on("close", shutdown);
process.stdin.resume();
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

async function browserPath() {
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${cdpPort}/json/version`);
      const j = await r.json();
      return new URL(j.webSocketDebuggerUrl).pathname;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`chromium did not start: ${e}\n${chromiumLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
const wsPath = await browserPath();

const sessions = new Set();
const stats = { open: 0, total: 0, acquired: 0 };

const pages = {
  "/site/index.html": `<!doctype html><html><head><title>moltlog test page</title></head>
<body style="margin:0;font:16px sans-serif">
<h1 id="h">Hello from the test page</h1>
<button id="b" style="position:absolute;left:40px;top:100px;width:160px;height:40px"
  onclick="this.textContent='clicked ' + (++window.clicks)">click me</button>
<input id="i" style="position:absolute;left:40px;top:180px;width:300px" value="">
<script>window.clicks = 0;</script>
</body></html>`,
  "/site/big.html": `<!doctype html><html><head><title>noise</title></head><body style="margin:0">
<canvas id="c" width="1280" height="1600"></canvas>
<script>
// Random pixels: a PNG that does not compress, several MB in one CDP message.
const c = document.getElementById('c'), g = c.getContext('2d');
const img = g.createImageData(c.width, c.height);
for (let i = 0; i < img.data.length; i += 65536) crypto.getRandomValues(img.data.subarray(i, i + 65536));
for (let i = 3; i < img.data.length; i += 4) img.data[i] = 255;
g.putImageData(img, 0, 0);
document.title = 'noise ready';
</script></body></html>`,
};

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (req.method === "POST" && url.pathname === "/v1/devtools/browser") {
    const id = randomUUID();
    sessions.add(id);
    stats.acquired++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ sessionId: id }));
    return;
  }
  if (req.method === "GET" && url.pathname === "/__stats") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.method === "GET" && pages[url.pathname]) {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(pages[url.pathname]);
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found");
});

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://x");
  const m = url.pathname.match(/^\/v1\/devtools\/browser\/([^/]+)$/);
  if (!m || !sessions.has(m[1])) {
    socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  const upstream = net.connect(cdpPort, "127.0.0.1", () => {
    const lines = [`GET ${wsPath} HTTP/1.1`, `Host: 127.0.0.1:${cdpPort}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i].toLowerCase();
      if (k === "host" || k === "origin") continue;
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    upstream.write(lines.join("\r\n") + "\r\n\r\n");
    if (head && head.length) upstream.write(head);
    stats.open++;
    stats.total++;
    let counted = true;
    const done = () => {
      if (counted) { counted = false; stats.open--; }
      socket.destroy();
      upstream.destroy();
    };
    upstream.pipe(socket);
    socket.pipe(upstream);
    upstream.on("close", done);
    socket.on("close", done);
    upstream.on("error", done);
    socket.on("error", done);
  });
  upstream.on("error", () => socket.destroy());
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, chromium: cdpPort }) + "\n");
});
