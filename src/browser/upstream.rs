//! Where browser sockets come from. Every upstream answers two questions: get me a browser for
//! this session (`acquire`, an id to reuse), and open a browser-level CDP socket to it (`open`).
//! Page sockets and the discovery endpoints are built on browser sockets (see `crate::cdp`), so
//! an upstream that only hands out browser sockets (Browser Rendering) serves all of them.

use serde::Deserialize;
use wasm_bindgen::JsCast;
use worker::{Env, Fetch, Fetcher, Headers, Method, Request, RequestInit, Response, WebSocket};

use crate::cdp::config::UpstreamConfig;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no browser upstream: {0}")]
    NotConfigured(String),
    #[error("the browser service refused ({status}): {body}")]
    Refused { status: u16, body: String },
    #[error("the browser service answered something unexpected: {0}")]
    Protocol(String),
    #[error("the browser service is unreachable: {0}")]
    Unreachable(String),
}

impl UpstreamError {
    /// Whether another browser may work where this one failed (it expired, it is taken).
    pub fn is_refusal(&self) -> bool {
        matches!(self, UpstreamError::Refused { .. })
    }
}

impl From<worker::Error> for UpstreamError {
    fn from(e: worker::Error) -> Self {
        UpstreamError::Unreachable(e.to_string())
    }
}

/// A source of browsers.
pub trait BrowserUpstream {
    /// A browser for the session: an id `open` takes.
    async fn acquire(&self) -> Result<String, UpstreamError>;
    /// A browser-level CDP socket to browser `id`, accepted and ready.
    async fn open(&self, id: &str) -> Result<WebSocket, UpstreamError>;
}

/// How requests reach a browser service.
#[derive(Clone, Debug)]
enum Transport {
    /// A Worker binding (Browser Rendering): the URL's host is ignored.
    Binding(Fetcher),
    /// Plain `fetch`.
    Http,
}

impl Transport {
    async fn send(&self, req: Request) -> Result<Response, UpstreamError> {
        Ok(match self {
            Transport::Binding(f) => f.fetch_request(req).await?,
            Transport::Http => Fetch::Request(req).send().await?,
        })
    }
}

/// Browser Rendering's devtools protocol: `POST {base}/devtools/browser?keep_alive=MS` answers
/// `{"sessionId"}`, and `GET {base}/devtools/browser/{id}` upgrades to the browser socket. The
/// binding speaks it under `/v1`, the REST API under the account's `/browser-rendering`.
pub struct BrowserService {
    transport: Transport,
    base: String,
    bearer: Option<String>,
    keep_alive_ms: u64,
}

/// A plain DevTools endpoint (local chromium): `GET {base}/json/version` names the one browser.
pub struct PlainCdp {
    base: String,
}

/// The configured upstream.
pub enum AnyUpstream {
    Service(BrowserService),
    Cdp(PlainCdp),
}

impl AnyUpstream {
    pub fn from_env(env: &Env, cfg: &UpstreamConfig) -> Result<AnyUpstream, UpstreamError> {
        Ok(match cfg {
            UpstreamConfig::Binding { binding, keep_alive_ms } => {
                // workers-rs checks bindings by constructor name, and workerd's browser binding is
                // not a "Fetcher" by name though it fetches like one.
                let value = js_sys::Reflect::get(env.as_ref(), &binding.as_str().into())
                    .ok()
                    .filter(|v| !v.is_undefined() && !v.is_null())
                    .ok_or_else(|| {
                        UpstreamError::NotConfigured(format!(
                            "no `{binding}` binding; add `[browser] binding = \"{binding}\"` to wrangler.toml \
                             or set CDP_UPSTREAM"
                        ))
                    })?;
                let fetcher = Fetcher::from(value.unchecked_into::<worker::worker_sys::Fetcher>());
                AnyUpstream::Service(BrowserService {
                    transport: Transport::Binding(fetcher),
                    base: "https://browser.binding/v1".into(),
                    bearer: None,
                    keep_alive_ms: *keep_alive_ms,
                })
            }
            UpstreamConfig::BindingUrl { base, keep_alive_ms } => AnyUpstream::Service(BrowserService {
                transport: Transport::Http,
                base: format!("{base}/v1"),
                bearer: None,
                keep_alive_ms: *keep_alive_ms,
            }),
            UpstreamConfig::Rest { base, keep_alive_ms } => {
                let token = env.secret("CDP_API_TOKEN").map(|s| s.to_string()).map_err(|_| {
                    UpstreamError::NotConfigured("CDP_UPSTREAM=rest needs the secret CDP_API_TOKEN".into())
                })?;
                AnyUpstream::Service(BrowserService {
                    transport: Transport::Http,
                    base: base.clone(),
                    bearer: Some(token),
                    keep_alive_ms: *keep_alive_ms,
                })
            }
            UpstreamConfig::Cdp { base } => AnyUpstream::Cdp(PlainCdp { base: base.clone() }),
        })
    }
}

