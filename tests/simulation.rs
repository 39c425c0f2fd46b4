#![cfg(not(target_arch = "wasm32"))]
//! Deterministic simulation of one session's Durable Object.
//!
//! An `Engine` over a fault-injecting `LogStore` (a `MemoryStore` inside) is driven by a seeded
//! PRNG through what a DO lives through: client appends (single and batched, with and without
//! idempotency keys and `expected_seq`), answers lost on the way back and retried, evictions,
//! crashes before and after the store commit (the in-memory engine is then discarded and
//! rebuilt), snapshot writes good and bad (torn, failed, another session's, beyond the log) plus
//! the DO alarm's periodic snapshot, operator redactions, delivery receipts, and a clock that
//! jumps.
//!
//! After every step the invariants are checked against the store and a model of what was
//! committed:
//! - the chain verifies from genesis (`verify::Verifier` over every record; verification is a
//!   pure fold over record bytes, so it continues from the previous step's checkpoint while no
//!   record it saw changed, and starts over after an erasure) and accounts for every redaction;
//!   seqs are contiguous;
//! - the store holds exactly the committed events, in order, each once; every acknowledged append
//!   is there at the seqs it was acknowledged with, and its keys answer with those seqs;
//! - no snapshot kept in the store holds content erased after it was taken;
//! - a rebuild from the store (snapshot + tail) equals the live engine's state, byte for byte,
//!   and uses the latest snapshot exactly when that snapshot is a good one.
//!
//! Runs seeds 0..32 by default. `MOLTLOG_SIM_SEED=n` runs only seed n, `MOLTLOG_SIM_STEPS=n` sets
//! the steps per seed (default 300), `MOLTLOG_SIM_SEEDS=n` the number of default seeds. A failure
//! names its seed and step and shows the last steps.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use moltlog_core::chain::{self, Hash};
use moltlog_core::engine::{AppendOutcome, AppendRequest, Engine, Limits, NewEvent, Now, Planned};
use moltlog_core::event::{
    Actor, DeliveryOutcome, DeliveryReceipt, EventBody, Lifecycle, Payload, Platform, Redaction,
};
use moltlog_core::key::SessionKey;
use moltlog_core::record::StoredRecord;
use moltlog_core::sample;
use moltlog_core::state::Head;
use moltlog_core::store::{CommitBatch, CommitError, KeyEntry, LogStore, MemoryStore, MemoryStoreError};
use moltlog_core::verify::Verifier;

const SESSION: &str = "agent:main:telegram:chat:4242";
const DEFAULT_SEEDS: u64 = 32;
const DEFAULT_STEPS: usize = 300;
/// Records after the newest snapshot at which the simulated DO's alarm takes a new one.
const SNAPSHOT_EVERY: u64 = 24;

// ---------------------------------------------------------------------------------------------
// PRNG: splitmix64. Small, seedable, and the same on every platform, so a seed replays exactly.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// The fault-injecting store.

/// A fault armed for the next store call of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    /// The process dies before the store commits: nothing is written.
    BeforeCommit,
    /// The store commits, then the process dies before the engine folds the batch in.
    AfterCommit,
}

#[derive(Debug)]
enum FaultyError {
    Store(MemoryStoreError),
    Crashed(Crash),
    SnapshotWriteFailed,
}

impl fmt::Display for FaultyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultyError::Store(e) => write!(f, "{e}"),
            FaultyError::Crashed(c) => write!(f, "injected crash {c:?}"),
            FaultyError::SnapshotWriteFailed => write!(f, "injected snapshot write failure"),
        }
    }
}

impl std::error::Error for FaultyError {}

/// A `MemoryStore` whose next append may crash before or after committing, and whose next
/// snapshot write may fail.
#[derive(Default)]
struct FaultyStore {
    inner: MemoryStore,
    crash: Option<Crash>,
    fail_snapshot_write: bool,
}

impl LogStore for FaultyStore {
    type Error = FaultyError;

    fn head(&self) -> Result<Option<Head>, FaultyError> {
        self.inner.head().map_err(FaultyError::Store)
    }

    fn read(&self, from_seq: u64, limit: u32) -> Result<Vec<StoredRecord>, FaultyError> {
        self.inner.read(from_seq, limit).map_err(FaultyError::Store)
    }

    fn append(&mut self, batch: &CommitBatch) -> Result<(), CommitError<FaultyError>> {
        let lift = |e: CommitError<MemoryStoreError>| match e {
            CommitError::Conflict { expected_seq, head_seq } => {
                CommitError::Conflict { expected_seq, head_seq }
            }
            CommitError::Store(e) => CommitError::Store(FaultyError::Store(e)),
        };
        match self.crash.take() {
            None => self.inner.append(batch).map_err(lift),
            Some(Crash::BeforeCommit) => Err(CommitError::Store(FaultyError::Crashed(Crash::BeforeCommit))),
            Some(Crash::AfterCommit) => {
                self.inner.append(batch).map_err(lift)?;
                Err(CommitError::Store(FaultyError::Crashed(Crash::AfterCommit)))
            }
        }
    }

