//! Given/when/then tests of the append engine against the in-memory store.

use super::*;
use crate::event::{Payload, Platform, Role};
use crate::sample;
use crate::store::MemoryStore;

const KEY: &str = "agent:main:test";

struct World {
    engine: Engine,
    store: MemoryStore,
    clock_ms: u64,
}

fn given(bodies: Vec<EventBody>) -> World {
    let mut w = World {
        engine: Engine::new(SessionKey::parse(KEY).unwrap(), Limits::default()),
        store: MemoryStore::new(),
        clock_ms: 1_700_000_000_000,
    };
    for b in bodies {
        w.when(AppendRequest::one(Actor::Runtime, b)).unwrap();
    }
    w
}

impl World {
    fn when(
        &mut self,
        req: AppendRequest,
    ) -> Result<(AppendOutcome, Vec<BlobPut>), AppendError<crate::store::MemoryStoreError>> {
        self.clock_ms += 1;
        let entropy = u128::from(self.clock_ms) * 7919;
        self.engine.append(&mut self.store, req, Now { now_ms: self.clock_ms, entropy })
    }

    fn rebuilt(&self) -> SessionState {
        let (e, _) =
            Engine::rebuild(SessionKey::parse(KEY).unwrap(), &self.store, Limits::default()).unwrap();
        e.state().clone()
    }
}

fn keyed(body: EventBody, key: &str) -> NewEvent {
    NewEvent { body, idempotency_key: Some(key.into()), causation: None }
}

fn batch(events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest { actor: Actor::Runtime, events, expected_seq: None, idempotency_key: None }
}

#[test]
fn a_batch_appends_contiguous_seqs_atomically() {
    let mut w = given(vec![sample::user("hello")]);
    let (out, _) =
        w.when(batch(vec![NewEvent::new(sample::user("a")), NewEvent::new(sample::user("b"))])).unwrap();
    assert_eq!((out.first_seq, out.last_seq, out.duplicate), (2, 3, false));
    assert_eq!(out.head, w.engine.head().hash);
    assert_eq!(w.store.len(), 3);
    assert_eq!(w.rebuilt(), *w.engine.state());
}

#[test]
fn a_bad_event_refuses_the_whole_batch() {
    let mut w = given(vec![]);
    let bad = NewEvent::new(sample::tool_call("", "bash", "{}"));
    let err = w.when(batch(vec![NewEvent::new(sample::user("ok")), bad])).unwrap_err();
    assert_eq!(err.code(), "invalid_event");
    assert!(w.store.is_empty());
}

#[test]
fn expected_seq_conflicts_report_the_head() {
    let mut w = given(vec![sample::user("a"), sample::user("b")]);
    let mut req = AppendRequest::one(Actor::Runtime, sample::user("c"));
    req.expected_seq = Some(1);
    let err = w.when(req.clone()).unwrap_err();
    assert_eq!(err.conflict_head(), Some((2, w.engine.head().hash)));
    req.expected_seq = Some(2);
    assert_eq!(w.when(req).unwrap().0.first_seq, 3);
}

#[test]
fn a_retried_batch_key_returns_the_original_result_and_appends_nothing() {
    let mut w = given(vec![]);
    let mut req = batch(vec![NewEvent::new(sample::user("a")), NewEvent::new(sample::user("b"))]);
    req.idempotency_key = Some("req-1".into());
    let (first, _) = w.when(req.clone()).unwrap();
    w.when(AppendRequest::one(Actor::Runtime, sample::user("later"))).unwrap();
    // The retry carries a stale expected_seq too: the duplicate answer wins over the conflict.
    req.expected_seq = Some(0);
    let (again, _) = w.when(req).unwrap();
    assert!(again.duplicate);
    assert_eq!((again.first_seq, again.last_seq, again.head), (first.first_seq, first.last_seq, first.head));
    assert_eq!(w.store.len(), 3);
}

#[test]
fn a_reused_key_with_other_content_is_refused() {
    let mut w = given(vec![]);
    w.when(batch(vec![keyed(sample::user("a"), "k")])).unwrap();
    let err = w.when(batch(vec![keyed(sample::user("different"), "k")])).unwrap_err();
    assert_eq!(err.code(), "idempotency_key_reused");
}

#[test]
fn event_keys_dedupe_single_events_and_refuse_partial_batches() {
    let mut w = given(vec![]);
    let (a, _) = w.when(batch(vec![keyed(sample::user("a"), "tg:1")])).unwrap();
    let (dup, _) = w.when(batch(vec![keyed(sample::user("a"), "tg:1")])).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.first_seq, a.first_seq);
    let err =
        w.when(batch(vec![keyed(sample::user("a"), "tg:1"), keyed(sample::user("b"), "tg:2")])).unwrap_err();
    assert_eq!(err.code(), "partial_duplicate");
    let err = w.when(batch(vec![keyed(sample::user("x"), "z"), keyed(sample::user("y"), "z")])).unwrap_err();
    assert_eq!(err.code(), "duplicate_key_in_batch");
    assert_eq!(w.store.len(), 1);
}

