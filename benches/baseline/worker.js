// Baseline for benches/worker.rs: a minimal Durable Object appending one JSON row per event.
export class Log {
  constructor(ctx) { this.ctx = ctx; ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS ev (seq INTEGER PRIMARY KEY, body TEXT)"); }
  async fetch(req) {
    const body = await req.json();
    const events = body.events ?? [body];
    let seq = this.ctx.storage.sql.exec("SELECT coalesce(max(seq),0) AS s FROM ev").one().s;
    const first = seq + 1;
    for (const e of events) { seq++; this.ctx.storage.sql.exec("INSERT INTO ev (seq, body) VALUES (?, ?)", seq, JSON.stringify(e)); }
    return Response.json({ first_seq: first, last_seq: seq }, { status: 201 });
  }
}
export default {
  async fetch(req, env) {
    if (new URL(req.url).pathname === "/healthz") return Response.json({ ok: true });
    const key = new URL(req.url).pathname.split("/")[3];
    return env.LOG.get(env.LOG.idFromName(key)).fetch(req);
  }
};
