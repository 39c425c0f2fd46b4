//! Outbound webhook subscriptions in the session's Durable Object: the API
//! (`/v1/sessions/{key}/subscriptions…`) and delivery from the alarm.
//!
//! Delivery, per subscription, in seq order: fix the next range of wanted events in SQLite
//! (storage before the side effect), POST it signed, and only after a 2xx move the cursor past
//! it. Every retry resends the fixed range under the same delivery id; a runtime that dies
//! after the subscriber answered but before the cursor moved makes it resend once more, which
//! is the at-least-once the receiver de-duplicates. The cursor is re-read after every await:
//! a deletion or a resume that happened meanwhile wins.

use moltlog_core::codec;
use moltlog_core::event::EventHeader;
use moltlog_core::store::LogStore;
use serde_json::{Value, json};
use worker::{Request, Response, console_error};

use super::bridge_store::{self as store, LogRow};
use super::deliver::{InFlight, alarm_by, now_s, sql_err};
use super::live::Live;
use super::read::record_json;
use super::{SessionDO, background};
use crate::api::route::{self, SessionRoute};
use crate::bridge::outbound::{Attempt, Backoff};
use crate::hooks::registry;
use crate::hooks::subscription::{self as sub, Cursor, Fresh, Subscription, SubscriptionError};
use crate::http::ApiError;
use crate::{net, rt};

/// Deliveries per subscription per alarm run (the next run continues).
const BATCHES_PER_RUN: u32 = 8;
/// Stored body bytes per delivery (at least one event always goes).
const BATCH_BYTES: u64 = 512 << 10;
/// Records read per page while looking for wanted events.
const SCAN_PAGE: u32 = 256;

fn sub_err(e: SubscriptionError) -> ApiError {
    ApiError::new(e.status(), e.code(), e.to_string())
}

fn fresh_cursor(sub_id: &str, after: u64) -> Cursor {
    Cursor {
        sub_id: sub_id.to_owned(),
        delivered_seq: after,
        batch: None,
        attempts: 0,
        next_attempt_ms: 0,
        paused: false,
        last_error: None,
    }
}

/// The all-sessions subscriptions, re-read from the registry once the cached copy is older than
/// `SUBSCRIPTIONS_CACHE_MS`. A registry failure keeps the old copy.
async fn refresh_global(so: &SessionDO, force: bool) {
    let now = rt::now_ms();
    let ttl = so.deliveries.hooks.cache_ms;
    let fresh = so.deliveries.global.borrow().as_ref().is_some_and(|(at, _)| now < at + ttl);
    let asked_recently = now < so.deliveries.global_asked_ms.get() + ttl;
    if fresh || (asked_recently && !force) {
        return;
    }
    so.deliveries.global_asked_ms.set(now);
    match registry::list(&so.env).await {
        Ok(list) => *so.deliveries.global.borrow_mut() = Some((now, list)),
        // The old copy (if any) stays; the next try waits for the cache period.
        Err(e) => console_error!("moltlog webhooks: reading the subscription registry failed: {e}"),
    }
}

/// Every subscription that applies to this session: its own, then those for all sessions.
fn applicable(so: &SessionDO, l: &Live) -> Result<Vec<Subscription>, ApiError> {
    let mut subs = store::subscriptions(&so.state.storage().sql()).map_err(sql_err)?;
    if let Some((_, global)) = so.deliveries.global.borrow().as_ref() {
        subs.extend(global.iter().filter(|s| s.applies_to(l.key.as_str())).cloned());
    }
    Ok(subs)
}

/// Creates cursors for subscriptions this session has not seen yet and drops those of
/// subscriptions that are gone. A subscription for all sessions starts at its creation time.
fn sync_cursors(so: &SessionDO, l: &Live) -> Result<Vec<Subscription>, ApiError> {
    let sql = so.state.storage().sql();
    let subs = applicable(so, l)?;
    let cursors = store::cursors(&sql).map_err(sql_err)?;
    // Without a registry copy, a cursor of an all-sessions subscription cannot be told from
    // one of a deleted subscription: only drop cursors once the full list is known.
    if so.deliveries.global.borrow().is_some() {
        for c in cursors.iter().filter(|c| subs.iter().all(|s| s.id != c.sub_id)) {
            store::delete_cursor(&sql, &c.sub_id).map_err(sql_err)?;
        }
    }
    let head = l.engine.head().seq;
    for s in &subs {
        if cursors.iter().any(|c| c.sub_id == s.id) {
            continue;
        }
        let start = sub::start_after(head, s.created_ms, |seq| {
            l.store.record_at(seq).ok().flatten().and_then(|r| r.decode_header().ok()).map(|h| h.ts_ms)
        });
        store::put_cursor(&sql, &fresh_cursor(&s.id, start)).map_err(sql_err)?;
    }
    Ok(subs)
}

