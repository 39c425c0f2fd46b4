//! Synthetic agent sessions, written as bundle directories through core's own `Engine` and the
//! `FileStore`: what the benchmark verifies and the tests tamper with.
//!
//! The session looks like a real agent's: turns of an inbound chat message, a model call, a tool
//! call and its result, now and then a browser navigation, and the assistant's reply; the agent
//! compacts its context every few hundred events, as a real one does, so the state stays bounded
//! however long the log grows; snapshots are taken at a fixed interval. Deterministic: the same
//! options give the same bytes.

use std::path::Path;

use moltlog_core::engine::{AppendRequest, Engine, Limits, NewEvent, Now};
use moltlog_core::event::{Actor, EventBody, EventKind, Platform, Role};
use moltlog_core::key::SessionKey;
use moltlog_core::sample;
use moltlog_core::state::Head;
use moltlog_core::store::LogStore;

use crate::file_store::{FileStore, FileStoreError};

#[derive(Clone, Debug)]
pub struct Synth {
    pub events: u64,
    /// Events per append, and so per segment file (R2 segments hold 1000).
    pub batch: u32,
    /// Take a snapshot whenever this many events were appended since the last one.
    pub snapshot_every: u64,
    /// Compact the agent's context about this often (in events).
    pub compact_every: u64,
    /// Time of the first event (ms since the epoch); each batch is a second later.
    pub start_ms: u64,
    pub seed: u64,
    /// Redact the first chat message at or after each of these seqs (by an operator, in an
    /// append of its own made as soon as the log has passed it, as a moderator would).
    pub redact_near: Vec<u64>,
}

/// What `build` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub head: Head,
    /// The seqs whose bodies were redacted.
    pub redacted: Vec<u64>,
    /// The seqs of the redaction events.
    pub redactions: Vec<u64>,
}

impl Default for Synth {
    fn default() -> Self {
        Synth {
            events: 1000,
            batch: 1000,
            snapshot_every: 1000,
            compact_every: 200,
            start_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            seed: 42,
            redact_near: Vec::new(),
        }
    }
}

const WORDS: &[&str] = &[
    "the",
    "agent",
    "checks",
    "deploy",
    "logs",
    "for",
    "errors",
    "and",
    "retries",
    "build",
    "of",
    "service",
    "with",
    "new",
    "config",
    "please",
    "summarise",
    "today's",
    "tickets",
    "open",
    "branch",
    "merge",
    "tests",
    "passed",
    "timeout",
    "database",
    "migration",
    "rollback",
    "cache",
    "latency",
    "report",
    "weekly",
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    /// Words, between `lo` and `hi` characters or so.
    fn text(&mut self, lo: usize, hi: usize) -> String {
        let len = self.range(lo, hi);
        let mut s = String::with_capacity(len + 12);
        while s.len() < len {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(WORDS[self.range(0, WORDS.len())]);
        }
        s
    }
}

/// The events of one turn, with seqs from `next_seq`.
fn turn(rng: &mut Rng, n: u64, next_seq: u64, compact: bool) -> Vec<EventBody> {
    let call = format!("call-{n}");
    let mut out = vec![
        sample::inbound(Platform::Telegram, "42", &n.to_string(), "alice", &rng.text(90, 190)),
        sample::model_call("claude-sonnet-4-5", rng.range(800, 4000) as u64, rng.range(20, 400) as u64),
        sample::tool_call(&call, "bash", &format!("{{\"command\":\"{}\"}}", rng.text(30, 90))),
        sample::tool_result(&call, &format!("{{\"stdout\":\"{}\",\"exit\":0}}", rng.text(90, 190)), false),
    ];
    if n.is_multiple_of(3) {
        out.push(sample::navigate(
            &format!("tab-{}", n % 3),
            &format!("https://example.com/{}", rng.next() % 1000),
        ));
    }
    out.push(sample::chat(Role::Assistant, &rng.text(100, 220)));
    if compact {
        let summary = format!("earlier: {}", rng.text(70, 90));
        out.push(sample::compacted(&summary, next_seq + out.len() as u64 - 4));
    }
    out
}

/// Writes the session into bundle directory `dir`.
pub fn build(dir: &Path, key: &str, s: &Synth) -> Result<Built, FileStoreError> {
    let session = SessionKey::parse(key).expect("a valid session key");
    let mut store = FileStore::open(dir, key)?;
    let limits = Limits { max_batch_events: s.batch.max(1), ..Limits::default() };
    let mut engine = Engine::new(session, limits);
    let mut rng = Rng(s.seed.max(1));
    let mut pending: Vec<EventBody> = Vec::new();
    let mut turns = 0u64;
    let mut since_compaction = 0u64;
    let mut last_snapshot = 0u64;
    let mut batches = 0u64;
    let store_err = |e: String| FileStoreError::BadBatch(e);
    let mut built = Built { head: engine.head(), redacted: Vec::new(), redactions: Vec::new() };
    let mut to_redact: Vec<u64> = s.redact_near.clone();
    to_redact.sort_unstable();
    to_redact.reverse();
    loop {
        // Redactions of what the log already holds go first.
        while let Some(&near) = to_redact.last()
            && near <= engine.head().seq
        {
            to_redact.pop();
            let target = store
                .read(near, 64)?
                .into_iter()
                .find(|r| !r.redacted && r.decode_header().is_ok_and(|h| h.kind == EventKind::ChatMessage))
                .map(|r| r.seq);
            let Some(target) = target else { continue };
            let now = Now { now_ms: s.start_ms + batches * 1000, entropy: u128::from(rng.next()) };
            let req = AppendRequest::one(Actor::Operator, sample::redaction(target, "synthetic redaction"));
            let (outcome, _) = engine.append(&mut store, req, now).map_err(|e| store_err(e.to_string()))?;
            built.redacted.push(target);
            built.redactions.push(outcome.last_seq);
            batches += 1;
        }
        if engine.head().seq >= s.events {
            break;
        }
        let head = engine.head().seq;
        while (pending.len() as u64) < u64::from(s.batch).min(s.events - head) {
            let next = head + pending.len() as u64 + 1;
            let compact = since_compaction >= s.compact_every;
            let events = turn(&mut rng, turns, next, compact);
            since_compaction = if compact { 0 } else { since_compaction + events.len() as u64 };
            turns += 1;
            pending.extend(events);
        }
        let take = (u64::from(s.batch).min(s.events - head)) as usize;
        let rest = pending.split_off(take);
        let events = std::mem::replace(&mut pending, rest).into_iter().map(NewEvent::new).collect();
        let now = Now { now_ms: s.start_ms + batches * 1000, entropy: u128::from(rng.next()) };
        let req =
            AppendRequest { actor: Actor::Runtime, events, expected_seq: Some(head), idempotency_key: None };
        engine.append(&mut store, req, now).map_err(|e| store_err(e.to_string()))?;
        batches += 1;
        let head = engine.head().seq;
        if head - last_snapshot >= s.snapshot_every {
            store.put_snapshot(head, &engine.snapshot(now.now_ms))?;
            last_snapshot = head;
        }
    }
    built.head = engine.head();
    Ok(built)
}
