//! Delivering the chat outbox from the alarm: Telegram `sendMessage`, Slack `chat.postMessage`,
//! Discord interaction edits and channel messages. See `bridge::outbox` for the exactly-once
//! argument; this is its IO:
//!
//! 1. capture (synchronously): the entry, its attempt number, any marker an earlier send left;
//! 2. settle an earlier send whose outcome is unknown (Slack lookup, or the policy);
//! 3. store the in-flight marker (and a Discord claim), set the alarm as a safety net, then send;
//!    a long reply is sent part by part, each part taken recorded (and its marker dropped)
//!    before the next is marked and sent, starting at the first part not taken yet;
//! 4. after the answer, reload the session if it was evicted meanwhile, append the receipt
//!    (idempotency key `outbox:{seq}:{attempt}`, so a repeat appends nothing) and drop the
//!    marker — unless no answer came, in which case the marker stays, flagged uncertain.

use moltlog_core::engine::blob_object_key;
use std::collections::BTreeMap;

use moltlog_core::event::{Actor, DeliveryOutcome, DeliveryReceipt, EventBody, Payload};
use moltlog_core::state::OutboxEntry;
use moltlog_core::{AppendRequest, NewEvent};
use worker::{console_log, console_warn};

use super::bridge_store::{self as store, StoredInteraction};
use super::deliver::{InFlight, alarm_by, durable, sql_err};
use super::{SessionDO, append};
use crate::bridge::config::OnUncertain;
use crate::bridge::outbound::{self, Attempt, Backoff, HttpCall};
use crate::bridge::outbox::{self, Inflight, Resolve, Route};
use crate::bridge::{BridgeError, BridgePlatform, discord, slack, split, telegram};
use crate::http::ApiError;
use crate::{net, rt};

/// Messages sent per alarm run (the next run continues).
const PER_RUN: usize = 16;

pub(super) async fn run(so: &SessionDO) -> Result<(), ApiError> {
    let now = rt::now_ms();
    let sql = so.state.storage().sql();
    let due = so.with_live(|l| {
        let markers = store::inflight_all(&sql).map_err(sql_err)?;
        for seq in outbox::stale_markers(&l.state().outbox, &markers) {
            store::delete_inflight(&sql, seq).map_err(sql_err)?;
        }
        let with_parts = store::part_seqs(&sql).map_err(sql_err)?;
        for seq in outbox::stale_parts(&l.state().outbox, &with_parts) {
            store::delete_parts(&sql, seq).map_err(sql_err)?;
        }
        Ok(outbox::due(&l.state().outbox, &so.deliveries.sending.borrow(), now))
    })?;
    for seq in due.into_iter().take(PER_RUN) {
        let Some(_sending) = InFlight::claim(&so.deliveries.sending, seq) else { continue };
        deliver(so, seq).await?;
    }
    Ok(())
}

/// One outbox message, as captured before any await.
struct Prepared {
    seq: u64,
    entry: OutboxEntry,
    attempt: u32,
    /// When an earlier send whose outcome is unknown started.
    uncertain_since: Option<u64>,
    platform: BridgePlatform,
    interaction: Option<StoredInteraction>,
    /// The session, for the parts' delivery ids.
    key: String,
    /// Parts of a long reply the platform took already, with their remote ids.
    delivered: BTreeMap<u32, Option<String>>,
}

/// One part of the reply, as it goes out.
struct Part<'a> {
    index: u32,
    text: &'a str,
    delivery_id: String,
}

fn prepare(so: &SessionDO, seq: u64, now: u64) -> Result<Option<Prepared>, ApiError> {
    let sql = so.state.storage().sql();
    so.with_live(|l| {
        let Some(entry) = l.state().outbox.get(&seq).filter(|e| e.is_due(now)).cloned() else {
            return Ok(None);
        };
        let Some(platform) = BridgePlatform::of(&entry.channel.platform) else { return Ok(None) };
        let marker = store::inflight_all(&sql).map_err(sql_err)?.get(&seq).copied();
        let (attempt, uncertain) = outbox::next_attempt(&entry, marker.as_ref());
        let interaction = match (platform, entry.channel.message_id.as_deref()) {
            (BridgePlatform::Discord, Some(id)) => store::interaction(&sql, id).map_err(sql_err)?,
            _ => None,
        };
        Ok(Some(Prepared {
            seq,
            attempt,
            uncertain_since: uncertain.then(|| marker.map_or(now, |m| m.started_ms)),
            platform,
            interaction,
            key: l.key.as_str().to_owned(),
            delivered: store::parts_delivered(&sql, seq).map_err(sql_err)?,
            entry,
        }))
    })
}

