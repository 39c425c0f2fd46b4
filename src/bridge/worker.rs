//! `POST /bridge/{telegram|slack|discord}` in the Worker: size check, signature check over the
//! raw bytes, parse, bind to a session, append through the session's Durable Object, answer
//! the platform. The append is one SQLite transaction in the session, so the platform gets its
//! answer within its deadline (Slack and Discord: 3 s) whether or not an agent runtime is
//! connected; the message waits in the log.

use moltlog_core::SessionKey;
use moltlog_core::event::Actor;
use serde_json::{Value, json};
use worker::{Env, Headers, Method, Request, RequestInit, Response, console_error, console_warn};

use super::config::BridgeConfig;
use super::{BridgeError, BridgePlatform, DiscordInteraction, Inbound, binding, discord, slack, telegram};
use crate::http::ApiError;
use crate::rt;

fn err(e: BridgeError) -> ApiError {
    ApiError::new(e.status(), e.code(), e.to_string())
}

/// The request body, refused early (by `Content-Length`) or while streaming (by count) when
/// over `max`: nothing past `max` is ever buffered.
pub(crate) async fn read_body(req: &mut Request, max: u64) -> Result<Vec<u8>, ApiError> {
    crate::http::body::read(req, max).await
}

/// Appends an event (the append API's JSON) to `key` as `actor` through the session's object.
/// Returns the object's status and JSON answer.
pub(crate) async fn append_to_session(
    env: &Env,
    key: &SessionKey,
    actor: Actor,
    body: Vec<u8>,
    interaction: Option<&DiscordInteraction>,
) -> Result<(u16, Value), ApiError> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set(rt::KEY_HEADER, key.as_str())?;
    headers.set(rt::ACTOR_HEADER, actor.name())?;
    if let Some(i) = interaction {
        let v = json!({"id": i.id, "application_id": i.application_id, "token": i.token});
        headers.set(crate::session::INTERACTION_HEADER, &v.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    let req = Request::new_with_init(&format!("https://session{}", crate::session::INTERNAL_PATH), &init)?;
    let stub = env.durable_object(crate::entry::SESSIONS_BINDING)?.id_from_name(key.as_str())?.get_stub()?;
    let mut resp = stub.fetch_with_request(req).await?;
    let status = resp.status_code();
    let value = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, value))
}

pub async fn handle(req: &mut Request, env: &Env, platform: BridgePlatform) -> Result<Response, ApiError> {
    let cfg = BridgeConfig::from_vars(|n| env.var(n).ok().map(|v| v.to_string()))
        .map_err(|e| ApiError::new(500, "bridge_misconfigured", e.to_string()))?;
    let body = read_body(req, cfg.max_body_bytes).await?;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    // Authenticate over the raw bytes before anything parses them.
    let verified = match platform {
        BridgePlatform::Telegram => {
            telegram::verify(&cfg.telegram, header(telegram::SECRET_HEADER).as_deref())
        }
        BridgePlatform::Slack => slack::verify(
            &cfg.slack,
            header(slack::TIMESTAMP_HEADER).as_deref(),
            header(slack::SIGNATURE_HEADER).as_deref(),
            &body,
            rt::now_ms() / 1000,
        ),
        BridgePlatform::Discord => discord::verify(
            &cfg.discord,
            header(discord::TIMESTAMP_HEADER).as_deref(),
            header(discord::SIGNATURE_HEADER).as_deref(),
            &body,
        ),
    };
    verified.map_err(err)?;
    let inbound = match platform {
        BridgePlatform::Telegram => telegram::parse(&body),
        BridgePlatform::Slack => slack::parse(&body),
        BridgePlatform::Discord => discord::parse(&body, rt::now_ms()),
    }
    .map_err(err)?;
    let (mut message, ack, interaction) = match inbound {
        Inbound::Reply(v) => return Ok(rt::json(200, &v)?),
        Inbound::Ignore(why) => return Ok(rt::json(200, &json!({"ok": true, "ignored": why}))?),
        Inbound::Message { message, ack, interaction } => (message, ack, interaction),
    };
    let key = match binding::bind(&cfg.bindings, &cfg.agent, &message) {
        Ok(bound) => {
            if let Some(t) = bound.reply_thread {
                message.thread_id = Some(t);
            }
            bound.key
        }
        // The message maps to no valid session (a 300-character chat id, say): retrying cannot
        // change that, so the platform is told it arrived, as for other unacceptable messages.
        Err(e) => {
            console_warn!(
                "moltlog bridge: {} message {} not appended: {e}",
                platform.name(),
                message.delivery_key
            );
            return Ok(rt::json(200, &ack)?);
        }
    };
    let event = serde_json::to_vec(&message.event_json()).map_err(|e| ApiError::internal(e.to_string()))?;
    let (status, answer) = append_to_session(env, &key, Actor::Bridge, event, interaction.as_ref()).await?;
    match status {
        200 | 201 => Ok(rt::json(200, &ack)?),
        // The message itself is unacceptable (too large, say): retrying cannot help, so the
        // platform is told it arrived, and the operator finds the reason in the log.
        400..=499 => {
            console_warn!(
                "moltlog bridge: {} message {} not appended to {key}: {answer}",
                platform.name(),
                message.delivery_key
            );
            Ok(rt::json(200, &ack)?)
        }
        _ => {
            console_error!(
                "moltlog bridge: appending {} to {key} failed: {status} {answer}",
                message.delivery_key
            );
            Err(ApiError::new(503, "unavailable", "the session could not take the message; retry"))
        }
    }
}
