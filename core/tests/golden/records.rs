//! Standalone records: one per body kind, per `Lifecycle` variant and per `DeliveryOutcome`, plus
//! blob-offloaded payloads and a redacted (skeleton) record.
//!
//! Each is sealed as seq 1 of its own one-record log after the fixture session's genesis, so a
//! verifier can check any of them on its own with nothing but the session key.

use moltlog_core::chain::{self, Hash};
use moltlog_core::event::{
    Attachment, BlobRef, BrowserAction, BrowserActionKind, ChannelRef, ChatMessage, DeliveryOutcome,
    DeliveryReceipt, Lifecycle, ModelCall, Payload, Platform, Redaction, Role, ToolCall, ToolResult,
    WebhookReceived,
};
use moltlog_core::id::IdGen;
use moltlog_core::record::{self, Envelope, StoredRecord};
use moltlog_core::{Actor, EventBody, EventHeader};

use crate::bodies::{browser, channel, message, tool_call, tool_result};
use crate::{SESSION_KEY, T0};

/// One standalone record fixture.
pub struct Case {
    /// File stem under `records/`.
    pub name: &'static str,
    pub actor: Actor,
    pub idempotency_key: Option<&'static str>,
    pub body: EventBody,
    /// Store the body's skeleton instead of the body, as a redaction leaves it.
    pub redacted: bool,
}

/// A sealed case: the header as encoded, the record as stored, the body as stored (decoded).
pub struct Sealed {
    pub case: Case,
    pub header: EventHeader,
    pub record: StoredRecord,
    pub stored_body: EventBody,
}

/// A blob reference to `content`, as the engine would make it when offloading.
pub fn blob(content: &[u8], content_type: &str) -> BlobRef {
    BlobRef { sha256: chain::sha256(content), len: content.len() as u64, content_type: content_type.into() }
}

fn case(name: &'static str, actor: Actor, body: EventBody) -> Case {
    Case { name, actor, idempotency_key: None, body, redacted: false }
}

fn inbound_with_attachments() -> EventBody {
    EventBody::ChatMessage(ChatMessage {
        role: Role::User,
        channel: Some(ChannelRef {
            platform: Platform::Telegram,
            chat_id: "42".into(),
            message_id: Some("7".into()),
            thread_id: Some("3".into()),
        }),
        author: Some("alice".into()),
        text: Payload::Inline("Here are the photo and the invoice.".into()),
        attachments: vec![
            Attachment { name: Some("photo.jpg".into()), blob: blob(b"fixture photo", "image/jpeg") },
            Attachment { name: None, blob: blob(b"fixture invoice", "application/pdf") },
        ],
    })
}

fn lifecycle(name: &'static str, actor: Actor, l: Lifecycle) -> Case {
    case(name, actor, EventBody::Lifecycle(l))
}

fn receipt(name: &'static str, attempt: u32, outcome: DeliveryOutcome) -> Case {
    case(name, Actor::System, EventBody::DeliveryReceipt(DeliveryReceipt { outbox_seq: 9, attempt, outcome }))
}

