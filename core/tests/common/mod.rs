//! Reusable proptest strategies for moltlog-core's stored types, and a log builder that drives the
//! append engine with them.
//!
//! Two families of body strategies, because they serve different properties:
//! - `any_body` reaches every variant and every field value the format can hold (redacted
//!   payloads, blob refs, huge integers): for encode/decode round trips.
//! - `appendable` only makes events the engine accepts from the actor it picks: for properties
//!   about logs, which must be built through the engine to be realistic (offload, redaction,
//!   idempotency keys).
//!
//! Each test binary uses a different subset of this module.
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;

use moltlog_core::chain::Hash;
use moltlog_core::engine::{AppendRequest, Engine, Limits, NewEvent, Now};
use moltlog_core::event::{
    Actor, Attachment, BlobRef, BrowserAction, BrowserActionKind, ChannelRef, ChatMessage, DeliveryOutcome,
    DeliveryReceipt, EventBody, EventHeader, EventKind, Lifecycle, ModelCall, Payload, Platform, Redaction,
    Role, ToolCall, ToolResult, WebhookReceived,
};
use moltlog_core::id::EventId;
use moltlog_core::key::SessionKey;
use moltlog_core::state::SessionState;
use moltlog_core::store::{LogStore, MemoryStore};

pub const SESSION: &str = "agent:main:telegram:chat:42";

/// A proptest config running `cases` cases, or `PROPTEST_CASES` when set (for deeper runs:
/// `PROPTEST_CASES=20000 cargo test -p moltlog-core --release --test tamper`).
pub fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

pub fn session_key() -> SessionKey {
    SessionKey::parse(SESSION).expect("valid session key")
}

pub fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>()
}

/// Any short text, including non-ASCII and the empty string.
pub fn any_text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

/// A name the engine accepts where it wants an identifier (1..=256 bytes): mostly ASCII ids, now
/// and then other scripts.
pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[a-zA-Z0-9:._@-]{1,16}", 1 => "\\PC{1,8}"]
}

/// Message-like content: words, arbitrary Unicode, the empty string, and rarely a payload over the
/// 64 KiB blob threshold so that offloading happens inside the properties too.
pub fn content_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z]{1,8}( [a-z]{1,8}){0,12}[.?!]?",
        3 => "\\PC{0,40}",
        1 => Just(String::new()),
        1 => (65_600usize..66_000).prop_map(|n| (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()),
    ]
}

pub fn blob_ref() -> impl Strategy<Value = BlobRef> {
    (hash(), any::<u64>(), any_text()).prop_map(|(sha256, len, content_type)| BlobRef {
        sha256,
        len,
        content_type,
    })
}

/// Every payload shape, as stored bodies may hold them.
pub fn any_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        3 => any_text().prop_map(Payload::Inline),
        1 => blob_ref().prop_map(Payload::Blob),
        1 => Just(Payload::Redacted),
    ]
}

/// A payload a client may append: inline or a blob it already stored, never `Redacted`.
pub fn live_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![8 => content_text().prop_map(Payload::Inline), 1 => blob_ref().prop_map(Payload::Blob)]
}

pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::User), Just(Role::Assistant), Just(Role::System)]
}

fn platform(other: BoxedStrategy<String>) -> impl Strategy<Value = Platform> {
    prop_oneof![
        Just(Platform::Telegram),
        Just(Platform::Slack),
        Just(Platform::Discord),
        Just(Platform::Web),
        other.prop_map(Platform::Other),
    ]
}

fn channel(text: BoxedStrategy<String>) -> impl Strategy<Value = ChannelRef> {
    (platform(text.clone()), text.clone(), option::of(text.clone()), option::of(text)).prop_map(
        |(platform, chat_id, message_id, thread_id)| ChannelRef { platform, chat_id, message_id, thread_id },
    )
}

fn attachment() -> impl Strategy<Value = Attachment> {
    (option::of(any_text()), blob_ref()).prop_map(|(name, blob)| Attachment { name, blob })
}

/// Token counts reach the top of u64 now and then, so sums overflow if the reducer adds naively.
fn tokens() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..200_000, 1 => any::<u64>()]
}

pub fn browser_action_kind() -> impl Strategy<Value = BrowserActionKind> {
    proptest::sample::select(BrowserActionKind::ALL.to_vec())
}

