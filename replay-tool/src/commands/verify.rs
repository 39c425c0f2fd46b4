//! `verify`: the whole audit, reported for people or (`--json`) machines.

use std::io::Write;

use anyhow::Context;
use moltlog_core::chain;

use crate::archive::ClaimedHead;
use crate::audit::{self, Audit};
use crate::cli::{Verdict, VerifyArgs, usage};
use crate::source;
use crate::ui::Ui;

pub fn run(a: &VerifyArgs, ui: &Ui) -> anyhow::Result<Verdict> {
    let spec = a.source.spec()?;
    let expect = match &a.expect_head {
        Some(s) => Some(ClaimedHead::parse(s).ok_or_else(|| {
            usage(format!("--expect-head {s:?}: give SEQ or SEQ:HASH (64 hex digits), e.g. 1200:5f2e…"))
        })?),
        None => None,
    };
    let mut archive = source::open_archive(&spec, a.source.session(), ui, !a.no_blobs)?;
    if expect.is_some() {
        archive.claimed_head = expect;
    }
    let bar = ui.bar(archive.last_named_seq(), "records", "verifying");
    let audit = audit::audit(&archive, !a.no_blobs, &bar).context("verifying")?;
    bar.finish_and_clear();
    let mut out = super::stdout();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&audit.to_json())?)?;
    } else {
        print_human(&mut out, ui, &audit)?;
    }
    out.flush()?;
    Ok(if audit.ok() { Verdict::Clean } else { Verdict::Failed })
}

fn list(seqs: &[u64]) -> String {
    const SHOWN: usize = 12;
    let mut s: Vec<String> = seqs.iter().take(SHOWN).map(u64::to_string).collect();
    if seqs.len() > SHOWN {
        s.push(format!("… ({} in all)", seqs.len()));
    }
    s.join(", ")
}

fn print_human(out: &mut impl Write, ui: &Ui, a: &Audit) -> std::io::Result<()> {
    let label = |s: &str| ui.dim(&format!("{s:<10}"));
    writeln!(out, "{}{}", label("session"), a.session_key)?;
    writeln!(out, "{}{}", label("source"), a.source)?;
    match &a.failure {
        None => writeln!(
            out,
            "{}seqs 1..={} in {} segment(s), head {}",
            label("log"),
            a.head.seq,
            a.segments,
            chain::to_hex(&a.head.hash)
        )?,
        Some(_) => writeln!(out, "{}seqs 1..={} verified before the failure", label("log"), a.head.seq)?,
    }
    if !a.head_checked && a.failure.is_none() {
        writeln!(
            out,
            "{}not stated by this source (an R2 archive ends where archiving got to); check it with \
             --expect-head SEQ:HASH from the Worker's GET /v1/sessions/KEY",
            label("head")
        )?;
    }
    let mut snaps =
        format!("{} checked against the replayed state, byte for byte", a.snapshots_checked.len());
    if !a.snapshots_stale.is_empty() {
        snaps += &format!(
            "; {} taken before a redaction of content they hold, due for deletion, not compared (seqs {})",
            a.snapshots_stale.len(),
            list(&a.snapshots_stale)
        );
    }
    if !a.snapshots_unreadable.is_empty() {
        snaps += &format!(
            "; {} intact but written by another moltlog version, not compared (seqs {})",
            a.snapshots_unreadable.len(),
            list(&a.snapshots_unreadable)
        );
    }
    if !a.snapshots_unchecked.is_empty() {
        snaps += &format!(
            "; {} past the end of this archive, unchecked (seqs {})",
            a.snapshots_unchecked.len(),
            list(&a.snapshots_unchecked)
        );
    }
    writeln!(out, "{}{snaps}", label("snapshots"))?;
    let missing = if a.blobs_missing.is_empty() {
        "none missing".to_owned()
    } else {
        format!("{} not in this source (pull without --no-blobs to check them)", a.blobs_missing.len())
    };
    writeln!(out, "{}{} checked, {missing}", label("blobs"), a.blobs_checked)?;
    if !a.redacted.is_empty() {
        writeln!(
            out,
            "{}seqs {} (bodies erased by redaction events; the chain still verifies)",
            label("redacted"),
            list(&a.redacted)
        )?;
    }
    if !a.not_erased.is_empty() {
        writeln!(
            out,
            "{}seqs {} are named by redaction events but still hold their content here (erasure pending)",
            label("pending"),
            list(&a.not_erased)
        )?;
    }
    for g in &a.gaps {
        writeln!(
            out,
            "{}seqs {}..={} were lost before a recovery ({}); the chain links across them",
            label("lost"),
            g.first_seq,
            g.last_seq,
            g.reason
        )?;
    }
    if !a.superseded.is_empty() {
        writeln!(out, "{}{} older segment generation(s) ignored", label("ignored"), a.superseded.len())?;
    }
    if !a.unrecognised.is_empty() {
        writeln!(
            out,
            "{}{} object(s) with unrecognised names: {}",
            label("ignored"),
            a.unrecognised.len(),
            a.unrecognised.join(", ")
        )?;
    }
    match &a.failure {
        None => writeln!(
            out,
            "{}  the chain, every segment, every snapshot and every blob checked verify",
            ui.good("OK")
        )?,
        Some(f) => {
            writeln!(out, "{}  seq {}: {}", ui.bad("FAILED"), f.seq, f.message)?;
            if let Some(e) = &f.expected {
                writeln!(out, "  {}{e}", label("expected"))?;
            }
            if let Some(x) = &f.actual {
                writeln!(out, "  {}{x}", label("actual"))?;
            }
            if let Some(o) = &f.object {
                writeln!(out, "  {}{o}", label("in"))?;
            }
            writeln!(
                out,
                "Records after seq {} cannot be trusted from this source. Compare with another copy (pull \
                 from the Worker or R2) to find out what changed.",
                f.seq.saturating_sub(1)
            )?;
        }
    }
    Ok(())
}
