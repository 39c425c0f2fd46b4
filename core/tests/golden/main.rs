//! Golden fixtures of format v1 (`schemas/fixtures/v1/`).
//!
//! The fixtures pin every persisted byte format and the JSON renderings: if the code would
//! encode or render anything differently, `fixtures_match_the_code` fails. The other tests read
//! the checked-in files back the way an independent reader would (decode, re-encode, verify the
//! chain, the snapshots and the segment), so old files keep being readable.
//!
//! After an intended change (a new format version, a new fixture), regenerate with
//! `MOLTLOG_BLESS=1 cargo test -p moltlog-core --test golden` and review the diff. Never bless to
//! make a v1 fixture "pass": a changed v1 byte means stored logs no longer verify.

mod bodies;
mod generate;
mod records;
mod session;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use moltlog_core::chain::{self, Hash, to_hex};
use moltlog_core::codec;
use moltlog_core::record::{self, FramedRecord};
use moltlog_core::snapshot::{self, Compression};
use moltlog_core::verify::Verifier;
use moltlog_core::{EventBody, EventHeader, SessionState, dto, segment};
use serde_json::Value;

/// The fixture session's key.
pub const SESSION_KEY: &str = "agent:main:telegram:chat:42";
/// 2026-01-01T00:00:00Z: every fixture time is an offset from it.
pub const T0: u64 = 1_767_225_600_000;

/// The chain record whose bytes FORMAT.md breaks down field by field.
const WORKED_EXAMPLE_SEQ: u64 = 4;

fn blessing() -> bool {
    std::env::var("MOLTLOG_BLESS").is_ok_and(|v| v == "1")
}

/// `schemas/fixtures/v1`, rewritten from the code first when blessing (once, before any test
/// reads it).
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/fixtures/v1");
        if blessing() {
            bless(&dir, &generate::all());
        }
        dir
    })
}

fn bless(dir: &Path, files: &generate::Files) {
    for stale in list(dir).into_iter().filter(|p| !files.contains_key(p)) {
        std::fs::remove_file(dir.join(stale)).expect("remove stale fixture");
    }
    for (path, bytes) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create fixture dir");
        std::fs::write(path, bytes).expect("write fixture");
    }
}

/// Every file under `dir`, as paths relative to it with `/` separators.
fn list(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("read fixture dir").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                out.push(
                    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("fixture {rel} is not JSON: {e}"))
}

fn hash_of(v: &Value) -> Hash {
    chain::from_hex(v.as_str().expect("hex string")).expect("64 hex digits")
}

/// Decodes stored bytes and checks that encoding the value again gives the very same bytes.
fn round_trip<T>(rel: &str) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let bytes = read(rel);
    let value: T = codec::decode(&bytes).unwrap_or_else(|e| panic!("{rel} does not decode: {e}"));
    assert!(codec::encode(&value) == bytes, "{rel}: re-encoding the decoded value gives other bytes");
    value
}

#[test]
fn fixtures_match_the_code() {
    let dir = fixtures();
    let expected = generate::all();
    let on_disk = list(dir);
    let mut problems = Vec::new();
    for (path, bytes) in &expected {
        match std::fs::read(dir.join(path)) {
            Err(_) => problems.push(format!("missing: {path}")),
            Ok(found) if found != *bytes => problems.push(format!("differs: {path}")),
            Ok(_) => {}
        }
    }
    problems.extend(on_disk.iter().filter(|p| !expected.contains_key(*p)).map(|p| format!("stale: {p}")));
    assert!(
        problems.is_empty(),
        "format v1 fixtures no longer match the code (an encoding or rendering changed):\n  {}\n\
         If and only if the change is intended, regenerate with \
         `MOLTLOG_BLESS=1 cargo test -p moltlog-core --test golden` and update schemas/FORMAT.md.",
        problems.join("\n  ")
    );
}