fn delivery_outcome() -> impl Strategy<Value = DeliveryOutcome> {
    prop_oneof![
        option::of(any_text()).prop_map(|remote_id| DeliveryOutcome::Delivered { remote_id }),
        (any_text(), any::<u64>())
            .prop_map(|(error, retry_at_ms)| DeliveryOutcome::Failed { error, retry_at_ms }),
        any_text().prop_map(|error| DeliveryOutcome::DeadLettered { error }),
    ]
}

fn any_lifecycle() -> impl Strategy<Value = Lifecycle> {
    prop_oneof![
        option::of(any_text()).prop_map(|agent| Lifecycle::SessionStarted { agent }),
        any_text().prop_map(|sandbox_id| Lifecycle::SandboxAttached { sandbox_id }),
        (option::of(any_text()), any_text())
            .prop_map(|(sandbox_id, reason)| Lifecycle::SandboxEvicted { sandbox_id, reason }),
        (option::of(any_text()), any::<u64>())
            .prop_map(|(sandbox_id, head_seq)| Lifecycle::Restored { sandbox_id, head_seq }),
        (any_payload(), any::<u64>(), any::<u64>()).prop_map(|(summary, first_kept_seq, tokens_before)| {
            Lifecycle::Compacted { summary, first_kept_seq, tokens_before }
        }),
        (option::of(any::<u64>()), any::<u32>(), any::<u64>()).prop_map(
            |(snapshot_seq, segments, last_seq)| {
                Lifecycle::RecoveredFromArchive { snapshot_seq, segments, last_seq }
            }
        ),
    ]
}

/// Any body of any kind, with any field values the format can hold.
pub fn any_body() -> impl Strategy<Value = EventBody> {
    let text = || any_text().boxed();
    prop_oneof![
        (role(), option::of(channel(text())), option::of(any_text()), any_payload(), vec(attachment(), 0..3))
            .prop_map(|(role, channel, author, text, attachments)| {
                EventBody::ChatMessage(ChatMessage { role, channel, author, text, attachments })
            }),
        (any_text(), any_text(), any_payload())
            .prop_map(|(call_id, tool, input)| EventBody::ToolCall(ToolCall { call_id, tool, input })),
        (any_text(), any_payload(), any::<bool>(), option::of(any::<u64>())).prop_map(
            |(call_id, output, is_error, duration_ms)| {
                EventBody::ToolResult(ToolResult { call_id, output, is_error, duration_ms })
            }
        ),
        (
            browser_action_kind(),
            option::of(any_text()),
            option::of(any_text()),
            any_payload(),
            any_payload(),
            option::of(any_text()),
            option::of(any_payload()),
        )
            .prop_map(|(action, target_id, url, detail, result, error, screenshot)| {
                EventBody::BrowserAction(BrowserAction {
                    action,
                    target_id,
                    url,
                    detail,
                    result,
                    error,
                    screenshot,
                })
            }),
        (any_text(), any_text(), tokens(), tokens(), any::<u64>(), option::of(any_text())).prop_map(
            |(provider, model, input_tokens, output_tokens, latency_ms, stop_reason)| {
                EventBody::ModelCall(ModelCall {
                    provider,
                    model,
                    input_tokens,
                    output_tokens,
                    latency_ms,
                    stop_reason,
                })
            }
        ),
        (
            any_text(),
            option::of(any_text()),
            option::of(any_text()),
            any::<bool>(),
            any_text(),
            any_payload()
        )
            .prop_map(|(source, delivery_id, event_type, verified, content_type, payload)| {
                EventBody::WebhookReceived(WebhookReceived {
                    source,
                    delivery_id,
                    event_type,
                    verified,
                    content_type,
                    payload,
                })
            }),
        any_lifecycle().prop_map(EventBody::Lifecycle),
        (any::<u64>(), any::<u32>(), delivery_outcome()).prop_map(|(outbox_seq, attempt, outcome)| {
            EventBody::DeliveryReceipt(DeliveryReceipt { outbox_seq, attempt, outcome })
        }),
        (any::<u64>(), any_text())
            .prop_map(|(target_seq, reason)| EventBody::Redaction(Redaction { target_seq, reason })),
    ]
}

pub fn any_kind() -> impl Strategy<Value = EventKind> {
    proptest::sample::select(EventKind::ALL.to_vec())
}

pub fn any_actor() -> impl Strategy<Value = Actor> {
    proptest::sample::select(Actor::ALL.to_vec())
}

