//! The DevTools HTTP endpoints. Browser Rendering has no HTTP discovery of its own behind the
//! binding, so each answer comes from one CDP command over a short-lived browser socket; every
//! socket URL in them points back at the proxy.

use std::time::Duration;

use futures::future::{Either, select};
use futures::{FutureExt, StreamExt};
use moltlog_core::event::BrowserActionKind;
use serde_json::{Value, json};
use worker::{Delay, Request, Response, WebsocketEvent};

use super::BrowserDO;
use crate::cdp::Recorded;
use crate::cdp::discovery::{self, PublicBase, TargetInfo};
use crate::cdp::message::{Envelope, command};
use crate::cdp::page_bridge::PROXY_ID_BASE;
use crate::http::ApiError;
use crate::rt;

/// Longest wait for the browser's answer to a discovery command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// The proxy's public address for this request: scheme and host as the client used them, the
/// `/cdp/{key}` root, and the credential query to copy onto socket URLs.
fn public_base(req: &Request) -> Result<PublicBase, ApiError> {
    let url = req.url()?;
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("localhost")),
        None => url.host_str().unwrap_or("localhost").to_owned(),
    };
    let key_segment = url.path().split('/').nth(2).unwrap_or_default().to_owned();
    let credential = url
        .query_pairs()
        .find(|(k, _)| k == "token" || k == "secret")
        .map(|(k, v)| (k.into_owned(), v.into_owned()));
    Ok(PublicBase::new(
        url.scheme(),
        &authority,
        &format!("/cdp/{key_segment}"),
        credential.as_ref().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

/// `/json/version` with the upstream browser's own product and user agent (clients read the
/// browser version from it), from `Browser.getVersion`.
pub(super) async fn version(so: &BrowserDO, req: &Request) -> Result<Response, ApiError> {
    let result = one_command(so, "Browser.getVersion", json!({})).await?;
    Ok(rt::json(200, &discovery::version_from(&public_base(req)?, &result))?)
}

/// The result of a command's answer, or its error.
fn answer(method: &str, msg: &Envelope<'_>) -> Result<Value, ApiError> {
    if let Some(e) = msg.error_message() {
        return Err(ApiError::new(400, "cdp_error", format!("{method}: {e}")));
    }
    Ok(msg.result_as::<Value>().unwrap_or(Value::Null))
}

fn timeout(method: &str) -> ApiError {
    ApiError::new(504, "browser_timeout", format!("{method} got no answer"))
}

/// Runs one command in the session's browser: on a socket already being pumped if there is one
/// (Browser Rendering allows one connection per browser), else on a fresh one.
async fn one_command(so: &BrowserDO, method: &str, params: Value) -> Result<Value, ApiError> {
    let Some((line, id)) = so.line() else { return fresh_command(so, method, params).await };
    let (reply, answered) = futures::channel::oneshot::channel();
    let cmd = super::pump::Injected { id, text: command(id, method, &params, None), reply };
    if line.unbounded_send(cmd).is_err() {
        return fresh_command(so, method, params).await;
    }
    let deadline = Delay::from(COMMAND_TIMEOUT).fuse();
    futures::pin_mut!(deadline);
    match select(answered, &mut deadline).await {
        Either::Left((Ok(text), _)) => {
            let msg = Envelope::parse(&text).ok_or_else(|| timeout(method))?;
            answer(method, &msg)
        }
        Either::Left((Err(_), _)) => {
            Err(ApiError::new(502, "browser_unavailable", "the browser socket closed"))
        }
        Either::Right(_) => Err(timeout(method)),
    }
}

/// Sends one command on a fresh browser socket and returns its result.
async fn fresh_command(so: &BrowserDO, method: &str, params: Value) -> Result<Value, ApiError> {
    let ws = so.open_browser().await?;
    let result = async {
        let mut events = ws.events()?;
        ws.send_with_str(command(PROXY_ID_BASE, method, &params, None))?;
        let deadline = Delay::from(COMMAND_TIMEOUT).fuse();
        futures::pin_mut!(deadline);
        loop {
            let event = match select(events.next(), &mut deadline).await {
                Either::Left((e, _)) => e,
                Either::Right(_) => return Err(timeout(method)),
            };
            let text = match event {
                Some(Ok(WebsocketEvent::Message(m))) => m.text(),
                _ => return Err(ApiError::new(502, "browser_unavailable", "the browser socket closed")),
            };
            let Some(text) = text else { continue };
            let Some(msg) = Envelope::parse(&text) else { continue };
            if msg.id != Some(PROXY_ID_BASE) || msg.session_id.is_some() {
                continue;
            }
            return answer(method, &msg);
        }
    }
    .await;
    let _ = ws.close(Some(1000), Some("done"));
    result
}

pub(super) async fn list(so: &BrowserDO, req: &Request) -> Result<Response, ApiError> {
    let result = one_command(so, "Target.getTargets", json!({})).await?;
    Ok(rt::json(200, &discovery::list(&public_base(req)?, &result))?)
}

/// The url `/json/new` should open: `?url=…` (Browser Rendering's form) or the bare query
/// (Chrome's `/json/new?https://…`), without the credential.
fn new_url(req: &Request) -> Result<String, ApiError> {
    let url = req.url()?;
    if let Some((_, v)) = url.query_pairs().find(|(k, _)| k == "url") {
        return Ok(v.into_owned());
    }
    let rest: Vec<&str> = url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("token=") && !p.starts_with("secret="))
        .collect();
    let raw = rest.join("&");
    let decoded = worker::Url::parse(&format!("http://x/?u={raw}"))
        .ok()
        .and_then(|u| u.query_pairs().next().map(|(_, v)| v.into_owned()))
        .unwrap_or(raw);
    Ok(if decoded.is_empty() { "about:blank".into() } else { decoded })
}

pub(super) async fn new_target(so: &BrowserDO, req: &Request, key: &str) -> Result<Response, ApiError> {
    let url = new_url(req)?;
    let result = one_command(so, "Target.createTarget", json!({"url": url})).await?;
    let id = result.get("targetId").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut action = Recorded::new(BrowserActionKind::CreateTarget, Some(id.clone()), "/json/new");
    action.url = Some(url.clone());
    so.record_now(key, vec![action]);
    let info = TargetInfo { target_id: id, kind: "page".into(), title: String::new(), url };
    Ok(rt::json(200, &discovery::entry(&public_base(req)?, &info))?)
}

pub(super) async fn close_target(so: &BrowserDO, key: &str, id: &str) -> Result<Response, ApiError> {
    let result = one_command(so, "Target.closeTarget", json!({"targetId": id})).await?;
    let mut action = Recorded::new(BrowserActionKind::CloseTarget, Some(id.to_owned()), "/json/close");
    action.result = result;
    so.record_now(key, vec![action]);
    Ok(Response::ok("Target is closing")?)
}
