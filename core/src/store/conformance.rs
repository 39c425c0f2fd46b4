//! The store conformance suite: the behaviour every `LogStore` must show. The in-memory store runs
//! it as a unit test; the Durable Object's SQLite store runs it inside workerd; the replay tool's
//! file store runs it natively. One suite, so every store means the same thing.
//!
//! Checks return a `Failure` rather than panicking, so a store running inside a Worker can report
//! the outcome as JSON.

use std::fmt;

use super::{CommitBatch, CommitError, Erasure, KeyEntry, LogStore, read_one};
use crate::chain::{self, Hash};
use crate::event::{Actor, ChatMessage, EventBody, Payload, Role};
use crate::id::IdGen;
use crate::record::{self, Envelope, StoredRecord};
use crate::state::Head;

/// A check that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: &'static str,
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store conformance check `{}` failed: {}", self.check, self.detail)
    }
}

impl std::error::Error for Failure {}

/// The names of the checks, in the order `run` performs them.
pub const CHECKS: &[&str] = &[
    "empty_store",
    "append_and_read",
    "read_ranges",
    "head_conflict_writes_nothing",
    "failed_batch_writes_nothing",
    "idempotency_keys",
    "erasure",
    "snapshots",
    "large_values",
    "many_records",
];

/// Runs every check, each against a fresh empty store from `fresh`. Returns the names of the
/// checks that passed (all of `CHECKS`) or the first failure.
pub fn run<S: LogStore>(fresh: &mut dyn FnMut() -> S) -> Result<Vec<&'static str>, Failure> {
    empty_store(&mut fresh())?;
    append_and_read(&mut fresh())?;
    read_ranges(&mut fresh())?;
    head_conflict_writes_nothing(&mut fresh())?;
    failed_batch_writes_nothing(&mut fresh())?;
    idempotency_keys(&mut fresh())?;
    erasure(&mut fresh())?;
    snapshots(&mut fresh())?;
    large_values(&mut fresh())?;
    many_records(&mut fresh())?;
    Ok(CHECKS.to_vec())
}

const KEY: &str = "conformance:session";

fn fail(check: &'static str, detail: impl Into<String>) -> Failure {
    Failure { check, detail: detail.into() }
}

fn ensure(check: &'static str, cond: bool, detail: impl FnOnce() -> String) -> Result<(), Failure> {
    if cond { Ok(()) } else { Err(fail(check, detail())) }
}

fn store_err<E: std::error::Error>(check: &'static str) -> impl Fn(E) -> Failure {
    move |e| fail(check, format!("store error: {e}"))
}

fn commit_err<E: std::error::Error>(check: &'static str) -> impl Fn(CommitError<E>) -> Failure {
    move |e| fail(check, format!("append failed: {e}"))
}

/// `n` sealed chat records following `prev`, with bodies of about `text_len` bytes.
fn records(prev: Head, n: u64, text_len: usize) -> Vec<StoredRecord> {
    let mut ids = IdGen::default();
    let mut hash = prev.hash;
    (1..=n)
        .map(|i| {
            let seq = prev.seq + i;
            let mut text = seq.to_string();
            text.extend(std::iter::repeat_n('.', text_len.saturating_sub(text.len())));
            let body = EventBody::ChatMessage(ChatMessage {
                role: Role::User,
                channel: None,
                author: Some("conformance".into()),
                text: Payload::Inline(text),
                attachments: vec![],
            });
            let env = Envelope {
                seq,
                id: ids.next(1_700_000_000_000 + seq, u128::from(seq)),
                ts_ms: 1_700_000_000_000 + seq,
                actor: Actor::Runtime,
                causation: None,
                idempotency_key: None,
            };
            let (_, rec) = record::seal(&hash, env, &body);
            hash = rec.hash;
            rec
        })
        .collect()
}

fn batch(expected_seq: u64, records: Vec<StoredRecord>) -> CommitBatch {
    CommitBatch { expected_seq, records, ..CommitBatch::default() }
}

fn genesis() -> Head {
    Head::genesis(KEY)
}

fn head_of<S: LogStore>(check: &'static str, s: &S) -> Result<Option<Head>, Failure> {
    s.head().map_err(store_err(check))
}