/// When the alarm must next run for the subscriptions.
pub(super) fn next_due_ms(so: &SessionDO, l: &Live) -> Result<Option<u64>, ApiError> {
    let sql = so.state.storage().sql();
    let head = l.engine.head().seq;
    let cursors = store::cursors(&sql).map_err(sql_err)?;
    let sending = so.deliveries.subs_sending.borrow();
    // Only cursors of subscriptions known to apply: one whose subscription cannot be seen (the
    // registry not read yet) waits for the registry, instead of waking the alarm for nothing.
    let known = applicable(so, l)?;
    let mut due = cursors
        .iter()
        .filter(|c| !sending.contains(&c.sub_id) && known.iter().any(|s| s.id == c.sub_id))
        .filter_map(|c| c.due_ms(head))
        .min();
    // A subscription this session has no cursor for yet, or a stale registry copy while events
    // keep coming: the alarm syncs. Never read yet: the alarm reads it.
    let ttl = so.deliveries.hooks.cache_ms;
    let global = so.deliveries.global.borrow();
    if global.is_none() && head > 0 {
        let asked = so.deliveries.global_asked_ms.get();
        let at = if asked == 0 { 0 } else { asked + ttl };
        due = Some(due.map_or(at, |d| d.min(at)));
    }
    if let Some((fetched, global)) = global.as_ref() {
        if global.iter().any(|s| s.applies_to(l.key.as_str()) && cursors.iter().all(|c| c.sub_id != s.id)) {
            due = Some(0);
        } else if head > 0 {
            let recheck = fetched + ttl;
            if l.state().last_ts_ms >= *fetched {
                due = Some(due.map_or(recheck, |d| d.min(recheck)));
            }
        }
    }
    Ok(due)
}

pub(super) async fn run(so: &SessionDO) -> Result<(), ApiError> {
    refresh_global(so, false).await;
    let now = rt::now_ms();
    let subs = so.with_live(|l| {
        let head = l.engine.head().seq;
        let subs = sync_cursors(so, l)?;
        let sql = so.state.storage().sql();
        let due: Vec<String> = store::cursors(&sql)
            .map_err(sql_err)?
            .into_iter()
            .filter(|c| c.due_ms(head).is_some_and(|t| t <= now))
            .map(|c| c.sub_id)
            .collect();
        Ok(subs.into_iter().filter(|s| due.contains(&s.id)).collect::<Vec<_>>())
    })?;
    for s in subs {
        let Some(_sending) = InFlight::claim(&so.deliveries.subs_sending, s.id.clone()) else { continue };
        for _ in 0..BATCHES_PER_RUN {
            if !deliver_one(so, &s).await? {
                break;
            }
        }
    }
    Ok(())
}

/// The next range of wanted events after `after`: (first, last) of the wanted events, or None
/// with the seq scanned up to when there are none.
fn plan_batch(
    l: &Live,
    s: &Subscription,
    after: u64,
    head: u64,
    max_events: u32,
) -> Result<Result<(u64, u64), u64>, ApiError> {
    let mut next = after + 1;
    let (mut first, mut last, mut count, mut bytes) = (None, 0u64, 0u32, 0u64);
    while next <= head {
        let page = l.store.read(next, SCAN_PAGE).map_err(|e| ApiError::internal(e.to_string()))?;
        let Some(end) = page.last().map(|r| r.seq) else { break };
        for rec in &page {
            let h: EventHeader = codec::decode(&rec.header)
                .map_err(|e| ApiError::new(500, "corrupt_log", format!("seq {}: {e}", rec.seq)))?;
            if !s.wants(h.kind) {
                continue;
            }
            if count > 0 && (count >= max_events || bytes + u64::from(h.body_len) > BATCH_BYTES) {
                return Ok(Ok((first.unwrap_or(rec.seq), last)));
            }
            first.get_or_insert(rec.seq);
            last = rec.seq;
            count += 1;
            bytes += u64::from(h.body_len);
        }
        next = end + 1;
    }
    Ok(match first {
        Some(f) => Ok((f, last)),
        None => Err(head),
    })
}

