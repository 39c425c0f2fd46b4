//! Idempotent retries never duplicate: random interleavings of new appends and verbatim retries,
//! with batch keys and event keys drawn from a small pool (so keys collide, get reused for other
//! content, and retries arrive after the log moved on), checked against a model of the rules:
//!
//! 1. a key twice in one request: `duplicate_key_in_batch`;
//! 2. a known batch key: the original outcome if the content matches, else `idempotency_key_reused`;
//! 3. event keys (also under a new batch key): all known, contiguous and matching: the original
//!    seqs; any known key with other content: `idempotency_key_reused`; known mixed with new:
//!    `partial_duplicate`;
//! 4. otherwise `expected_seq` must match the head, and the events append.
//!
//! After every request the store holds exactly the acknowledged appends' events, each once, in
//! order; at the end every key maps to the seqs first acknowledged for it.

mod common;

use std::collections::{HashMap, HashSet};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;

use common::*;
use moltlog_core::chain::Hash;
use moltlog_core::engine::{AppendOutcome, AppendRequest, Engine, Limits, NewEvent, Now, Planned};
use moltlog_core::event::{Actor, EventBody};
use moltlog_core::store::{LogStore, MemoryStore};

#[derive(Clone, Debug)]
enum Action {
    New {
        actor: Actor,
        events: Vec<(EventSpec, Option<u8>)>,
        batch_key: Option<u8>,
        expected: Option<bool>,
    },
    /// Resend an earlier request verbatim (its expected_seq included, stale by now).
    Retry(Index),
}

fn key_pick() -> impl Strategy<Value = Option<u8>> {
    option::weighted(0.5, 0u8..6)
}

fn action() -> impl Strategy<Value = Action> {
    let actor = proptest::sample::select(vec![Actor::Runtime, Actor::Bridge, Actor::Webhook]);
    prop_oneof![
        3 => (actor, vec((event_spec(), key_pick()), 1..=3), option::weighted(0.4, 0u8..6), option::of(any::<bool>()))
            .prop_map(|(actor, events, batch_key, expected)| {
                let actor = if events.iter().any(|(e, _)| system_only(&e.body)) { Actor::System } else { actor };
                Action::New { actor, events, batch_key, expected }
            }),
        2 => any::<Index>().prop_map(Action::Retry),
    ]
}

/// What a key was first acknowledged for: the content it names, and the answer to give again.
#[derive(Clone, Debug)]
struct KeyModel {
    content: Content,
    first_seq: u64,
    last_seq: u64,
    head: Hash,
}

/// Content as the engine fingerprints it: causation (absent counts as 0) and body, per event.
/// A batch key's content never equals an event key's, even for a batch of one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Content {
    batch: bool,
    events: Vec<(u64, EventBody)>,
}

impl Content {
    fn event(e: &NewEvent) -> Content {
        Content { batch: false, events: vec![(e.causation.unwrap_or(0), e.body.clone())] }
    }