#[test]
fn a_new_batch_key_does_not_hide_its_events_keys() {
    let mut w = given(vec![]);
    let (a, _) = w.when(batch(vec![keyed(sample::user("a"), "tg:1")])).unwrap();
    // Given an event key already in the log, when a batch under a new batch key reuses it for
    // other content, then it is refused as a reused key (not as a storage failure at commit).
    let mut reused = batch(vec![keyed(sample::user("other"), "tg:1")]);
    reused.idempotency_key = Some("batch-1".into());
    assert_eq!(w.when(reused).unwrap_err().code(), "idempotency_key_reused");
    // When it repeats the event, then the event's original seq is the answer,
    let mut repeated = batch(vec![keyed(sample::user("a"), "tg:1")]);
    repeated.idempotency_key = Some("batch-2".into());
    let (dup, _) = w.when(repeated).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_seq, dup.last_seq, dup.head), (a.first_seq, a.last_seq, a.head));
    // and when it mixes the known event with a new one, then it is a partial duplicate.
    let mut mixed = batch(vec![keyed(sample::user("a"), "tg:1"), NewEvent::new(sample::user("b"))]);
    mixed.idempotency_key = Some("batch-3".into());
    assert_eq!(w.when(mixed).unwrap_err().code(), "partial_duplicate");
    assert_eq!(w.store.len(), 1);
}

#[test]
fn stored_fingerprints_keep_their_definition() {
    // Fingerprints are stored with idempotency keys, so their definition is part of the format:
    // an event's is SHA-256("moltlog.idem.v1" ‖ causation as u64 LE (0 if none) ‖ SHA-256 of the
    // stored body), a batch's is SHA-256 of its events' fingerprints in order. Hashing the body's
    // digest lets a recovered log rebuild event keys from headers alone.
    let mut w = given(vec![sample::user("first")]);
    let body = sample::tool_call("c1", "bash", "{\"command\":\"ls\"}");
    let mut req = batch(vec![
        NewEvent { body: body.clone(), idempotency_key: Some("ev".into()), causation: Some(1) },
        NewEvent::new(sample::user("second")),
    ]);
    req.idempotency_key = Some("batch".into());
    w.when(req).unwrap();
    let event_fp = |causation: u64, body: &EventBody| -> Hash {
        let mut bytes = b"moltlog.idem.v1".to_vec();
        bytes.extend_from_slice(&causation.to_le_bytes());
        bytes.extend_from_slice(&crate::chain::sha256(&crate::codec::encode(body)));
        crate::chain::sha256(&bytes)
    };
    let fps = [event_fp(1, &body), event_fp(0, &sample::user("second"))];
    assert_eq!(w.store.lookup_key("ev").unwrap().unwrap().fingerprint, fps[0]);
    assert_eq!(
        w.store.lookup_key("batch").unwrap().unwrap().fingerprint,
        crate::chain::sha256(&fps.concat())
    );
}

#[test]
fn limits_are_enforced_with_typed_errors() {
    let mut w = given(vec![]);
    assert_eq!(w.when(batch(vec![])).unwrap_err().code(), "empty_batch");
    let many = (0..1001).map(|_| NewEvent::new(sample::user("x"))).collect();
    assert_eq!(w.when(batch(many)).unwrap_err().code(), "too_many_events");
    let huge = "x".repeat(33 << 20);
    assert_eq!(
        w.when(AppendRequest::one(Actor::Runtime, sample::user(&huge))).unwrap_err().code(),
        "payload_too_large"
    );
    let long_author = crate::event::EventBody::ChatMessage(crate::event::ChatMessage {
        role: Role::User,
        channel: None,
        author: Some("a".repeat(2 << 20)),
        text: Payload::Inline("hi".into()),
        attachments: vec![],
    });
    assert_eq!(
        w.when(AppendRequest::one(Actor::Runtime, long_author)).unwrap_err().code(),
        "event_too_large"
    );
    assert!(w.store.is_empty());
}

