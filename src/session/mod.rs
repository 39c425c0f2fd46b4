//! SessionDO: one Durable Object per session. Keeps the log in its SQLite storage, the state in
//! memory (a cache rebuilt on wake), and runs snapshots, archiving and directory updates from its
//! alarm.
//!
//! Every handler assumes eviction at any `await`, duplicate alarms, and other requests running
//! while it waits on R2: it captures what it needs before awaiting and re-checks after.

mod append;
mod background;
mod bridge_store;
mod deliver;
mod export;
mod inbound;
mod live;
mod outbox;
mod pages;
mod read;
mod recover;
pub mod sql_store;
mod subscriptions;
mod tail;
#[cfg(feature = "test-harness")]
mod test_harness;
#[cfg(feature = "test-harness")]
pub(crate) use test_harness::r2_object as test_r2_object;
mod tx;
mod verify;

use std::cell::RefCell;
use std::rc::Rc;

use moltlog_core::event::{Actor, EventBody, Lifecycle};
use moltlog_core::key::SessionKey;
use moltlog_core::{AppendRequest, Engine, Now};
use worker::{
    Env, Request, Response, State, WebSocket, WebSocketIncomingMessage, console_error, console_warn,
    durable_object,
};

use crate::api::route::{self, Method, Route, SessionRoute};
use crate::config::Config;
use crate::http::ApiError;
use crate::rt;
pub use inbound::{INTERACTION_HEADER, INTERNAL_PATH};
use live::Live;
use sql_store::SqlStore;

#[durable_object]
pub struct SessionDO {
    state: State,
    env: Env,
    cfg: Config,
    live: Rc<RefCell<Option<Live>>>,
    /// Chat outbox and webhook delivery configuration and in-flight bookkeeping.
    deliveries: deliver::Deliveries,
}

pub(crate) fn config_from_env(env: &Env) -> Config {
    Config::from_vars(|n| env.var(n).ok().map(|v| v.to_string())).unwrap_or_else(|e| {
        console_error!("moltlog: {e}; using defaults");
        Config::default()
    })
}

impl worker::DurableObject for SessionDO {
    fn new(state: State, env: Env) -> Self {
        let cfg = config_from_env(&env);
        let deliveries = deliver::Deliveries::new(&env);
        SessionDO { state, env, cfg, live: Rc::new(RefCell::new(None)), deliveries }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        match self.handle(&mut req).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                if e.status >= 500 {
                    console_error!("moltlog session: {e}");
                }
                rt::error_response(&e)
            }
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        background::run(self).await;
        Response::ok("done")
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        tail::on_message(self, &ws, message).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _clean: bool,
    ) -> worker::Result<()> {
        tail::on_close(&ws, code, &reason);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        tail::on_close(&ws, 1011, "error");
        Ok(())
    }
}

impl SessionDO {
    async fn handle(&self, req: &mut Request) -> Result<Response, ApiError> {
        let method = Method::parse(req.method().as_ref());
        let path = req.path();
        let key_header = req.headers().get(rt::KEY_HEADER)?.unwrap_or_default();
        let key = SessionKey::parse(&key_header)
            .map_err(|e| ApiError::bad_request("bad_session_key", e.to_string()))?;
        if path == inbound::INTERNAL_PATH {
            self.ensure_live(Some(key)).await?;
            return inbound::internal(self, req).await;
        }
        let route = route::parse(method, &path)?;
        #[cfg(feature = "test-harness")]
        if let Route::TestHarness(what) = &route {
            return test_harness::handle(self, &key, what).await;
        }
        let Route::Session(route_key, session_route) = route else {
            return Err(ApiError::new(404, "not_found", format!("{path} is not a session route")));
        };
        if route_key != key {
            return Err(ApiError::bad_request("bad_session_key", "routed key and path key differ"));
        }
        self.ensure_live(Some(key)).await?;
        match session_route {
            SessionRoute::Append => {
                let actor = req
                    .headers()
                    .get(rt::ACTOR_HEADER)?
                    .and_then(|a| Actor::from_name(&a))
                    .ok_or_else(|| ApiError::internal("request reached the session without an actor"))?;
                append::handle(self, req, actor).await
            }
            SessionRoute::Events => read::events(self, req),
            SessionRoute::State => read::state(self),
            SessionRoute::Info => read::info(self),
            SessionRoute::Restore => read::restore(self, req),
            SessionRoute::Verify => verify::handle(self, req).await,
            SessionRoute::Recovery => {
                let report = self.with_live(|l| recover::report(&l.store))?;
                Ok(rt::json(200, &report)?)
            }
            SessionRoute::Snapshot => background::snapshot_now(self).await,
            SessionRoute::Export => export::handle(self, req).await,
            SessionRoute::Tail => tail::accept(self, req),
            SessionRoute::PutBlob => Err(ApiError::new(404, "not_found", "blobs are stored by the Worker")),
            SessionRoute::Inbound => inbound::pending(self, req),
            r @ (SessionRoute::Subscriptions
            | SessionRoute::Subscription
            | SessionRoute::SubscriptionDeliveries
            | SessionRoute::SubscriptionResume) => subscriptions::handle(self, req, r).await,
        }
    }

