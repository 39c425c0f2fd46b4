//! Checks on an append request before anything is decided.

use std::collections::HashSet;

use super::{AppendError, AppendRequest, Limits, NewEvent};
use crate::event::{Actor, EventBody, Lifecycle, Payload};

pub(super) fn keys<E: std::error::Error>(req: &AppendRequest, limits: &Limits) -> Result<(), AppendError<E>> {
    let max = limits.max_key_bytes as usize;
    let mut seen = HashSet::new();
    let batch_key = req.idempotency_key.iter().map(|k| (0, k));
    let event_keys =
        req.events.iter().enumerate().filter_map(|(i, e)| e.idempotency_key.as_ref().map(|k| (i, k)));
    for (index, key) in batch_key.chain(event_keys) {
        if key.is_empty() || key.len() > max {
            return Err(AppendError::Invalid {
                index,
                reason: format!("idempotency key must be 1..={max} bytes, is {}", key.len()),
            });
        }
        if !seen.insert(key.as_str()) {
            return Err(AppendError::DuplicateKeyInBatch { key: key.clone() });
        }
    }
    Ok(())
}

fn short<E: std::error::Error>(
    index: usize,
    field: &str,
    value: &str,
    limits: &Limits,
) -> Result<(), AppendError<E>> {
    let max = limits.max_key_bytes as usize;
    if value.is_empty() || value.len() > max {
        return Err(AppendError::Invalid {
            index,
            reason: format!("{field} must be 1..={max} bytes, is {}", value.len()),
        });
    }
    Ok(())
}

fn not_redacted<E: std::error::Error>(index: usize, field: &str, p: &Payload) -> Result<(), AppendError<E>> {
    if p.is_redacted() {
        return Err(AppendError::Invalid {
            index,
            reason: format!("{field} cannot be appended as redacted"),
        });
    }
    Ok(())
}

/// Which actors may append which kinds: receipts and archive recovery are the system's own
/// record; redactions are an operator's (or the system's) decision.
fn allowed(actor: Actor, body: &EventBody) -> bool {
    match body {
        EventBody::DeliveryReceipt(_) | EventBody::Lifecycle(Lifecycle::RecoveredFromArchive { .. }) => {
            actor == Actor::System
        }
        EventBody::Redaction(_) => matches!(actor, Actor::System | Actor::Operator),
        // Only recovery records a gap (`Engine::record_gap`), at the seq after it.
        EventBody::Lifecycle(Lifecycle::RecordsLost { .. }) => false,
        _ => true,
    }
}

pub(super) fn event<E: std::error::Error>(
    index: usize,
    actor: Actor,
    e: &NewEvent,
    limits: &Limits,
) -> Result<(), AppendError<E>> {
    if !allowed(actor, &e.body) {
        return Err(AppendError::Forbidden { index, actor: actor.name(), kind: e.body.kind() });
    }
    match &e.body {
        EventBody::ChatMessage(m) => {
            not_redacted(index, "text", &m.text)?;
            if let Some(c) = &m.channel {
                short(index, "channel.chat_id", &c.chat_id, limits)?;
                short(index, "channel type", c.platform.name(), limits)?;
            }
        }
        EventBody::ToolCall(c) => {
            short(index, "call_id", &c.call_id, limits)?;
            short(index, "tool", &c.tool, limits)?;
            not_redacted(index, "input", &c.input)?;
        }
        EventBody::ToolResult(r) => {
            short(index, "call_id", &r.call_id, limits)?;
            not_redacted(index, "output", &r.output)?;
        }
        EventBody::BrowserAction(a) => {
            not_redacted(index, "detail", &a.detail)?;
            not_redacted(index, "result", &a.result)?;
            if let Some(s) = &a.screenshot {
                not_redacted(index, "screenshot", s)?;
                if !matches!(s, Payload::Blob(_)) {
                    return Err(AppendError::Invalid { index, reason: "screenshot must be a blob".into() });
                }
            }
        }
        EventBody::ModelCall(m) => {
            short(index, "provider", &m.provider, limits)?;
            short(index, "model", &m.model, limits)?;
        }
        EventBody::WebhookReceived(w) => {
            short(index, "source", &w.source, limits)?;
            not_redacted(index, "payload", &w.payload)?;
        }
        EventBody::Lifecycle(Lifecycle::Compacted { summary, first_kept_seq, .. }) => {
            not_redacted(index, "summary", summary)?;
            if *first_kept_seq == 0 {
                return Err(AppendError::Invalid {
                    index,
                    reason: "first_kept_seq must be at least 1".into(),
                });
            }
        }
        EventBody::Lifecycle(Lifecycle::SandboxAttached { sandbox_id }) => {
            short(index, "sandbox_id", sandbox_id, limits)?;
        }
        EventBody::Redaction(r) => {
            if r.reason.len() > 4096 {
                return Err(AppendError::Invalid { index, reason: "reason is over 4096 bytes".into() });
            }
        }
        EventBody::Lifecycle(_) | EventBody::DeliveryReceipt(_) => {}
    }
    Ok(())
}
