//! The bridge's and the webhooks' rows in the session's SQLite (schemas `0002_bridge.sql`,
//! `0003_outbox_parts.sql`): in-flight outbox markers, the parts of long replies delivered so
//! far, Discord interaction tokens, subscriptions and their delivery progress. All synchronous: callers read and write between awaits, never across one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use worker::{SqlStorage, SqlStorageValue as V};

use super::sql_store::SqlError;
use crate::bridge::DiscordInteraction;
use crate::bridge::outbox::Inflight;
use crate::hooks::subscription::{Cursor, Scope, Subscription};

/// Delivery log rows kept per subscription.
const DELIVERY_LOG_KEPT: u64 = 200;

fn int(v: u64) -> V {
    V::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt_int(v: Option<u64>) -> V {
    v.map_or(V::Null, int)
}

fn text(s: &str) -> V {
    V::String(s.to_owned())
}

fn u(v: &V) -> u64 {
    match v {
        V::Integer(i) if *i >= 0 => *i as u64,
        V::Float(f) if *f >= 0.0 => *f as u64,
        _ => 0,
    }
}

fn opt_u(v: &V) -> Option<u64> {
    matches!(v, V::Integer(_) | V::Float(_)).then(|| u(v))
}

fn s(v: &V) -> String {
    match v {
        V::String(s) => s.clone(),
        _ => String::new(),
    }
}

fn opt_s(v: &V) -> Option<String> {
    match v {
        V::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn exec(sql: &SqlStorage, q: &str, args: Vec<V>) -> Result<usize, SqlError> {
    Ok(sql.exec(q, Some(args))?.rows_written())
}

fn rows(sql: &SqlStorage, q: &str, args: Vec<V>) -> Result<Vec<Vec<V>>, SqlError> {
    sql.exec(q, Some(args))?.raw().map(|r| r.map_err(SqlError::from)).collect()
}

// --- outbox in-flight markers ---

pub fn inflight_all(sql: &SqlStorage) -> Result<BTreeMap<u64, Inflight>, SqlError> {
    Ok(rows(sql, "SELECT seq, attempt, started_ms, uncertain FROM outbox_inflight", vec![])?
        .iter()
        .map(|r| {
            (u(&r[0]), Inflight { attempt: u(&r[1]) as u32, started_ms: u(&r[2]), uncertain: u(&r[3]) != 0 })
        })
        .collect())
}

/// Records a send about to start (replacing an older marker of the same message).
pub fn put_inflight(sql: &SqlStorage, seq: u64, m: Inflight) -> Result<(), SqlError> {
    exec(
        sql,
        "INSERT INTO outbox_inflight (seq, attempt, started_ms, uncertain) VALUES (?, ?, ?, ?)
         ON CONFLICT(seq) DO UPDATE SET attempt = excluded.attempt, started_ms = excluded.started_ms,
         uncertain = excluded.uncertain",
        vec![int(seq), int(u64::from(m.attempt)), int(m.started_ms), int(u64::from(m.uncertain))],
    )?;
    Ok(())
}

/// Flags the send of `attempt` as having no answer (so the marker outlives its receipt).
pub fn mark_uncertain(sql: &SqlStorage, seq: u64, attempt: u32) -> Result<(), SqlError> {
    exec(
        sql,
        "UPDATE outbox_inflight SET uncertain = 1 WHERE seq = ? AND attempt = ?",
        vec![int(seq), int(u64::from(attempt))],
    )?;
    Ok(())
}

pub fn delete_inflight(sql: &SqlStorage, seq: u64) -> Result<(), SqlError> {
    exec(sql, "DELETE FROM outbox_inflight WHERE seq = ?", vec![int(seq)])?;
    Ok(())
}

// --- parts of long replies ---

/// The parts of outbox message `seq` the platform took so far, with their remote ids.
pub fn parts_delivered(sql: &SqlStorage, seq: u64) -> Result<BTreeMap<u32, Option<String>>, SqlError> {
    Ok(rows(sql, "SELECT part, remote_id FROM outbox_parts WHERE seq = ?", vec![int(seq)])?
        .iter()
        .map(|r| (u32::try_from(u(&r[0])).unwrap_or(u32::MAX), opt_s(&r[1])))
        .collect())
}

/// Records that the platform took part `part` of `seq` (before the next part is sent).
pub fn put_part(sql: &SqlStorage, seq: u64, part: u32, remote_id: Option<&str>) -> Result<(), SqlError> {
    exec(
        sql,
        "INSERT OR IGNORE INTO outbox_parts (seq, part, remote_id) VALUES (?, ?, ?)",
        vec![int(seq), int(u64::from(part)), remote_id.map_or(V::Null, text)],
    )?;
    Ok(())
}

/// The messages that have part rows.
pub fn part_seqs(sql: &SqlStorage) -> Result<BTreeSet<u64>, SqlError> {
    Ok(rows(sql, "SELECT DISTINCT seq FROM outbox_parts", vec![])?.iter().map(|r| u(&r[0])).collect())
}

pub fn delete_parts(sql: &SqlStorage, seq: u64) -> Result<(), SqlError> {
    exec(sql, "DELETE FROM outbox_parts WHERE seq = ?", vec![int(seq)])?;
    Ok(())
}

// --- Discord interactions ---

pub fn put_interaction(sql: &SqlStorage, i: &DiscordInteraction, now_ms: u64) -> Result<(), SqlError> {
    exec(
        sql,
        "INSERT OR IGNORE INTO discord_interactions (interaction_id, application_id, token, created_ms) VALUES (?, ?, ?, ?)",
        vec![text(&i.id), text(&i.application_id), text(&i.token), int(now_ms)],
    )?;
    // Tokens are useless after 15 minutes: forget old ones.
    exec(
        sql,
        "DELETE FROM discord_interactions WHERE created_ms < ?",
        vec![int(now_ms.saturating_sub(crate::bridge::discord::INTERACTION_TOKEN_MS * 2))],
    )?;
    Ok(())
}

/// An interaction's credentials, creation time and the outbox message that claimed its
/// deferred response.
pub struct StoredInteraction {
    pub interaction: DiscordInteraction,
    pub created_ms: u64,
    pub original_seq: Option<u64>,
}

pub fn interaction(sql: &SqlStorage, id: &str) -> Result<Option<StoredInteraction>, SqlError> {
    let r = rows(
        sql,
        "SELECT interaction_id, application_id, token, created_ms, original_seq FROM discord_interactions WHERE interaction_id = ?",
        vec![text(id)],
    )?;
    Ok(r.first().map(|r| StoredInteraction {
        interaction: DiscordInteraction { id: s(&r[0]), application_id: s(&r[1]), token: s(&r[2]) },
        created_ms: u(&r[3]),
        original_seq: opt_u(&r[4]),
    }))
}

/// Claims the interaction's deferred response for outbox message `seq`; true if it is `seq`'s
/// (now or already). Stored before the edit is sent, so a repeat after a crash edits again
/// (harmless) and a later reply never overwrites this one.
pub fn claim_original(sql: &SqlStorage, id: &str, seq: u64) -> Result<bool, SqlError> {
    exec(
        sql,
        "UPDATE discord_interactions SET original_seq = ? WHERE interaction_id = ? AND original_seq IS NULL",
        vec![int(seq), text(id)],
    )?;
    Ok(interaction(sql, id)?.is_some_and(|i| i.original_seq == Some(seq)))
}

pub fn forget_interaction(sql: &SqlStorage, id: &str) -> Result<(), SqlError> {
    exec(sql, "DELETE FROM discord_interactions WHERE interaction_id = ?", vec![text(id)])?;
    Ok(())
}

// --- subscriptions of this session ---

pub fn put_subscription(sql: &SqlStorage, sub: &Subscription) -> Result<(), SqlError> {
    exec(
        sql,
        "INSERT INTO subscriptions (id, url, secret, kinds, created_ms) VALUES (?, ?, ?, ?, ?)",
        vec![text(&sub.id), text(&sub.url), text(&sub.secret), text(&sub.kinds_text()), int(sub.created_ms)],
    )?;
    Ok(())
}

pub fn subscriptions(sql: &SqlStorage) -> Result<Vec<Subscription>, SqlError> {
    Ok(rows(
        sql,
        "SELECT id, url, secret, kinds, created_ms FROM subscriptions ORDER BY created_ms, id",
        vec![],
    )?
    .iter()
    .map(|r| Subscription {
        id: s(&r[0]),
        url: s(&r[1]),
        secret: s(&r[2]),
        kinds: Subscription::kinds_from_text(&s(&r[3])),
        scope: Scope::Session,
        created_ms: u(&r[4]),
    })
    .collect())
}

pub fn delete_subscription(sql: &SqlStorage, id: &str) -> Result<bool, SqlError> {
    let n = exec(sql, "DELETE FROM subscriptions WHERE id = ?", vec![text(id)])?;
    delete_cursor(sql, id)?;
    Ok(n > 0)
}

// --- delivery progress ---

fn cursor_of(r: &[V]) -> Cursor {
    let batch = match (opt_u(&r[2]), opt_u(&r[3])) {
        (Some(f), Some(l)) => Some((f, l)),
        _ => None,
    };
    Cursor {
        sub_id: s(&r[0]),
        delivered_seq: u(&r[1]),
        batch,
        attempts: u(&r[4]) as u32,
        next_attempt_ms: u(&r[5]),
        paused: u(&r[6]) != 0,
        last_error: opt_s(&r[7]),
    }
}

const CURSOR_COLUMNS: &str =
    "sub_id, delivered_seq, batch_first, batch_last, attempts, next_attempt_ms, paused, last_error";

pub fn cursors(sql: &SqlStorage) -> Result<Vec<Cursor>, SqlError> {
    Ok(rows(sql, &format!("SELECT {CURSOR_COLUMNS} FROM subscription_cursors ORDER BY sub_id"), vec![])?
        .iter()
        .map(|r| cursor_of(r))
        .collect())
}

pub fn cursor(sql: &SqlStorage, sub_id: &str) -> Result<Option<Cursor>, SqlError> {
    Ok(rows(
        sql,
        &format!("SELECT {CURSOR_COLUMNS} FROM subscription_cursors WHERE sub_id = ?"),
        vec![text(sub_id)],
    )?
    .first()
    .map(|r| cursor_of(r)))
}

pub fn put_cursor(sql: &SqlStorage, c: &Cursor) -> Result<(), SqlError> {
    exec(
        sql,
        &format!(
            "INSERT INTO subscription_cursors ({CURSOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(sub_id) DO UPDATE SET delivered_seq = excluded.delivered_seq,
             batch_first = excluded.batch_first, batch_last = excluded.batch_last,
             attempts = excluded.attempts, next_attempt_ms = excluded.next_attempt_ms,
             paused = excluded.paused, last_error = excluded.last_error"
        ),
        vec![
            text(&c.sub_id),
            int(c.delivered_seq),
            opt_int(c.batch.map(|b| b.0)),
            opt_int(c.batch.map(|b| b.1)),
            int(u64::from(c.attempts)),
            int(c.next_attempt_ms),
            int(u64::from(c.paused)),
            c.last_error.as_deref().map_or(V::Null, text),
        ],
    )?;
    Ok(())
}

pub fn delete_cursor(sql: &SqlStorage, sub_id: &str) -> Result<(), SqlError> {
    exec(sql, "DELETE FROM subscription_cursors WHERE sub_id = ?", vec![text(sub_id)])?;
    exec(sql, "DELETE FROM subscription_deliveries WHERE sub_id = ?", vec![text(sub_id)])?;
    Ok(())
}

/// One attempt in the delivery log.
pub struct LogRow<'a> {
    pub sub_id: &'a str,
    pub delivery_id: &'a str,
    pub range: (u64, u64),
    pub events: u64,
    pub attempt: u32,
    pub ts_ms: u64,
    pub duration_ms: u64,
    /// The HTTP status, 0 when no answer came.
    pub status: u16,
    pub outcome: &'static str,
    pub error: Option<&'a str>,
}

pub fn log_delivery(sql: &SqlStorage, r: &LogRow<'_>) -> Result<(), SqlError> {
    exec(
        sql,
        "INSERT INTO subscription_deliveries (sub_id, delivery_id, first_seq, last_seq, events, attempt, ts_ms,
         duration_ms, status, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            text(r.sub_id),
            text(r.delivery_id),
            int(r.range.0),
            int(r.range.1),
            int(r.events),
            int(u64::from(r.attempt)),
            int(r.ts_ms),
            int(r.duration_ms),
            int(u64::from(r.status)),
            text(r.outcome),
            r.error.map_or(V::Null, text),
        ],
    )?;
    exec(
        sql,
        "DELETE FROM subscription_deliveries WHERE sub_id = ? AND id <= (SELECT id FROM subscription_deliveries
         WHERE sub_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        vec![text(r.sub_id), text(r.sub_id), int(DELIVERY_LOG_KEPT)],
    )?;
    Ok(())
}

/// The newest `limit` log rows of a subscription, newest first, as the API shows them.
pub fn deliveries(sql: &SqlStorage, sub_id: &str, limit: u64) -> Result<Vec<Value>, SqlError> {
    Ok(rows(
        sql,
        "SELECT delivery_id, first_seq, last_seq, events, attempt, ts_ms, duration_ms, status, outcome, error
         FROM subscription_deliveries WHERE sub_id = ? ORDER BY id DESC LIMIT ?",
        vec![text(sub_id), int(limit)],
    )?
    .iter()
    .map(|r| {
        json!({
            "delivery_id": s(&r[0]),
            "first_seq": u(&r[1]),
            "last_seq": u(&r[2]),
            "events": u(&r[3]),
            "attempt": u(&r[4]),
            "ts_ms": u(&r[5]),
            "duration_ms": u(&r[6]),
            "status": u(&r[7]),
            "outcome": s(&r[8]),
            "error": opt_s(&r[9]),
        })
    })
    .collect())
}

/// Headers of the records `from..` going backwards (newest first), for scans from the head.
pub fn headers_desc(sql: &SqlStorage, from: u64, limit: u32) -> Result<Vec<(u64, Vec<u8>)>, SqlError> {
    super::pages::headers_desc(sql, from, limit)
}
