//! Outbound HTTP for the bridge and the webhooks: performs an [`HttpCall`] with a deadline.
//!
//! The deadline covers the whole exchange (headers and body). When it passes, the request is
//! aborted and reported as a transport error: the other side may still have acted on it, which
//! is why callers treat every transport error as an unknown outcome.

use std::time::Duration;

use futures::future::{Either, select};
use worker::{AbortController, Delay, Fetch, Headers, Request, RequestInit};

use crate::bridge::outbound::{HttpCall, HttpReply, redact_url};

/// Largest answer body kept (answers are small JSON; anything beyond is not needed).
const MAX_REPLY_BYTES: usize = 1 << 20;

fn method(m: &str) -> worker::Method {
    worker::Method::from(m.to_owned())
}

/// Sends `call`, waiting at most `timeout_ms` for the full answer. `Err` carries why no answer
/// came (network failure, abort on timeout).
pub async fn send(call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String> {
    let headers = Headers::new();
    for (k, v) in &call.headers {
        headers.set(k, v).map_err(|e| format!("header {k}: {e}"))?;
    }
    let mut init = RequestInit::new();
    init.with_method(method(call.method)).with_headers(headers);
    if let Some(body) = &call.body {
        let array = js_sys::Uint8Array::from(body.as_slice());
        init.with_body(Some(array.into()));
    }
    let req =
        Request::new_with_init(&call.url, &init).map_err(|e| format!("bad request to {}: {e}", call.url))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let mut resp = Fetch::Request(req).send_with_signal(&signal).await.map_err(|e| e.to_string())?;
        let status = resp.status_code();
        let headers: Vec<(String, String)> =
            resp.headers().entries().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        let mut body = resp.bytes().await.map_err(|e| format!("reading the answer: {e}"))?;
        body.truncate(MAX_REPLY_BYTES);
        Ok::<_, String>(HttpReply { status, headers, body })
    };
    let deadline = Delay::from(Duration::from_millis(timeout_ms));
    match select(Box::pin(exchange), Box::pin(deadline)).await {
        Either::Left((result, _)) => {
            result.map_err(|e| format!("{} {}: {e}", call.method, redact_url(&call.url)))
        }
        Either::Right(((), _)) => {
            controller.abort();
            Err(format!("{} {}: no answer within {timeout_ms} ms", call.method, redact_url(&call.url)))
        }
    }
}