pub fn any_header() -> impl Strategy<Value = EventHeader> {
    (
        (any::<u64>(), any::<[u8; 16]>(), any::<u64>(), any_kind(), any_actor()),
        (option::of(any::<u64>()), option::of(any_text()), any::<u32>(), hash(), hash()),
    )
        .prop_map(
            |(
                (seq, id, ts_ms, kind, actor),
                (causation, idempotency_key, body_len, body_sha256, skeleton_sha256),
            )| EventHeader {
                seq,
                id: EventId(id),
                ts_ms,
                kind,
                actor,
                causation,
                idempotency_key,
                body_len,
                body_sha256,
                skeleton_sha256,
            },
        )
}

/// Tool call ids from a small pool, so that results close calls and calls get reused.
fn call_id() -> impl Strategy<Value = String> {
    prop_oneof![3 => "c[0-4]", 1 => name()]
}

/// Browser targets from a small pool, so that actions land on known tabs.
fn target_id() -> impl Strategy<Value = Option<String>> {
    option::of("t[0-2]")
}

/// A body that `validate` accepts (the actor is chosen by `appendable`).
pub fn appendable_body() -> impl Strategy<Value = EventBody> {
    let id = || name().boxed();
    prop_oneof![
        6 => (role(), option::of(channel(id())), option::of(any_text()), live_payload(), vec(attachment(), 0..2))
            .prop_map(|(role, channel, author, text, attachments)| {
                EventBody::ChatMessage(ChatMessage { role, channel, author, text, attachments })
            }),
        3 => (call_id(), name(), live_payload())
            .prop_map(|(call_id, tool, input)| EventBody::ToolCall(ToolCall { call_id, tool, input })),
        3 => (call_id(), live_payload(), any::<bool>(), option::of(0u64..100_000)).prop_map(
            |(call_id, output, is_error, duration_ms)| {
                EventBody::ToolResult(ToolResult { call_id, output, is_error, duration_ms })
            }
        ),
        2 => (
            browser_action_kind(),
            target_id(),
            option::of("https://[a-z]{1,8}\\.example/[a-z]{0,6}"),
            live_payload(),
            live_payload(),
            option::of(any_text()),
            option::of(blob_ref().prop_map(Payload::Blob)),
        )
            .prop_map(|(action, target_id, url, detail, result, error, screenshot)| {
                EventBody::BrowserAction(BrowserAction { action, target_id, url, detail, result, error, screenshot })
            }),
        1 => (name(), name(), tokens(), tokens(), 0u64..10_000, option::of(any_text())).prop_map(
            |(provider, model, input_tokens, output_tokens, latency_ms, stop_reason)| {
                EventBody::ModelCall(ModelCall { provider, model, input_tokens, output_tokens, latency_ms, stop_reason })
            }
        ),
        1 => (name(), option::of(name()), option::of(name()), any::<bool>(), any_text(), live_payload())
            .prop_map(|(source, delivery_id, event_type, verified, content_type, payload)| {
                EventBody::WebhookReceived(WebhookReceived {
                    source,
                    delivery_id,
                    event_type,
                    verified,
                    content_type,
                    payload,
                })
            }),
        2 => appendable_lifecycle().prop_map(EventBody::Lifecycle),
        2 => (1u64..40, 1u32..6, delivery_outcome()).prop_map(|(outbox_seq, attempt, outcome)| {
            EventBody::DeliveryReceipt(DeliveryReceipt { outbox_seq, attempt, outcome })
        }),
    ]
}

fn appendable_lifecycle() -> impl Strategy<Value = Lifecycle> {
    prop_oneof![
        option::of(any_text()).prop_map(|agent| Lifecycle::SessionStarted { agent }),
        name().prop_map(|sandbox_id| Lifecycle::SandboxAttached { sandbox_id }),
        (option::of(name()), any_text())
            .prop_map(|(sandbox_id, reason)| Lifecycle::SandboxEvicted { sandbox_id, reason }),
        (option::of(name()), 0u64..100)
            .prop_map(|(sandbox_id, head_seq)| Lifecycle::Restored { sandbox_id, head_seq }),
        (live_payload(), 1u64..40, any::<u64>()).prop_map(|(summary, first_kept_seq, tokens_before)| {
            Lifecycle::Compacted { summary, first_kept_seq, tokens_before }
        }),
        (option::of(0u64..50), any::<u32>(), 0u64..50).prop_map(|(snapshot_seq, segments, last_seq)| {
            Lifecycle::RecoveredFromArchive { snapshot_seq, segments, last_seq }
        }),
    ]
}

