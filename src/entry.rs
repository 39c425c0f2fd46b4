//! The Worker's front door: routes each request, authorizes it (`auth::web`, by the policy table
//! in `auth::policy`), and hands session routes to the session's Durable Object
//! (`idFromName(key)`) with the actor authentication decided.

use moltlog_core::chain;
use moltlog_core::engine::blob_object_key;
use serde_json::json;
use sha2::{Digest, Sha256};
use worker::{Context, Env, Request, RequestInit, Response, event};

use crate::api::route::{self, Method, Route, SessionRoute};
use crate::auth;
use crate::http::ApiError;
use crate::rt;
use crate::session::config_from_env;

pub const SESSIONS_BINDING: &str = "SESSIONS";

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match handle(&mut req, &env).await {
        Ok(resp) => Ok(resp),
        Err(e) => {
            if e.status >= 500 {
                worker::console_error!("moltlog: {e}");
            }
            let resp = rt::error_response(&e)?;
            if e.status == 401 {
                resp.headers().set("www-authenticate", auth::CHALLENGE)?;
            }
            Ok(resp)
        }
    }
}

async fn handle(req: &mut Request, env: &Env) -> Result<Response, ApiError> {
    let method = Method::parse(req.method().as_ref());
    let path = req.path();
    let route = route::parse(method, &path)?;
    let actor = auth::web::authorize(req, env, &route).await?;
    match route {
        Route::Health => Ok(rt::json(200, &health())?),
        Route::ListSessions => {
            let query = req.url()?.query().unwrap_or("").to_owned();
            crate::directory::list(env, &query).await
        }
        Route::GetBlob(hex) => get_blob(env, &hex).await,
        Route::Session(key, SessionRoute::PutBlob) => put_blob(req, env, key.as_str()).await,
        Route::Session(key, _) => {
            // A declared body over the limit is refused here, before the object wakes for it.
            if method != Method::Get {
                let declared = req.headers().get("content-length")?;
                crate::http::body::check_declared(
                    declared.as_deref(),
                    config_from_env(env).max_request_bytes,
                )?;
            }
            forward(req, env, key.as_str(), actor.map(|a| a.name())).await
        }
        Route::Cdp(key, _) => {
            forward_to(crate::browser::BROWSERS_BINDING, req, env, key.as_str(), None).await
        }
        Route::TestHarness(what) => test_route(req, env, &what).await,
        // Chat platforms and webhook senders: authenticated by their own signatures.
        Route::Bridge(platform) => crate::bridge::worker::handle(req, env, platform).await,
        Route::Hook(name) => crate::hooks::worker::handle(req, env, &name).await,
        r @ (Route::Subscriptions | Route::Subscription(_)) => {
            crate::hooks::registry::public(req, env, r).await
        }
    }
}

fn health() -> serde_json::Value {
    json!({
        "ok": true,
        "service": "moltlog",
        "version": env!("CARGO_PKG_VERSION"),
        "build": {
            "git": option_env!("MOLTLOG_GIT_SHA").unwrap_or("unknown"),
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
            "test_harness": cfg!(feature = "test-harness"),
            "format_version": moltlog_core::codec::FORMAT_V1,
        },
    })
}

/// Passes the request to the session's Durable Object with the routed key (and the actor, for
/// appends) in headers the client cannot set.
async fn forward(req: &mut Request, env: &Env, key: &str, actor: Option<&str>) -> Result<Response, ApiError> {
    forward_to(SESSIONS_BINDING, req, env, key, actor).await
}

/// `forward` to the object named `key` of the Durable Object namespace `binding`.
async fn forward_to(
    binding: &str,
    req: &mut Request,
    env: &Env,
    key: &str,
    actor: Option<&str>,
) -> Result<Response, ApiError> {
    // The client's headers, copied in one call, minus any internal `x-moltlog-*` header: the
    // Durable Object trusts those, so only this code may set them.
    let headers = req.headers().clone();
    for name in req.headers().keys().filter(|k| k.to_ascii_lowercase().starts_with("x-moltlog-")) {
        headers.delete(&name)?;
    }
    headers.set(rt::KEY_HEADER, key)?;
    if let Some(a) = actor {
        headers.set(rt::ACTOR_HEADER, a)?;
    }
    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(headers);
    if !matches!(req.method(), worker::Method::Get | worker::Method::Head) {
        init.with_body(req.inner().body().map(Into::into));
    }
    let inner = Request::new_with_init(req.url()?.as_ref(), &init)?;
    let stub = env.durable_object(binding)?.id_from_name(key)?.get_stub()?;
    Ok(stub.fetch_with_request(inner).await?)
}

async fn get_blob(env: &Env, hex: &str) -> Result<Response, ApiError> {
    let sha = chain::from_hex(hex)
        .ok_or_else(|| ApiError::bad_request("bad_blob_id", "a blob id is 64 hex digits"))?;
    let bucket = env.bucket(rt::BUCKET)?;
    let Some(obj) = bucket.get(blob_object_key(&sha)).execute().await? else {
        return Err(ApiError::new(404, "no_such_blob", format!("no blob {hex}")));
    };
    let content_type = obj.http_metadata().content_type.unwrap_or_else(|| "application/octet-stream".into());
    let body = obj.body().ok_or_else(|| ApiError::internal("blob has no body"))?.bytes().await?;
    Ok(rt::bytes_response(body, &content_type)?)
}

/// `POST /v1/sessions/{key}/blobs`: stores an attachment, answers its reference.
async fn put_blob(req: &mut Request, env: &Env, _key: &str) -> Result<Response, ApiError> {
    let cfg = config_from_env(env);
    let content_type =
        req.headers().get("content-type")?.unwrap_or_else(|| "application/octet-stream".into());
    let bytes = crate::http::body::read(req, cfg.limits.max_blob_bytes).await?;
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    let len = bytes.len() as u64;
    let bucket = env.bucket(rt::BUCKET)?;
    rt::put_if_absent(&bucket, &blob_object_key(&sha), bytes, &content_type).await?;
    Ok(rt::json(201, &json!({"sha256": chain::to_hex(&sha), "len": len, "content_type": content_type}))?)
}

#[cfg(feature = "test-harness")]
async fn test_route(req: &mut Request, env: &Env, what: &str) -> Result<Response, ApiError> {
    let parts: Vec<&str> = what.split('/').collect();
    match parts.as_slice() {
        ["conformance"] => forward(req, env, "test:conformance", None).await,
        ["sessions", key, _op] => forward(req, env, key, None).await,
        ["r2", "object"] => crate::session::test_r2_object(req, env).await,
        ["r2"] => {
            let url = req.url()?;
            let prefix = url
                .query_pairs()
                .find(|(k, _)| k == "prefix")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let objects = rt::list_all(&env.bucket(rt::BUCKET)?, &prefix).await?;
            let list: Vec<_> = objects.into_iter().map(|(k, s)| json!({"key": k, "size": s})).collect();
            Ok(rt::json(200, &json!({"objects": list}))?)
        }
        _ => Err(ApiError::new(404, "not_found", "unknown test route")),
    }
}

#[cfg(not(feature = "test-harness"))]
async fn test_route(_req: &mut Request, _env: &Env, what: &str) -> Result<Response, ApiError> {
    Err(ApiError::new(404, "not_found", format!("no such route: /__test/{what}")))
}
