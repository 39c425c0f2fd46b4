//! `POST /hooks/{name}` in the Worker: look the integration up, check the signature over the
//! raw body, append a `webhook_received` event to its session (as the webhook actor, keyed by
//! the delivery id), answer 2xx so the sender stops retrying. Payloads over the engine's blob
//! threshold are moved to R2 by the append itself.

use moltlog_core::event::Actor;
use serde_json::json;
use worker::{Env, Request, Response};

use super::config::HooksConfig;
use super::inbound::{self, HookError};
use crate::bridge::worker::{append_to_session, read_body};
use crate::http::ApiError;
use crate::rt;

fn err(e: HookError) -> ApiError {
    ApiError::new(e.status(), e.code(), e.to_string())
}

/// A secret binding's value (secrets and plain vars are both text bindings).
fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(name).ok().map(|v| v.to_string()))
        .filter(|s| !s.is_empty())
}

pub async fn handle(req: &mut Request, env: &Env, name: &str) -> Result<Response, ApiError> {
    let cfg = HooksConfig::from_vars(|n| env.var(n).ok().map(|v| v.to_string()))
        .map_err(|e| ApiError::new(500, "hooks_misconfigured", e.to_string()))?;
    let hook = cfg.hooks.get(name).ok_or_else(|| err(HookError::Unknown(name.to_owned())))?;
    let key = secret(env, &hook.secret_var).ok_or_else(|| err(HookError::NoSecret(name.to_owned())))?;
    let body = read_body(req, cfg.max_body_bytes).await?;
    let header = |n: &str| req.headers().get(n).ok().flatten();
    let delivery = inbound::verify(hook, &key, &header, &body, rt::now_ms() / 1000).map_err(err)?;
    let content_type = header("content-type").unwrap_or_default();
    let event = inbound::event_body(hook, &delivery, &content_type, &body).map_err(err)?;
    let (status, answer) = append_to_session(env, &hook.session, Actor::Webhook, event, None).await?;
    match status {
        200 | 201 => Ok(rt::json(
            status,
            &json!({
                "ok": true,
                "session_key": hook.session.as_str(),
                "seq": answer["first_seq"],
                "delivery_id": delivery.delivery_id,
                "duplicate": answer["duplicate"],
            }),
        )?),
        // The session's own refusal (a payload over the limits, say), passed on as it is.
        _ => Ok(rt::json(status, &answer)?),
    }
}