fn empty_store<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "empty_store";
    ensure(C, head_of(C, s)?.is_none(), || "head of an empty store is not None".into())?;
    let got = s.read(1, 10).map_err(store_err(C))?;
    ensure(C, got.is_empty(), || format!("read returned {} records", got.len()))?;
    ensure(C, s.latest_snapshot().map_err(store_err(C))?.is_none(), || "found a snapshot".into())?;
    ensure(C, s.lookup_key("k").map_err(store_err(C))?.is_none(), || "found a key".into())
}

fn append_and_read<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "append_and_read";
    let recs = records(genesis(), 3, 20);
    s.append(&batch(0, recs.clone())).map_err(commit_err(C))?;
    let head = head_of(C, s)?;
    let want = Head { seq: 3, hash: recs[2].hash };
    ensure(C, head == Some(want), || format!("head is {head:?}, want {want:?}"))?;
    let got = s.read(1, 10).map_err(store_err(C))?;
    ensure(C, got == recs, || "records read back differ from those appended".into())?;
    let more = records(want, 2, 20);
    s.append(&batch(3, more.clone())).map_err(commit_err(C))?;
    let got = s.read(4, 10).map_err(store_err(C))?;
    ensure(C, got == more, || "second batch reads back differently".into())
}

fn read_ranges<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "read_ranges";
    let recs = records(genesis(), 10, 8);
    s.append(&batch(0, recs.clone())).map_err(commit_err(C))?;
    let seqs = |v: Vec<StoredRecord>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
    let got = seqs(s.read(4, 3).map_err(store_err(C))?);
    ensure(C, got == vec![4, 5, 6], || format!("read(4, 3) gave seqs {got:?}"))?;
    let got = seqs(s.read(9, 100).map_err(store_err(C))?);
    ensure(C, got == vec![9, 10], || format!("read(9, 100) gave seqs {got:?}"))?;
    let got = seqs(s.read(11, 5).map_err(store_err(C))?);
    ensure(C, got.is_empty(), || format!("read past the head gave {got:?}"))?;
    let got = seqs(s.read(0, 2).map_err(store_err(C))?);
    ensure(C, got == vec![1, 2], || format!("read(0, 2) gave {got:?}"))?;
    let one = read_one(s, 7).map_err(store_err(C))?;
    ensure(C, one.as_ref() == Some(&recs[6]), || "read_one(7) differs".into())
}

fn head_conflict_writes_nothing<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "head_conflict_writes_nothing";
    let recs = records(genesis(), 3, 8);
    s.append(&batch(0, recs.clone())).map_err(commit_err(C))?;
    let stale = records(Head { seq: 2, hash: recs[1].hash }, 2, 8);
    match s.append(&batch(2, stale)) {
        Err(CommitError::Conflict { head_seq: 3, .. }) => {}
        other => return Err(fail(C, format!("stale append gave {other:?}, want Conflict at 3"))),
    }
    let got = s.read(1, 10).map_err(store_err(C))?;
    ensure(C, got == recs, || "a refused batch changed the log".into())
}

fn failed_batch_writes_nothing<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "failed_batch_writes_nothing";
    let recs = records(genesis(), 2, 8);
    let entry = KeyEntry { first_seq: 1, last_seq: 2, last_hash: recs[1].hash, fingerprint: [7; 32] };
    let mut b = batch(0, recs.clone());
    b.keys.push(("dup".into(), entry.clone()));
    s.append(&b).map_err(commit_err(C))?;
    // A batch whose key already exists must fail as a whole: no records, no other keys.
    let more = records(Head { seq: 2, hash: recs[1].hash }, 2, 8);
    let mut b2 = batch(2, more);
    b2.keys.push(("fresh".into(), entry.clone()));
    b2.keys.push(("dup".into(), entry));
    ensure(C, s.append(&b2).is_err(), || "a batch reusing an existing key was accepted".into())?;
    let head = head_of(C, s)?;
    ensure(C, head.map(|h| h.seq) == Some(2), || format!("head moved to {head:?}"))?;
    let fresh = s.lookup_key("fresh").map_err(store_err(C))?;
    ensure(C, fresh.is_none(), || "a key of the failed batch was written".into())
}

