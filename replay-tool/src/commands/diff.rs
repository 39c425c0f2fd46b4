//! `diff A B`: where two sessions, or two points of one session, diverge.
//!
//! Both logs are verified and walked side by side (one reader thread each, records compared in
//! seq order as they come, so memory stays flat). For one session the chain hash at each seq says
//! whether everything up to it is identical; across sessions (whose chains differ from genesis)
//! events are compared by content: kind, actor, causation, idempotency key and body digest. Then
//! the two states at the ends are compared field by field.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

use anyhow::Context;
use moltlog_core::chain::{self, Hash};
use moltlog_core::dto;
use moltlog_core::record::CheckedRecord;
use moltlog_core::state::SessionState;
use serde_json::{Value, json};

use crate::archive::SessionArchive;
use crate::cli::{DiffArgs, Verdict, usage};
use crate::commands::log::line;
use crate::failure::Failure;
use crate::source::{self, SourceSpec};
use crate::time::parse_point;
use crate::ui::Ui;
use crate::walk::{self, Stop, WalkError};

/// One side of a diff, as given: `[BUNDLE][@SEQ|@TIME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Side {
    /// None: the source the flags name.
    pub bundle: Option<String>,
    pub stop: Stop,
}

impl Side {
    pub fn parse(s: &str) -> Result<Side, String> {
        if !s.is_empty() && Path::new(s).exists() {
            return Ok(Side { bundle: Some(s.to_owned()), stop: Stop::End });
        }
        match s.rsplit_once('@') {
            Some((path, point)) if parse_point(point).is_ok() => Ok(Side {
                bundle: (!path.is_empty()).then(|| path.to_owned()),
                stop: parse_point(point).expect("checked"),
            }),
            _ if s.is_empty() => Err("an empty side; give BUNDLE, BUNDLE@POINT or @POINT".into()),
            _ => Ok(Side { bundle: Some(s.to_owned()), stop: Stop::End }),
        }
    }
}

/// What a reader thread tells the comparer about each record.
struct Rec {
    seq: u64,
    hash: Hash,
    /// Kind, actor, causation, idempotency key and body digest: the same event in any session.
    content: (u8, u8, Option<u64>, Option<String>, Hash),
    line: String,
}

impl Rec {
    fn of(c: &CheckedRecord, redacted: bool) -> Rec {
        let h = &c.header;
        Rec {
            seq: h.seq,
            hash: c.hash,
            content: (h.kind as u8, h.actor as u8, h.causation, h.idempotency_key.clone(), h.body_sha256),
            line: line(c, redacted),
        }
    }
}

struct Ended {
    state: SessionState,
}

fn open_side(side: &Side, a: &DiffArgs, session: Option<&str>, ui: &Ui) -> anyhow::Result<SessionArchive> {
    let spec = match &side.bundle {
        Some(p) => SourceSpec::Bundle(p.into()),
        None => a.remote.spec()?.ok_or_else(|| {
            usage("a side without BUNDLE (like @100) needs a source: --url, --s3-endpoint or --state-dir")
        })?,
    };
    source::open_archive(&spec, session, ui, false)
}

