//! DirectoryDO: the list of sessions (key, created, last activity, head) for listing and the
//! admin UI. One instance; each SessionDO reports to it, throttled by its alarm.

use serde::Deserialize;
use serde_json::{Value, json};
use worker::{Env, Method, Request, RequestInit, Response, SqlStorageValue as V, State, durable_object};

use crate::http::ApiError;
use crate::rt;

pub const BINDING: &str = "DIRECTORY";
pub(crate) const INSTANCE: &str = "directory";

#[durable_object]
pub struct DirectoryDO {
    state: State,
    ready: std::cell::Cell<bool>,
}

#[derive(Deserialize)]
struct Entry {
    key: String,
    created_ms: u64,
    last_ts_ms: u64,
    head_seq: u64,
    head_hash: String,
}

fn int(v: u64) -> V {
    V::Integer(v as i64)
}

impl worker::DurableObject for DirectoryDO {
    fn new(state: State, _env: Env) -> Self {
        DirectoryDO { state, ready: std::cell::Cell::new(false) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        match self.handle(&mut req).await {
            Ok(r) => Ok(r),
            Err(e) => rt::error_response(&e),
        }
    }
}

impl DirectoryDO {
    fn sql(&self) -> worker::SqlStorage {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            let _ = sql.exec(
                "CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, created_ms INTEGER NOT NULL,
                 last_ts_ms INTEGER NOT NULL, head_seq INTEGER NOT NULL, head_hash TEXT NOT NULL, updated_ms INTEGER NOT NULL)",
                None,
            );
            self.ready.set(true);
        }
        sql
    }

    async fn handle(&self, req: &mut Request) -> Result<Response, ApiError> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/upsert") => {
                let e: Entry =
                    req.json().await.map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
                // Reports may arrive out of order: never move a session's head backwards.
                self.sql().exec(
                    "INSERT INTO sessions (key, created_ms, last_ts_ms, head_seq, head_hash, updated_ms) VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT(key) DO UPDATE SET last_ts_ms = excluded.last_ts_ms, head_seq = excluded.head_seq,
                     head_hash = excluded.head_hash, updated_ms = excluded.updated_ms WHERE excluded.head_seq >= sessions.head_seq",
                    Some(vec![V::String(e.key), int(e.created_ms), int(e.last_ts_ms), int(e.head_seq), V::String(e.head_hash), int(rt::now_ms())]),
                )?;
                Ok(rt::json(200, &json!({"ok": true}))?)
            }
            (Method::Get, "/list") => {
                let url = req.url()?;
                let q = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
                let prefix = q("prefix").unwrap_or_default();
                let after = q("after").unwrap_or_default();
                let limit = match q("limit") {
                    None => 100,
                    Some(l) => crate::http::param::parse_u64("limit", &l, 1..=1000)?,
                };
                let rows = self
                    .sql()
                    .exec(
                        "SELECT key, created_ms, last_ts_ms, head_seq, head_hash FROM sessions
                         WHERE key > ? AND substr(key, 1, length(?)) = ? ORDER BY key LIMIT ?",
                        Some(vec![
                            V::String(after),
                            V::String(prefix.clone()),
                            V::String(prefix),
                            int(limit),
                        ]),
                    )?
                    .to_array::<Value>()?;
                let sessions: Vec<Value> = rows
                    .into_iter()
                    .map(|r| json!({
                        "key": r["key"], "created_ms": r["created_ms"], "last_activity_ms": r["last_ts_ms"],
                        "head": {"seq": r["head_seq"], "hash": r["head_hash"]},
                    }))
                    .collect();
                let next_after = (sessions.len() as u64 == limit)
                    .then(|| sessions.last().map(|s| s["key"].clone()))
                    .flatten();
                Ok(rt::json(200, &json!({"sessions": sessions, "next_after": next_after}))?)
            }
            // The registry of webhook subscriptions for all sessions.
            (_, p) if p.starts_with("/subscriptions/") => {
                crate::hooks::registry::handle(&self.state, req).await
            }
            _ => Err(ApiError::new(404, "not_found", "unknown directory route")),
        }
    }
}

fn stub(env: &Env) -> worker::Result<worker::Stub> {
    env.durable_object(BINDING)?.id_from_name(INSTANCE)?.get_stub()
}

/// Records a session's latest head.
pub async fn upsert(env: &Env, entry: &Value) -> Result<(), ApiError> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(entry.to_string().into()));
    let req = Request::new_with_init("https://directory/upsert", &init)?;
    let resp = stub(env)?.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(ApiError::internal(format!("directory answered {}", resp.status_code())));
    }
    Ok(())
}

/// `GET /v1/sessions?prefix=&after=&limit=`.
pub async fn list(env: &Env, query: &str) -> Result<Response, ApiError> {
    let req = Request::new(&format!("https://directory/list?{query}"), Method::Get)?;
    Ok(stub(env)?.fetch_with_request(req).await?)
}
