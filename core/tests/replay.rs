//! Replay properties: however a session's state is rebuilt, it is byte for byte the live state.
//!
//! - snapshot + suffix: decoding a snapshot taken at any point and replaying the records after it
//!   gives the state a full replay gives, which is the state the live engine holds;
//! - redaction: replaying a store whose redacted records hold only skeletons gives exactly the
//!   live state, and the verifier accounts for every redaction.

mod common;

use proptest::prelude::*;
use proptest::sample::Index;

use common::*;
use moltlog_core::codec;
use moltlog_core::engine::{Engine, Limits};
use moltlog_core::event::EventBody;
use moltlog_core::snapshot::{self, Compression};
use moltlog_core::state::SessionState;
use moltlog_core::store::{LogStore, MemoryStore};
use moltlog_core::verify::{Verifier, VerifyReport};

fn verify_all(store: &MemoryStore) -> VerifyReport {
    let mut v = Verifier::new(SESSION);
    for r in store.records() {
        v.push(&r.into()).unwrap_or_else(|e| panic!("the engine's own log fails verification: {e}"));
    }
    v.finish().unwrap_or_else(|e| panic!("the engine's own log fails verification: {e}"))
}

/// Seqs whose content a redaction after `seq` erased (so a snapshot at `seq` still holds it).
fn erased_after(store: &MemoryStore, seq: u64) -> bool {
    store
        .records()
        .iter()
        .filter(|r| r.seq > seq)
        .any(|r| matches!(r.decode_body(), Ok(EventBody::Redaction(red)) if red.target_seq <= seq))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn snapshot_plus_suffix_equals_full_replay(ops in ops(32), at in any::<Index>(), deflate in any::<bool>()) {
        // Given a log, and the live state at some point of its history,
        let built = build(&ops);
        let live = codec::encode(built.engine.state());
        let then: &SessionState = at.get(&built.states);
        let compression = if deflate { Compression::Deflate } else { Compression::None };
        let bytes = snapshot::encode(then, T0_MS, compression);

        // when the snapshot of that state is decoded and the records after it are replayed,
        let snap = snapshot::decode(&bytes, SESSION).unwrap();
        let mut engine = Engine::from_state(session_key(), snap.state.clone(), Limits::default());
        let replayed = engine.catch_up(&built.store).unwrap();

        // then the state is byte for byte the full replay's, and the live engine's.
        let full = verify_all(&built.store);
        prop_assert_eq!(replayed, full.records - then.head.seq);
        prop_assert_eq!(codec::encode(&full.state), live.clone());
        prop_assert_eq!(codec::encode(engine.state()), live.clone());

        // So does a rebuild that finds the snapshot in the store,
        let mut store = built.store.clone();
        store.put_snapshot(then.head.seq, &bytes).unwrap();
        let (rebuilt, report) = Engine::rebuild(session_key(), &store, Limits::default()).unwrap();
        prop_assert_eq!(report.snapshot_seq, Some(then.head.seq));
        prop_assert_eq!(report.replayed, full.records - then.head.seq);
        prop_assert_eq!(codec::encode(rebuilt.state()), live);

        // and the verifier accepts the snapshot at its seq, unless a later redaction erased
        // content it holds (which is why stores drop such snapshots).
        if !erased_after(&built.store, then.head.seq) {
            let mut v = Verifier::new(SESSION);
            for r in &built.store.records()[..then.head.seq as usize] {
                v.push(&r.into()).unwrap();
            }
            v.check_snapshot(&snap).unwrap();
        }
    }

    #[test]
    fn replaying_a_redacted_store_gives_the_live_state(ops in ops(32)) {
        // Given a log in which operators redacted some records (the store keeps skeletons),
        let built = build(&ops);
        let live = built.engine.state();

        // when it is replayed by the verifier and by a rebuild,
        let report = verify_all(&built.store);
        let (rebuilt, _) = Engine::rebuild(session_key(), &built.store, Limits::default()).unwrap();

        // then both reach exactly the live state,
        prop_assert_eq!(codec::encode(&report.state), codec::encode(live));
        prop_assert_eq!(codec::encode(rebuilt.state()), codec::encode(live));

        // every redaction event's target is stored as a content-free skeleton, and the verifier
        // reports exactly those seqs as redacted, none as waiting for erasure.
        let skeletons: Vec<u64> = built.store.records().iter().filter(|r| r.redacted).map(|r| r.seq).collect();
        for r in built.store.records().iter().filter(|r| r.redacted) {
            prop_assert!(!r.decode_body().unwrap().has_content(), "seq {} still holds content", r.seq);
        }
        prop_assert_eq!(&report.redacted, &skeletons);
        prop_assert_eq!(&live.redacted, &skeletons);
        prop_assert!(report.not_erased.is_empty());
    }
}
