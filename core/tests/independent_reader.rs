//! schemas/FORMAT.md is enough to read what moltlog stores: `schemas/reader/independent_reader.py`,
//! written from the document alone (Python's standard library, no moltlog code), decodes and
//! verifies every golden fixture, and rejects a fixture set with one flipped byte.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("core/ is in the repo").to_path_buf()
}

fn run_reader(fixtures: &Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(repo().join("schemas/reader/independent_reader.py"))
        .arg(fixtures)
        .output()
        .expect("python3 runs (the independent reader needs it; .ci/run installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_document_reads_the_fixtures() {
    let (ok, text) = run_reader(&repo().join("schemas/fixtures/v1"));
    assert!(ok, "the independent reader disagrees with the fixtures:\n{text}");
    assert!(text.contains("ok: a 13-record chain"), "{text}");
}

#[test]
fn the_independent_reader_catches_a_flipped_byte() {
    let dir = std::env::temp_dir().join(format!("moltlog-reader-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&repo().join("schemas/fixtures/v1"), &dir);
    // Flip a byte inside a stored header and keep the manifest's file digests in step, so that
    // only the format's own checks (the chain) can notice.
    let rel = "chain/0007.header.bin";
    let mut bytes = std::fs::read(dir.join(rel)).unwrap();
    bytes[3] ^= 0x01;
    std::fs::write(dir.join(rel), &bytes).unwrap();
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["files"][rel]["sha256"] = hex::encode(moltlog_core::chain::sha256(&bytes)).into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let (ok, text) = run_reader(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "a flipped header byte went unnoticed:\n{text}");
    assert!(text.contains("chain/0007"), "the failure names the record: {text}");
}
