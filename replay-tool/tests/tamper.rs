//! The tamper suite: copies of a clean, redacted bundle, each damaged one way, must fail
//! verification (exit status 1) at the right seq, saying what is wrong; the clean one passes and
//! lists its redacted seqs as redacted, not as tampering.
//!
//! The bundles are made through core's own engine (`synth`), with redactions by an operator: the
//! Worker does not let a client append as an operator until access control lands, so redacted
//! logs from a real Worker are covered by tests/e2e_replay.rs only once it does.

mod support;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use moltlog_core::codec;
use moltlog_core::record::{self, StoredRecord};
use moltlog_core::segment::{self, SegmentReader};
use moltlog_replay::synth::{Built, Synth};
use support::*;

/// The clean bundle (built once) and a second session's, to steal snapshots from.
fn clean_built() -> &'static (tempfile::TempDir, Built) {
    static DIR: OnceLock<(tempfile::TempDir, Built)> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let built = bundle(d.path(), KEY, &standard());
        assert_eq!(built.redacted.len(), 2, "{built:?}");
        (d, built)
    })
}

fn clean() -> &'static Path {
    clean_built().0.path()
}

fn built() -> &'static Built {
    &clean_built().1
}

fn other_session() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        bundle(d.path(), "agent:main:other", &Synth { seed: 7, ..standard() });
        d
    })
    .path()
}

fn copy() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(clean(), d.path());
    d
}

/// Verifies `dir`, expecting a failure at `seq` of `kind`; returns the failure JSON.
fn fails(dir: &Path, seq: u64, kind: &str) -> serde_json::Value {
    let r = replay(&["verify", p(dir), "--json"]);
    assert_eq!(r.code, 1, "expected exit 1, got {}:\n{}\n{}", r.code, r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["ok"], false);
    let f = j["failure"].clone();
    assert_eq!((f["seq"].as_u64(), f["kind"].as_str()), (Some(seq), Some(kind)), "{f:#}");
    f
}

fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).unwrap();
    f(&mut bytes);
    fs::write(path, bytes).unwrap();
}

/// The records of a segment file, and its header's prev hash and creation time.
fn records(path: &Path) -> (Vec<StoredRecord>, moltlog_core::Hash, u64) {
    let bytes = fs::read(path).unwrap();
    let mut r = SegmentReader::open(&bytes).unwrap();
    let (prev, created) = (r.header.prev_hash, r.header.created_ms);
    let mut out = Vec::new();
    while let Some(f) = r.next_frame() {
        let (seq, f) = f.unwrap();
        out.push(f.to_stored(seq));
    }
    (out, prev, created)
}

