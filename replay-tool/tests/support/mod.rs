//! Helpers for the command-line tests: run the real binary, build synthetic bundles, and find
//! records inside segment files to tamper with.
#![allow(dead_code)]

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;

use moltlog_core::bundle::{Manifest, Tag, Writer};
use moltlog_core::segment::{self, SegmentReader};
use moltlog_replay::layout::{self, HeadJson};
use moltlog_replay::synth::{self, Built, Synth};
use serde_json::Value;

pub const KEY: &str = "agent:main:telegram:chat:42";

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

pub fn replay(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_moltlog-replay"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run moltlog-replay");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A synthetic bundle directory of session `key`, with a manifest as `pull` writes it.
pub fn bundle(dir: &Path, key: &str, s: &Synth) -> Built {
    let built = synth::build(dir, key, s).unwrap();
    let mut m = layout::Manifest::new(key, "bundle", "synthetic");
    m.head = Some(HeadJson::from_head(built.head));
    m.write(dir).unwrap();
    built
}

/// The small redacted session most tests use: about 2400 events in segments of 400, snapshots
/// every 400, and two chat messages (near seqs 7 and 1203) redacted soon after.
pub fn standard() -> Synth {
    Synth { events: 2400, batch: 400, snapshot_every: 400, redact_near: vec![7, 1203], ..Synth::default() }
}

/// The seqs of a bundle's snapshot files.
pub fn snapshot_seqs(dir: &Path, key: &str) -> Vec<u64> {
    let mut seqs: Vec<u64> = fs::read_dir(dir.join("sessions").join(key).join("snapshots"))
        .unwrap()
        .filter_map(|e| segment::parse_snapshot_key(e.unwrap().file_name().to_str()?))
        .collect();
    seqs.sort();
    seqs
}

pub fn segments_dir(dir: &Path, key: &str) -> PathBuf {
    dir.join("sessions").join(key).join("segments")
}

/// The segment files of a bundle, in seq order (the highest generation per range).
pub fn segment_files(dir: &Path, key: &str) -> Vec<PathBuf> {
    let mut files: Vec<(u64, u32, PathBuf)> = fs::read_dir(segments_dir(dir, key))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let (f, _, g) = segment::parse_object_key(p.file_name()?.to_str()?)?;
            Some((f, g, p))
        })
        .collect();
    files.sort();
    let newest: std::collections::BTreeMap<u64, PathBuf> =
        files.into_iter().map(|(f, _, p)| (f, p)).collect();
    newest.into_values().collect()
}

/// The segment file holding `seq`.
pub fn segment_holding(dir: &Path, key: &str, seq: u64) -> PathBuf {
    segment_files(dir, key)
        .into_iter()
        .find(|p| {
            let (f, l, _) = segment::parse_object_key(p.file_name().unwrap().to_str().unwrap()).unwrap();
            (f..=l).contains(&seq)
        })
        .unwrap_or_else(|| panic!("no segment holds seq {seq}"))
}

/// Where one record sits in a segment file.
#[derive(Clone, Debug)]
pub struct Frame {
    pub seq: u64,
    pub whole: Range<usize>,
    pub header: Range<usize>,
    pub body: Range<usize>,
    pub redacted: bool,
}

pub fn frames(bytes: &[u8]) -> Vec<Frame> {
    let base = bytes.as_ptr() as usize;
    let span = |s: &[u8]| (s.as_ptr() as usize - base)..(s.as_ptr() as usize - base + s.len());
    let mut r = SegmentReader::open(bytes).unwrap();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame() {
        let (seq, f) = f.unwrap();
        let header = span(f.header);
        let body = span(f.body);
        out.push(Frame { seq, whole: header.start - 4..body.end, header, body, redacted: f.redacted });
    }
    out
}

pub fn frame(bytes: &[u8], seq: u64) -> Frame {
    frames(bytes).into_iter().find(|f| f.seq == seq).unwrap()
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Packs a bundle directory as an export bundle file, the way the Worker's export does.
pub fn export_file(dir: &Path, key: &str, out: &Path) {
    let m = layout::Manifest::read(dir).unwrap().unwrap();
    let head = m.claimed_head().unwrap();
    let mut w = Writer::new();
    let mut bytes = w.start();
    bytes.extend(w.manifest(&Manifest {
        session_key: key.into(),
        head_seq: head.seq,
        head_hash: head.hash,
        archived_seq: head.seq,
        created_ms: 1,
    }));
    let mut snaps: Vec<PathBuf> = fs::read_dir(dir.join("sessions").join(key).join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    snaps.sort();
    for s in snaps {
        bytes.extend(w.section(Tag::Snapshot, fs::read(s).unwrap()));
    }
    for s in segment_files(dir, key) {
        bytes.extend(w.section(Tag::Segment, fs::read(s).unwrap()));
    }
    bytes.extend(w.finish());
    fs::write(out, bytes).unwrap();
}
