//! Session state: the pure fold of the log. `apply` cannot fail; everything that could make an
//! event unacceptable is decided before it is appended (see `engine`).

mod browser;
mod outbox;

pub use browser::{BrowserState, LastAction, Screenshot, TargetState};
pub use outbox::{OutboxEntry, OutboxStatus};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chain::{self, Hash};
use crate::event::{DeliveryOutcome, EventBody, EventHeader, EventKind, Lifecycle, Payload, Role};
use crate::id::EventId;

/// The last applied record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
}

impl Head {
    /// The head of an empty log: seq 0 and the genesis hash.
    pub fn genesis(session_key: &str) -> Head {
        Head { seq: 0, hash: chain::genesis(session_key) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxStatus {
    /// No sandbox has announced itself.
    Unknown,
    Attached {
        sandbox_id: String,
        since_ms: u64,
    },
    Detached {
        since_ms: u64,
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    pub seq: u64,
    pub summary: Payload,
    pub first_kept_seq: u64,
    pub tokens_before: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenToolCall {
    pub seq: u64,
    pub tool: String,
    pub input: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Events per kind, indexed by `EventKind::index`.
    pub by_kind: [u64; 9],
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub compactions: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub restores: u64,
    pub recoveries: u64,
}

impl Counters {
    pub fn events(&self) -> u64 {
        self.by_kind.iter().sum()
    }
}

/// The version byte of an encoded [`SessionState`] (`STATE_VERSION ‖ postcard(state)`), which
/// snapshots hold. Bump it whenever the state's layout OR the reducer's result changes: a
/// snapshot taken by another reducer must read as unreadable (and the log is replayed instead),
/// never as a state that differs from the replay, which verifiers report as tampering.
///
/// 2: a browser action that names no target and no URL no longer makes a tab with the id `""`.
pub const STATE_VERSION: u8 = 2;

/// Everything the log says about a session, as of `head`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub session_key: String,
    pub head: Head,
    pub last_id: Option<EventId>,
    pub first_ts_ms: u64,
    pub last_ts_ms: u64,
    pub agent: Option<String>,
    /// Seqs of the chat messages, tool calls and tool results since the last compaction, in
    /// order. The content stays in the log (see `restore`): a state holds an index, never the
    /// conversation, so it stays small however long the session grows.
    pub transcript: Vec<u64>,
    pub compaction: Option<Compaction>,
    /// Tool calls without a result yet, by call id.
    pub open_tool_calls: BTreeMap<String, OpenToolCall>,
    pub browser: BrowserState,
    pub sandbox: SandboxStatus,
    pub model: Option<ModelInfo>,
    /// Replies waiting for delivery (or dead-lettered), by the seq of their chat message.
    pub outbox: BTreeMap<u64, OutboxEntry>,
    pub counters: Counters,
    /// Seqs whose content a redaction erased, ascending.
    pub redacted: Vec<u64>,
}

impl SessionState {
    /// The state's stored form: `STATE_VERSION ‖ postcard(self)`.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode_as(STATE_VERSION, self)
    }

    /// Reads a stored state; a state of another `STATE_VERSION` is `UnknownVersion`.
    pub fn decode(bytes: &[u8]) -> Result<SessionState, crate::codec::DecodeError> {
        crate::codec::decode_as(STATE_VERSION, bytes)
    }

    pub fn new(session_key: &str) -> SessionState {
        SessionState {
            session_key: session_key.to_owned(),
            head: Head::genesis(session_key),
            last_id: None,
            first_ts_ms: 0,
            last_ts_ms: 0,
            agent: None,
            transcript: Vec::new(),
            compaction: None,
            open_tool_calls: BTreeMap::new(),
            browser: BrowserState::default(),
            sandbox: SandboxStatus::Unknown,
            model: None,
            outbox: BTreeMap::new(),
            counters: Counters::default(),
            redacted: Vec::new(),
        }
    }

    /// Folds one record into the state. Total: every well-formed record has an effect, none fails.
    /// The caller guarantees the record follows `head` (seq = head.seq + 1, or a `records_lost`
    /// event right after the seqs it names), which `record::check` and the append engine establish.
    pub fn apply(&mut self, header: &EventHeader, hash: Hash, body: EventBody) {
        assert!(
            header.seq == self.head.seq + 1
                || crate::record::closes_gap(self.head.seq + 1, header.seq, &body),
            "apply out of order"
        );
        assert_eq!(header.kind, body.kind(), "header kind and body kind differ");
        let seq = header.seq;
        let ts_ms = header.ts_ms;
        if self.head.seq == 0 {
            self.first_ts_ms = ts_ms;
        }
        self.last_ts_ms = ts_ms;
        self.last_id = Some(header.id);
        self.counters.by_kind[header.kind.index()] += 1;

        match body {
            EventBody::ChatMessage(m) => {
                if m.role == Role::Assistant
                    && let Some(channel) = m.channel
                {
                    self.outbox.insert(seq, OutboxEntry::new(channel, m.text, ts_ms));
                }
                self.transcript.push(seq);
            }
            EventBody::ToolCall(c) => {
                self.open_tool_calls.insert(c.call_id, OpenToolCall { seq, tool: c.tool, input: c.input });
                self.transcript.push(seq);
            }
            EventBody::ToolResult(r) => {
                self.open_tool_calls.remove(&r.call_id);
                self.transcript.push(seq);
            }
            EventBody::BrowserAction(a) => self.browser.apply(seq, ts_ms, a),
            EventBody::ModelCall(m) => {
                // Token counts come from clients: saturate rather than overflow, so that `apply`
                // stays total and debug and release builds fold to the same state.
                self.counters.input_tokens = self.counters.input_tokens.saturating_add(m.input_tokens);
                self.counters.output_tokens = self.counters.output_tokens.saturating_add(m.output_tokens);
                self.model = Some(ModelInfo { provider: m.provider, model: m.model });
            }
            EventBody::WebhookReceived(_) => {}
            EventBody::Lifecycle(l) => self.apply_lifecycle(seq, ts_ms, l),
            EventBody::DeliveryReceipt(r) => {
                if let Some(entry) = self.outbox.get_mut(&r.outbox_seq) {
                    match r.outcome {
                        DeliveryOutcome::Delivered { .. } => {
                            self.outbox.remove(&r.outbox_seq);
                            self.counters.delivered += 1;
                        }
                        DeliveryOutcome::Failed { error, retry_at_ms } => {
                            entry.attempts = r.attempt;
                            entry.next_attempt_ms = retry_at_ms;
                            entry.last_error = Some(error);
                        }
                        DeliveryOutcome::DeadLettered { error } => {
                            entry.attempts = r.attempt;
                            entry.status = OutboxStatus::DeadLettered;
                            entry.last_error = Some(error);
                            self.counters.dead_lettered += 1;
                        }
                    }
                }
            }
            EventBody::Redaction(r) => self.apply_redaction(r.target_seq),
        }
        self.head = Head { seq, hash };
    }

    fn apply_lifecycle(&mut self, seq: u64, ts_ms: u64, l: Lifecycle) {
        match l {
            Lifecycle::SessionStarted { agent } => self.agent = agent,
            Lifecycle::SandboxAttached { sandbox_id } => {
                self.sandbox = SandboxStatus::Attached { sandbox_id, since_ms: ts_ms }
            }
            Lifecycle::SandboxEvicted { reason, .. } => {
                self.sandbox = SandboxStatus::Detached { since_ms: ts_ms, reason }
            }
            Lifecycle::Restored { sandbox_id, .. } => {
                self.counters.restores += 1;
                if let Some(sandbox_id) = sandbox_id {
                    self.sandbox = SandboxStatus::Attached { sandbox_id, since_ms: ts_ms };
                }
            }
            Lifecycle::Compacted { summary, first_kept_seq, tokens_before } => {
                self.counters.compactions += 1;
                self.transcript.retain(|&s| s >= first_kept_seq);
                self.compaction = Some(Compaction { seq, summary, first_kept_seq, tokens_before });
            }
            Lifecycle::RecoveredFromArchive { .. } => self.counters.recoveries += 1,
            // The gap is in the log itself (the head jumps past it); the state keeps nothing.
            Lifecycle::RecordsLost { .. } => {}
        }
    }

    /// Erases every piece of content in the state that came from `target`, the same way storing
    /// the target's skeleton would have: so replaying a redacted log reaches this very state.
    fn apply_redaction(&mut self, target: u64) {
        if let Err(at) = self.redacted.binary_search(&target) {
            self.redacted.insert(at, target);
        }
        for call in self.open_tool_calls.values_mut().filter(|c| c.seq == target) {
            call.input = Payload::Redacted;
        }
        if let Some(entry) = self.outbox.get_mut(&target) {
            entry.text = Payload::Redacted;
        }
        self.browser.redact(target);
        if let Some(c) = self.compaction.as_mut().filter(|c| c.seq == target) {
            c.summary = Payload::Redacted;
        }
    }

    /// Number of events applied.
    pub fn events(&self) -> u64 {
        self.head.seq
    }

    pub fn count(&self, kind: EventKind) -> u64 {
        self.counters.by_kind[kind.index()]
    }
}

#[cfg(test)]
mod tests;