    fn batch(req: &AppendRequest) -> Content {
        let events = req.events.iter().map(|e| (e.causation.unwrap_or(0), e.body.clone())).collect();
        Content { batch: true, events }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Append { first_seq: u64, last_seq: u64 },
    Duplicate { first_seq: u64, last_seq: u64, head: Hash },
    Refused(&'static str),
}

#[derive(Default)]
struct Model {
    keys: HashMap<String, KeyModel>,
    /// The bodies of the acknowledged appends, in log order, as the engine planned to store them.
    log: Vec<EventBody>,
}

impl Model {
    fn predict(&self, req: &AppendRequest) -> Expect {
        let mut seen = HashSet::new();
        let event_keys = req.events.iter().filter_map(|e| e.idempotency_key.as_ref());
        if !req.idempotency_key.iter().chain(event_keys).all(|k| seen.insert(k)) {
            return Expect::Refused("duplicate_key_in_batch");
        }
        let dup =
            |k: &KeyModel| Expect::Duplicate { first_seq: k.first_seq, last_seq: k.last_seq, head: k.head };
        if let Some(key) = &req.idempotency_key {
            match self.keys.get(key) {
                Some(k) if k.content == Content::batch(req) => return dup(k),
                Some(_) => return Expect::Refused("idempotency_key_reused"),
                None => {}
            }
        }
        let mut found: Vec<&KeyModel> = Vec::new();
        let mut any_new = false;
        for e in &req.events {
            match e.idempotency_key.as_ref().and_then(|key| self.keys.get(key)) {
                None => any_new = true,
                Some(k) if k.content == Content::event(e) => found.push(k),
                Some(_) => return Expect::Refused("idempotency_key_reused"),
            }
        }
        if let (Some(first), Some(last)) = (found.first(), found.last()) {
            let contiguous = found.windows(2).all(|w| w[1].first_seq == w[0].last_seq + 1);
            if any_new || !contiguous {
                return Expect::Refused("partial_duplicate");
            }
            return Expect::Duplicate {
                first_seq: first.first_seq,
                last_seq: last.last_seq,
                head: last.head,
            };
        }
        let head = self.log.len() as u64;
        if req.expected_seq.is_some_and(|s| s != head) {
            return Expect::Refused("seq_conflict");
        }
        Expect::Append { first_seq: head + 1, last_seq: head + req.events.len() as u64 }
    }

    /// Records an acknowledged append and the keys it introduced.
    fn acknowledge(
        &mut self,
        req: &AppendRequest,
        out: &AppendOutcome,
        planned: Vec<EventBody>,
        store: &MemoryStore,
    ) {
        self.log.extend(planned);
        for (i, e) in req.events.iter().enumerate() {
            if let Some(key) = &e.idempotency_key {
                let seq = out.first_seq + i as u64;
                let head = store.records()[seq as usize - 1].hash;
                self.keys.insert(
                    key.clone(),
                    KeyModel { content: Content::event(e), first_seq: seq, last_seq: seq, head },
                );
            }
        }
        if let Some(key) = &req.idempotency_key {
            let content = Content::batch(req);
            self.keys.insert(
                key.clone(),
                KeyModel { content, first_seq: out.first_seq, last_seq: out.last_seq, head: out.head },
            );
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn retries_never_duplicate(actions in vec(action(), 1..40)) {
        let mut engine = Engine::new(session_key(), Limits::default());
        let mut store = MemoryStore::new();
        let mut model = Model::default();
        let mut sent: Vec<AppendRequest> = Vec::new();
        for (step, action) in actions.iter().enumerate() {
            let head = engine.head().seq;
            let req = match action {
                Action::New { actor, events, batch_key, expected } => AppendRequest {
                    actor: *actor,
                    events: events
                        .iter()
                        .map(|(spec, key)| NewEvent { idempotency_key: key.map(|k| format!("k{k}")), ..new_event(spec, head) })
                        .collect(),
                    expected_seq: expected.map(|right| if right { head } else { head + 1 }),
                    idempotency_key: batch_key.map(|k| format!("k{k}")),
                },
                Action::Retry(which) if !sent.is_empty() => which.get(&sent).clone(),
                Action::Retry(_) => continue,
            };
            sent.push(req.clone());

            let expect = model.predict(&req);
            let now = Now { now_ms: T0_MS + step as u64, entropy: step as u128 };
            let got = match engine.plan(&store, req.clone(), now) {
                Ok(Planned::Duplicate(out)) => {
                    prop_assert!(out.duplicate);
                    Expect::Duplicate { first_seq: out.first_seq, last_seq: out.last_seq, head: out.head }
                }
                Ok(Planned::Append(plan)) => {
                    let planned: Vec<EventBody> = plan.events.iter().map(|(_, b)| b.clone()).collect();
                    let out = engine.commit(&mut store, plan).map_err(|e| TestCaseError::fail(format!("step {step}: commit failed: {e}")))?;
                    prop_assert!(!out.duplicate);
                    prop_assert_eq!(out.head, store.head().unwrap().unwrap().hash);
                    model.acknowledge(&req, &out, planned, &store);
                    Expect::Append { first_seq: out.first_seq, last_seq: out.last_seq }
                }
                Err(e) => Expect::Refused(e.code()),
            };
            prop_assert_eq!(&got, &expect, "step {}: {:?}", step, req);

            // Exactly the acknowledged events, each once, in order.
            let stored: Vec<EventBody> = store.records().iter().map(|r| r.decode_body().unwrap()).collect();
            prop_assert_eq!(&stored, &model.log, "step {}: the log differs from the acknowledged appends", step);
        }
        for (key, k) in &model.keys {
            let entry = store.lookup_key(key).unwrap().expect("an acknowledged key is stored");
            prop_assert_eq!((entry.first_seq, entry.last_seq, entry.last_hash), (k.first_seq, k.last_seq, k.head));
        }
    }
}