fn render(
    l: &Live,
    s: &Subscription,
    (first, last): (u64, u64),
) -> Result<Vec<moltlog_core::dto::Json>, ApiError> {
    let mut out = Vec::new();
    let mut next = first;
    while next <= last {
        let page = l.store.read(next, SCAN_PAGE).map_err(|e| ApiError::internal(e.to_string()))?;
        let Some(end) = page.last().map(|r| r.seq) else { break };
        for rec in page.iter().filter(|r| r.seq <= last) {
            let h = rec.decode_header().map_err(|e| ApiError::new(500, "corrupt_log", e.to_string()))?;
            if s.wants(h.kind) {
                out.push(record_json(rec)?);
            }
        }
        next = end + 1;
    }
    Ok(out)
}

/// Sends the subscription's next delivery, if one is due. True when it went through and more
/// may follow.
async fn deliver_one(so: &SessionDO, s: &Subscription) -> Result<bool, ApiError> {
    let cfg = &so.deliveries.hooks;
    let sql = so.state.storage().sql();
    let now = rt::now_ms();
    let prepared = so.with_live(|l| {
        let Some(mut c) = store::cursor(&sql, &s.id).map_err(sql_err)? else { return Ok(None) };
        let head = l.engine.head().seq;
        if c.paused || c.next_attempt_ms > now || c.due_ms(head).is_none() {
            return Ok(None);
        }
        let range = match c.batch {
            Some(r) => r,
            None => match plan_batch(l, s, c.delivered_seq, head, cfg.batch_events)? {
                Ok(r) => {
                    // Fixed before the first attempt: every retry is this very delivery.
                    c.batch = Some(r);
                    store::put_cursor(&sql, &c).map_err(sql_err)?;
                    r
                }
                Err(scanned) => {
                    c.delivered_seq = scanned;
                    store::put_cursor(&sql, &c).map_err(sql_err)?;
                    return Ok(None);
                }
            },
        };
        Ok(Some((c, range, render(l, s, range)?, l.key.to_string())))
    })?;
    let Some((cursor, range, events, key)) = prepared else { return Ok(false) };
    let count = events.len() as u64;
    let call = sub::delivery_call(s, &key, range, events, now_s());
    let delivery_id = sub::delivery_id(&s.id, &key, range.0, range.1);
    alarm_by(so, now + cfg.timeout_ms + 1_000).await?;
    let started = rt::now_ms();
    // A URL refused now (created before the rule, or the setting changed) is never fetched.
    let (status, result) = match sub::check_url(&s.url, cfg.url_policy()) {
        Err(e) => (0, Attempt::Permanent { error: e.to_string() }),
        Ok(()) => match &net::send(&call, cfg.timeout_ms).await {
            Ok(reply) => (reply.status, sub::classify(reply)),
            Err(e) => (0, Attempt::unknown(e.clone())),
        },
    };
    let duration_ms = rt::now_ms().saturating_sub(started);
    so.ensure_live(None).await?;
    // Re-read: the subscription may have been deleted, resumed or re-planned meanwhile.
    let Some(mut c) = store::cursor(&sql, &s.id).map_err(sql_err)? else { return Ok(false) };
    if c.batch != Some(range) || c.paused != cursor.paused {
        return Ok(false);
    }
    let attempt = c.attempts + 1;
    let now = rt::now_ms();
    let (outcome, error, more) = match result {
        Attempt::Delivered { .. } => {
            c.delivered_seq = range.1;
            c.batch = None;
            c.attempts = 0;
            c.next_attempt_ms = 0;
            c.last_error = None;
            ("delivered", None, true)
        }
        Attempt::Retry { error, after_ms, .. } if attempt < cfg.max_attempts => {
            let backoff = Backoff { base_ms: cfg.backoff_base_ms, max_ms: cfg.backoff_max_ms };
            let entropy = rt::entropy() as u64;
            let delay =
                after_ms.map_or_else(|| backoff.delay_ms(attempt, entropy), |a| backoff.after_ms(a, entropy));
            c.attempts = attempt;
            c.next_attempt_ms = now + delay;
            c.last_error = Some(error.clone());
            ("failed", Some(error), false)
        }
        Attempt::Retry { error, .. } | Attempt::Permanent { error } => {
            c.attempts = attempt;
            c.paused = true;
            c.last_error = Some(error.clone());
            ("dead_lettered", Some(error), false)
        }
    };
    store::put_cursor(&sql, &c).map_err(sql_err)?;
    store::log_delivery(
        &sql,
        &LogRow {
            sub_id: &s.id,
            delivery_id: &delivery_id,
            range,
            events: count,
            attempt,
            ts_ms: started,
            duration_ms,
            status,
            outcome,
            error: error.as_deref(),
        },
    )
    .map_err(sql_err)?;
    Ok(more)
}