/// Every standalone case, in a fixed order (the order sets each record's timestamp and id).
pub fn cases() -> Vec<Case> {
    let long_text = "A reply long enough to be moved to a blob. ".repeat(40);
    vec![
        case("chat_message_user", Actor::Runtime, message(Role::User, None, None, "hello", vec![])),
        case(
            "chat_message_system",
            Actor::Runtime,
            message(Role::System, None, None, "You are a helpful agent.", vec![]),
        ),
        Case {
            idempotency_key: Some("telegram:42:7"),
            ..case("chat_message_inbound", Actor::Bridge, inbound_with_attachments())
        },
        Case {
            idempotency_key: Some("telegram:42:7"),
            redacted: true,
            ..case("chat_message_inbound_redacted", Actor::Bridge, inbound_with_attachments())
        },
        case(
            "chat_message_reply_other_platform",
            Actor::Runtime,
            message(
                Role::Assistant,
                Some(channel(Platform::Other("matrix".into()), "!room:example.org", None)),
                None,
                "On it.",
                vec![],
            ),
        ),
        case(
            "chat_message_text_blob",
            Actor::Runtime,
            EventBody::ChatMessage(ChatMessage {
                role: Role::Assistant,
                channel: None,
                author: None,
                text: Payload::Blob(blob(long_text.as_bytes(), "text/plain; charset=utf-8")),
                attachments: vec![],
            }),
        ),
        case("tool_call", Actor::Runtime, tool_call("c1", "bash", r#"{"command":"ls -la"}"#)),
        case(
            "tool_call_input_blob",
            Actor::Runtime,
            EventBody::ToolCall(ToolCall {
                call_id: "c2".into(),
                tool: "write_file".into(),
                input: Payload::Blob(blob(br#"{"path":"big.txt","content":"..."}"#, "application/json")),
            }),
        ),
        case(
            "tool_result",
            Actor::Runtime,
            tool_result("c1", r#"{"stdout":"a.txt\n","exit_code":0}"#, false, Some(12)),
        ),
        case(
            "tool_result_error",
            Actor::Runtime,
            EventBody::ToolResult(ToolResult {
                call_id: "c1".into(),
                output: Payload::Inline(r#""bash: lx: command not found""#.into()),
                is_error: true,
                duration_ms: None,
            }),
        ),
        case(
            "browser_action_navigate",
            Actor::Runtime,
            EventBody::BrowserAction(BrowserAction {
                target_id: Some("T1".into()),
                url: Some("https://example.com/".into()),
                ..browser(BrowserActionKind::Navigate)
            }),
        ),
        case(
            "browser_action_screenshot",
            Actor::Runtime,
            EventBody::BrowserAction(BrowserAction {
                target_id: Some("T1".into()),
                detail: Payload::Inline("fullPage".into()),
                result: Payload::Inline(r#"{"width":1280,"height":800}"#.into()),
                screenshot: Some(Payload::Blob(blob(b"fixture png", "image/png"))),
                ..browser(BrowserActionKind::Screenshot)
            }),
        ),
        case(
            "browser_action_raw_cdp_error",
            Actor::Runtime,
            EventBody::BrowserAction(BrowserAction {
                detail: Payload::Inline("Network.clearBrowserCookies".into()),
                error: Some("timed out after 30000 ms".into()),
                ..browser(BrowserActionKind::RawCdp)
            }),
        ),
        case(
            "model_call",
            Actor::Runtime,
            EventBody::ModelCall(ModelCall {
                provider: "anthropic".into(),
                model: "claude-sonnet-4-5".into(),
                input_tokens: 1834,
                output_tokens: 92,
                latency_ms: 2140,
                stop_reason: Some("tool_use".into()),
            }),
        ),
        case(
            "webhook_received",
            Actor::Webhook,
            EventBody::WebhookReceived(WebhookReceived {
                source: "github".into(),
                delivery_id: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
                event_type: Some("push".into()),
                verified: true,
                content_type: "application/json".into(),
                payload: Payload::Inline(r#"{"ref":"refs/heads/main","commits":[]}"#.into()),
            }),
        ),
        case(
            "webhook_received_payload_blob",
            Actor::Webhook,
            EventBody::WebhookReceived(WebhookReceived {
                source: "forms".into(),
                delivery_id: None,
                event_type: None,
                verified: false,
                content_type: "application/x-www-form-urlencoded".into(),
                payload: Payload::Blob(blob(b"name=alice&note=hi", "application/x-www-form-urlencoded")),
            }),
        ),
        lifecycle(
            "lifecycle_session_started",
            Actor::System,
            Lifecycle::SessionStarted { agent: Some("main".into()) },
        ),
        lifecycle(
            "lifecycle_sandbox_attached",
            Actor::Runtime,
            Lifecycle::SandboxAttached { sandbox_id: "sbx-7f3a".into() },
        ),
        lifecycle(
            "lifecycle_sandbox_evicted",
            Actor::System,
            Lifecycle::SandboxEvicted {
                sandbox_id: Some("sbx-7f3a".into()),
                reason: "idle for 10 min".into(),
            },
        ),
        lifecycle(
            "lifecycle_restored",
            Actor::Runtime,
            Lifecycle::Restored { sandbox_id: None, head_seq: 41 },
        ),
        lifecycle(
            "lifecycle_compacted",
            Actor::Runtime,
            Lifecycle::Compacted {
                summary: Payload::Inline("Alice set up the repo; tests pass.".into()),
                first_kept_seq: 30,
                tokens_before: 150_000,
            },
        ),
        lifecycle(
            "lifecycle_recovered_from_archive",
            Actor::System,
            Lifecycle::RecoveredFromArchive { snapshot_seq: Some(100), segments: 3, last_seq: 123 },
        ),
        receipt(
            "delivery_receipt_delivered",
            1,
            DeliveryOutcome::Delivered { remote_id: Some("msg-99".into()) },
        ),
        receipt(
            "delivery_receipt_failed",
            2,
            DeliveryOutcome::Failed { error: "telegram: 502 Bad Gateway".into(), retry_at_ms: T0 + 60_000 },
        ),
        receipt(
            "delivery_receipt_dead_lettered",
            8,
            DeliveryOutcome::DeadLettered { error: "telegram: 403 bot was blocked by the user".into() },
        ),
        case(
            "redaction",
            Actor::Operator,
            EventBody::Redaction(Redaction { target_seq: 3, reason: "user asked to forget it".into() }),
        ),
        // Appended last: the cases before keep their times and entropy.
        lifecycle(
            "lifecycle_records_lost",
            Actor::System,
            Lifecycle::RecordsLost {
                first_seq: 101,
                last_seq: 200,
                reason: "sessions/agent:main/segments/00000000000000000101-00000000000000000200.seg: segment checksum mismatch".into(),
            },
        ),
    ]
}

/// Seals every case as seq 1 after `genesis`, case i at `T0 + i` seconds with its own entropy.
pub fn sealed() -> Vec<Sealed> {
    let genesis: Hash = chain::genesis(SESSION_KEY);
    cases()
        .into_iter()
        .enumerate()
        .map(|(i, case)| {
            let ts_ms = T0 + 1000 * i as u64;
            let env = Envelope {
                seq: 1,
                id: IdGen::default().next(ts_ms, 0x5eed_0000 + i as u128),
                ts_ms,
                actor: case.actor,
                causation: None,
                idempotency_key: case.idempotency_key.map(str::to_owned),
            };
            let (header, mut record) = record::seal(&genesis, env, &case.body);
            let stored_body = if case.redacted {
                record.body = record::skeleton_bytes(&case.body);
                record.redacted = true;
                case.body.skeleton()
            } else {
                case.body.clone()
            };
            Sealed { case, header, record, stored_body }
        })
        .collect()
}
