// Drives a browser over CDP with playwright-core the way an agent does, and reports what the
// page did, as JSON on stdout. The end-to-end tests run it through moltlog's CDP proxy and
// directly against chromium, and compare.
//
//   node drive.mjs ENDPOINT SITE_ORIGIN [basic|big]
//     ENDPOINT     what connectOverCDP gets (http(s) base, query kept, or ws URL)
//     SITE_ORIGIN  where the test pages are served (/site/index.html, /site/big.html)
import { createHash } from "node:crypto";
import { chromium } from "playwright-core";

const [endpoint, site, mode = "basic"] = process.argv.slice(2);
const t0 = Date.now();
const ms = () => Date.now() - t0;
const out = { mode, steps: {} };
const step = async (name, f) => {
  const start = ms();
  const v = await f();
  out.steps[name] = ms() - start;
  return v;
};

const browser = await step("connect", () => chromium.connectOverCDP(endpoint, { timeout: 30000 }));
const context = browser.contexts()[0] ?? (await browser.newContext());
const page = await step("new_page", () => context.newPage());

if (mode === "basic") {
  await step("navigate", () => page.goto(`${site}/site/index.html`));
  out.title = await page.title();
  await step("click", () => page.click("#b"));
  out.button = await page.textContent("#b");
  await step("type", () => page.locator("#i").pressSequentially("hello moltlog"));
  await page.keyboard.press("Enter");
  out.input = await page.inputValue("#i");
  out.evaluated = await step("evaluate", () => page.evaluate(() => document.querySelector("h1").textContent));
  const cdp = await context.newCDPSession(page);
  const r = await step("runtime_evaluate", () => cdp.send("Runtime.evaluate", { expression: "6 * 7", returnByValue: true }));
  out.runtime_evaluate = r.result.value;
  await cdp.detach();
  const png = await step("screenshot", () => page.screenshot());
  out.screenshot = {
    bytes: png.length,
    sha256: createHash("sha256").update(png).digest("hex"),
    png: png.subarray(0, 8).toString("hex") === "89504e470d0a1a0a",
  };
} else if (mode === "big") {
  await step("navigate", () => page.goto(`${site}/site/big.html`));
  await page.waitForFunction(() => document.title === "noise ready");
  const png = await step("screenshot", () => page.screenshot({ fullPage: true }));
  out.screenshot = {
    bytes: png.length,
    sha256: createHash("sha256").update(png).digest("hex"),
    png: png.subarray(0, 8).toString("hex") === "89504e470d0a1a0a",
  };
}

await step("close_page", () => page.close());
await step("close", () => browser.close());
out.total_ms = ms();
process.stdout.write(JSON.stringify(out) + "\n");