impl BrowserUpstream for AnyUpstream {
    async fn acquire(&self) -> Result<String, UpstreamError> {
        match self {
            AnyUpstream::Service(s) => s.acquire().await,
            AnyUpstream::Cdp(c) => c.acquire().await,
        }
    }

    async fn open(&self, id: &str) -> Result<WebSocket, UpstreamError> {
        match self {
            AnyUpstream::Service(s) => s.open(id).await,
            AnyUpstream::Cdp(c) => c.open(id).await,
        }
    }
}

fn request(method: Method, url: &str, headers: &Headers) -> Result<Request, UpstreamError> {
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers.clone());
    Ok(Request::new_with_init(url, &init)?)
}

/// The socket of an upgrade answer, accepted; or why there is none.
async fn accepted(mut resp: Response) -> Result<WebSocket, UpstreamError> {
    let status = resp.status_code();
    if status != 101 {
        let body = resp.text().await.unwrap_or_default();
        return Err(UpstreamError::Refused { status, body: crate::cdp::message::truncate(&body, 300) });
    }
    let ws = resp.websocket().ok_or_else(|| UpstreamError::Protocol("101 without a WebSocket".into()))?;
    ws.accept()?;
    Ok(ws)
}

fn upgrade_headers() -> Result<Headers, UpstreamError> {
    let h = Headers::new();
    h.set("upgrade", "websocket")?;
    Ok(h)
}

impl BrowserService {
    fn headers(&self, upgrade: bool) -> Result<Headers, UpstreamError> {
        let h = if upgrade { upgrade_headers()? } else { Headers::new() };
        h.set("cf-brapi-client", concat!("moltlog/", env!("CARGO_PKG_VERSION")))?;
        if let Some(t) = &self.bearer {
            h.set("authorization", &format!("Bearer {t}"))?;
        }
        Ok(h)
    }
}

impl BrowserUpstream for BrowserService {
    async fn acquire(&self) -> Result<String, UpstreamError> {
        let url = format!("{}/devtools/browser?keep_alive={}", self.base, self.keep_alive_ms);
        let mut resp = self.transport.send(request(Method::Post, &url, &self.headers(false)?)?).await?;
        let status = resp.status_code();
        let body = resp.text().await?;
        if !(200..300).contains(&status) {
            return Err(UpstreamError::Refused { status, body: crate::cdp::message::truncate(&body, 300) });
        }
        #[derive(Deserialize)]
        struct Acquired {
            #[serde(rename = "sessionId")]
            session_id: Option<String>,
            result: Option<Box<Acquired>>,
        }
        let a: Acquired = serde_json::from_str(&body).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        // The REST API may wrap its answers in {"result": …}.
        a.session_id
            .or_else(|| a.result.and_then(|r| r.session_id))
            .ok_or_else(|| UpstreamError::Protocol(format!("no sessionId in {body:.200}")))
    }

    async fn open(&self, id: &str) -> Result<WebSocket, UpstreamError> {
        let url = format!("{}/devtools/browser/{id}", self.base);
        accepted(self.transport.send(request(Method::Get, &url, &self.headers(true)?)?).await?).await
    }
}

impl BrowserUpstream for PlainCdp {
    /// The browser socket's path, from `/json/version`.
    async fn acquire(&self) -> Result<String, UpstreamError> {
        let url = format!("{}/json/version", self.base);
        let mut resp = Transport::Http.send(request(Method::Get, &url, &Headers::new())?).await?;
        if resp.status_code() != 200 {
            return Err(UpstreamError::Refused { status: resp.status_code(), body: resp.text().await? });
        }
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "webSocketDebuggerUrl")]
            ws: String,
        }
        let v: Version = resp.json().await.map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        let path = v.ws.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()));
        path.ok_or_else(|| UpstreamError::Protocol(format!("webSocketDebuggerUrl {:?}", v.ws)))
    }

    async fn open(&self, path: &str) -> Result<WebSocket, UpstreamError> {
        // Chromium wants an IP or localhost as Host (the base has it) and no foreign Origin.
        let url = format!("{}{path}", self.base);
        accepted(Transport::Http.send(request(Method::Get, &url, &upgrade_headers()?)?).await?).await
    }
}
