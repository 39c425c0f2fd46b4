//! One module per command. Each reads its source through `walk`, so every record it shows or
//! folds was verified first; a verification failure ends it with exit status 1.

pub mod diff;
pub mod export;
pub mod log;
pub mod pull;
pub mod restore;
pub mod restore_agent;
pub mod state;
pub mod verify;

use std::io::Write;

use crate::cli::Verdict;
use crate::failure::Failure;
use crate::ui::Ui;
use crate::walk::WalkError;

/// Prints a failure found while reading, with what to do next.
pub fn print_failure(ui: &Ui, f: &Failure, source: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{} at seq {}: {}", ui.err_bad("verification failed"), f.seq, f.message);
    if let Some(e) = &f.expected {
        let _ = writeln!(err, "  expected  {e}");
    }
    if let Some(a) = &f.actual {
        let _ = writeln!(err, "  actual    {a}");
    }
    if let Some(o) = &f.object {
        let _ = writeln!(err, "  in        {o}");
    }
    let _ = writeln!(err, "  source    {source}");
    let _ = writeln!(
        err,
        "Nothing past seq {} can be trusted. Run `moltlog-replay verify` on the source for the full report, \
         and pull a clean copy from another source (the Worker, R2) to compare.",
        f.seq.saturating_sub(1)
    );
}

/// Maps a walk's end: tampering is reported and becomes exit status 1; other errors pass on.
pub fn walked<T>(r: Result<T, WalkError>, ui: &Ui, source: &str) -> anyhow::Result<Result<T, Verdict>> {
    match r {
        Ok(t) => Ok(Ok(t)),
        Err(WalkError::Tampered { error, object }) => {
            print_failure(ui, &Failure::from_verify(&error, object), source);
            Ok(Err(Verdict::Failed))
        }
        Err(e) => Err(e.into()),
    }
}

/// Standard output, buffered (records are printed one line at a time).
pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock())
}