pub fn run(a: &DiffArgs, ui: &Ui) -> anyhow::Result<Verdict> {
    let side_a = Side::parse(&a.a).map_err(|e| usage(format!("A: {e}")))?;
    let side_b = Side::parse(&a.b).map_err(|e| usage(format!("B: {e}")))?;
    // Bundles know their session; the flags' source needs --session (and --session-b for B).
    let remote_a = a.remote.session.as_deref();
    let remote_b = a.session_b.as_deref().or(remote_a);
    let session_a = if side_a.bundle.is_some() { None } else { remote_a };
    let session_b = if side_b.bundle.is_some() { a.session_b.as_deref() } else { remote_b };
    let arch_a = open_side(&side_a, a, session_a, ui).context("A")?;
    let arch_b = open_side(&side_b, a, session_b, ui).context("B")?;
    let same_session = arch_a.session_key() == arch_b.session_key();

    let (tx_a, rx_a) = mpsc::sync_channel::<Rec>(4096);
    let (tx_b, rx_b) = mpsc::sync_channel::<Rec>(4096);
    let hidden = indicatif::ProgressBar::hidden();
    let run_side =
        |arch: &SessionArchive, stop: Stop, tx: mpsc::SyncSender<Rec>| -> Result<Ended, WalkError> {
            let mut send = |c: &CheckedRecord, redacted: bool| {
                // A closed channel means the comparer stopped early; nothing more to send.
                let _ = tx.send(Rec::of(c, redacted));
                Ok(())
            };
            let w = walk::walk(arch, stop, &hidden, &mut send)?;
            Ok(Ended { state: w.verifier.state().clone() })
        };
    let mut cmp = Comparison::default();
    let (end_a, end_b) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| run_side(&arch_a, side_a.stop, tx_a));
        let hb = scope.spawn(|| run_side(&arch_b, side_b.stop, tx_b));
        loop {
            let (ra, rb) = (rx_a.recv().ok(), rx_b.recv().ok());
            if ra.is_none() && rb.is_none() {
                break;
            }
            cmp.push(ra, rb, same_session);
        }
        (ha.join().expect("reader A"), hb.join().expect("reader B"))
    });
    let mut failed = false;
    for (name, end, arch) in [("A", &end_a, &arch_a), ("B", &end_b, &arch_b)] {
        if let Err(e) = end {
            match e {
                WalkError::Tampered { error, object } => {
                    eprint!("{name}: ");
                    super::print_failure(ui, &Failure::from_verify(error, object.clone()), &arch.describe());
                    failed = true;
                }
                other => anyhow::bail!("{name}: {other}"),
            }
        }
    }
    if failed {
        return Ok(Verdict::Failed);
    }
    let (sa, sb) = (&end_a.expect("checked").state, &end_b.expect("checked").state);
    let mut state_diffs = Vec::new();
    diff_json("", &state_value(sa), &state_value(sb), &mut state_diffs);
    let mut out = super::stdout();
    if a.json {
        let j = json!({
            "a": {"source": arch_a.describe(), "session_key": sa.session_key, "head": head(sa)},
            "b": {"source": arch_b.describe(), "session_key": sb.session_key, "head": head(sb)},
            "same_session": same_session,
            "identical_through": cmp.identical_through,
            "first_difference": cmp.first.as_ref().map(|(seq, la, lb)| json!({"seq": seq, "a": la, "b": lb})),
            "state_differences": state_diffs.iter().map(|(p, x, y)| json!({"path": p, "a": x, "b": y})).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        print_human(&mut out, ui, &arch_a, sa, &arch_b, sb, &cmp, &state_diffs)?;
    }
    out.flush()?;
    Ok(Verdict::Clean)
}

fn head(s: &SessionState) -> Value {
    json!({"seq": s.head.seq, "hash": chain::to_hex(&s.head.hash)})
}

/// The lockstep comparison of two record streams.
#[derive(Default)]
struct Comparison {
    /// Every seq up to here is the same event on both sides.
    identical_through: u64,
    /// The first seq that differs, with each side's line (None: that side had ended).
    first: Option<(u64, Option<String>, Option<String>)>,
}

impl Comparison {
    fn push(&mut self, a: Option<Rec>, b: Option<Rec>, same_session: bool) {
        if self.first.is_some() {
            return;
        }
        let same = match (&a, &b) {
            (Some(x), Some(y)) if same_session => x.hash == y.hash,
            (Some(x), Some(y)) => x.content == y.content,
            _ => false,
        };
        if same {
            self.identical_through = a.map_or(0, |r| r.seq);
        } else {
            let seq = a.as_ref().or(b.as_ref()).map_or(0, |r| r.seq);
            self.first = Some((seq, a.map(|r| r.line), b.map(|r| r.line)));
        }
    }
}

/// The state as a `Value` for comparison. `Value` cannot hold every stored payload (`1e400`, deep
/// nesting); such a state compares as its whole JSON text.
fn state_value(s: &SessionState) -> Value {
    let doc = dto::state_json(s);
    doc.to_value_lossy().unwrap_or_else(|_| Value::String(doc.to_string()))
}

/// Field-by-field differences between two JSON values: (path, a, b).
pub fn diff_json(path: &str, a: &Value, b: &Value, out: &mut Vec<(String, Value, Value)>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.dedup();
            let mut seen = std::collections::BTreeSet::new();
            for k in keys {
                if seen.insert(k) {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    diff_json(&p, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_json(&format!("{path}[{i}]"), p, q, out);
            }
        }
        (Value::Array(x), Value::Array(y)) => out.push((
            path.to_owned(),
            json!(format!("{} items", x.len())),
            json!(format!("{} items", y.len())),
        )),
        _ => out.push((path.to_owned(), a.clone(), b.clone())),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}…", s.chars().take(59).collect::<String>()) } else { s }
}

#[allow(clippy::too_many_arguments)]
fn print_human(
    out: &mut impl Write,
    ui: &Ui,
    arch_a: &SessionArchive,
    sa: &SessionState,
    arch_b: &SessionArchive,
    sb: &SessionState,
    cmp: &Comparison,
    state_diffs: &[(String, Value, Value)],
) -> std::io::Result<()> {
    writeln!(out, "A  {} ({}, seqs 1..={})", arch_a.describe(), sa.session_key, sa.head.seq)?;
    writeln!(out, "B  {} ({}, seqs 1..={})", arch_b.describe(), sb.session_key, sb.head.seq)?;
    let how = if sa.session_key == sb.session_key { "same chain hash" } else { "same events" };
    match &cmp.first {
        None => writeln!(out, "{} through seq {} ({how})", ui.good("identical"), cmp.identical_through)?,
        Some((seq, la, lb)) => {
            if cmp.identical_through > 0 {
                writeln!(out, "identical through seq {} ({how})", cmp.identical_through)?;
            }
            match (la, lb) {
                (Some(_), Some(_)) => writeln!(out, "{} at seq {seq}:", ui.bad("diverge"))?,
                (Some(_), None) => writeln!(out, "B ends at seq {}; A goes on from seq {seq}:", seq - 1)?,
                (None, Some(_)) => writeln!(out, "A ends at seq {}; B goes on from seq {seq}:", seq - 1)?,
                (None, None) => {}
            }
            if let Some(l) = la {
                writeln!(out, "  A  {l}")?;
            }
            if let Some(l) = lb {
                writeln!(out, "  B  {l}")?;
            }
        }
    }
    if state_diffs.is_empty() {
        writeln!(out, "states: identical")?;
    } else {
        writeln!(out, "states: {} difference(s)", state_diffs.len())?;
        const SHOWN: usize = 30;
        for (p, x, y) in state_diffs.iter().take(SHOWN) {
            writeln!(out, "  {}  {} → {}", ui.bold(p), short(x), short(y))?;
        }
        if state_diffs.len() > SHOWN {
            writeln!(out, "  … and {} more (use --json for all)", state_diffs.len() - SHOWN)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_parse() {
        assert_eq!(Side::parse("@12").unwrap(), Side { bundle: None, stop: Stop::AfterSeq(12) });
        assert_eq!(
            Side::parse("./x@2026-01-01T00:00:04Z").unwrap(),
            Side { bundle: Some("./x".into()), stop: Stop::AtTime(1_767_225_604_000) }
        );
        assert_eq!(Side::parse("./a@b").unwrap(), Side { bundle: Some("./a@b".into()), stop: Stop::End });
        assert!(Side::parse("").is_err());
    }

    #[test]
    fn json_differences_name_their_paths() {
        let mut d = Vec::new();
        diff_json(
            "",
            &json!({"a": 1, "b": [1, 2], "c": {"d": "x"}}),
            &json!({"a": 2, "b": [1], "c": {"d": "x"}, "e": true}),
            &mut d,
        );
        let paths: Vec<&str> = d.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(paths, vec!["a", "b", "e"]);
    }
}
