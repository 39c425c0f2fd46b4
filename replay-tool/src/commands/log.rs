//! `log`: the timeline, filtered, as aligned lines or (`--json`) the API's event JSON per line.

use std::io::Write;

use moltlog_core::dto;
use moltlog_core::event::{Actor, EventKind};
use moltlog_core::record::CheckedRecord;

use crate::cli::{LogArgs, Verdict, usage};
use crate::render::summary;
use crate::time::{format_ms, parse_time};
use crate::ui::Ui;
use crate::walk::{self, Stop};
use crate::{commands, source};

/// Which events to show.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub kinds: Vec<EventKind>,
    pub actors: Vec<Actor>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
}

impl Filter {
    pub fn from_args(a: &LogArgs) -> anyhow::Result<Filter> {
        let kinds = a
            .kind
            .iter()
            .map(|k| {
                EventKind::from_name(k).ok_or_else(|| {
                    let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                    usage(format!("--kind {k:?} is not a kind; kinds are {}", all.join(", ")))
                })
            })
            .collect::<Result<_, _>>()?;
        let actors = a
            .actor
            .iter()
            .map(|x| {
                Actor::from_name(x).ok_or_else(|| {
                    let all: Vec<&str> = Actor::ALL.iter().map(|a| a.name()).collect();
                    usage(format!("--actor {x:?} is not an actor; actors are {}", all.join(", ")))
                })
            })
            .collect::<Result<_, _>>()?;
        let time = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
            Ok(match v {
                Some(s) => Some(parse_time(s).map_err(|e| usage(format!("{flag}: {e}")))?),
                None => None,
            })
        };
        Ok(Filter {
            kinds,
            actors,
            since_ms: time("--since", &a.since)?,
            until_ms: time("--until", &a.until)?,
            from_seq: a.from,
            to_seq: a.to,
        })
    }

    pub fn accepts(&self, c: &CheckedRecord) -> bool {
        let h = &c.header;
        (self.kinds.is_empty() || self.kinds.contains(&h.kind))
            && (self.actors.is_empty() || self.actors.contains(&h.actor))
            && self.since_ms.is_none_or(|t| h.ts_ms >= t)
            && self.until_ms.is_none_or(|t| h.ts_ms <= t)
            && self.from_seq.is_none_or(|s| h.seq >= s)
            && self.to_seq.is_none_or(|s| h.seq <= s)
    }

    /// Where the walk can stop: nothing after it can pass the filter.
    pub fn stop(&self) -> Stop {
        match (self.to_seq, self.until_ms) {
            (Some(seq), _) => Stop::AfterSeq(seq),
            (None, Some(t)) => Stop::AtTime(t),
            (None, None) => Stop::End,
        }
    }
}

/// One timeline line: time, seq, actor, kind, summary.
pub fn line(c: &CheckedRecord, redacted: bool) -> String {
    let h = &c.header;
    let mark = if redacted { " (redacted)" } else { "" };
    format!(
        "{}  {:>8}  {:<8}  {:<16}  {}{mark}",
        format_ms(h.ts_ms),
        h.seq,
        h.actor.name(),
        h.kind.name(),
        summary(&c.body)
    )
}

pub fn run(a: &LogArgs, ui: &Ui) -> anyhow::Result<Verdict> {
    let filter = Filter::from_args(a)?;
    let spec = a.source.spec()?;
    let archive = source::open_archive(&spec, a.source.session(), ui, false)?;
    let mut out = commands::stdout();
    let json = a.json;
    let mut visit = |c: &CheckedRecord, redacted: bool| -> std::io::Result<()> {
        if !filter.accepts(c) {
            return Ok(());
        }
        if json {
            let v = dto::event_json(&c.header, &c.hash, &c.body, redacted);
            out.write_all(v.to_line().as_bytes())?; // stored payloads as they are, one line
            out.write_all(b"\n")
        } else {
            writeln!(out, "{}", line(c, redacted))
        }
    };
    let bar = ui.bar(archive.last_named_seq(), "records", "reading");
    let result = walk::walk(&archive, filter.stop(), &bar, &mut visit);
    bar.finish_and_clear();
    out.flush()?;
    match commands::walked(result, ui, &archive.describe())? {
        Ok(_) => Ok(Verdict::Clean),
        Err(v) => Ok(v),
    }
}