/// Receipts and archive recovery are the system's own record; everything else may come from
/// anyone.
pub fn system_only(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::DeliveryReceipt(_) | EventBody::Lifecycle(Lifecycle::RecoveredFromArchive { .. })
    )
}

/// One event of an append: its body, and a hint that becomes a causation seq when the log has
/// events to point at.
#[derive(Clone, Debug)]
pub struct EventSpec {
    pub body: EventBody,
    pub causation: Option<Index>,
}

pub fn event_spec() -> impl Strategy<Value = EventSpec> {
    (appendable_body(), option::weighted(0.2, any::<Index>()))
        .prop_map(|(body, causation)| EventSpec { body, causation })
}

/// A step of building a log.
#[derive(Clone, Debug)]
pub enum Op {
    /// An append of 1..=4 events by one actor (the system when an event requires it).
    Append { actor: Actor, events: Vec<EventSpec> },
    /// An operator redacts one of the records that still hold content (this one, modulo their
    /// number), if there is one.
    Redact { target: usize },
}

pub fn op() -> impl Strategy<Value = Op> {
    let actor =
        proptest::sample::select(vec![Actor::Runtime, Actor::Bridge, Actor::Webhook, Actor::Operator]);
    prop_oneof![
        8 => (actor, vec(event_spec(), 1..=4)).prop_map(|(actor, events)| {
            let actor = if events.iter().any(|e| system_only(&e.body)) { Actor::System } else { actor };
            Op::Append { actor, events }
        }),
        2 => any::<usize>().prop_map(|target| Op::Redact { target }),
    ]
}

pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    vec(op(), 1..max)
}

/// A log built through the engine, with the state after each step that changed it.
pub struct Built {
    pub engine: Engine,
    pub store: MemoryStore,
    /// The live state after each successful step, oldest first (the empty state first).
    pub states: Vec<SessionState>,
}

pub const T0_MS: u64 = 1_700_000_000_000;

/// Seqs of records whose stored body still holds content (what a redaction may target).
pub fn redactable(store: &MemoryStore) -> Vec<u64> {
    store
        .records()
        .iter()
        .filter(|r| !r.redacted && r.decode_body().expect("own records decode").has_content())
        .map(|r| r.seq)
        .collect()
}

/// Turns a spec into the event the engine is asked to append at head `head_seq`.
pub fn new_event(spec: &EventSpec, head_seq: u64) -> NewEvent {
    let causation = match (&spec.causation, head_seq) {
        (Some(i), h) if h > 0 => Some(1 + i.index(h as usize) as u64),
        _ => None,
    };
    NewEvent { body: spec.body.clone(), idempotency_key: None, causation }
}

/// Runs `ops` through a fresh engine over a fresh in-memory store. Every append of appendable
/// events must be accepted: a refusal is a bug in the engine or in these strategies.
pub fn build(ops: &[Op]) -> Built {
    let mut engine = Engine::new(session_key(), Limits::default());
    let mut store = MemoryStore::new();
    let mut states = vec![engine.state().clone()];
    for (i, op) in ops.iter().enumerate() {
        let now = Now { now_ms: T0_MS + 1_000 * i as u64, entropy: 0x5eed_u128 * (i as u128 + 1) };
        let req = match op {
            Op::Append { actor, events } => {
                let head = engine.head().seq;
                AppendRequest {
                    actor: *actor,
                    events: events.iter().map(|e| new_event(e, head)).collect(),
                    expected_seq: None,
                    idempotency_key: None,
                }
            }
            Op::Redact { target } => {
                let candidates = redactable(&store);
                if candidates.is_empty() {
                    continue;
                }
                let target_seq = candidates[target % candidates.len()];
                AppendRequest::one(
                    Actor::Operator,
                    EventBody::Redaction(Redaction { target_seq, reason: "privacy request".into() }),
                )
            }
        };
        if let Err(e) = engine.append(&mut store, req.clone(), now) {
            panic!("step {i}: the engine refused an acceptable append: {e}\nrequest: {req:?}");
        }
        states.push(engine.state().clone());
    }
    assert_eq!(store.head().unwrap().map_or(0, |h| h.seq), engine.head().seq);
    Built { engine, store, states }
}
