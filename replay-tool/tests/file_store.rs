//! The bundle-directory store means what every moltlog store means: core's conformance suite,
//! plus what only a store on disk can show (reopening, and recovering from an interrupted batch).

use moltlog_core::engine::{AppendRequest, Engine, Limits, Now};
use moltlog_core::event::Actor;
use moltlog_core::key::SessionKey;
use moltlog_core::sample;
use moltlog_core::store::{LogStore, conformance};
use moltlog_replay::file_store::FileStore;

#[test]
fn passes_the_store_conformance_suite() {
    let mut dirs = Vec::new();
    let passed = conformance::run(&mut || {
        let d = tempfile::tempdir().unwrap();
        let s = FileStore::open(d.path(), "conformance:session").unwrap();
        dirs.push(d);
        s
    })
    .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(passed, conformance::CHECKS);
}

fn now(i: u64) -> Now {
    Now { now_ms: 1_767_225_600_000 + i * 1000, entropy: u128::from(i) * 7919 }
}

#[test]
fn a_reopened_store_rebuilds_the_same_engine_and_keeps_keys() {
    let d = tempfile::tempdir().unwrap();
    let key = SessionKey::parse("agent:main:file-store").unwrap();
    let mut store = FileStore::open(d.path(), key.as_str()).unwrap();
    let mut engine = Engine::new(key.clone(), Limits::default());
    for i in 0..5 {
        let mut req = AppendRequest::one(Actor::Runtime, sample::user(&format!("turn {i}")));
        req.idempotency_key = Some(format!("turn-{i}"));
        engine.append(&mut store, req, now(i)).unwrap();
    }
    store.put_snapshot(5, &engine.snapshot(9)).unwrap();
    engine
        .append(&mut store, AppendRequest::one(Actor::Operator, sample::redaction(2, "pii")), now(6))
        .unwrap();

    let reopened = FileStore::open(d.path(), key.as_str()).unwrap();
    let (rebuilt, _) = Engine::rebuild(key.clone(), &reopened, Limits::default()).unwrap();
    assert_eq!(rebuilt.state(), engine.state());
    assert!(reopened.lookup_key("turn-4").unwrap().is_some());
    assert!(reopened.read(2, 1).unwrap()[0].redacted, "the erasure survived reopening");
    assert_eq!(reopened.snapshot_seqs().unwrap(), Vec::<u64>::new(), "the snapshot held erased content");
    let segs: Vec<String> = std::fs::read_dir(d.path().join("sessions/agent:main:file-store/segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(segs.iter().any(|s| s.ends_with(".g1.seg")), "the erased segment got a new generation: {segs:?}");

    // A retry after reopening is recognised as the same append.
    let mut engine = rebuilt;
    let mut store = reopened;
    let mut req = AppendRequest::one(Actor::Runtime, sample::user("turn 4"));
    req.idempotency_key = Some("turn-4".into());
    let (outcome, _) = engine.append(&mut store, req, now(7)).unwrap();
    assert!(outcome.duplicate);
}

#[test]
fn keys_of_a_batch_that_never_committed_are_dropped_on_open() {
    let d = tempfile::tempdir().unwrap();
    let key = "agent:main:crash";
    let mut store = FileStore::open(d.path(), key).unwrap();
    let mut engine = Engine::new(SessionKey::parse(key).unwrap(), Limits::default());
    engine.append(&mut store, AppendRequest::one(Actor::Runtime, sample::user("a")), now(1)).unwrap();
    // What a crash between writing the keys and renaming the segment leaves behind.
    let keys = d.path().join("sessions").join(key).join("store/idempotency.jsonl");
    std::fs::create_dir_all(keys.parent().unwrap()).unwrap();
    let ghost = format!(
        "{{\"key\":\"ghost\",\"first_seq\":2,\"last_seq\":2,\"last_hash\":\"{0}\",\"fingerprint\":\"{0}\"}}\n",
        "00".repeat(32)
    );
    std::fs::write(&keys, ghost).unwrap();
    let reopened = FileStore::open(d.path(), key).unwrap();
    assert_eq!(reopened.lookup_key("ghost").unwrap(), None);
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), "");
}