#[test]
fn standalone_records_decode_check_and_render() {
    let manifest = read_json("manifest.json");
    let genesis = chain::genesis(SESSION_KEY);
    let records = manifest["records"].as_array().expect("records");
    assert!(records.len() >= 20, "every kind and variant has a standalone record");
    for r in records {
        let stem = format!("records/{}", r["name"].as_str().expect("name"));
        let header: EventHeader = round_trip(&format!("{stem}.header.bin"));
        let body: EventBody = round_trip(&format!("{stem}.body.bin"));
        let (header_bytes, body_bytes) =
            (read(&format!("{stem}.header.bin")), read(&format!("{stem}.body.bin")));
        let redacted = r["redacted"].as_bool().expect("redacted flag");
        let hash = hash_of(&r["hash"]);
        let framed = FramedRecord { header: &header_bytes, hash: &hash, redacted, body: &body_bytes };
        let checked = record::check(&genesis, 1, 0, &framed).unwrap_or_else(|p| panic!("{stem}: {p}"));
        assert_eq!((checked.header, checked.body), (header.clone(), body.clone()), "{stem}");
        assert_eq!(header.kind.name(), r["kind"], "{stem}");
        if redacted {
            assert_ne!(header.body_sha256, header.skeleton_sha256, "{stem}: a redacted body had content");
            assert!(!body.has_content(), "{stem}");
        }
        let rendered = dto::event_json(&header, &hash, &body, redacted).to_value_lossy().unwrap();
        assert_eq!(rendered, read_json(&format!("{stem}.event.json")), "{stem}: rendering");
    }
}

/// Reads the chain files back and verifies them from genesis.
fn verified_chain() -> (Verifier, Vec<Value>) {
    let manifest = read_json("manifest.json");
    let chain = manifest["chain"]["records"].as_array().expect("chain records").clone();
    let mut verifier = Verifier::new(SESSION_KEY);
    for r in &chain {
        let seq = r["seq"].as_u64().expect("seq");
        let stem = format!("chain/{seq:04}");
        let _: EventHeader = round_trip(&format!("{stem}.header.bin"));
        let _: EventBody = round_trip(&format!("{stem}.body.bin"));
        let (header, body) = (read(&format!("{stem}.header.bin")), read(&format!("{stem}.body.bin")));
        let hash = hash_of(&r["hash"]);
        let redacted = r["redacted"].as_bool().expect("redacted flag");
        verifier
            .push(&FramedRecord { header: &header, hash: &hash, redacted, body: &body })
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let checked = {
            let h: EventHeader = codec::decode(&header).expect("decoded above");
            let b: EventBody = codec::decode(&body).expect("decoded above");
            dto::event_json(&h, &hash, &b, redacted).to_value_lossy().unwrap()
        };
        assert_eq!(checked, read_json(&format!("{stem}.event.json")), "{stem}: rendering");
    }
    (verifier, chain)
}

#[test]
fn chain_verifies_from_genesis() {
    let manifest = read_json("manifest.json");
    let (verifier, chain) = verified_chain();
    let kinds: std::collections::BTreeSet<&str> = chain.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds.len(), moltlog_core::EventKind::ALL.len(), "the chain covers every kind");
    let report = verifier.finish().expect("chain verifies");
    assert_eq!(report.head.seq, manifest["chain"]["head"]["seq"].as_u64().expect("head seq"));
    assert_eq!(report.head.hash, hash_of(&manifest["chain"]["head"]["hash"]));
    assert_eq!(report.redacted, vec![3], "seq 3 is stored redacted");
    assert!(report.not_erased.is_empty());
    let state_bytes = read("state.bin");
    let state = SessionState::decode(&state_bytes).expect("state.bin decodes");
    assert!(state.encode() == state_bytes, "state.bin: re-encoding the decoded state gives other bytes");
    assert!(report.state == state, "replaying the chain gives state.bin");
    assert_eq!(dto::state_json(&state).to_value_lossy().unwrap(), read_json("state.json"));
    for b in manifest["chain"]["blobs"].as_array().expect("blobs") {
        let bytes = read(b["file"].as_str().expect("file"));
        assert_eq!(to_hex(&chain::sha256(&bytes)), b["sha256"], "blob content matches its address");
    }
}

