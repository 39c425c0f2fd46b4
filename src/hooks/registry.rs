//! The registry of subscriptions for all sessions, kept in the directory Durable Object (one
//! instance, already the place that knows every session). The Worker serves
//! `/v1/subscriptions` from it; each session reads the list (secrets included) and caches it for
//! `SUBSCRIPTIONS_CACHE_MS`, so a new or deleted subscription reaches every session within that.

use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{Env, Method, Request, RequestInit, Response, SqlStorageValue as V, State};

use super::config::HooksConfig;
use super::subscription::{self as sub, Fresh, Scope, Subscription, SubscriptionError};
use crate::api::route::Route;
use crate::http::ApiError;
use crate::rt;

/// A subscription as the registry stores and lists it.
#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    url: String,
    secret: String,
    kinds: String,
    prefix: String,
    created_ms: u64,
}

impl From<&Subscription> for Stored {
    fn from(s: &Subscription) -> Stored {
        let prefix = match &s.scope {
            Scope::All { prefix } => prefix.clone(),
            Scope::Session => String::new(),
        };
        Stored {
            id: s.id.clone(),
            url: s.url.clone(),
            secret: s.secret.clone(),
            kinds: s.kinds_text(),
            prefix,
            created_ms: s.created_ms,
        }
    }
}

impl From<Stored> for Subscription {
    fn from(s: Stored) -> Subscription {
        Subscription {
            kinds: Subscription::kinds_from_text(&s.kinds),
            id: s.id,
            url: s.url,
            secret: s.secret,
            scope: Scope::All { prefix: s.prefix },
            created_ms: s.created_ms,
        }
    }
}

fn sub_err(e: SubscriptionError) -> ApiError {
    ApiError::new(e.status(), e.code(), e.to_string())
}

// --- inside the directory Durable Object ---

fn table(state: &State) -> worker::Result<worker::SqlStorage> {
    let sql = state.storage().sql();
    sql.exec(
        "CREATE TABLE IF NOT EXISTS hook_subscriptions (id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,
         kinds TEXT NOT NULL, prefix TEXT NOT NULL, created_ms INTEGER NOT NULL)",
        None,
    )?;
    Ok(sql)
}

/// The registry's internal routes (`/subscriptions/…` on the directory object).
pub async fn handle(state: &State, req: &mut Request) -> Result<Response, ApiError> {
    let sql = table(state)?;
    match (req.method(), req.path().as_str()) {
        (Method::Get, "/subscriptions/list") => {
            let text = |v: &V| match v {
                V::String(s) => s.clone(),
                _ => String::new(),
            };
            let rows: Vec<Stored> = sql
                .exec("SELECT id, url, secret, kinds, prefix, created_ms FROM hook_subscriptions ORDER BY created_ms, id", None)?
                .raw()
                .map(|r| {
                    let r = r?;
                    Ok(Stored {
                        id: text(&r[0]),
                        url: text(&r[1]),
                        secret: text(&r[2]),
                        kinds: text(&r[3]),
                        prefix: text(&r[4]),
                        created_ms: match r[5] {
                            V::Integer(i) => i.max(0) as u64,
                            V::Float(f) => f.max(0.0) as u64,
                            _ => 0,
                        },
                    })
                })
                .collect::<worker::Result<_>>()?;
            Ok(rt::json(200, &json!({"subscriptions": rows}))?)
        }
        (Method::Post, "/subscriptions/put") => {
            let s: Stored =
                req.json().await.map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
            sql.exec(
                "INSERT INTO hook_subscriptions (id, url, secret, kinds, prefix, created_ms) VALUES (?, ?, ?, ?, ?, ?)",
                Some(vec![
                    V::String(s.id),
                    V::String(s.url),
                    V::String(s.secret),
                    V::String(s.kinds),
                    V::String(s.prefix),
                    V::Integer(s.created_ms as i64),
                ]),
            )?;
            Ok(rt::json(201, &json!({"ok": true}))?)
        }
        (Method::Post, "/subscriptions/delete") => {
            let id = req.text().await?;
            let n = sql
                .exec("DELETE FROM hook_subscriptions WHERE id = ?", Some(vec![V::String(id)]))?
                .rows_written();
            Ok(rt::json(200, &json!({"deleted": n > 0}))?)
        }
        _ => Err(ApiError::new(404, "not_found", "unknown registry route")),
    }
}

// --- clients: the Worker and the sessions ---

async fn call(env: &Env, path: &str, method: Method, body: Option<String>) -> Result<Response, ApiError> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(b) = body {
        init.with_body(Some(b.into()));
    }
    let req = Request::new_with_init(&format!("https://directory{path}"), &init)?;
    let stub = env
        .durable_object(crate::directory::BINDING)?
        .id_from_name(crate::directory::INSTANCE)?
        .get_stub()?;
    Ok(stub.fetch_with_request(req).await?)
}

/// Every subscription for all sessions, secrets included (for the sessions that deliver).
pub async fn list(env: &Env) -> Result<Vec<Subscription>, ApiError> {
    #[derive(Deserialize)]
    struct List {
        subscriptions: Vec<Stored>,
    }
    let mut resp = call(env, "/subscriptions/list", Method::Get, None).await?;
    if resp.status_code() != 200 {
        return Err(ApiError::internal(format!("the registry answered {}", resp.status_code())));
    }
    let l: List = resp.json().await?;
    Ok(l.subscriptions.into_iter().map(Subscription::from).collect())
}

/// `/v1/subscriptions` and `/v1/subscriptions/{id}` (served by the Worker).
pub async fn public(req: &mut Request, env: &Env, route: Route) -> Result<Response, ApiError> {
    let cfg = HooksConfig::from_vars(|n| env.var(n).ok().map(|v| v.to_string()))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match (route, req.method()) {
        (Route::Subscriptions, Method::Post) => {
            let body = crate::http::body::read(req, crate::http::body::MAX_SUBSCRIPTION_BODY_BYTES).await?;
            let fresh =
                Fresh { id: rt::entropy(), secret: [rt::entropy(), rt::entropy()], now_ms: rt::now_ms() };
            let s = sub::parse_create(&body, true, cfg.url_policy(), fresh).map_err(sub_err)?;
            let stored =
                serde_json::to_string(&Stored::from(&s)).map_err(|e| ApiError::internal(e.to_string()))?;
            let resp = call(env, "/subscriptions/put", Method::Post, Some(stored)).await?;
            if resp.status_code() != 201 {
                return Err(ApiError::internal(format!("the registry answered {}", resp.status_code())));
            }
            Ok(rt::json(201, &s.to_json(true))?)
        }
        (Route::Subscriptions, _) => {
            let list: Vec<_> = list(env).await?.iter().map(|s| s.to_json(false)).collect();
            Ok(rt::json(200, &json!({"subscriptions": list}))?)
        }
        (Route::Subscription(id), Method::Delete) => {
            let mut resp = call(env, "/subscriptions/delete", Method::Post, Some(id.clone())).await?;
            let v: serde_json::Value = resp.json().await?;
            if v["deleted"] != true {
                return Err(sub_err(SubscriptionError::NotFound(id)));
            }
            Ok(rt::json(200, &json!({"deleted": true, "id": id}))?)
        }
        (Route::Subscription(id), _) => {
            let s = list(env)
                .await?
                .into_iter()
                .find(|s| s.id == id)
                .ok_or_else(|| sub_err(SubscriptionError::NotFound(id)))?;
            Ok(rt::json(200, &s.to_json(false))?)
        }
        _ => Err(ApiError::new(404, "not_found", "not a subscription route")),
    }
}