    /// Runs `f` with the loaded session. Never hold the borrow across an `await`.
    fn with_live<T>(&self, f: impl FnOnce(&mut Live) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut guard = self.live.borrow_mut();
        let live =
            guard.as_mut().ok_or_else(|| ApiError::new(503, "not_loaded", "session is not loaded; retry"))?;
        f(live)
    }

    /// Loads the session if this object just woke: migrations, recovery from R2 when local
    /// storage is empty but an archive exists, and state rebuild. Other events wait meanwhile.
    /// `key` is None for alarms, which take the key from storage.
    async fn ensure_live(&self, key: Option<SessionKey>) -> Result<bool, ApiError> {
        if let Some(live) = self.live.borrow().as_ref() {
            return match key {
                Some(k) if k != live.key => Err(ApiError::internal("this object holds another session")),
                _ => Ok(true),
            };
        }
        let slot = self.live.clone();
        let storage = self.state.storage();
        let env = self.env.clone();
        let cfg = self.cfg.clone();
        self.state
            .block_concurrency_while(async move {
                if slot.borrow().is_some() {
                    return Ok(Ok(true));
                }
                Ok(match load(storage, env, cfg, key).await {
                    Ok(Some(live)) => {
                        *slot.borrow_mut() = Some(live);
                        Ok(true)
                    }
                    Ok(None) => Ok(false),
                    Err(e) => Err(e),
                })
            })
            .await
            .map_err(|e| ApiError::internal(format!("loading the session failed: {e}")))?
    }
}

/// Builds the in-memory session from storage (and from R2 if local storage is empty).
async fn load(
    storage: worker::Storage,
    env: Env,
    cfg: Config,
    key: Option<SessionKey>,
) -> Result<Option<Live>, ApiError> {
    let store = SqlStore::open(&storage).map_err(|e| ApiError::internal(e.to_string()))?;
    let stored = store.meta("session_key").map_err(|e| ApiError::internal(e.to_string()))?;
    let key = match (stored.as_deref(), key) {
        (Some(s), Some(k)) if s != k.as_str() => {
            return Err(ApiError::internal(format!("this object holds session {s:?}, not {k}")));
        }
        (Some(s), _) => SessionKey::parse(s).map_err(|e| ApiError::internal(e.to_string()))?,
        (None, Some(k)) => k,
        (None, None) => return Ok(None),
    };
    let mut recovered = None;
    if stored.is_none() {
        // First use of this storage: a new session, or one whose storage was lost while its
        // archive in R2 survived.
        let bucket = env.bucket(rt::BUCKET)?;
        recovered = recover::from_archive(&store, &bucket, &key).await?;
        let sql_err = |e: sql_store::SqlError| ApiError::internal(e.to_string());
        // A recovered session was created when its first event was.
        let first_ts = moltlog_core::store::read_one(&store, 1)
            .map_err(sql_err)?
            .and_then(|r| r.decode_header().ok())
            .map(|h| h.ts_ms);
        let created = first_ts.unwrap_or_else(rt::now_ms);
        store.set_meta("created_ms", &created.to_string()).map_err(sql_err)?;
        store.set_meta("session_key", key.as_str()).map_err(sql_err)?;
    }
    let (mut engine, report) = Engine::rebuild(key.clone(), &store, cfg.limits.clone())
        .map_err(|e| ApiError::new(500, "corrupt_log", e.to_string()))?;
    if let Some(why) = &report.snapshot_rejected {
        console_warn!("moltlog {key}: local snapshot not used: {why}");
    }
    let mut store = store;
    if let Some(r) = recovered {
        let now_ms = rt::now_ms();
        // Seqs the archive lost are recorded first, at the seq after them: nothing reuses them.
        let mut gap_seq = None;
        if let Some(gap) = r.gap.as_ref().filter(|g| g.first_seq == engine.head().seq + 1) {
            let plan = engine
                .plan_gap(gap, Now { now_ms, entropy: rt::entropy() })
                .map_err(|e| ApiError::new(500, "recovery_failed", e.to_string()))?;
            let outcome = engine
                .commit(&mut store, plan)
                .map_err(|e| ApiError::new(500, "recovery_failed", format!("recording the gap: {e:?}")))?;
            gap_seq = Some(outcome.first_seq);
        }
        recover::remember(&store, &r, gap_seq, now_ms)?;
        let body = EventBody::Lifecycle(Lifecycle::RecoveredFromArchive {
            snapshot_seq: r.snapshot_seq,
            segments: r.segments,
            last_seq: r.last_seq,
        });
        engine
            .append(
                &mut store,
                AppendRequest::one(Actor::System, body),
                Now { now_ms: rt::now_ms(), entropy: rt::entropy() },
            )
            .map_err(ApiError::from)?;
    }
    let created_ms = store.meta_u64("created_ms").map_err(|e| ApiError::internal(e.to_string()))?;
    let mut live = Live {
        key,
        store,
        engine,
        work: Default::default(),
        alarm_at: None,
        created_ms,
        rebuilt_from_snapshot: report.snapshot_seq,
        replayed_on_wake: report.replayed,
    };
    live.refresh_work().map_err(|e| ApiError::internal(e.to_string()))?;
    live.work.created_ms = created_ms;
    Ok(Some(live))
}