#[test]
fn the_clean_bundle_verifies_and_lists_its_redactions() {
    let r = replay(&["verify", p(clean()), "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["head"]["seq"], built().head.seq);
    assert_eq!(j["redacted"], serde_json::json!(built().redacted));
    let snaps = snapshot_seqs(clean(), KEY);
    assert!(snaps.len() >= 3, "{snaps:?}");
    assert_eq!(j["snapshots"]["checked"], serde_json::json!(snaps));
    let human = replay(&["verify", p(clean())]);
    let listed = format!("redacted  seqs {}, {}", built().redacted[0], built().redacted[1]);
    assert!(human.stdout.contains(&listed), "{}", human.stdout);
    assert!(human.stdout.contains("OK"), "{}", human.stdout);
}

#[test]
fn a_flipped_body_byte_is_caught_at_its_seq() {
    let d = copy();
    let seg = segment_holding(d.path(), KEY, 1000);
    rewrite(&seg, |b| {
        let f = frame(b, 1000);
        b[f.body.start + 5] ^= 0x01;
    });
    let f = fails(d.path(), 1000, "body_digest");
    assert!(f["object"].as_str().unwrap().ends_with(".seg"));
    assert_ne!(f["expected"], f["actual"]);
}

#[test]
fn a_flipped_header_byte_breaks_the_chain_at_its_seq() {
    let d = copy();
    let seg = segment_holding(d.path(), KEY, 801);
    rewrite(&seg, |b| {
        let f = frame(b, 801);
        let last = f.header.end - 1; // the last byte of skeleton_sha256
        b[last] ^= 0x80;
    });
    fails(d.path(), 801, "broken_link");
}

#[test]
fn a_dropped_segment_is_reported_at_its_first_seq() {
    let d = copy();
    let seg = segment_holding(d.path(), KEY, 900);
    let (first, _, _) = segment::parse_object_key(seg.file_name().unwrap().to_str().unwrap()).unwrap();
    fs::remove_file(&seg).unwrap();
    let f = fails(d.path(), first, "missing_records");
    assert_eq!(f["expected"], format!("seq {first}"));
}

#[test]
fn two_reordered_events_are_caught_even_in_a_resealed_segment() {
    let d = copy();
    let seg = segment_holding(d.path(), KEY, 1500);
    let (mut recs, prev, created) = records(&seg);
    let i = recs.iter().position(|r| r.seq == 1500).unwrap();
    recs.swap(i, i + 1);
    // An attacker who re-seals the file: every record keeps its own bytes, the trailer is new.
    assert_eq!(recs[i].seq, 1501, "seqs 1500 and 1501 share a segment");
    fs::write(&seg, segment::encode(KEY, prev, &recs, created)).unwrap();
    let f = fails(d.path(), 1500, "missing_records");
    assert!(f["message"].as_str().unwrap().contains("found seq 1501"), "{f:#}");
}

#[test]
fn a_truncated_tail_is_caught() {
    // Cut short inside the last record: that record is named.
    let d = copy();
    let last = segment_files(d.path(), KEY).pop().unwrap();
    let (recs, _, _) = records(&last);
    let last_seq = recs.last().unwrap().seq;
    rewrite(&last, |b| b.truncate(b.len() - 40));
    fails(d.path(), last_seq, "frame_undecodable");

    // The last segment gone: the bundle no longer reaches the head it was pulled at.
    let d = copy();
    let last = segment_files(d.path(), KEY).pop().unwrap();
    let (recs, _, _) = records(&last);
    fs::remove_file(&last).unwrap();
    let f = fails(d.path(), recs[0].seq, "head");
    assert!(f["message"].as_str().unwrap().contains("records are missing"), "{f:#}");
}

#[test]
fn a_snapshot_from_another_session_is_caught_at_its_seq() {
    let d = copy();
    let seq = snapshot_seqs(d.path(), KEY)[1];
    let name = format!("{seq:020}.snap");
    let their_seq = snapshot_seqs(other_session(), "agent:main:other")[1];
    let theirs =
        other_session().join("sessions/agent:main:other/snapshots").join(format!("{their_seq:020}.snap"));
    let ours = d.path().join("sessions").join(KEY).join("snapshots").join(name);
    fs::copy(theirs, ours).unwrap();
    let f = fails(d.path(), seq, "snapshot_mismatch");
    assert!(f["message"].as_str().unwrap().contains("agent:main:other"), "{f:#}");
}

#[test]
fn an_edited_header_of_a_redacted_event_breaks_the_chain() {
    let d = copy();
    let target = built().redacted[1];
    let seg = segment_holding(d.path(), KEY, target);
    rewrite(&seg, |b| {
        let f = frame(b, target);
        assert!(f.redacted, "seq {target} is stored redacted");
        // body_len sits just before the two digests; a redacted record's length is not checked
        // against its body, so only the chain can catch an edit.
        let body_len_last = f.header.end - 65;
        b[body_len_last] ^= 0x01;
    });
    fails(d.path(), target, "broken_link");
}

#[test]
fn a_damaged_skeleton_is_caught_and_an_unauthorised_redaction_is_tampering() {
    let d = copy();
    let target = built().redacted[0];
    let seg = segment_holding(d.path(), KEY, target);
    rewrite(&seg, |b| {
        let f = frame(b, target);
        b[f.body.end - 1] ^= 0x01;
    });
    fails(d.path(), target, "redacted_body_digest");

    // A body swapped for its skeleton with no redaction event naming it: a tool call's input,
    // say, erased to hide what ran.
    let d = copy();
    let seg = segment_holding(d.path(), KEY, 40);
    let (mut recs, prev, created) = records(&seg);
    let r = recs
        .iter_mut()
        .find(|r| r.seq >= 40 && r.decode_header().unwrap().kind == moltlog_core::EventKind::ToolCall)
        .unwrap();
    let seq = r.seq;
    r.body = record::skeleton_bytes(&codec::decode(&r.body).unwrap());
    r.redacted = true;
    fs::write(&seg, segment::encode(KEY, prev, &recs, created)).unwrap();
    fails(d.path(), seq, "unauthorized_redaction");
}

#[test]
fn a_segment_of_another_session_is_refused() {
    let d = copy();
    let ours = segment_holding(d.path(), KEY, 401);
    let theirs = segment_holding(other_session(), "agent:main:other", 401);
    fs::copy(theirs, &ours).unwrap();
    fails(d.path(), 401, "wrong_session");
}

#[test]
fn a_snapshot_taken_before_a_redaction_is_stale_not_tampered() {
    use moltlog_core::engine::{AppendRequest, Engine, Limits, Now};
    use moltlog_core::event::Actor;
    use moltlog_core::key::SessionKey;
    use moltlog_core::sample;
    use moltlog_core::store::LogStore;
    use moltlog_replay::file_store::FileStore;
    use moltlog_replay::layout::{HeadJson, Manifest};

    // R2 can hold such a snapshot for a moment: the Worker deletes it after the redaction.
    let d = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(d.path(), KEY).unwrap();
    let mut engine = Engine::new(SessionKey::parse(KEY).unwrap(), Limits::default());
    let now = |i: u64| Now { now_ms: 1_767_225_600_000 + i, entropy: u128::from(i) };
    for i in 0..10 {
        engine
            .append(&mut store, AppendRequest::one(Actor::Runtime, sample::user(&format!("m{i}"))), now(i))
            .unwrap();
    }
    let before = engine.snapshot(1);
    engine
        .append(&mut store, AppendRequest::one(Actor::Operator, sample::redaction(3, "pii")), now(11))
        .unwrap();
    engine.append(&mut store, AppendRequest::one(Actor::Runtime, sample::user("after")), now(12)).unwrap();
    store.put_snapshot(12, &engine.snapshot(2)).unwrap();
    store.put_snapshot(10, &before).unwrap();
    let mut m = Manifest::new(KEY, "bundle", "test");
    m.head = Some(HeadJson::from_head(engine.head()));
    m.write(d.path()).unwrap();

    let r = replay(&["verify", p(d.path()), "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["snapshots"]["stale"], serde_json::json!([10]));
    assert_eq!(j["snapshots"]["checked"], serde_json::json!([12]));
    assert_eq!(j["redacted"], serde_json::json!([3]));
}

#[test]
fn an_intact_snapshot_of_another_state_layout_is_unreadable_not_tampered() {
    use moltlog_core::chain;
    use moltlog_core::snapshot::{self, Compression};

    // What a snapshot written by another moltlog version looks like to this one: its framing and
    // digests hold, its state does not decode. Snapshots are caches: not a finding about the log.
    let d = copy();
    let seq = snapshot_seqs(d.path(), KEY)[0];
    let path = d.path().join("sessions").join(KEY).join("snapshots").join(format!("{seq:020}.snap"));
    let mut header = snapshot::decode_header(&fs::read(&path).unwrap()).unwrap();
    let state = vec![0x01, 0x02, 0xff, 0xfe]; // a session key that is not UTF-8
    header.state_sha256 = chain::sha256(&state);
    header.state_len = state.len() as u64;
    header.compression = Compression::None;
    let h = codec::encode(&header);
    let mut bytes = b"MOLTSNAP\x01".to_vec();
    bytes.extend((h.len() as u32).to_le_bytes());
    bytes.extend(&h);
    bytes.extend((state.len() as u32).to_le_bytes());
    bytes.extend(&state);
    let digest = chain::sha256(&bytes);
    bytes.extend(digest);
    fs::write(&path, &bytes).unwrap();
    let r = replay(&["verify", p(d.path()), "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["snapshots"]["unreadable"], serde_json::json!([seq]));

    // The same file with one byte flipped is damaged: that is a finding.
    let last = bytes.len() - 40;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    fails(d.path(), seq, "snapshot_mismatch");
}