    fn lookup_key(&self, key: &str) -> Result<Option<KeyEntry>, FaultyError> {
        self.inner.lookup_key(key).map_err(FaultyError::Store)
    }

    fn put_snapshot(&mut self, seq: u64, bytes: &[u8]) -> Result<(), FaultyError> {
        if std::mem::take(&mut self.fail_snapshot_write) {
            return Err(FaultyError::SnapshotWriteFailed);
        }
        self.inner.put_snapshot(seq, bytes).map_err(FaultyError::Store)
    }

    fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, FaultyError> {
        self.inner.latest_snapshot().map_err(FaultyError::Store)
    }

    fn snapshot_seqs(&self) -> Result<Vec<u64>, FaultyError> {
        self.inner.snapshot_seqs().map_err(FaultyError::Store)
    }

    fn prune_snapshots_before(&mut self, seq: u64) -> Result<(), FaultyError> {
        self.inner.prune_snapshots_before(seq).map_err(FaultyError::Store)
    }
}

// ---------------------------------------------------------------------------------------------
// The model: what was committed, and what clients were told.

/// One record the store must hold, as the engine planned it.
#[derive(Clone, Debug)]
struct Expected {
    body: EventBody,
    actor: Actor,
    key: Option<String>,
    redacted: bool,
    /// The client request that appended it (retries of a request share its id).
    request: usize,
}

/// A request a client sent, with what the simulation knows about it.
#[derive(Clone, Debug)]
struct Sent {
    req: AppendRequest,
    /// Set once the store committed it (whether or not the client heard).
    committed: Option<AppendOutcome>,
}

/// How a snapshot in the store came to be, so a rebuild's choice can be predicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SnapKind {
    Good,
    Torn,
    OtherSession,
    BeyondLog,
}

