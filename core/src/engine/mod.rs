//! The append engine: decides what an append writes (pure, may refuse), then folds what was
//! committed into the state (cannot fail). The runtime owns the IO between the two: it stores
//! blobs the plan asks for, commits the batch through its `LogStore`, and retries the plan when
//! the head moved in between.

mod error;
mod gap;
mod limits;
mod offload;
mod rebuild;
mod validate;

pub use error::AppendError;
pub use gap::GapError;
pub use limits::Limits;
pub use offload::{BlobPut, blob_object_key};
pub use rebuild::{RebuildError, RebuildReport};

use sha2::{Digest, Sha256};

use crate::chain::Hash;
use crate::codec;
use crate::event::{Actor, EventBody, EventHeader};
use crate::id::IdGen;
use crate::key::SessionKey;
use crate::record::{self, Envelope};
use crate::state::{Head, SessionState};
use crate::store::{CommitBatch, CommitError, Erasure, KeyEntry, LogStore, read_one};

/// One event to append, as a client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub body: EventBody,
    pub idempotency_key: Option<String>,
    pub causation: Option<u64>,
}

impl NewEvent {
    pub fn new(body: EventBody) -> NewEvent {
        NewEvent { body, idempotency_key: None, causation: None }
    }
}

/// An append: 1..N events written atomically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    pub actor: Actor,
    pub events: Vec<NewEvent>,
    /// Optimistic concurrency: append only if the log is at this seq.
    pub expected_seq: Option<u64>,
    /// A key for the whole batch; a retry with the same key returns the original result.
    pub idempotency_key: Option<String>,
}

impl AppendRequest {
    pub fn one(actor: Actor, body: EventBody) -> AppendRequest {
        AppendRequest { actor, events: vec![NewEvent::new(body)], expected_seq: None, idempotency_key: None }
    }
}

/// The outside world's inputs to a decision: the clock and fresh random bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub now_ms: u64,
    pub entropy: u128,
}

/// The answer to an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    pub first_seq: u64,
    pub last_seq: u64,
    pub head: Hash,
    /// True when this was a retry of an append already in the log: nothing new was written.
    pub duplicate: bool,
}

/// What an accepted append will write.
#[derive(Clone, Debug)]
pub struct AppendPlan {
    pub commit: CommitBatch,
    /// The decoded events, in order, to fold into the state after the commit.
    pub events: Vec<(EventHeader, EventBody)>,
    /// Blobs to store before committing.
    pub blobs: Vec<BlobPut>,
    pub outcome: AppendOutcome,
}

#[derive(Clone, Debug)]
pub enum Planned {
    /// A retry: answer with the original outcome, write nothing.
    Duplicate(AppendOutcome),
    Append(AppendPlan),
}

/// A session's engine: its state (cached fold of the log) and its limits.
#[derive(Clone, Debug)]
pub struct Engine {
    key: SessionKey,
    state: SessionState,
    limits: Limits,
}

impl Engine {
    /// An engine for an empty log.
    pub fn new(key: SessionKey, limits: Limits) -> Engine {
        Engine { state: SessionState::new(key.as_str()), key, limits }
    }

    /// An engine whose state was rebuilt elsewhere (must belong to `key`).
    pub fn from_state(key: SessionKey, state: SessionState, limits: Limits) -> Engine {
        assert_eq!(state.session_key, key.as_str(), "state of another session");
        Engine { key, state, limits }
    }

    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    pub fn state(&self) -> &SessionState {
        &self.state
    }

