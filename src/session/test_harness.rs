//! Test-only routes (feature `test-harness`; production builds do not contain them): run the
//! store conformance suite against real Durable Object SQLite, simulate lost memory or lost
//! storage, and read, overwrite or delete a raw R2 object (to damage the archive).

use moltlog_core::key::SessionKey;
use moltlog_core::store::conformance;
use serde_json::json;
use worker::{Env, Method, Request, Response};

use super::SessionDO;
use super::sql_store::SqlStore;
use crate::http::ApiError;
use crate::rt;

pub(super) async fn handle(so: &SessionDO, key: &SessionKey, what: &str) -> Result<Response, ApiError> {
    let op = what.rsplit('/').next().unwrap_or("");
    match op {
        "conformance" => {
            let storage = so.state.storage();
            *so.live.borrow_mut() = None;
            let mut fresh = || {
                let s = SqlStore::open(&storage).expect("open store");
                s.wipe().expect("wipe store");
                SqlStore::open(&storage).expect("reopen store")
            };
            let result = conformance::run(&mut fresh);
            fresh();
            match result {
                Ok(passed) => Ok(rt::json(200, &json!({"ok": true, "passed": passed}))?),
                Err(f) => Ok(rt::json(200, &json!({"ok": false, "check": f.check, "detail": f.detail}))?),
            }
        }
        // Memory lost: the next request rebuilds from storage.
        "evict" => {
            *so.live.borrow_mut() = None;
            Ok(rt::json(200, &json!({"evicted": key.as_str()}))?)
        }
        // Storage lost: the next request recovers from the R2 archive.
        "wipe" => {
            *so.live.borrow_mut() = None;
            SqlStore::open(&so.state.storage())
                .and_then(|s| s.wipe())
                .map_err(|e| ApiError::internal(e.to_string()))?;
            so.state.storage().delete_alarm().await?;
            Ok(rt::json(200, &json!({"wiped": key.as_str()}))?)
        }
        // The R2 copies of every blob the log references deleted (a dangling reference, for the
        // export's failure trailer).
        "delete-blobs" => {
            let refs =
                so.with_live(|l| l.store.blob_refs().map_err(|e| ApiError::internal(e.to_string())))?;
            let bucket = so.env.bucket(rt::BUCKET)?;
            let mut deleted = Vec::new();
            for (sha256, _, _) in refs {
                let key = moltlog_core::engine::blob_object_key(&sha256);
                bucket.delete(key.clone()).await?;
                deleted.push(key);
            }
            Ok(rt::json(200, &json!({"deleted": deleted}))?)
        }
        // Raw SHA-256 speed inside the isolate (20 MiB).
        "bench-sha" => {
            let buf = vec![7u8; 1 << 20];
            let mut acc = [0u8; 32];
            for _ in 0..20 {
                let h = moltlog_core::chain::sha256(&buf);
                acc[0] ^= h[0];
            }
            Ok(rt::json(200, &json!({"x": acc[0]}))?)
        }
        // All local snapshots gone: the next wake replays the whole log.
        "drop-snapshots" => {
            use moltlog_core::store::LogStore;
            let mut store =
                SqlStore::open(&so.state.storage()).map_err(|e| ApiError::internal(e.to_string()))?;
            store.prune_snapshots_before(i64::MAX as u64).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(rt::json(200, &json!({"dropped": true}))?)
        }
        // The isolate's wasm linear memory (it never shrinks: this is its peak).
        "memory" => {
            use wasm_bindgen::JsCast;
            let bytes = wasm_bindgen::memory()
                .dyn_into::<js_sys::WebAssembly::Memory>()
                .map(|m| m.buffer().dyn_into::<js_sys::ArrayBuffer>().map(|b| b.byte_length()).unwrap_or(0))
                .unwrap_or(0);
            Ok(rt::json(200, &json!({"wasm_memory_bytes": bytes}))?)
        }
        // Profiling aids: the engine alone (memory store), or the engine on this object's SQLite.
        "bench-core" | "bench-sql" | "bench-parse" => {
            use moltlog_core::store::MemoryStore;
            use moltlog_core::{Actor, AppendRequest, Engine, Limits, Now};
            let text = format!(
                "{} {}",
                "The quick brown fox jumps over the lazy dog while the agent reads",
                "x".repeat(120)
            );
            let body = serde_json::json!({"events": (0..100).map(|i| json!({"kind":"chat_message","role":"user","author":"alice","text":format!("{i} {text}")})).collect::<Vec<_>>()}).to_string();
            let k = SessionKey::parse("bench:core").map_err(|e| ApiError::internal(e.to_string()))?;
            let mut engine = Engine::new(k, Limits::default());
            let mut mem = MemoryStore::new();
            let mut sql =
                SqlStore::open(&so.state.storage()).map_err(|e| ApiError::internal(e.to_string()))?;
            for i in 0..20u64 {
                let input = moltlog_core::dto::parse_append(body.as_bytes())?;
                if op == "bench-parse" {
                    continue;
                }
                let req = AppendRequest {
                    actor: Actor::Runtime,
                    events: input.events,
                    expected_seq: None,
                    idempotency_key: None,
                };
                let now = Now { now_ms: 1_700_000_000_000 + i, entropy: 7 };
                if op == "bench-core" {
                    engine.append(&mut mem, req, now).map_err(ApiError::from)?;
                } else {
                    engine.append(&mut sql, req, now).map_err(ApiError::from)?;
                }
            }
            if op == "bench-sql" {
                sql.wipe().map_err(|e| ApiError::internal(e.to_string()))?;
            }
            Ok(rt::json(200, &json!({"events": engine.head().seq}))?)
        }
        _ => Err(ApiError::new(404, "not_found", format!("unknown test operation {op:?}"))),
    }
}

/// `GET|PUT|DELETE /__test/r2/object?key=K`: the raw object at K (PUT overwrites: that is the
/// point, archive keys are otherwise never overwritten).
pub(crate) async fn r2_object(req: &mut Request, env: &Env) -> Result<Response, ApiError> {
    let url = req.url()?;
    let key = url
        .query_pairs()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::bad_request("bad_query", "key is required"))?;
    let bucket = env.bucket(rt::BUCKET)?;
    match req.method() {
        Method::Get => match rt::get_bytes(&bucket, &key).await? {
            Some(bytes) => Ok(rt::bytes_response(bytes, "application/octet-stream")?),
            None => Err(ApiError::new(404, "not_found", format!("no object {key}"))),
        },
        Method::Put => {
            let bytes = req.bytes().await?;
            let len = bytes.len();
            bucket.put(&key, bytes).execute().await?;
            Ok(rt::json(200, &json!({"key": key, "size": len}))?)
        }
        Method::Delete => {
            bucket.delete(&key).await?;
            Ok(rt::json(200, &json!({"deleted": key}))?)
        }
        _ => Err(ApiError::new(405, "method_not_allowed", "use GET, PUT or DELETE")),
    }
}