/// What the Durable Object answered, as the simulation (not the client) sees it.
enum Answer {
    Heard(AppendOutcome),
    Refused(&'static str),
    /// The process crashed inside the append; the client hears nothing.
    Crashed,
}

struct Sim {
    seed: u64,
    step: usize,
    rng: Rng,
    key: SessionKey,
    store: FaultyStore,
    /// The DO's in-memory engine; None after an eviction or a crash, until the next request.
    engine: Option<Engine>,
    clock_ms: u64,
    blobs: HashMap<Hash, Vec<u8>>,
    expected: Vec<Expected>,
    sent: Vec<Sent>,
    /// Ids of requests whose outcome the client heard (it then never retries them, except
    /// deliberately, as a test of the duplicate answer).
    acknowledged: Vec<usize>,
    /// Ids of keyed requests whose answer was lost: the client will retry them.
    pending: Vec<usize>,
    snap_kinds: BTreeMap<u64, SnapKind>,
    /// Redacted seqs and the seq of the redaction that erased each.
    erased_by: BTreeMap<u64, u64>,
    /// The records as the last check saw them, and the model entries changed since: a record
    /// whose bytes and model entry are both unchanged need not be decoded and compared again.
    checked: Vec<StoredRecord>,
    dirty: Vec<usize>,
    /// The verifier after `checked`: verification is a pure fold over record bytes, so while
    /// those bytes are unchanged it continues from here instead of from genesis.
    verified: Verifier,
    trace: Vec<String>,
    stats: BTreeMap<&'static str, u64>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        Sim {
            seed,
            step: 0,
            rng: Rng(seed ^ 0x6d6f_6c74_6c6f_6721),
            key: SessionKey::parse(SESSION).unwrap(),
            store: FaultyStore::default(),
            engine: None,
            clock_ms: 1_700_000_000_000,
            blobs: HashMap::new(),
            expected: Vec::new(),
            sent: Vec::new(),
            acknowledged: Vec::new(),
            pending: Vec::new(),
            snap_kinds: BTreeMap::new(),
            erased_by: BTreeMap::new(),
            checked: Vec::new(),
            dirty: Vec::new(),
            verified: Verifier::new(SESSION),
            trace: Vec::new(),
            stats: BTreeMap::new(),
        }
    }

    fn note(&mut self, what: impl Into<String>) {
        let line = format!("step {}: {}", self.step, what.into());
        self.trace.push(line);
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    /// Fails the run, naming the seed and step and showing the last steps.
    #[track_caller]
    fn fail(&self, msg: impl fmt::Display) -> ! {
        let from = self.trace.len().saturating_sub(25);
        panic!(
            "simulation invariant violated (MOLTLOG_SIM_SEED={} step {}): {msg}\nlast steps:\n  {}",
            self.seed,
            self.step,
            self.trace[from..].join("\n  ")
        );
    }

    #[track_caller]
    fn ensure(&self, cond: bool, msg: impl FnOnce() -> String) {
        if !cond {
            self.fail(msg());
        }
    }

    fn now(&mut self) -> Now {
        self.clock_ms += 1 + self.rng.below(2_000);
        Now {
            now_ms: self.clock_ms,
            entropy: u128::from(self.rng.next()) << 16 | u128::from(self.rng.next()),
        }
    }

    fn head_seq(&self) -> u64 {
        self.expected.len() as u64
    }

    /// The live engine, rebuilt from the store if the DO was evicted or crashed (its wake-up).
    fn wake(&mut self) -> &mut Engine {
        if self.engine.is_none() {
            let engine = self.rebuild("wake");
            self.engine = Some(engine);
        }
        self.engine.as_mut().unwrap()
    }

    /// Rebuilds an engine from the store and checks that it chose the snapshot it should have.
    fn rebuild(&mut self, why: &str) -> Engine {
        let (engine, report) = match Engine::rebuild(self.key.clone(), &self.store, Limits::default()) {
            Ok(r) => r,
            Err(e) => self.fail(format!("rebuild ({why}) failed: {e}")),
        };
        let latest = self.store.snapshot_seqs().unwrap().last().copied();
        match latest.map(|s| (s, self.snap_kinds.get(&s).copied())) {
            None => self.ensure(report.snapshot_seq.is_none() && report.snapshot_rejected.is_none(), || {
                format!("rebuild ({why}) without snapshots reported {report:?}")
            }),
            Some((s, Some(SnapKind::Good))) => self.ensure(report.snapshot_seq == Some(s), || {
                format!("rebuild ({why}) did not use the good snapshot at seq {s}: {report:?}")
            }),
            Some((s, kind)) => {
                self.ensure(report.snapshot_seq.is_none() && report.snapshot_rejected.is_some(), || {
                    format!(
                        "rebuild ({why}) should have rejected the {kind:?} snapshot at seq {s}: {report:?}"
                    )
                })
            }
        }
        self.count(if report.snapshot_seq.is_some() {
            "rebuild from snapshot"
        } else {
            "rebuild from genesis"
        });
        engine
    }

    /// Sends `req` to the DO: plan, store blobs, commit, with `crash` armed for the commit.
    fn submit(&mut self, id: usize, crash: Option<Crash>) -> Answer {
        let req = self.sent[id].req.clone();
        let now = self.now();
        self.wake();
        let planned = match self.engine.as_ref().unwrap().plan(&self.store, req.clone(), now) {
            Err(e) => return Answer::Refused(e.code()),
            Ok(Planned::Duplicate(out)) => return Answer::Heard(out),
            Ok(Planned::Append(plan)) => plan,
        };
        // Blobs go to R2 before the events that reference them are committed.
        for b in &planned.blobs {
            self.ensure(chain::sha256(&b.bytes) == b.sha256, || "a blob's digest is not its address".into());
            self.blobs.insert(b.sha256, b.bytes.clone());
        }
        let bodies: Vec<EventBody> = planned.events.iter().map(|(_, b)| b.clone()).collect();
        let outcome = planned.outcome;
        self.store.crash = crash;
        let engine = self.engine.as_mut().unwrap();
        match engine.commit(&mut self.store, planned) {
            Ok(out) => {
                self.committed(id, &req, bodies, out);
                Answer::Heard(out)
            }
            Err(CommitError::Store(FaultyError::Crashed(Crash::AfterCommit))) => {
                self.engine = None;
                self.committed(id, &req, bodies, outcome);
                Answer::Crashed
            }
            Err(CommitError::Store(FaultyError::Crashed(Crash::BeforeCommit))) => {
                self.engine = None;
                Answer::Crashed
            }
            Err(e) => self.fail(format!("the store refused a planned batch: {e}")),
        }
    }

    /// Records in the model that the store committed `req` as `bodies` with `out`.
    fn committed(&mut self, id: usize, req: &AppendRequest, bodies: Vec<EventBody>, out: AppendOutcome) {
        self.ensure(out.first_seq == self.head_seq() + 1 && !out.duplicate, || {
            format!("request {id} committed as {out:?} at head {}", self.head_seq())
        });
        self.ensure(self.sent[id].committed.is_none(), || format!("request {id} was committed twice"));
        self.sent[id].committed = Some(out);
        for (e, body) in req.events.iter().zip(bodies) {
            if let EventBody::Redaction(r) = &body {
                let at = r.target_seq as usize - 1;
                let target = &mut self.expected[at];
                target.body = target.body.skeleton();
                target.redacted = true;
                self.dirty.push(at);
                let seq = self.head_seq() + 1;
                self.erased_by.insert(r.target_seq, seq);
            }
            self.expected.push(Expected {
                body,
                actor: req.actor,
                key: e.idempotency_key.clone(),
                redacted: false,
                request: id,
            });
        }
    }

    // -----------------------------------------------------------------------------------------
    // Client steps.

    /// A new request from a client. Keys are unique per request, so a new request is never a
    /// duplicate; retries are what exercise the keys.
    fn new_request(&mut self) -> usize {
        let id = self.sent.len();
        let n = if self.rng.chance(70) { 1 } else { 2 + self.rng.below(4) as usize };
        let batch_key = (n > 1 && self.rng.chance(50)).then(|| format!("batch-{id}"));
        let keyed_events = self.rng.chance(40);
        let mut actor = *self.rng.pick(&[Actor::Runtime, Actor::Runtime, Actor::Bridge, Actor::Webhook]);
        let events: Vec<NewEvent> = (0..n)
            .map(|i| {
                let (body, system) = self.body();
                if system {
                    actor = Actor::System;
                }
                let head = self.head_seq();
                let causation = (head > 0 && self.rng.chance(20)).then(|| 1 + self.rng.below(head));
                let idempotency_key = keyed_events.then(|| format!("ev-{id}-{i}"));
                NewEvent { body, idempotency_key, causation }
            })
            .collect();
        let expected_seq = match self.rng.below(10) {
            0..=2 => Some(self.head_seq()),
            3 => Some(self.head_seq() + 1 + self.rng.below(3)),
            _ => None,
        };
        self.sent.push(Sent {
            req: AppendRequest { actor, events, expected_seq, idempotency_key: batch_key },
            committed: None,
        });
        id
    }

    fn keyed(&self, id: usize) -> bool {
        let req = &self.sent[id].req;
        req.idempotency_key.is_some() || req.events.iter().all(|e| e.idempotency_key.is_some())
    }

    /// A client appends; with `lost` its answer never arrives, with `crash` the DO dies inside.
    fn client_append(&mut self, lost: bool, crash: Option<Crash>) {
        let id = self.new_request();
        let stale = self.sent[id].req.expected_seq.is_some_and(|s| s != self.head_seq());
        let answer = self.submit(id, crash);
        let what = format!(
            "append #{id} ({} events, keyed {}, expected_seq {:?}{}{})",
            self.sent[id].req.events.len(),
            self.keyed(id),
            self.sent[id].req.expected_seq,
            if lost { ", answer lost" } else { "" },
            crash.map(|c| format!(", crash {c:?}")).unwrap_or_default()
        );
        match answer {
            Answer::Refused(code) => {
                self.ensure(stale && code == "seq_conflict", || format!("{what} refused: {code}"));
                self.note(format!("{what}: refused {code}"));
                self.count("refused (stale expected_seq)");
            }
            Answer::Heard(out) => {
                self.ensure(!stale && !out.duplicate, || format!("{what} answered {out:?}"));
                self.note(format!("{what}: {}..={}", out.first_seq, out.last_seq));
                if lost {
                    self.lose(id);
                } else {
                    self.acknowledged.push(id);
                    self.count("acknowledged");
                }
            }
            Answer::Crashed => {
                self.note(format!("{what}: crashed, committed {}", self.sent[id].committed.is_some()));
                self.count(if crash == Some(Crash::AfterCommit) {
                    "crash after commit"
                } else {
                    "crash before commit"
                });
                self.lose(id);
            }
        }
    }

    /// The client did not hear about `id`: it retries later if it can do so safely (keyed).
    fn lose(&mut self, id: usize) {
        if self.keyed(id) {
            self.pending.push(id);
        }
        self.count("answer lost");
    }

    /// A client retries a request whose answer it lost.
    fn retry_pending(&mut self) {
        if self.pending.is_empty() {
            return self.client_append(false, None);
        }
        let at = self.rng.index(self.pending.len());
        let id = self.pending.swap_remove(at);
        let before = self.sent[id].committed;
        let stale = self.sent[id].req.expected_seq.is_some_and(|s| s != self.head_seq());
        let crash = self.rng.chance(10).then_some(Crash::AfterCommit);
        let answer = self.submit(id, crash);
        let what = format!("retry #{id} (committed before: {})", before.is_some());
        match (before, answer) {
            // Committed before: the retry must answer with the original outcome, appending nothing.
            (Some(orig), Answer::Heard(out)) => {
                self.ensure(out == AppendOutcome { duplicate: true, ..orig }, || {
                    format!("{what} answered {out:?}, the original was {orig:?}")
                });
                self.acknowledged.push(id);
                self.note(format!("{what}: duplicate {}..={}", out.first_seq, out.last_seq));
                self.count("retry answered duplicate");
            }
            (Some(orig), _) => self.fail(format!("{what} of a committed request did not answer {orig:?}")),
            // Never committed: the retry is a fresh append (or a conflict if the head moved).
            (None, Answer::Heard(out)) => {
                self.ensure(!out.duplicate && !stale, || format!("{what} answered {out:?}"));
                self.acknowledged.push(id);
                self.note(format!("{what}: appended {}..={}", out.first_seq, out.last_seq));
                self.count("retry appended");
            }
            (None, Answer::Refused(code)) => {
                self.ensure(stale && code == "seq_conflict", || format!("{what} refused: {code}"));
                self.note(format!("{what}: refused {code}, client gives up"));
            }
            (None, Answer::Crashed) => {
                self.note(format!("{what}: crashed again"));
                self.lose(id);
            }
        }
    }

    /// A client re-sends a request it already heard about (a timeout raced the answer).
    fn retry_acknowledged(&mut self) {
        let keyed: Vec<usize> = self.acknowledged.iter().copied().filter(|&id| self.keyed(id)).collect();
        if keyed.is_empty() {
            return self.client_append(false, None);
        }
        let id = *self.rng.pick(&keyed);
        let orig = self.sent[id].committed.expect("acknowledged requests were committed");
        match self.submit(id, None) {
            Answer::Heard(out) if out == AppendOutcome { duplicate: true, ..orig } => {}
            Answer::Heard(out) => self.fail(format!("re-sent #{id} answered {out:?}, originally {orig:?}")),
            Answer::Refused(code) => self.fail(format!("re-sent #{id} refused: {code}")),
            Answer::Crashed => self.fail("no crash was armed"),
        }
        self.note(format!("re-sent acknowledged #{id}: duplicate"));
        self.count("re-sent acknowledged");
    }

    /// An operator redacts a record that holds content, or (now and then) tries a bad target.
    fn redact(&mut self) {
        let live: Vec<u64> = (1..=self.head_seq())
            .filter(|&s| {
                let e = &self.expected[s as usize - 1];
                !e.redacted && e.body.has_content()
            })
            .collect();
        let bad_target = live.is_empty() || self.rng.chance(10);
        let target = if bad_target {
            let redacted: Vec<u64> =
                (1..=self.head_seq()).filter(|&s| self.expected[s as usize - 1].redacted).collect();
            if !redacted.is_empty() && self.rng.chance(50) {
                *self.rng.pick(&redacted)
            } else {
                self.head_seq() + 1 + self.rng.below(5)
            }
        } else {
            *self.rng.pick(&live)
        };
        let id = self.sent.len();
        let body =
            EventBody::Redaction(Redaction { target_seq: target, reason: "user asked to forget".into() });
        self.sent.push(Sent { req: AppendRequest::one(Actor::Operator, body), committed: None });
        // The DO may die inside a redaction too: before the erasure commits, or after.
        let crash = match self.rng.below(10) {
            0 => Some(Crash::BeforeCommit),
            1 => Some(Crash::AfterCommit),
            _ => None,
        };
        match self.submit(id, crash) {
            Answer::Refused("bad_redaction") if bad_target => {
                self.note(format!("redact bad target {target}: refused"))
            }
            Answer::Heard(out) if !bad_target => {
                self.acknowledged.push(id);
                self.note(format!("redact seq {target} at seq {}", out.first_seq));
                self.count("redaction");
            }
            Answer::Heard(out) => self.fail(format!("redaction of bad target {target} accepted: {out:?}")),
            Answer::Refused(code) => self.fail(format!("redaction of {target} refused: {code}")),
            Answer::Crashed => {
                self.note(format!(
                    "redact seq {target}: crashed, committed {}",
                    self.sent[id].committed.is_some()
                ));
            }
        }
    }

    /// The DO's outbox worker records a delivery attempt for a pending reply.
    fn deliver(&mut self) {
        let pending: Vec<u64> = self.wake().state().outbox.keys().copied().collect();
        if pending.is_empty() {
            return self.client_append(false, None);
        }
        let outbox_seq = *self.rng.pick(&pending);
        let attempt = 1 + self.rng.below(5) as u32;
        let outcome = match self.rng.below(4) {
            0 | 1 => DeliveryOutcome::Delivered { remote_id: Some(format!("m{}", self.rng.below(10_000))) },
            2 => DeliveryOutcome::Failed { error: "HTTP 502".into(), retry_at_ms: self.clock_ms + 30_000 },
            _ => DeliveryOutcome::DeadLettered { error: "HTTP 403: bot was blocked".into() },
        };
        let id = self.sent.len();
        let body = EventBody::DeliveryReceipt(DeliveryReceipt { outbox_seq, attempt, outcome });
        self.sent.push(Sent { req: AppendRequest::one(Actor::System, body), committed: None });
        match self.submit(id, None) {
            Answer::Heard(_) => self.acknowledged.push(id),
            _ => self.fail("a delivery receipt was not appended"),
        }
        self.note(format!("delivery receipt for seq {outbox_seq}"));
        self.count("delivery receipt");
    }

    // -----------------------------------------------------------------------------------------
    // Durable Object lifecycle and snapshots.

    fn evict(&mut self) {
        self.engine = None;
        self.note("evicted");
        self.count("eviction");
    }

    fn write_snapshot(&mut self) {
        let now = self.now().now_ms;
        let engine = self.wake();
        let (seq, bytes) = (engine.head().seq, engine.snapshot(now));
        match self.rng.below(10) {
            0 => {
                self.store.fail_snapshot_write = true;
                let result = self.store.put_snapshot(seq, &bytes);
                self.ensure(result.is_err(), || "the injected snapshot failure did not happen".into());
                self.note(format!("snapshot at {seq}: write failed"));
                self.count("snapshot write failed");
            }
            1 | 2 => {
                // A torn write: damaged or cut short.
                let mut torn = bytes;
                if self.rng.chance(50) {
                    let at = self.rng.index(torn.len());
                    torn[at] ^= 1 << self.rng.below(8);
                } else {
                    torn.truncate(self.rng.index(torn.len()));
                }
                self.put_snapshot(seq, &torn, SnapKind::Torn);
            }
            _ => self.put_snapshot(seq, &bytes, SnapKind::Good),
        }
    }

    /// The DO's alarm: snapshots a live engine once the log ran `SNAPSHOT_EVERY` records past the
    /// newest snapshot, as the Worker does, so that wake-ups replay a short tail.
    fn alarm(&mut self) {
        let Some(engine) = &self.engine else { return };
        let newest = self.store.snapshot_seqs().unwrap().last().copied().unwrap_or(0);
        if engine.head().seq >= newest + SNAPSHOT_EVERY {
            let (seq, bytes) = (engine.head().seq, engine.snapshot(self.clock_ms));
            self.put_snapshot(seq, &bytes, SnapKind::Good);
        }
    }

    fn put_snapshot(&mut self, seq: u64, bytes: &[u8], kind: SnapKind) {
        self.store.put_snapshot(seq, bytes).unwrap();
        self.snap_kinds.insert(seq, kind);
        self.note(format!("snapshot at {seq}: {kind:?}"));
        self.count(match kind {
            SnapKind::Good => "snapshot good",
            SnapKind::Torn => "snapshot torn",
            SnapKind::OtherSession => "snapshot of another session",
            SnapKind::BeyondLog => "snapshot beyond the log",
        });
    }

    /// A snapshot that does not belong: another session's, or a fork's from beyond the log (as a
    /// restore from the wrong archive or a stale replica would leave).
    fn stray_snapshot(&mut self) {
        let now = self.now();
        if self.rng.chance(50) {
            let other = SessionKey::parse("agent:main:telegram:chat:7").unwrap();
            let mut engine = Engine::new(other, Limits::default());
            let mut store = MemoryStore::new();
            engine
                .append(&mut store, AppendRequest::one(Actor::Bridge, sample::user("other chat")), now)
                .unwrap();
            let seq = self.head_seq();
            self.put_snapshot(seq, &engine.snapshot(now.now_ms), SnapKind::OtherSession);
        } else {
            let mut fork = self.wake().clone();
            let mut store = self.store.inner.clone();
            let n = 1 + self.rng.below(3);
            for i in 0..n {
                let body = sample::user(&format!("a fork's message {i}"));
                fork.append(&mut store, AppendRequest::one(Actor::Runtime, body), now).unwrap();
            }
            self.put_snapshot(fork.head().seq, &fork.snapshot(now.now_ms), SnapKind::BeyondLog);
        }
    }

    fn clock_jump(&mut self) {
        if self.rng.chance(50) {
            self.clock_ms -= self.rng.below(60_000);
            self.note("clock stepped back");
        } else {
            self.clock_ms += self.rng.below(86_400_000);
            self.note("clock jumped ahead");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Workload.

    /// A body of a random kind; true if only the system may append it.
    fn body(&mut self) -> (EventBody, bool) {
        let text = self.words();
        let call = format!("call-{}", self.rng.below(6));
        let body = match self.rng.below(20) {
            0..=5 => sample::user(&text),
            6 => sample::inbound(
                Platform::Telegram,
                "4242",
                &self.rng.below(1 << 20).to_string(),
                "alice",
                &text,
            ),
            7..=8 => sample::reply(Platform::Telegram, "4242", &text),
            9..=10 => sample::tool_call(&call, "bash", &format!("{{\"command\":\"{text}\"}}")),
            11..=12 => sample::tool_result(&call, &format!("{{\"stdout\":\"{text}\"}}"), self.rng.chance(10)),
            13 => sample::navigate(
                &format!("t{}", self.rng.below(3)),
                &format!("https://example.com/{}", self.rng.below(50)),
            ),
            14 => sample::model_call("claude-sonnet", self.rng.below(100_000), self.rng.below(4_000)),
            15 => sample::webhook(
                "github",
                &format!("d-{}", self.rng.next()),
                &format!("{{\"comment\":\"{text}\"}}"),
            ),
            16 => sample::compacted(&text, 1 + self.rng.below(self.head_seq() + 1)),
            17 => EventBody::Lifecycle(Lifecycle::SandboxAttached {
                sandbox_id: format!("sb-{}", self.rng.below(4)),
            }),
            18 => EventBody::Lifecycle(Lifecycle::SandboxEvicted { sandbox_id: None, reason: "idle".into() }),
            _ => {
                // Rarely, a payload over the blob threshold, which moves to R2.
                if self.rng.chance(30) {
                    let big: String =
                        (0..70_000).map(|i| char::from(b'a' + ((i * 7 + self.step) % 26) as u8)).collect();
                    sample::tool_result(&call, &format!("\"{big}\""), false)
                } else {
                    let seq = self.head_seq();
                    return (
                        EventBody::Lifecycle(Lifecycle::RecoveredFromArchive {
                            snapshot_seq: None,
                            segments: 1,
                            last_seq: seq,
                        }),
                        true,
                    );
                }
            }
        };
        (body, false)
    }

    fn words(&mut self) -> String {
        const WORDS: &[&str] = &[
            "the", "file", "is", "ready", "please", "check", "build", "logs", "and", "run", "tests", "again",
            "deploy", "failed", "because", "of", "a", "missing", "key", "fixed", "now", "thanks", "what",
            "about", "tomorrow", "meeting", "notes", "summary", "agent", "session",
        ];
        let n = 1 + self.rng.below(24);
        (0..n).map(|_| *self.rng.pick(WORDS)).collect::<Vec<_>>().join(" ")
    }

    // -----------------------------------------------------------------------------------------
    // Invariants.

    fn check(&mut self) {
        let records = self.store.inner.records();
        // Seqs are contiguous, and the store holds exactly what was committed.
        self.ensure(records.len() == self.expected.len(), || {
            format!("the store holds {} records, {} were committed", records.len(), self.expected.len())
        });
        let mut rewritten = false;
        for (i, (r, want)) in records.iter().zip(&self.expected).enumerate() {
            let same_bytes = self.checked.get(i) == Some(r);
            if same_bytes && !self.dirty.contains(&i) {
                continue;
            }
            let seq = i as u64 + 1;
            self.ensure(r.seq == seq, || format!("record {i} has seq {}", r.seq));
            let header = r.decode_header().unwrap_or_else(|e| self.fail(format!("seq {seq}: {e}")));
            let body = r.decode_body().unwrap_or_else(|e| self.fail(format!("seq {seq}: {e}")));
            self.ensure(body == want.body && r.redacted == want.redacted, || {
                format!("seq {seq} holds {body:?} (redacted {}), committed was {want:?}", r.redacted)
            });
            self.ensure(header.actor == want.actor && header.idempotency_key == want.key, || {
                format!("seq {seq} header {header:?} differs from what was committed")
            });
            for blob in offloaded(&body) {
                let stored = self.blobs.get(&blob.sha256).map(|b| chain::sha256(b));
                self.ensure(stored == Some(blob.sha256), || {
                    format!("seq {seq} references a blob never stored")
                });
            }
            if !same_bytes {
                match self.checked.get_mut(i) {
                    Some(old) => {
                        *old = r.clone();
                        rewritten = true;
                    }
                    None => self.checked.push(r.clone()),
                }
            }
        }
        self.dirty.clear();

        // The chain verifies from genesis, and every redaction is accounted for. Verification is
        // a pure fold over the records' bytes, so it continues from the last check's verifier
        // unless a record it saw was rewritten (by an erasure).
        let (mut v, from) = if rewritten {
            *self.stats.entry("full re-verification").or_default() += 1;
            (Verifier::new(SESSION), 0)
        } else {
            (self.verified.clone(), self.verified.next_seq() as usize - 1)
        };
        for r in &records[from..] {
            if let Err(e) = v.push(&r.into()) {
                self.fail(format!("the log fails verification: {e}"));
            }
        }
        self.verified = v.clone();
        let report = v.finish().unwrap_or_else(|e| self.fail(format!("the log fails verification: {e}")));
        let redacted: Vec<u64> =
            (1..=self.head_seq()).filter(|&s| self.expected[s as usize - 1].redacted).collect();
        self.ensure(report.redacted == redacted && report.not_erased.is_empty(), || {
            format!(
                "verifier reports redacted {:?} (not erased {:?}), want {redacted:?}",
                report.redacted, report.not_erased
            )
        });

        // Every acknowledged append is there exactly once, at the seqs it was acknowledged with,
        // and its keys still answer with them.
        let mut stored_events = vec![0usize; self.sent.len()];
        for e in &self.expected {
            stored_events[e.request] += 1;
        }
        for &id in &self.acknowledged {
            let Sent { req, committed } = &self.sent[id];
            let out =
                committed.unwrap_or_else(|| self.fail(format!("acknowledged #{id} was never committed")));
            let range = out.first_seq as usize - 1..out.last_seq as usize;
            let in_place =
                self.expected.get(range.clone()).is_some_and(|run| run.iter().all(|e| e.request == id));
            self.ensure(
                in_place && range.len() == req.events.len() && stored_events[id] == range.len(),
                || format!("acknowledged #{id} ({out:?}) is not stored exactly once at its seqs"),
            );
            self.ensure(records[out.last_seq as usize - 1].hash == out.head, || {
                format!("#{id}'s head hash moved")
            });
            let keys = req.idempotency_key.iter().map(|k| (k, out.first_seq, out.last_seq)).chain(
                req.events
                    .iter()
                    .zip(out.first_seq..)
                    .filter_map(|(e, s)| e.idempotency_key.as_ref().map(|k| (k, s, s))),
            );
            for (key, first, last) in keys {
                let entry = self.store.lookup_key(key).unwrap();
                self.ensure(
                    entry.as_ref().is_some_and(|e| (e.first_seq, e.last_seq) == (first, last)),
                    || format!("key {key:?} of #{id} maps to {entry:?}, want {first}..={last}"),
                );
            }
        }

        // No kept snapshot holds content erased after it was taken (the store drops those).
        for s in self.store.snapshot_seqs().unwrap() {
            if self.snap_kinds.get(&s) == Some(&SnapKind::Good)
                && let Some((t, by)) = self.erased_by.iter().find(|&(&t, &by)| t <= s && by > s)
            {
                self.fail(format!("the snapshot at seq {s} still holds seq {t}, erased at seq {by}"));
            }
        }

        // A rebuild from the store equals the live state, byte for byte (and so does the
        // verifier's replay).
        let replayed = report.state.encode();
        let rebuilt = self.rebuild("check");
        self.ensure(rebuilt.state().encode() == replayed, || {
            "the rebuilt state differs from a full replay".into()
        });
        if let Some(live) = &self.engine {
            self.ensure(live.state().encode() == replayed, || {
                format!("the live state (head {}) differs from the replayed state", live.head().seq)
            });
        }
    }

    fn run(&mut self, steps: usize) {
        for step in 0..steps {
            self.step = step;
            match self.rng.below(100) {
                0..=34 => self.client_append(false, None),
                35..=44 => self.client_append(true, None),
                45..=54 => self.retry_pending(),
                55..=57 => self.retry_acknowledged(),
                58..=62 => self.evict(),
                63..=66 => self.client_append(false, Some(Crash::BeforeCommit)),
                67..=71 => self.client_append(false, Some(Crash::AfterCommit)),
                72..=81 => self.write_snapshot(),
                82..=84 => self.stray_snapshot(),
                85..=91 => self.redact(),
                92..=96 => self.deliver(),
                _ => self.clock_jump(),
            }
            self.alarm();
            self.check();
        }
    }
}

/// Blob refs the engine made by moving payloads out of the body.
fn offloaded(body: &EventBody) -> Vec<&moltlog_core::event::BlobRef> {
    let payloads: Vec<&Payload> = match body {
        EventBody::ChatMessage(m) => vec![&m.text],
        EventBody::ToolCall(c) => vec![&c.input],
        EventBody::ToolResult(r) => vec![&r.output],
        EventBody::WebhookReceived(w) => vec![&w.payload],
        EventBody::Lifecycle(Lifecycle::Compacted { summary, .. }) => vec![summary],
        _ => vec![],
    };
    payloads.into_iter().filter_map(|p| if let Payload::Blob(b) = p { Some(b) } else { None }).collect()
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

/// Runs one seed; a panic anywhere (an invariant here, an assertion in core) names the seed.
fn run_seed(seed: u64, steps: usize) -> BTreeMap<&'static str, u64> {
    let mut sim = Sim::new(seed);
    match catch_unwind(AssertUnwindSafe(|| sim.run(steps))) {
        Ok(()) => sim.stats,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("simulation failed with MOLTLOG_SIM_SEED={seed} (steps {steps}): {msg}")
        }
    }
}

#[test]
fn seeded_session_simulation() {
    let steps = env_number("MOLTLOG_SIM_STEPS").map_or(DEFAULT_STEPS, |n| n as usize);
    let seeds: Vec<u64> = match env_number("MOLTLOG_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_number("MOLTLOG_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    // Two workers: the machine's cores. Each seed is independent and deterministic.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let totals = std::sync::Mutex::new(BTreeMap::<&'static str, u64>::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some(&seed) = seeds.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                    let stats = run_seed(seed, steps);
                    let mut totals = totals.lock().unwrap();
                    for (k, v) in stats {
                        *totals.entry(k).or_default() += v;
                    }
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap();
    println!("{} seeds x {steps} steps: {totals:#?}", seeds.len());
    // The faults must actually have happened, or the run proved little.
    for what in
        ["crash after commit", "crash before commit", "retry answered duplicate", "rebuild from snapshot"]
    {
        assert!(
            steps < 100 || seeds.len() < 4 || totals.get(what).copied().unwrap_or(0) > 0,
            "no {what:?} in {} seeds",
            seeds.len()
        );
    }
}