    pub fn head(&self) -> Head {
        self.state.head
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decides what `req` appends, without writing anything.
    pub fn plan<S: LogStore>(
        &self,
        store: &S,
        req: AppendRequest,
        now: Now,
    ) -> Result<Planned, AppendError<S::Error>> {
        let limits = &self.limits;
        let n = req.events.len();
        if n == 0 {
            return Err(AppendError::EmptyBatch);
        }
        if n > limits.max_batch_events as usize {
            return Err(AppendError::TooManyEvents { count: n, max: limits.max_batch_events });
        }
        validate::keys(&req, limits)?;
        for (index, e) in req.events.iter().enumerate() {
            validate::event(index, req.actor, e, limits)?;
        }

        // Bodies take their stored form first (large payloads moved to blobs), each encoded once:
        // to measure it, to hash it, and as the stored bytes. The fingerprint of an event is then
        // recomputable from the stored record alone (archive recovery restores event keys that way).
        let keyed = req.idempotency_key.is_some() || req.events.iter().any(|e| e.idempotency_key.is_some());
        let mut blobs = Vec::new();
        let mut batch_bytes = 0u64;
        let mut prepared = Vec::with_capacity(n);
        for (index, e) in req.events.into_iter().enumerate() {
            let mut body = e.body;
            let encoded = codec::encode(&body);
            // A payload is part of its body's encoding, so only a body over the limit can hold a
            // payload over it.
            if encoded.len() as u64 > limits.max_blob_bytes {
                let largest = offload::largest_inline(&mut body);
                if largest as u64 > limits.max_blob_bytes {
                    return Err(AppendError::PayloadTooLarge {
                        index,
                        bytes: largest,
                        max: limits.max_blob_bytes,
                    });
                }
            }
            let body_bytes =
                offload::offload(&mut body, encoded, limits.blob_threshold_bytes as usize, &mut blobs);
            if body_bytes.len() > limits.max_event_bytes as usize {
                return Err(AppendError::EventTooLarge {
                    index,
                    bytes: body_bytes.len(),
                    max: limits.max_event_bytes,
                });
            }
            batch_bytes += body_bytes.len() as u64;
            let body_sha256 = crate::chain::sha256(&body_bytes);
            // Only idempotency keys use fingerprints; a request without keys skips them.
            let fp = if keyed { fingerprint(e.causation, &body_sha256) } else { [0; 32] };
            prepared.push(Prepared {
                body,
                body_bytes,
                body_sha256,
                fp,
                causation: e.causation,
                key: e.idempotency_key,
            });
        }
        if batch_bytes > limits.max_batch_bytes {
            return Err(AppendError::BatchTooLarge { bytes: batch_bytes, max: limits.max_batch_bytes });
        }
        let batch_fp = batch_fingerprint(&prepared);
        if keyed
            && let Some(dup) =
                self.find_duplicate(store, req.idempotency_key.as_deref(), &prepared, &batch_fp)?
        {
            return Ok(Planned::Duplicate(dup));
        }

        let head = self.state.head;
        if let Some(expected_seq) = req.expected_seq
            && expected_seq != head.seq
        {
            return Err(AppendError::Conflict { expected_seq, head });
        }

        let first_seq = head.seq + 1;
        let mut ids = IdGen::after(self.state.last_id);
        let ts_ms = now.now_ms.max(self.state.last_ts_ms);
        let mut prev = head.hash;
        let mut commit = CommitBatch { expected_seq: head.seq, ..CommitBatch::default() };
        let mut events = Vec::with_capacity(n);
        for (index, p) in prepared.into_iter().enumerate() {
            let seq = first_seq + index as u64;
            if let Some(c) = p.causation
                && (c == 0 || c >= seq)
            {
                return Err(AppendError::Invalid {
                    index,
                    reason: format!("causation {c} must name an earlier event (1..{seq})"),
                });
            }
            if let EventBody::Redaction(r) = &p.body {
                commit.erasures.push(self.erasure(store, index, seq, r.target_seq, &commit.erasures)?);
            }
            let env = Envelope {
                seq,
                id: ids.next(ts_ms, now.entropy),
                ts_ms,
                actor: req.actor,
                causation: p.causation,
                idempotency_key: p.key.clone(),
            };
            commit.blob_refs.extend(p.body.blob_refs().into_iter().map(|b| (seq, b.clone())));
            let (header, rec) = record::seal_encoded(&prev, env, &p.body, p.body_bytes, p.body_sha256);
            prev = rec.hash;
            if let Some(key) = p.key {
                commit.keys.push((
                    key,
                    KeyEntry { first_seq: seq, last_seq: seq, last_hash: rec.hash, fingerprint: p.fp },
                ));
            }
            commit.records.push(rec);
            events.push((header, p.body));
        }
        let last_seq = first_seq + n as u64 - 1;
        if let Some(key) = req.idempotency_key {
            commit.keys.push((key, KeyEntry { first_seq, last_seq, last_hash: prev, fingerprint: batch_fp }));
        }
        let outcome = AppendOutcome { first_seq, last_seq, head: prev, duplicate: false };
        Ok(Planned::Append(AppendPlan { commit, events, blobs, outcome }))
    }

    /// A retry of an earlier append, recognised by its batch key or by all of its event keys.
    /// A batch key seen for the first time does not vouch for the events: their own keys are
    /// checked as if it were absent, so that a reused event key is refused here rather than by
    /// the store at commit.
    fn find_duplicate<S: LogStore>(
        &self,
        store: &S,
        batch_key: Option<&str>,
        events: &[Prepared],
        batch_fp: &Hash,
    ) -> Result<Option<AppendOutcome>, AppendError<S::Error>> {
        let dup = |e: &KeyEntry| AppendOutcome {
            first_seq: e.first_seq,
            last_seq: e.last_seq,
            head: e.last_hash,
            duplicate: true,
        };
        if let Some(key) = batch_key {
            match store.lookup_key(key).map_err(AppendError::Store)? {
                Some(e) if e.fingerprint == *batch_fp => return Ok(Some(dup(&e))),
                Some(_) => return Err(AppendError::KeyReused { key: key.to_owned() }),
                // A new batch key: its events' own keys must still be checked.
                None => {}
            }
        }
        let mut found: Vec<(usize, KeyEntry)> = Vec::new();
        let mut any_new = false;
        for (index, e) in events.iter().enumerate() {
            let Some(key) = &e.key else {
                any_new = true;
                continue;
            };
            match store.lookup_key(key).map_err(AppendError::Store)? {
                Some(entry) if entry.fingerprint == e.fp => found.push((index, entry)),
                Some(_) => return Err(AppendError::KeyReused { key: key.clone() }),
                None => any_new = true,
            }
        }
        let (Some((first_index, first)), Some((_, last))) = (found.first(), found.last()) else {
            return Ok(None);
        };
        // All events must be retries, of one earlier append, in its order.
        let contiguous = found.windows(2).all(|w| w[1].1.first_seq == w[0].1.last_seq + 1);
        if any_new || !contiguous {
            let key = events[*first_index].key.clone().unwrap_or_default();
            return Err(AppendError::PartialDuplicate { index: *first_index, key });
        }
        Ok(Some(AppendOutcome { first_seq: first.first_seq, ..dup(last) }))
    }

    /// The erasure a redaction event at `seq` performs on `target`.
    fn erasure<S: LogStore>(
        &self,
        store: &S,
        index: usize,
        seq: u64,
        target: u64,
        pending: &[Erasure],
    ) -> Result<Erasure, AppendError<S::Error>> {
        let bad = |why| AppendError::BadRedaction { index, target, why };
        if target == 0 || target > self.state.head.seq {
            return Err(bad(if target < seq { "is in the same batch" } else { "does not exist yet" }));
        }
        if pending.iter().any(|e| e.seq == target) {
            return Err(bad("is redacted twice in this batch"));
        }
        let rec =
            read_one(store, target).map_err(AppendError::Store)?.ok_or(bad("is missing from the store"))?;
        if rec.redacted {
            return Err(bad("is already redacted"));
        }
        let body =
            rec.decode_body().map_err(|e| AppendError::Corrupt { seq: target, detail: e.to_string() })?;
        if !body.has_content() {
            return Err(bad("holds no content to redact"));
        }
        Ok(Erasure { seq: target, skeleton: record::skeleton_bytes(&body) })
    }

    /// Writes a plan through `store` and folds it into the state. On `Conflict` nothing changed:
    /// plan again.
    pub fn commit<S: LogStore>(
        &mut self,
        store: &mut S,
        plan: AppendPlan,
    ) -> Result<AppendOutcome, CommitError<S::Error>> {
        assert_eq!(plan.commit.expected_seq, self.state.head.seq, "plan made against another head");
        store.append(&plan.commit)?;
        for ((header, body), rec) in plan.events.into_iter().zip(&plan.commit.records) {
            self.state.apply(&header, rec.hash, body);
        }
        assert_eq!(
            (self.state.head.seq, self.state.head.hash),
            (plan.outcome.last_seq, plan.outcome.head),
            "state head differs from the committed head"
        );
        Ok(plan.outcome)
    }

    /// Plans and commits in one step, for stores that need no blob IO in between.
    pub fn append<S: LogStore>(
        &mut self,
        store: &mut S,
        req: AppendRequest,
        now: Now,
    ) -> Result<(AppendOutcome, Vec<BlobPut>), AppendError<S::Error>> {
        match self.plan(store, req, now)? {
            Planned::Duplicate(outcome) => Ok((outcome, vec![])),
            Planned::Append(mut plan) => {
                let blobs = std::mem::take(&mut plan.blobs);
                let outcome = self.commit(store, plan).map_err(|e| match e {
                    CommitError::Conflict { expected_seq, head_seq } => AppendError::Corrupt {
                        seq: head_seq,
                        detail: format!("store head moved from {expected_seq} under a single writer"),
                    },
                    CommitError::Store(e) => AppendError::Store(e),
                })?;
                Ok((outcome, blobs))
            }
        }
    }

    /// Encodes the current state as a snapshot.
    pub fn snapshot(&self, created_ms: u64) -> Vec<u8> {
        crate::snapshot::encode(&self.state, created_ms, crate::snapshot::Compression::Deflate)
    }
}

/// An event on its way into a plan: its body in stored form and its fingerprint.
struct Prepared {
    body: EventBody,
    body_bytes: Vec<u8>,
    body_sha256: Hash,
    fp: Hash,
    causation: Option<u64>,
    key: Option<String>,
}

/// The content fingerprint of a batch: of its events' fingerprints, in order.
fn batch_fingerprint(events: &[Prepared]) -> Hash {
    let mut h = Sha256::new();
    for e in events {
        h.update(e.fp);
    }
    h.finalize().into()
}

/// The content fingerprint of one event: what makes a retry the same request. Computed from the
/// digest of the stored body, so it can be recomputed from any record's header, redacted or not
/// (see `store::event_key_entry`).
pub fn fingerprint(causation: Option<u64>, body_sha256: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(b"moltlog.idem.v1");
    h.update(causation.unwrap_or(0).to_le_bytes());
    h.update(body_sha256);
    h.finalize().into()
}

#[cfg(test)]
mod tests;