#[test]
fn snapshots_decode_and_match_the_replayed_state() {
    let (mut verifier, _) = verified_chain();
    let state_bytes = read("state.bin");
    for (file, compression) in
        [("snapshot.bin", Compression::None), ("snapshot-deflate.bin", Compression::Deflate)]
    {
        let bytes = read(file);
        let snap = snapshot::decode(&bytes, SESSION_KEY).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(snap.header.compression, compression, "{file}");
        assert_eq!(snapshot::decode_header(&bytes).expect("header decodes"), snap.header);
        assert!(snap.state_bytes == state_bytes, "{file}: state bytes differ from state.bin");
        verifier.check_snapshot(&snap).unwrap_or_else(|e| panic!("{file}: {e}"));
        // The uncompressed form is fully ours and must re-encode byte for byte. The DEFLATE
        // stream is the compressor's choice: readers must only inflate it, never compare it.
        if compression == Compression::None {
            let again = snapshot::encode(&snap.state, snap.header.created_ms, compression);
            assert!(again == bytes, "{file}: re-encoding differs");
        }
    }
}

#[test]
fn bundles_read_back_and_a_failed_one_says_why() {
    use moltlog_core::bundle::{self, BundleError, Section};
    let manifest = read_json("manifest.json");
    let complete = read("bundle.bin");
    let sections = bundle::read(&complete).expect("bundle.bin is a complete bundle");
    let Section::Manifest(m) = &sections[0] else { panic!("the manifest comes first") };
    assert_eq!((m.session_key.as_str(), m.created_ms), (SESSION_KEY, generate::BUNDLE_CREATED_MS));
    assert_eq!(sections[1], Section::Segment(&read("segment.bin")));
    let blobs = manifest["chain"]["blobs"].as_array().expect("blobs");
    assert_eq!(sections.len(), 2 + blobs.len());
    let first_blob = hash_of(&blobs[0]["sha256"]);
    assert!(matches!(sections[2], Section::Blob { sha256, .. } if sha256 == first_blob));
    let failed = read("bundle-failed.bin");
    assert_eq!(
        bundle::read(&failed),
        Err(BundleError::Failed(generate::bundle_failure_message(&first_blob))),
        "bundle-failed.bin ends in the failure trailer"
    );
}

#[test]
fn segment_verifies_standalone() {
    let manifest = read_json("manifest.json");
    let bytes = read("segment.bin");
    let mut frames = Vec::new();
    let verified = segment::verify(&bytes, SESSION_KEY, |checked, frame| {
        frames.push(frame.to_stored(checked.header.seq));
    })
    .unwrap_or_else(|e| panic!("segment.bin: {e}"));
    let h = &verified.header;
    assert_eq!((h.first_seq, h.last_seq, h.count), (1, frames.len() as u64, frames.len() as u64));
    assert_eq!(h.prev_hash, chain::genesis(SESSION_KEY));
    assert_eq!(h.last_hash, hash_of(&manifest["chain"]["head"]["hash"]));
    for f in &frames {
        let stem = format!("chain/{:04}", f.seq);
        assert!(f.header == read(&format!("{stem}.header.bin")), "{stem}: segment header bytes");
        assert!(f.body == read(&format!("{stem}.body.bin")), "{stem}: segment body bytes");
    }
    let again = segment::encode(SESSION_KEY, h.prev_hash, &frames, h.created_ms);
    assert!(again == bytes, "segment.bin: re-encoding differs");
    assert_eq!(
        manifest["segment"]["object_key"],
        segment::object_key(SESSION_KEY, h.first_seq, h.last_seq, 0)
    );
}

#[test]
fn format_md_worked_example_is_a_real_fixture() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/FORMAT.md");
    let doc = std::fs::read_to_string(&doc_path).expect("schemas/FORMAT.md exists");
    let squashed: String = doc.chars().filter(|c| !c.is_whitespace()).collect();
    for part in ["header", "body"] {
        let rel = format!("chain/{WORKED_EXAMPLE_SEQ:04}.{part}.bin");
        let hex = hex::encode(read(&rel));
        assert!(squashed.contains(&hex), "FORMAT.md's worked example no longer shows {rel}:\n{hex}");
    }
}