#[test]
fn large_payloads_move_to_content_addressed_blobs() {
    let mut w = given(vec![]);
    let big = "y".repeat(200_000);
    let (_, blobs) = w
        .when(AppendRequest::one(Actor::Runtime, sample::tool_result("c1", &format!("\"{big}\""), false)))
        .unwrap();
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].bytes.len(), big.len() + 2);
    assert_eq!(blobs[0].sha256, crate::chain::sha256(&blobs[0].bytes));
    assert_eq!(blobs[0].content_type, "application/json");
    let rec = &w.store.records()[0];
    assert!(rec.body.len() < 1000, "the stored body keeps only the reference");
    match rec.decode_body().unwrap() {
        EventBody::ToolResult(r) => {
            assert!(matches!(r.output, Payload::Blob(b) if b.sha256 == blobs[0].sha256))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_the_system_appends_receipts_and_only_operators_redact() {
    let mut w = given(vec![sample::user("secret")]);
    let receipt = EventBody::DeliveryReceipt(crate::event::DeliveryReceipt {
        outbox_seq: 1,
        attempt: 1,
        outcome: crate::event::DeliveryOutcome::Delivered { remote_id: None },
    });
    assert_eq!(w.when(AppendRequest::one(Actor::Runtime, receipt)).unwrap_err().code(), "kind_not_allowed");
    assert_eq!(
        w.when(AppendRequest::one(Actor::Bridge, sample::redaction(1, "x"))).unwrap_err().code(),
        "kind_not_allowed"
    );
}

#[test]
fn redaction_erases_the_body_keeps_the_chain_and_the_state() {
    let mut w = given(vec![
        sample::user("my password is hunter2"),
        sample::tool_call("c1", "bash", "{\"cmd\":\"ls\"}"),
    ]);
    w.when(AppendRequest::one(Actor::Operator, sample::redaction(1, "pasted a secret"))).unwrap();
    let rec = &w.store.records()[0];
    assert!(rec.redacted);
    assert!(!String::from_utf8_lossy(&rec.body).contains("hunter2"));
    let live = w.engine.state().clone();
    assert_eq!(live.redacted, vec![1]);
    let items = crate::restore::transcript(&live, &w.store).unwrap();
    assert!(items[0].redacted);
    assert!(matches!(&items[0].body, EventBody::ChatMessage(m) if m.text == Payload::Redacted));
    assert_eq!(w.rebuilt(), live, "a replay over the skeleton reaches the live state");
    let mut v = crate::verify::Verifier::new(KEY);
    for r in w.store.records() {
        v.push(&r.into()).unwrap();
    }
    assert_eq!(v.finish().unwrap().redacted, vec![1]);
}

#[test]
fn redaction_targets_are_checked() {
    let mut w = given(vec![sample::user("a"), sample::model_call("m", 1, 2)]);
    let code = |w: &mut World, t| {
        w.when(AppendRequest::one(Actor::Operator, sample::redaction(t, "r"))).unwrap_err().to_string()
    };
    assert!(code(&mut w, 9).contains("does not exist"));
    assert!(code(&mut w, 2).contains("no content"));
    w.when(AppendRequest::one(Actor::Operator, sample::redaction(1, "r"))).unwrap();
    assert!(code(&mut w, 1).contains("already redacted"));
}

#[test]
fn snapshots_shorten_rebuilds_and_bad_ones_are_skipped() {
    let mut w = given((0..50).map(|i| sample::user(&format!("m{i}"))).collect());
    let snap = w.engine.snapshot(7);
    w.store.put_snapshot(50, &snap).unwrap();
    w.when(AppendRequest::one(Actor::Runtime, sample::user("after"))).unwrap();
    let (e, report) = Engine::rebuild(SessionKey::parse(KEY).unwrap(), &w.store, Limits::default()).unwrap();
    assert_eq!((report.snapshot_seq, report.replayed), (Some(50), 1));
    assert_eq!(e.state(), w.engine.state());

    let other = Engine::new(SessionKey::parse("other").unwrap(), Limits::default()).snapshot(0);
    w.store.put_snapshot(51, &other).unwrap();
    let (e, report) = Engine::rebuild(SessionKey::parse(KEY).unwrap(), &w.store, Limits::default()).unwrap();
    assert!(report.snapshot_rejected.unwrap().contains("session"));
    assert_eq!(report.replayed, 51);
    assert_eq!(e.state(), w.engine.state());
}

#[test]
fn timestamps_never_go_back_and_ids_increase() {
    let mut w = given(vec![sample::user("a")]);
    w.clock_ms -= 10_000;
    w.when(AppendRequest::one(Actor::Runtime, sample::user("b"))).unwrap();
    let h: Vec<_> = w.store.records().iter().map(|r| r.decode_header().unwrap()).collect();
    assert!(h[1].ts_ms >= h[0].ts_ms);
    assert!(h[1].id > h[0].id);
}

#[test]
fn outbox_follows_receipts() {
    let mut w = given(vec![sample::reply(Platform::Telegram, "42", "hi there")]);
    assert_eq!(w.engine.state().outbox.len(), 1);
    let receipt = |outcome| {
        EventBody::DeliveryReceipt(crate::event::DeliveryReceipt { outbox_seq: 1, attempt: 1, outcome })
    };
    w.when(AppendRequest::one(
        Actor::System,
        receipt(crate::event::DeliveryOutcome::Delivered { remote_id: Some("99".into()) }),
    ))
    .unwrap();
    assert!(w.engine.state().outbox.is_empty());
    assert_eq!(w.engine.state().counters.delivered, 1);
}
