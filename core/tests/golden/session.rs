//! The fixture session: a short, realistic log of every event kind, appended through the real
//! engine (ids, timestamps, blob offloading, redaction erasure), and what it becomes: the stored
//! records, the folded state, snapshots and an archive segment.

use moltlog_core::engine::BlobPut;
use moltlog_core::event::{
    Attachment, BlobRef, BrowserAction, BrowserActionKind, DeliveryOutcome, DeliveryReceipt, Lifecycle,
    ModelCall, Payload, Platform, Role, WebhookReceived,
};
use moltlog_core::record::StoredRecord;
use moltlog_core::{
    Actor, AppendRequest, Engine, EventBody, Limits, LogStore, MemoryStore, NewEvent, Now, SessionKey,
    SessionState,
};

use crate::bodies::{channel, message, redaction, tool_call, tool_result};
use crate::records::blob;
use crate::{SESSION_KEY, T0};

/// Bodies larger than this move their largest payload to a blob: small, so that one fixture
/// event (seq 11) shows offloading without a 64 KiB file.
pub const BLOB_THRESHOLD: u32 = 512;

/// The stored log after every append, and what the appends produced.
pub struct Session {
    pub records: Vec<StoredRecord>,
    pub state: SessionState,
    pub blobs: Vec<BlobPut>,
}

fn one(actor: Actor, body: EventBody) -> AppendRequest {
    AppendRequest::one(actor, body)
}

fn caused(actor: Actor, body: EventBody, causation: u64) -> AppendRequest {
    AppendRequest {
        actor,
        events: vec![NewEvent { body, idempotency_key: None, causation: Some(causation) }],
        expected_seq: None,
        idempotency_key: None,
    }
}

fn screenshot_ref() -> BlobRef {
    blob(b"fixture screenshot of example.com", "image/png")
}

/// The appends, in order. Seqs in comments are what each lands at.
fn appends() -> Vec<AppendRequest> {
    let inbound = message(
        Role::User,
        Some(channel(Platform::Telegram, "42", Some("1001"))),
        Some("alice"),
        "Is example.com up? Save a note.",
        vec![Attachment {
            name: Some("screenshot.png".into()),
            blob: blob(b"fixture attachment", "image/png"),
        }],
    );
    let note = "example.com answered HTTP 200 at the time of checking.\n".repeat(12);
    let big_input = serde_json::json!({"path": "notes.md", "content": note}).to_string();
    vec![
        // 1
        one(Actor::System, EventBody::Lifecycle(Lifecycle::SessionStarted { agent: Some("main".into()) })),
        // 2
        one(
            Actor::Runtime,
            EventBody::Lifecycle(Lifecycle::SandboxAttached { sandbox_id: "sbx-7f3a".into() }),
        ),
        // 3: an inbound message, de-duplicated by the bridge's key
        AppendRequest {
            actor: Actor::Bridge,
            events: vec![NewEvent {
                body: inbound,
                idempotency_key: Some("telegram:42:1001".into()),
                causation: None,
            }],
            expected_seq: Some(2),
            idempotency_key: None,
        },
        // 4
        caused(
            Actor::Runtime,
            EventBody::ModelCall(ModelCall {
                provider: "anthropic".into(),
                model: "claude-sonnet-4-5".into(),
                input_tokens: 1834,
                output_tokens: 92,
                latency_ms: 2140,
                stop_reason: Some("tool_use".into()),
            }),
            3,
        ),
        // 5 and 6: one atomic batch under a batch idempotency key
        AppendRequest {
            actor: Actor::Runtime,
            events: vec![
                NewEvent::new(tool_call("c1", "bash", r#"{"command":"curl -sI https://example.com"}"#)),
                NewEvent {
                    body: tool_result("c1", r#"{"stdout":"HTTP/2 200\r\n","exit_code":0}"#, false, Some(12)),
                    idempotency_key: None,
                    causation: Some(5),
                },
            ],
            expected_seq: Some(4),
            idempotency_key: Some("turn-1-tools".into()),
        },
        // 7
        one(
            Actor::Runtime,
            EventBody::BrowserAction(BrowserAction {
                action: BrowserActionKind::Navigate,
                target_id: Some("T1".into()),
                url: Some("https://example.com/".into()),
                detail: Payload::Inline("https://example.com".into()),
                result: Payload::Inline(r#"{"frameId":"F1","loaderId":"L1"}"#.into()),
                error: None,
                screenshot: Some(Payload::Blob(screenshot_ref())),
            }),
        ),
        // 8
        one(
            Actor::Webhook,
            EventBody::WebhookReceived(WebhookReceived {
                source: "github".into(),
                delivery_id: Some("d-0001".into()),
                event_type: Some("push".into()),
                verified: true,
                content_type: "application/json".into(),
                payload: Payload::Inline(r#"{"ref":"refs/heads/main","commits":1}"#.into()),
            }),
        ),
        // 9: a reply to Telegram: enters the outbox
        caused(
            Actor::Runtime,
            message(
                Role::Assistant,
                Some(channel(Platform::Telegram, "42", None)),
                None,
                "example.com is up (HTTP 200).",
                vec![],
            ),
            3,
        ),
        // 10
        one(
            Actor::System,
            EventBody::DeliveryReceipt(DeliveryReceipt {
                outbox_seq: 9,
                attempt: 1,
                outcome: DeliveryOutcome::Failed {
                    error: "telegram: 502 Bad Gateway".into(),
                    retry_at_ms: T0 + 40_000,
                },
            }),
        ),
        // 11: its input is over the threshold and moves to a blob
        one(Actor::Runtime, tool_call("c2", "write_file", &big_input)),
        // 12
        one(
            Actor::Runtime,
            EventBody::Lifecycle(Lifecycle::Compacted {
                summary: Payload::Inline("Alice asked whether example.com is up; it is.".into()),
                first_kept_seq: 3,
                tokens_before: 5120,
            }),
        ),
        // 13: erases the body of seq 3
        one(Actor::Operator, redaction(3, "user asked to forget their message")),
    ]
}

/// Appends everything, append k at `T0 + k` seconds.
pub fn build() -> Session {
    let key = SessionKey::parse(SESSION_KEY).expect("valid key");
    let limits = Limits { blob_threshold_bytes: BLOB_THRESHOLD, ..Limits::default() };
    let mut engine = Engine::new(key, limits);
    let mut store = MemoryStore::new();
    let mut blobs = Vec::new();
    for (k, req) in appends().into_iter().enumerate() {
        let k = k as u64 + 1;
        let now = Now { now_ms: T0 + 1000 * k, entropy: 0x00C0_FFEE_0000 + u128::from(k) };
        let (_, mut puts) = engine.append(&mut store, req, now).expect("fixture append is accepted");
        blobs.append(&mut puts);
    }
    let records = store.read(1, u32::MAX).expect("memory store reads");
    Session { records, state: engine.state().clone(), blobs }
}
