//! BrowserDO: the recording CDP proxy of one session (one object per session key).
//!
//! A Durable Object rather than the Worker, because the sockets it pumps live as long as the
//! agent drives its browser, and because it keeps the session's remote browser (its id) between
//! connections, so an agent that reconnects finds its tabs where it left them. It accepts
//! sockets plainly (not the hibernation API): a pump must be awake to forward anyway.
//!
//! Routes (all under `/cdp/{key}`, authorized by the Worker): `json/version`, `json/list`,
//! `json/new`, `json/close/{id}`, and the browser and page sockets they name. What the agent
//! does is recorded into the session through `sink` (see `crate::cdp` for what is recorded).

mod discovery_http;
mod pump;
mod sink;
mod upstream;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use worker::{
    Env, Request, Response, State, WebSocket, WebSocketPair, console_error, console_warn, durable_object,
};

use crate::api::route::{self, CdpRoute, Method, Route};
use crate::cdp::config::UpstreamConfig;
use crate::cdp::page_bridge::PageBridge;
use crate::cdp::{Recorder, RecorderLimits};
use crate::http::ApiError;
use crate::rt;
use crate::session::config_from_env;
use pump::{Lines, Mode, Observed};
use sink::Sink;
use upstream::{AnyUpstream, BrowserUpstream, UpstreamError};

pub const BROWSERS_BINDING: &str = "BROWSERS";

#[durable_object]
pub struct BrowserDO {
    #[allow(dead_code, reason = "the object's state; the proxy keeps nothing in storage")]
    state: State,
    env: Env,
    /// The session's remote browser, reused by every connection while it lives.
    browser: Rc<RefCell<Option<String>>>,
    /// The browser sockets being pumped, where discovery commands are injected.
    lines: Lines,
    /// The next id for an injected command.
    next_id: Cell<i64>,
}

impl worker::DurableObject for BrowserDO {
    fn new(state: State, env: Env) -> Self {
        BrowserDO {
            state,
            env,
            browser: Rc::new(RefCell::new(None)),
            lines: Rc::default(),
            next_id: Cell::new(crate::cdp::page_bridge::PROXY_ID_BASE + 1),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        match self.handle(req).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                if e.status >= 500 {
                    console_error!("moltlog cdp: {e}");
                }
                rt::error_response(&e)
            }
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::NotConfigured(_) => ApiError::new(503, "no_browser", e.to_string()),
            _ => ApiError::new(502, "browser_unavailable", e.to_string()),
        }
    }
}

/// One connection's identity in logs and idempotency keys.
fn connection_id() -> String {
    format!("{:016x}", rt::entropy() as u64)
}

impl BrowserDO {
    async fn handle(&self, req: Request) -> Result<Response, ApiError> {
        let method = Method::parse(req.method().as_ref());
        let path = req.path();
        let Route::Cdp(key, route) = route::parse(method, &path)? else {
            return Err(ApiError::new(404, "not_found", format!("{path} is not a CDP route")));
        };
        let key = key.as_str().to_owned();
        match route {
            CdpRoute::Version => discovery_http::version(self, &req).await,
            CdpRoute::List => discovery_http::list(self, &req).await,
            CdpRoute::New => discovery_http::new_target(self, &req, &key).await,
            CdpRoute::Close(id) => discovery_http::close_target(self, &key, &id).await,
            CdpRoute::BrowserSocket => self.socket(&req, &key, None).await,
            CdpRoute::PageSocket(id) => self.socket(&req, &key, Some(id)).await,
        }
    }

    fn upstream(&self) -> Result<AnyUpstream, ApiError> {
        let cfg = UpstreamConfig::from_vars(|n| self.env.var(n).ok().map(|v| v.to_string()))
            .map_err(|e| ApiError::new(503, "no_browser", e.to_string()))?;
        Ok(AnyUpstream::from_env(&self.env, &cfg)?)
    }

    /// A browser socket to the session's browser: the one it has if it still lives, else a new
    /// one.
    async fn open_browser(&self) -> Result<WebSocket, ApiError> {
        let up = self.upstream()?;
        let known = self.browser.borrow().clone();
        if let Some(id) = known {
            match up.open(&id).await {
                Ok(ws) => return Ok(ws),
                Err(e) if e.is_refusal() && !self.lines.borrow().is_empty() => {
                    // Browser Rendering takes one connection per browser: it is busy, not gone.
                    return Err(ApiError::new(
                        409,
                        "browser_busy",
                        format!("the session's browser is in use by another connection: {e}"),
                    ));
                }
                Err(e) if e.is_refusal() => {
                    console_warn!("moltlog cdp: the session's browser is gone ({e}); acquiring another");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let id = up.acquire().await?;
        *self.browser.borrow_mut() = Some(id.clone());
        Ok(up.open(&id).await?)
    }

    fn sink(&self, key: &str, connection: String) -> Sink {
        let max_blob = config_from_env(&self.env).limits.max_blob_bytes;
        Sink::new(self.env.clone(), key, connection, max_blob)
    }

    /// `devtools/browser` and `devtools/page/{id}`: connects upstream, then answers the upgrade
    /// and pumps until either side closes.
    async fn socket(&self, req: &Request, key: &str, page: Option<String>) -> Result<Response, ApiError> {
        let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return Err(ApiError::new(426, "upgrade_required", "this is a WebSocket endpoint"));
        }
        let upstream = self.open_browser().await?;
        let pair = WebSocketPair::new()?;
        pair.server.accept()?;
        let connection = connection_id();
        let now = rt::now_ms();
        let (recorder, mode, label) = match page {
            None => (
                Recorder::new(RecorderLimits::default(), now),
                Mode::Browser,
                format!("{key} browser {connection}"),
            ),
            Some(target) => (
                Recorder::for_page(RecorderLimits::default(), now, &target),
                Mode::Page { bridge: PageBridge::new(&target), early: Vec::new() },
                format!("{key} page {target} {connection}"),
            ),
        };
        let (tx, rx) = pump::channel();
        let line = pump::Line::open(&self.lines, &connection);
        let sink = self.sink(key, connection);
        wasm_bindgen_futures::spawn_local(pump::record(recorder, rx, sink, label));
        wasm_bindgen_futures::spawn_local(pump::pump(pair.server, upstream, mode, tx, line));
        Ok(Response::from_websocket(pair.client)?)
    }

    /// A socket being pumped to inject a command into, if any, and a fresh id for the command.
    fn line(&self) -> Option<(futures::channel::mpsc::UnboundedSender<pump::Injected>, i64)> {
        let tx = self.lines.borrow().first().map(|(_, tx)| tx.clone())?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        Some((tx, id))
    }

    /// Records actions taken outside a socket (`json/new`, `json/close`), in the background.
    fn record_now(&self, key: &str, actions: Vec<crate::cdp::Recorded>) {
        let (tx, rx) = pump::channel();
        for a in actions {
            let _ = tx.unbounded_send(Observed::Action(a));
        }
        let _ = tx.unbounded_send(Observed::Closed);
        let recorder = Recorder::new(RecorderLimits::default(), rt::now_ms());
        let sink = self.sink(key, connection_id());
        wasm_bindgen_futures::spawn_local(pump::record(recorder, rx, sink, format!("{key} http")));
    }
}
