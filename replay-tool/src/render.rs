//! One-line summaries of events, for the timeline and for diffs.

use moltlog_core::chain;
use moltlog_core::event::{DeliveryOutcome, EventBody, Lifecycle, Payload};

/// Longest quoted text in a summary.
const TEXT_MAX: usize = 72;

/// Text shortened to one line of at most `TEXT_MAX` characters.
fn clip(s: &str) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() <= TEXT_MAX {
        trimmed.to_owned()
    } else {
        let cut: String = trimmed.chars().take(TEXT_MAX - 1).collect();
        format!("{cut}…")
    }
}

fn payload(p: &Payload) -> String {
    match p {
        Payload::Inline(s) => clip(s),
        Payload::Blob(b) => format!("[blob {} bytes, sha256 {}…]", b.len, &chain::to_hex(&b.sha256)[..12]),
        Payload::Redacted => "[redacted]".to_owned(),
    }
}

fn quoted(p: &Payload) -> String {
    match p {
        Payload::Inline(_) => format!("\"{}\"", payload(p)),
        _ => payload(p),
    }
}

/// What the event says, in one line.
pub fn summary(body: &EventBody) -> String {
    match body {
        EventBody::ChatMessage(m) => {
            let mut s = m.role.name().to_owned();
            if let Some(a) = &m.author {
                s += &format!(" {a}");
            }
            if let Some(c) = &m.channel {
                s += &format!(" via {}:{}", c.platform.name(), c.chat_id);
            }
            s += &format!(": {}", quoted(&m.text));
            if !m.attachments.is_empty() {
                s += &format!(" (+{} attachment(s))", m.attachments.len());
            }
            s
        }
        EventBody::ToolCall(c) => format!("{} [{}] {}", c.tool, c.call_id, payload(&c.input)),
        EventBody::ToolResult(r) => {
            let outcome = if r.is_error { "error" } else { "ok" };
            let took = r.duration_ms.map(|d| format!(" in {d} ms")).unwrap_or_default();
            format!("[{}] {outcome}{took}: {}", r.call_id, payload(&r.output))
        }
        EventBody::BrowserAction(a) => {
            let mut s = a.action.name().to_owned();
            if let Some(u) = &a.url {
                s += &format!(" {u}");
            }
            if let Some(t) = &a.target_id {
                s += &format!(" (target {t})");
            }
            if let Some(e) = &a.error {
                s += &format!(" failed: {}", clip(e));
            }
            s
        }
        EventBody::ModelCall(m) => {
            let stop = m.stop_reason.as_deref().map(|r| format!(", {r}")).unwrap_or_default();
            format!(
                "{}/{} {}→{} tokens, {} ms{stop}",
                m.provider, m.model, m.input_tokens, m.output_tokens, m.latency_ms
            )
        }
        EventBody::WebhookReceived(w) => {
            let mut s = w.source.clone();
            if let Some(t) = &w.event_type {
                s += &format!(" {t}");
            }
            if let Some(d) = &w.delivery_id {
                s += &format!(" delivery {d}");
            }
            s += if w.verified { " (verified)" } else { " (unverified)" };
            s
        }
        EventBody::Lifecycle(l) => match l {
            Lifecycle::SessionStarted { agent } => {
                format!(
                    "session started{}",
                    agent.as_deref().map(|a| format!(" for agent {a}")).unwrap_or_default()
                )
            }
            Lifecycle::SandboxAttached { sandbox_id } => format!("sandbox {sandbox_id} attached"),
            Lifecycle::SandboxEvicted { sandbox_id, reason } => {
                format!("sandbox {} evicted: {}", sandbox_id.as_deref().unwrap_or("?"), clip(reason))
            }
            Lifecycle::Restored { sandbox_id, head_seq } => {
                format!("restored into sandbox {} at seq {head_seq}", sandbox_id.as_deref().unwrap_or("?"))
            }
            Lifecycle::Compacted { summary, first_kept_seq, tokens_before } => format!(
                "compacted ({tokens_before} tokens; keeps from seq {first_kept_seq}): {}",
                quoted(summary)
            ),
            Lifecycle::RecoveredFromArchive { snapshot_seq, segments, last_seq } => format!(
                "recovered from the archive: {segments} segment(s) to seq {last_seq}{}",
                snapshot_seq.map(|s| format!(", snapshot {s}")).unwrap_or_default()
            ),
            Lifecycle::RecordsLost { first_seq, last_seq, reason } => {
                format!("records lost: seqs {first_seq}..={last_seq} ({})", clip(reason))
            }
        },
        EventBody::DeliveryReceipt(r) => {
            let outcome = match &r.outcome {
                DeliveryOutcome::Delivered { .. } => "delivered".to_owned(),
                DeliveryOutcome::Failed { error, .. } => format!("failed: {}", clip(error)),
                DeliveryOutcome::DeadLettered { error } => format!("dead-lettered: {}", clip(error)),
            };
            format!("reply at seq {} attempt {}: {outcome}", r.outbox_seq, r.attempt)
        }
        EventBody::Redaction(r) => format!("redacts seq {}: {}", r.target_seq, clip(&r.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moltlog_core::sample;

    #[test]
    fn summaries_are_one_short_line() {
        let long = "x".repeat(500) + "\nsecond line";
        let s = summary(&sample::user(&long));
        assert!(!s.contains('\n') && s.chars().count() < 100, "{s}");
        assert_eq!(summary(&sample::tool_call("c1", "bash", r#"{"cmd":"ls"}"#)), r#"bash [c1] {"cmd":"ls"}"#);
        assert_eq!(summary(&sample::redaction(3, "pii")), "redacts seq 3: pii");
        assert!(summary(&sample::model_call("m", 10, 2)).contains("10→2 tokens"));
    }
}
