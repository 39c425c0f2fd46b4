//! Reading R2 objects from a wrangler state directory, on a layout made the way miniflare lays
//! it out (the end-to-end test reads a real one): the SQLite index of a bucket's objects, the
//! blob files, a multipart object, another bucket beside it.

use std::fs;
use std::path::Path;

use moltlog_replay::objects::ObjectSource;
use moltlog_replay::source::state_dir::StateDirSource;
use rusqlite::Connection;

fn index(path: &Path, objects: &[(&str, Option<&str>, i64)]) -> Connection {
    let db = Connection::open(path).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE _mf_objects (key TEXT PRIMARY KEY, blob_id TEXT, version TEXT NOT NULL, size INTEGER NOT NULL,
           etag TEXT NOT NULL, uploaded INTEGER NOT NULL, checksums TEXT NOT NULL, http_metadata TEXT NOT NULL,
           custom_metadata TEXT NOT NULL);
         CREATE TABLE _mf_multipart_parts (upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, blob_id TEXT NOT NULL,
           size INTEGER NOT NULL, etag TEXT NOT NULL, checksum_md5 TEXT NOT NULL, object_key TEXT,
           PRIMARY KEY (upload_id, part_number));",
    )
    .unwrap();
    for (key, blob, size) in objects {
        db.execute(
            "INSERT INTO _mf_objects VALUES (?1, ?2, 'v', ?3, 'e', 0, '{}', '{}', '{}')",
            rusqlite::params![key, blob, size],
        )
        .unwrap();
    }
    db
}

#[test]
fn lists_and_reads_one_buckets_objects() {
    let state = tempfile::tempdir().unwrap();
    let r2 = state.path().join("v3/r2");
    let idx = r2.join("miniflare-R2BucketObject");
    fs::create_dir_all(&idx).unwrap();
    fs::create_dir_all(r2.join("moltlog-archive/blobs")).unwrap();
    fs::create_dir_all(r2.join("other-bucket/blobs")).unwrap();
    fs::write(r2.join("moltlog-archive/blobs/b1"), b"segment one").unwrap();
    fs::write(r2.join("moltlog-archive/blobs/b2"), b"snap").unwrap();
    fs::write(r2.join("moltlog-archive/blobs/p1"), b"multi").unwrap();
    fs::write(r2.join("moltlog-archive/blobs/p2"), b"part").unwrap();
    fs::write(r2.join("other-bucket/blobs/x1"), b"not ours").unwrap();
    // Another bucket's index comes first by name: it must not be taken for ours.
    let _other = index(&idx.join("0000.sqlite"), &[("sessions/k/segments/x.seg", Some("x1"), 8)]);
    let ours = index(
        &idx.join("ffff.sqlite"),
        &[
            ("sessions/k/segments/00000000000000000001-00000000000000000002.seg", Some("b1"), 11),
            ("sessions/k/snapshots/00000000000000000002.snap", Some("b2"), 4),
            ("sessions/j/segments/big.seg", None, 9),
            ("blobs/sha256/aa", Some("b2"), 4),
        ],
    );
    for (n, blob) in [(1, "p1"), (2, "p2")] {
        ours.execute(
            "INSERT INTO _mf_multipart_parts VALUES ('u', ?1, ?2, 4, 'e', 'm', 'sessions/j/segments/big.seg')",
            rusqlite::params![n, blob],
        )
        .unwrap();
    }
    fs::write(idx.join("metadata.sqlite"), b"").unwrap();

    // The --persist-to directory and its v3 both work.
    for dir in [state.path().to_path_buf(), state.path().join("v3")] {
        let s = StateDirSource::open(&dir, "moltlog-archive").unwrap();
        let segs = s.list("sessions/k/segments/").unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].size, 11);
        assert_eq!(s.read(&segs[0].key).unwrap().unwrap(), b"segment one");
        assert_eq!(s.read("sessions/j/segments/big.seg").unwrap().unwrap(), b"multipart");
        assert_eq!(s.read("sessions/k/segments/none.seg").unwrap(), None);
        assert_eq!(s.sessions().unwrap(), vec!["j".to_string(), "k".to_string()]);
    }
    let e = StateDirSource::open(state.path(), "nope").err().unwrap().to_string();
    assert!(e.contains("moltlog-archive") && e.contains("--bucket"), "{e}");
    let e =
        StateDirSource::open(&state.path().join("v3/r2/moltlog-archive"), "moltlog-archive").err().unwrap();
    assert!(e.to_string().contains("--persist-to"), "{e}");
}