async fn deliver(so: &SessionDO, seq: u64) -> Result<(), ApiError> {
    let Some(p) = prepare(so, seq, rt::now_ms())? else { return Ok(()) };
    match attempt(so, &p).await? {
        Some(result) => settle(so, &p, result).await,
        None => Ok(()),
    }
}

/// Whether `p` is still what the log says after an await: pending, at the same attempt, with
/// its text (a redaction may have landed meanwhile).
async fn still_current(so: &SessionDO, p: &Prepared) -> Result<bool, ApiError> {
    so.ensure_live(None).await?;
    so.with_live(|l| {
        Ok(l.state().outbox.get(&p.seq).is_some_and(|e| {
            e.status == p.entry.status && e.attempts + 1 == p.attempt && e.text == p.entry.text
        }))
    })
}

/// The message's text (blobs are read from R2; a redacted message cannot be sent).
async fn text(so: &SessionDO, p: &Prepared) -> Result<Result<String, Attempt>, ApiError> {
    Ok(match &p.entry.text {
        Payload::Inline(s) => Ok(s.clone()),
        Payload::Blob(b) => {
            match rt::get_bytes(&so.env.bucket(rt::BUCKET)?, &blob_object_key(&b.sha256)).await? {
                Some(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                None => Err(Attempt::Retry {
                    error: "the message's text blob is missing".into(),
                    after_ms: None,
                    uncertain: false,
                }),
            }
        }
        Payload::Redacted => {
            Err(Attempt::Permanent { error: "the message was redacted before it was delivered".into() })
        }
    })
}

/// How a part goes out, and the request. The first part quotes the message answered (Telegram)
/// and completes the Discord interaction; the others follow as plain messages.
fn build(so: &SessionDO, p: &Prepared, part: &Part<'_>, now: u64) -> Result<(Route, HttpCall), BridgeError> {
    let cfg = &so.deliveries.bridge;
    let ch = &p.entry.channel;
    let text = part.text;
    let first = part.index == 0;
    Ok(match p.platform {
        BridgePlatform::Telegram => (
            Route::Telegram,
            telegram::send_call(
                &cfg.telegram,
                &ch.chat_id,
                ch.message_id.as_deref().filter(|_| first),
                ch.thread_id.as_deref(),
                text,
            )?,
        ),
        BridgePlatform::Slack => (
            Route::Slack,
            slack::send_call(&cfg.slack, &ch.chat_id, ch.thread_id.as_deref(), text, &part.delivery_id)?,
        ),
        BridgePlatform::Discord => match &p.interaction {
            Some(i)
                if first
                    && discord::token_usable(i.created_ms, now)
                    && i.original_seq.is_none_or(|s| s == p.seq) =>
            {
                let call = discord::edit_original_call(
                    &cfg.discord,
                    &i.interaction.application_id,
                    &i.interaction.token,
                    text,
                );
                (Route::DiscordEdit, call)
            }
            _ => (
                Route::DiscordCreate,
                discord::create_message_call(&cfg.discord, &ch.chat_id, text, &part.delivery_id)?,
            ),
        },
    })
}

fn classify(route: Route, reply: &outbound::HttpReply) -> Attempt {
    match route {
        Route::Telegram => telegram::classify(reply),
        Route::Slack => slack::classify(reply),
        Route::DiscordEdit | Route::DiscordCreate => discord::classify(reply),
    }
}

/// Settles an earlier send whose outcome is unknown. `Some` ends this attempt without sending.
async fn resolve(
    so: &SessionDO,
    p: &Prepared,
    part: &Part<'_>,
    route: Route,
    since: u64,
) -> Result<Option<Attempt>, ApiError> {
    let cfg = &so.deliveries.bridge;
    let give_up = || {
        Some(Attempt::Permanent {
            error: "an earlier send's outcome is unknown and OUTBOX_ON_UNCERTAIN=dead_letter: not sent again"
                .into(),
        })
    };
    match outbox::resolve_uncertain(route, since, rt::now_ms(), cfg.outbox.on_uncertain) {
        Resolve::Send => Ok(None),
        Resolve::GiveUp => Ok(give_up()),
        Resolve::LookUp => {
            let ch = &p.entry.channel;
            let Ok(call) = slack::lookup_call(&cfg.slack, &ch.chat_id, ch.thread_id.as_deref(), since) else {
                return Ok(None);
            };
            let reply = match net::send(&call, cfg.outbox.timeout_ms).await {
                Ok(r) => r,
                // Still unknown: try again later, the marker stays.
                Err(e) => return Ok(Some(Attempt::unknown(format!("looking for an earlier send: {e}")))),
            };
            match slack::lookup_result(&reply, &part.delivery_id) {
                slack::Lookup::Found(ts) => {
                    console_log!(
                        "moltlog outbox: seq {} part {} was delivered before the runtime lost track (ts {ts})",
                        p.seq,
                        part.index
                    );
                    Ok(Some(Attempt::Delivered { remote_id: Some(ts) }))
                }
                slack::Lookup::Absent => Ok(None),
                slack::Lookup::Failed(why) => {
                    console_warn!(
                        "moltlog outbox: seq {}: {why}; cannot tell whether it was delivered",
                        p.seq
                    );
                    Ok(if cfg.outbox.on_uncertain == OnUncertain::DeadLetter { give_up() } else { None })
                }
            }
        }
    }
}

/// Makes the attempt: every part not yet taken, in order. None when the message changed under
/// it (nothing more was sent, nothing to record: the next run looks again).
async fn attempt(so: &SessionDO, p: &Prepared) -> Result<Option<Attempt>, ApiError> {
    let text = match text(so, p).await? {
        Ok(t) => t,
        Err(done) => return Ok(Some(done)),
    };
    let parts = split::split(&text, outbox::part_limit(p.platform));
    let mut first_remote = p.delivered.get(&0).cloned().flatten();
    // An unknown outcome concerns the part that was in flight: the first one not taken.
    let mut uncertain_since = p.uncertain_since;
    for index in outbox::remaining_parts(parts.len(), &p.delivered) {
        let part = Part {
            index,
            text: &parts[index as usize],
            delivery_id: outbound::part_delivery_id(&p.key, p.seq, index),
        };
        match send_part(so, p, &part, uncertain_since.take()).await? {
            None => return Ok(None),
            Some(Attempt::Delivered { remote_id }) => {
                let sql = so.state.storage().sql();
                store::put_part(&sql, p.seq, index, remote_id.as_deref()).map_err(sql_err)?;
                // Nothing is in flight between parts: a restart here resumes with the next part.
                store::delete_inflight(&sql, p.seq).map_err(sql_err)?;
                if index == 0 {
                    first_remote = remote_id;
                }
            }
            Some(failed) => return Ok(Some(failed)),
        }
    }
    Ok(Some(Attempt::Delivered { remote_id: first_remote }))
}

/// Sends one part under the marker rules; None when the message changed under it.
async fn send_part(
    so: &SessionDO,
    p: &Prepared,
    part: &Part<'_>,
    uncertain_since: Option<u64>,
) -> Result<Option<Attempt>, ApiError> {
    let text = part.text;
    let now = rt::now_ms();
    let (mut route, mut call) = match build(so, p, part, now) {
        Ok(rc) => rc,
        // Not configured (yet): the operator may add the secret, so this is retried.
        Err(e) => return Ok(Some(Attempt::Retry { error: e.to_string(), after_ms: None, uncertain: false })),
    };
    if let Some(since) = uncertain_since
        && let Some(done) = resolve(so, p, part, route, since).await?
    {
        return Ok(Some(done));
    }
    // Re-check after the awaits above, before anything is written or sent.
    if !still_current(so, p).await? {
        return Ok(None);
    }
    // Storage before the side effect: the claim and the marker are durable before the request.
    let sql = so.state.storage().sql();
    let now = rt::now_ms();
    if route == Route::DiscordEdit {
        let i = p.interaction.as_ref().map(|i| i.interaction.id.as_str()).unwrap_or_default();
        if !store::claim_original(&sql, i, p.seq).map_err(sql_err)? {
            // Another reply took the deferred response meanwhile: post a message instead.
            match discord::create_message_call(
                &so.deliveries.bridge.discord,
                &p.entry.channel.chat_id,
                text,
                &part.delivery_id,
            ) {
                Ok(c) => (route, call) = (Route::DiscordCreate, c),
                Err(e) => {
                    return Ok(Some(Attempt::Retry {
                        error: e.to_string(),
                        after_ms: None,
                        uncertain: false,
                    }));
                }
            }
        }
    }
    store::put_inflight(&sql, p.seq, Inflight { attempt: p.attempt, started_ms: now, uncertain: false })
        .map_err(sql_err)?;
    let timeout = so.deliveries.bridge.outbox.timeout_ms;
    alarm_by(so, now + timeout + 1_000).await?;
    durable(so).await;
    if !still_current(so, p).await? {
        // Changed during those awaits (a redaction, say): nothing went out.
        store::delete_inflight(&sql, p.seq).map_err(sql_err)?;
        return Ok(None);
    }
    let result = match net::send(&call, timeout).await {
        Ok(reply) => {
            if route == Route::DiscordEdit && discord::interaction_gone(&reply) {
                let id = p.interaction.as_ref().map(|i| i.interaction.id.as_str()).unwrap_or_default();
                store::forget_interaction(&sql, id).map_err(sql_err)?;
            }
            classify(route, &reply)
        }
        Err(e) => Attempt::unknown(e),
    };
    Ok(Some(result))
}

/// Records the attempt's outcome as a receipt event, then clears the marker.
async fn settle(so: &SessionDO, p: &Prepared, result: Attempt) -> Result<(), ApiError> {
    // The object may have lost its memory while the request was out.
    so.ensure_live(None).await?;
    let sql = so.state.storage().sql();
    let unknown = matches!(result, Attempt::Retry { uncertain: true, .. });
    if unknown {
        store::mark_uncertain(&sql, p.seq, p.attempt).map_err(sql_err)?;
    }
    let cfg = &so.deliveries.bridge.outbox;
    let backoff = Backoff { base_ms: cfg.backoff_base_ms, max_ms: cfg.backoff_max_ms };
    let outcome =
        outbound::outcome(p.attempt, cfg.max_attempts, backoff, &result, rt::now_ms(), rt::entropy() as u64);
    let last = matches!(outcome, DeliveryOutcome::Delivered { .. } | DeliveryOutcome::DeadLettered { .. });
    let receipt = DeliveryReceipt { outbox_seq: p.seq, attempt: p.attempt, outcome };
    let request = AppendRequest {
        actor: Actor::System,
        events: vec![NewEvent {
            body: EventBody::DeliveryReceipt(receipt),
            idempotency_key: Some(format!("outbox:{}:{}", p.seq, p.attempt)),
            causation: Some(p.seq),
        }],
        expected_seq: None,
        idempotency_key: None,
    };
    match append::append(so, request).await {
        Ok(_) => {}
        // A receipt for this attempt is there already (with another outcome): keep the first.
        Err(e) if e.code == "idempotency_key_reused" => {
            console_warn!("moltlog outbox: seq {} attempt {} has a receipt already", p.seq, p.attempt)
        }
        Err(e) => return Err(e),
    }
    if !unknown {
        store::delete_inflight(&sql, p.seq).map_err(sql_err)?;
    }
    if last {
        store::delete_parts(&sql, p.seq).map_err(sql_err)?;
    }
    Ok(())
}
