//! `state`: the session state at a seq or a time (core's fold of the verified log), as the
//! state API's JSON.

use std::io::Write;

use anyhow::bail;
use moltlog_core::dto;
use moltlog_core::state::SessionState;

use crate::archive::SessionArchive;
use crate::cli::{StateArgs, Verdict, usage};
use crate::failure::Failure;
use crate::time::parse_point;
use crate::ui::Ui;
use crate::walk::{self, Stop, Visit};
use crate::{commands, source};

/// The stop `--at` asks for (the end without it).
pub fn stop_of(at: Option<&str>) -> anyhow::Result<Stop> {
    match at {
        None => Ok(Stop::End),
        Some(s) => Ok(parse_point(s).map_err(|e| usage(format!("--at: {e}")))?),
    }
}

/// Replays the archive to `stop`, verifying, showing each record to `visit`; `Err(verdict)`
/// when the log failed verification (reported already).
pub fn state_at(
    archive: &SessionArchive,
    stop: Stop,
    ui: &Ui,
    visit: &mut Visit<'_>,
) -> anyhow::Result<Result<SessionState, Verdict>> {
    let bar = ui.bar(archive.last_named_seq(), "records", "replaying");
    let result = walk::walk(archive, stop, &bar, visit);
    bar.finish_and_clear();
    let walked = match commands::walked(result, ui, &archive.describe())? {
        Ok(w) => w,
        Err(v) => return Ok(Err(v)),
    };
    let head = walked.verifier.head().seq;
    if let Stop::AfterSeq(seq) = stop
        && seq > head
    {
        bail!("the log ends at seq {head}; --at {seq} is past its end");
    }
    if walked.stopped_early {
        // A redaction later in the log may account for a body stored redacted before this point.
        return Ok(Ok(walked.verifier.state().clone()));
    }
    match walked.verifier.finish() {
        Ok(report) => Ok(Ok(report.state)),
        Err(e) => {
            commands::print_failure(ui, &Failure::from_verify(&e, None), &archive.describe());
            Ok(Err(Verdict::Failed))
        }
    }
}

pub fn run(a: &StateArgs, ui: &Ui) -> anyhow::Result<Verdict> {
    let stop = stop_of(a.at.as_deref())?;
    let spec = a.source.spec()?;
    let archive = source::open_archive(&spec, a.source.session(), ui, false)?;
    let state = match state_at(&archive, stop, ui, &mut |_, _| Ok(()))? {
        Ok(s) => s,
        Err(v) => return Ok(v),
    };
    let mut out = commands::stdout();
    serde_json::to_writer_pretty(&mut out, &dto::state_json(&state))?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(Verdict::Clean)
}