fn idempotency_keys<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "idempotency_keys";
    let recs = records(genesis(), 2, 8);
    let entry = KeyEntry { first_seq: 1, last_seq: 2, last_hash: recs[1].hash, fingerprint: [9; 32] };
    let mut b = batch(0, recs);
    b.keys.push(("retry-key".into(), entry.clone()));
    s.append(&b).map_err(commit_err(C))?;
    let got = s.lookup_key("retry-key").map_err(store_err(C))?;
    ensure(C, got.as_ref() == Some(&entry), || format!("lookup gave {got:?}"))?;
    let got = s.lookup_key("other").map_err(store_err(C))?;
    ensure(C, got.is_none(), || "an unknown key was found".into())
}

fn erasure<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "erasure";
    let recs = records(genesis(), 4, 16);
    s.append(&batch(0, recs.clone())).map_err(commit_err(C))?;
    for seq in [1, 2, 4] {
        s.put_snapshot(seq, format!("snap{seq}").as_bytes()).map_err(store_err(C))?;
    }
    let skeleton = record::skeleton_bytes(&recs[1].decode_body().expect("own record decodes"));
    let more = records(Head { seq: 4, hash: recs[3].hash }, 1, 16);
    let mut b = batch(4, more);
    b.erasures.push(Erasure { seq: 2, skeleton: skeleton.clone() });
    s.append(&b).map_err(commit_err(C))?;
    let got = read_one(s, 2).map_err(store_err(C))?.ok_or_else(|| fail(C, "seq 2 vanished"))?;
    ensure(C, got.redacted && got.body == skeleton, || "seq 2 was not replaced by its skeleton".into())?;
    ensure(C, got.header == recs[1].header && got.hash == recs[1].hash, || {
        "erasure changed the header or hash".into()
    })?;
    let other = read_one(s, 3).map_err(store_err(C))?;
    ensure(C, other.as_ref() == Some(&recs[2]), || "erasure touched another record".into())?;
    let kept = s.snapshot_seqs().map_err(store_err(C))?;
    ensure(C, kept == vec![1], || format!("snapshots after erasing seq 2: {kept:?}, want [1]"))
}

fn snapshots<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "snapshots";
    s.put_snapshot(5, b"five").map_err(store_err(C))?;
    s.put_snapshot(9, b"nine").map_err(store_err(C))?;
    s.put_snapshot(7, b"seven").map_err(store_err(C))?;
    let latest = s.latest_snapshot().map_err(store_err(C))?;
    ensure(C, latest == Some((9, b"nine".to_vec())), || format!("latest is {latest:?}"))?;
    s.prune_snapshots_before(7).map_err(store_err(C))?;
    let kept = s.snapshot_seqs().map_err(store_err(C))?;
    ensure(C, kept == vec![7, 9], || format!("after pruning before 7: {kept:?}"))
}

/// Values beyond one SQLite row (2 MB in a Durable Object) must still round-trip.
fn large_values<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "large_values";
    let recs = records(genesis(), 1, 1_500_000);
    s.append(&batch(0, recs.clone())).map_err(commit_err(C))?;
    let got = s.read(1, 1).map_err(store_err(C))?;
    ensure(C, got == recs, || "a 1.5 MB record did not round-trip".into())?;
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    s.put_snapshot(1, &big).map_err(store_err(C))?;
    let latest = s.latest_snapshot().map_err(store_err(C))?;
    let digest = |b: &[u8]| -> Hash { chain::sha256(b) };
    ensure(C, latest.as_ref().map(|(q, b)| (*q, digest(b))) == Some((1, digest(&big))), || {
        "a 5 MB snapshot did not round-trip".into()
    })
}

fn many_records<S: LogStore>(s: &mut S) -> Result<(), Failure> {
    const C: &str = "many_records";
    let mut head = genesis();
    let mut all = Vec::new();
    for _ in 0..10 {
        let recs = records(head, 200, 40);
        s.append(&batch(head.seq, recs.clone())).map_err(commit_err(C))?;
        head = Head { seq: recs[199].seq, hash: recs[199].hash };
        all.extend(recs);
    }
    let mut got = Vec::new();
    let mut from = 1;
    loop {
        let page = s.read(from, 333).map_err(store_err(C))?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        got.extend(page);
    }
    ensure(C, got == all, || {
        format!("paged read of 2000 records gave {} records or different ones", got.len())
    })
}
