//! Outbound deliveries from the session's alarm: the chat outbox (`outbox.rs`) and the webhook
//! subscriptions (`subscriptions.rs`). This module holds what they keep in memory and ties them
//! into the alarm's schedule (`Work::deliveries_due_ms`).
//!
//! Memory here is never state. The "sending" sets say which deliveries this very instance has
//! in flight, so that an alarm or request interleaving with an awaited send does not start the
//! same one again; a new instance starts with empty sets, which is how a marker left in SQLite
//! is recognised as a send that died with its instance.

use std::cell::RefCell;
use std::collections::BTreeSet;

use worker::{Env, ScheduledTime, console_error};

use super::SessionDO;
use crate::bridge::config::BridgeConfig;
use crate::hooks::config::HooksConfig;
use crate::hooks::subscription::Subscription;
use crate::http::ApiError;
use crate::rt;

pub struct Deliveries {
    pub bridge: BridgeConfig,
    pub hooks: HooksConfig,
    /// Outbox seqs this instance is sending now.
    pub sending: RefCell<BTreeSet<u64>>,
    /// Subscriptions this instance is delivering to now.
    pub subs_sending: RefCell<BTreeSet<String>>,
    /// The all-sessions subscriptions as last read from the registry, and when.
    pub global: RefCell<Option<(u64, Vec<Subscription>)>>,
    /// When the registry was last asked (answered or not), to pace retries.
    pub global_asked_ms: std::cell::Cell<u64>,
}

impl Deliveries {
    pub fn new(env: &Env) -> Deliveries {
        let var = |n: &str| env.var(n).ok().map(|v| v.to_string());
        let bridge = BridgeConfig::from_vars(var).unwrap_or_else(|e| {
            console_error!("moltlog bridge: {e}; using defaults");
            BridgeConfig::default()
        });
        let hooks = HooksConfig::from_vars(var).unwrap_or_else(|e| {
            console_error!("moltlog webhooks: {e}; using defaults");
            HooksConfig::default()
        });
        Deliveries {
            bridge,
            hooks,
            sending: RefCell::default(),
            subs_sending: RefCell::default(),
            global: RefCell::default(),
            global_asked_ms: Default::default(),
        }
    }
}

/// Removes a delivery from a "sending" set when the delivery ends, however it ends.
pub struct InFlight<'a, T: Ord + Clone> {
    set: &'a RefCell<BTreeSet<T>>,
    item: T,
}

impl<'a, T: Ord + Clone> InFlight<'a, T> {
    /// Claims `item`; None if this instance is delivering it already.
    pub fn claim(set: &'a RefCell<BTreeSet<T>>, item: T) -> Option<InFlight<'a, T>> {
        set.borrow_mut().insert(item.clone()).then_some(InFlight { set, item })
    }
}

impl<T: Ord + Clone> Drop for InFlight<'_, T> {
    fn drop(&mut self) {
        self.set.borrow_mut().remove(&self.item);
    }
}

/// The alarm's delivery step. Only the object's own failures (storage) are errors; a platform
/// or subscriber failing is recorded as a receipt or in the delivery log and retried.
pub(super) async fn run(so: &SessionDO) -> Result<(), ApiError> {
    super::outbox::run(so).await?;
    super::subscriptions::run(so).await
}

/// Recomputes when deliveries next need the alarm (called before every scheduling decision).
pub(super) fn refresh_due(so: &SessionDO) {
    let result = so.with_live(|l| {
        let outbox = crate::bridge::outbox::next_due_ms(&l.state().outbox, &so.deliveries.sending.borrow());
        let subs = super::subscriptions::next_due_ms(so, l)?;
        l.work.deliveries_due_ms = [outbox, subs].into_iter().flatten().min();
        Ok(())
    });
    if let Err(e) = result
        && e.status != 503
    {
        console_error!("moltlog deliveries: {e}");
    }
}

/// Makes sure the alarm fires by `at_ms`: set before a send, so that a runtime that dies
/// mid-send comes back to finish it.
pub(super) async fn alarm_by(so: &SessionDO, at_ms: u64) -> Result<(), ApiError> {
    let current = so.with_live(|l| Ok(l.alarm_at))?;
    if current.is_some_and(|c| c <= at_ms) {
        return Ok(());
    }
    let at = ScheduledTime::new(js_sys::Date::new(&js_sys::Number::from(at_ms as f64)));
    so.state.storage().set_alarm(at).await?;
    let _ = so.with_live(|l| {
        if l.alarm_at.is_none_or(|c| c > at_ms) {
            l.alarm_at = Some(at_ms);
        }
        Ok(())
    });
    Ok(())
}

/// Storage writes made so far are durable once this returns (the output gate already holds
/// outgoing requests until they are; this makes the ordering explicit before a side effect).
pub(super) async fn durable(so: &SessionDO) {
    if let Err(e) = so.state.storage().sync().await {
        console_error!("moltlog: storage sync before a send failed: {e}");
    }
}

pub(super) fn sql_err(e: super::sql_store::SqlError) -> ApiError {
    ApiError::new(500, "storage_error", e.to_string())
}

pub(super) fn now_s() -> u64 {
    rt::now_ms() / 1000
}
