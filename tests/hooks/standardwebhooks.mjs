// A Standard Webhooks receiver and sender with the reference library (npm `standardwebhooks`),
// for tests/e2e_hooks.rs. Reads a JSON array of jobs on stdin, writes a JSON array of results:
//   {"op":"verify","secret":"whsec_…","headers":{…},"body":"…"} -> {"ok":true} | {"ok":false,"error":"…"}
//   {"op":"sign","secret":"…","id":"msg_1","timestamp_s":1700000000,"body":"…"} -> {"signature":"v1,…"}
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Webhook } = require("standardwebhooks");

let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map((job) => {
  const wh = new Webhook(job.secret);
  if (job.op === "sign") {
    return { signature: wh.sign(job.id, new Date(job.timestamp_s * 1000), job.body) };
  }
  try {
    wh.verify(job.body, job.headers);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: String(e && e.message) };
  }
});
process.stdout.write(JSON.stringify(out));