// --- the API ---

fn find(so: &SessionDO, l: &Live, id: &str) -> Result<Subscription, ApiError> {
    applicable(so, l)?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| sub_err(SubscriptionError::NotFound(id.to_owned())))
}

fn with_cursor(so: &SessionDO, s: &Subscription, with_secret: bool) -> Result<Value, ApiError> {
    let mut v = s.to_json(with_secret);
    v["delivery"] = store::cursor(&so.state.storage().sql(), &s.id)
        .map_err(sql_err)?
        .map_or(Value::Null, |c| c.to_json());
    Ok(v)
}

pub(super) async fn handle(so: &SessionDO, req: &mut Request, r: SessionRoute) -> Result<Response, ApiError> {
    let post = req.method() == worker::Method::Post;
    let delete = req.method() == worker::Method::Delete;
    let id = route::session_subscription_id(&req.path());
    if so.deliveries.global.borrow().is_none() {
        refresh_global(so, true).await;
    }
    match (r, id) {
        (SessionRoute::Subscriptions, _) if post => {
            let body = crate::http::body::read(req, crate::http::body::MAX_SUBSCRIPTION_BODY_BYTES).await?;
            let fresh =
                Fresh { id: rt::entropy(), secret: [rt::entropy(), rt::entropy()], now_ms: rt::now_ms() };
            let s =
                sub::parse_create(&body, false, so.deliveries.hooks.url_policy(), fresh).map_err(sub_err)?;
            let sql = so.state.storage().sql();
            so.with_live(|l| {
                store::put_subscription(&sql, &s).map_err(sql_err)?;
                store::put_cursor(&sql, &fresh_cursor(&s.id, l.engine.head().seq)).map_err(sql_err)
            })?;
            background::ensure_scheduled(so).await;
            Ok(rt::json(201, &with_cursor(so, &s, true)?)?)
        }
        (SessionRoute::Subscriptions, _) => {
            let list = so.with_live(|l| {
                sync_cursors(so, l)?.iter().map(|s| with_cursor(so, s, false)).collect::<Result<Vec<_>, _>>()
            })?;
            Ok(rt::json(200, &json!({"subscriptions": list}))?)
        }
        (SessionRoute::Subscription, Some(id)) if delete => {
            let removed = so.with_live(|l| {
                let s = find(so, l, &id)?;
                if s.scope != sub::Scope::Session {
                    return Err(ApiError::new(
                        409,
                        "subscription_is_global",
                        format!("{id} is for all sessions; delete it at /v1/subscriptions/{id}"),
                    ));
                }
                store::delete_subscription(&so.state.storage().sql(), &id).map_err(sql_err)
            })?;
            Ok(rt::json(200, &json!({"deleted": removed, "id": id}))?)
        }
        (SessionRoute::Subscription, Some(id)) => {
            let v = so.with_live(|l| with_cursor(so, &find(so, l, &id)?, false))?;
            Ok(rt::json(200, &v)?)
        }
        (SessionRoute::SubscriptionDeliveries, Some(id)) => {
            let limit = crate::http::param::query_u64(req, "limit", 1..=200)?.unwrap_or(50);
            let v = so.with_live(|l| {
                let s = find(so, l, &id)?;
                let sql = so.state.storage().sql();
                Ok(json!({"subscription": with_cursor(so, &s, false)?, "deliveries": store::deliveries(&sql, &id, limit).map_err(sql_err)?}))
            })?;
            Ok(rt::json(200, &v)?)
        }
        (SessionRoute::SubscriptionResume, Some(id)) => {
            let v = so.with_live(|l| {
                let s = find(so, l, &id)?;
                sync_cursors(so, l)?;
                let sql = so.state.storage().sql();
                if let Some(mut c) = store::cursor(&sql, &s.id).map_err(sql_err)? {
                    c.paused = false;
                    c.attempts = 0;
                    c.next_attempt_ms = 0;
                    store::put_cursor(&sql, &c).map_err(sql_err)?;
                }
                with_cursor(so, &s, false)
            })?;
            background::ensure_scheduled(so).await;
            Ok(rt::json(200, &v)?)
        }
        _ => Err(ApiError::new(404, "not_found", "no such subscription route")),
    }
}
