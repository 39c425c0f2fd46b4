//! Turns the fixture cases and the fixture session into files: binary encodings as `.bin`,
//! renderings as pretty `.json`, and `manifest.json` describing them.

use std::collections::BTreeMap;

use moltlog_core::bundle::{self, Tag};
use moltlog_core::chain::{self, to_hex};
use moltlog_core::engine::blob_object_key;
use moltlog_core::snapshot::{self, Compression};
use moltlog_core::{codec, dto, segment};
use serde_json::{Value, json};

use crate::{SESSION_KEY, T0, records, session};

/// When the fixture snapshots and the segment say they were made.
pub const SNAPSHOT_CREATED_MS: u64 = T0 + 60_000;
pub const SEGMENT_CREATED_MS: u64 = T0 + 61_000;
/// When the fixture export bundles say they were made.
pub const BUNDLE_CREATED_MS: u64 = T0 + 62_000;

/// Relative path (under `schemas/fixtures/v1/`) to file contents.
pub type Files = BTreeMap<String, Vec<u8>>;

pub fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).expect("JSON renders");
    s.push('\n');
    s.into_bytes()
}

/// What the failed fixture export says went wrong.
pub fn bundle_failure_message(sha256: &chain::Hash) -> String {
    format!("blob {} is missing from R2", to_hex(sha256))
}

/// The R2 key of a snapshot.
pub fn snapshot_object_key(session_key: &str, seq: u64) -> String {
    segment::snapshot_object_key(session_key, seq)
}

/// Every fixture file, generated from core code alone.
pub fn all() -> Files {
    let mut files = Files::new();
    let mut manifest_records = Vec::new();
    for s in records::sealed() {
        let stem = format!("records/{}", s.case.name);
        let event = dto::event_json(&s.header, &s.record.hash, &s.stored_body, s.record.redacted)
            .to_value_lossy()
            .unwrap();
        files.insert(format!("{stem}.header.bin"), s.record.header.clone());
        files.insert(format!("{stem}.body.bin"), s.record.body.clone());
        files.insert(format!("{stem}.event.json"), pretty(&event));
        manifest_records.push(json!({
            "name": s.case.name,
            "seq": s.header.seq,
            "kind": s.header.kind.name(),
            "actor": s.header.actor.name(),
            "redacted": s.record.redacted,
            "hash": to_hex(&s.record.hash),
        }));
    }

    let session = session::build();
    let mut manifest_chain = Vec::new();
    for r in &session.records {
        let stem = format!("chain/{:04}", r.seq);
        let header = r.decode_header().expect("fixture header decodes");
        let body = r.decode_body().expect("fixture body decodes");
        files.insert(format!("{stem}.header.bin"), r.header.clone());
        files.insert(format!("{stem}.body.bin"), r.body.clone());
        files.insert(
            format!("{stem}.event.json"),
            pretty(&dto::event_json(&header, &r.hash, &body, r.redacted).to_value_lossy().unwrap()),
        );
        manifest_chain.push(json!({
            "seq": r.seq,
            "kind": header.kind.name(),
            "actor": header.actor.name(),
            "redacted": r.redacted,
            "hash": to_hex(&r.hash),
        }));
    }
    let mut manifest_blobs = Vec::new();
    for b in &session.blobs {
        let file = format!("blobs/{}.bin", to_hex(&b.sha256));
        files.insert(file.clone(), b.bytes.clone());
        manifest_blobs.push(json!({
            "sha256": to_hex(&b.sha256),
            "len": b.bytes.len(),
            "content_type": b.content_type,
            "object_key": blob_object_key(&b.sha256),
            "file": file,
        }));
    }

    let state = &session.state;
    files.insert("state.bin".into(), state.encode());
    files.insert("state.json".into(), pretty(&dto::state_json(state).to_value_lossy().unwrap()));
    files.insert("snapshot.bin".into(), snapshot::encode(state, SNAPSHOT_CREATED_MS, Compression::None));
    files.insert(
        "snapshot-deflate.bin".into(),
        snapshot::encode(state, SNAPSHOT_CREATED_MS, Compression::Deflate),
    );
    let genesis = chain::genesis(SESSION_KEY);
    let (first, last) = (session.records[0].seq, state.head.seq);
    files.insert(
        "segment.bin".into(),
        segment::encode(SESSION_KEY, genesis, &session.records, SEGMENT_CREATED_MS),
    );

    // Export bundles: a complete one (the segment and every blob), and one whose export failed
    // after the segment (a blob gone from R2), ending in the failure trailer instead of the end.
    let manifest_section = bundle::Manifest {
        session_key: SESSION_KEY.into(),
        head_seq: state.head.seq,
        head_hash: state.head.hash,
        archived_seq: 0,
        created_ms: BUNDLE_CREATED_MS,
    };
    let segment_bytes = files["segment.bin"].clone();
    let opening = |w: &mut bundle::Writer| {
        let mut out = w.start();
        out.extend(w.manifest(&manifest_section));
        out.extend(w.section(Tag::Segment, segment_bytes.clone()));
        out
    };
    let mut w = bundle::Writer::new();
    let mut complete = opening(&mut w);
    for b in &session.blobs {
        complete.extend(w.blob_header(&b.sha256, b.bytes.len() as u64));
        complete.extend(w.content(b.bytes.clone()));
    }
    complete.extend(w.finish());
    files.insert("bundle.bin".into(), complete);
    let mut w = bundle::Writer::new();
    let mut failed = opening(&mut w);
    failed.extend(w.fail(&bundle_failure_message(&session.blobs[0].sha256)));
    files.insert("bundle-failed.bin".into(), failed);

    let checksums: BTreeMap<&String, Value> = files
        .iter()
        .map(|(path, bytes)| (path, json!({"len": bytes.len(), "sha256": to_hex(&chain::sha256(bytes))})))
        .collect();
    let manifest = json!({
        "format_version": codec::FORMAT_V1,
        "generated_by": "core/tests/golden (MOLTLOG_BLESS=1 cargo test -p moltlog-core --test golden)",
        "session_key": SESSION_KEY,
        "genesis": to_hex(&genesis),
        "records": manifest_records,
        "chain": {
            "blob_threshold_bytes": session::BLOB_THRESHOLD,
            "records": manifest_chain,
            "head": {"seq": state.head.seq, "hash": to_hex(&state.head.hash)},
            "redacted": state.redacted,
            "blobs": manifest_blobs,
        },
        "snapshot": {
            "seq": state.head.seq,
            "created_ms": SNAPSHOT_CREATED_MS,
            "object_key": snapshot_object_key(SESSION_KEY, state.head.seq),
            "files": {"snapshot.bin": "none", "snapshot-deflate.bin": "deflate"},
        },
        "segment": {
            "first_seq": first,
            "last_seq": last,
            "created_ms": SEGMENT_CREATED_MS,
            "object_key": segment::object_key(SESSION_KEY, first, last, 0),
            "file": "segment.bin",
        },
        "files": checksums,
    });
    files.insert("manifest.json".into(), pretty(&manifest));
    files
}
