//! The command line: arguments (clap), and running a command to an exit status.
//!
//! Exit status: 0 clean, 1 the data is tampered, corrupt or incomplete, 2 a usage or IO error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;
use crate::source::SourceSpec;
use crate::source::s3::S3Config;
use crate::ui::Ui;

const SOURCES: &str = "\
Sources (every command reads one):
  BUNDLE                        a directory written by `pull`, or an export bundle file
  --url URL [--token TOKEN]     a running moltlog Worker (export and events APIs)
  --s3-endpoint URL             R2 through its S3 API (--bucket, --access-key-id, --secret-access-key)
  --state-dir DIR               the R2 objects of a local `wrangler dev --persist-to DIR`
Remote sources need --session KEY; bundles know their session.";

#[derive(Parser, Debug)]
#[command(
    name = "moltlog-replay",
    version,
    about = "Audit, export and restore moltlog sessions: verify the hash chain, show the timeline, \
             rebuild the state at any point, and restore a session for a fresh agent sandbox.",
    after_help = SOURCES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fetch a session's segments, snapshots, tail and blobs into a local bundle directory
    /// (resumable: files already there are skipped).
    #[command(after_help = "\
Examples:
  moltlog-replay pull --url http://127.0.0.1:8787 --session agent:main:main --out ./main.bundle
  moltlog-replay pull --s3-endpoint https://ACCOUNT.r2.cloudflarestorage.com --bucket moltlog-archive \\
      --session agent:main:main --out ./main.bundle      # keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
  moltlog-replay pull --state-dir .wrangler/state --session agent:main:main --out ./main.bundle
  moltlog-replay pull ./main.moltlog --out ./main.bundle  # unpack an export bundle file

Run it again to bring the bundle up to date: only what is new is fetched.")]
    Pull(PullArgs),

    /// Verify the whole chain, every segment, every snapshot against the replayed state, and blob
    /// digests. Exit 0 clean, 1 tampered or corrupt (the first failure is reported precisely),
    /// 2 usage or IO error.
    #[command(after_help = "\
Examples:
  moltlog-replay verify ./main.bundle
  moltlog-replay verify ./main.bundle --json | jq .failure
  moltlog-replay verify --url http://127.0.0.1:8787 --session agent:main:main
  moltlog-replay verify ./main.bundle --expect-head 1200:5f2e…   # a head you trust, from elsewhere")]
    Verify(VerifyArgs),

    /// Show the timeline: time, seq, actor, kind and a one-line summary per event.
    #[command(after_help = "\
Examples:
  moltlog-replay log ./main.bundle
  moltlog-replay log ./main.bundle --kind tool_call --kind tool_result --since 2026-01-01T10:00:00Z
  moltlog-replay log ./main.bundle --actor bridge --from 100 --to 200
  moltlog-replay log ./main.bundle --json | jq -c 'select(.kind == \"chat_message\")'")]
    Log(LogArgs),

    /// Print the session state (the fold of the log) at a seq or a time, as JSON.
    #[command(after_help = "\
Examples:
  moltlog-replay state ./main.bundle                          # at the head
  moltlog-replay state ./main.bundle --at 1200                # after seq 1200
  moltlog-replay state ./main.bundle --at 2026-01-01T10:00:00Z | jq .open_tool_calls")]
    State(StateArgs),

    /// Export the whole log as JSON lines or one JSON document, or the transcript in the agent
    /// runtime's session JSONL (OpenClaw).
    #[command(after_help = "\
Examples:
  moltlog-replay export ./main.bundle --format jsonl > main.jsonl
  moltlog-replay export ./main.bundle --format json --out main.json
  moltlog-replay export ./main.bundle --format openclaw --at 1200 > session.jsonl")]
    Export(ExportArgs),

    /// Materialise what a fresh agent sandbox needs to resume the session: the runtime's session
    /// files (OpenClaw layout), open tool calls and browser state. Verifies first.
    #[command(after_help = "\
Examples:
  moltlog-replay restore ./main.bundle --into ~/.openclaw
  moltlog-replay restore --url https://moltlog.example.com --token $MOLTLOG_TOKEN \\
      --session agent:main:main --into /sandbox/state

  moltlog-replay restore --url http://127.0.0.1:8787 --agent main --into /sandbox/state \\
      --restored-at 2026-12-01T10:00:00Z   # every agent:main:… session, one sessions.json

Writes agents/<agentId>/sessions/sessions.json and <sessionId>.jsonl, plus moltlog/restore.json
(open tool calls, browser state, head) and the blobs the transcript references. Refuses a non-empty
directory unless --force. With --agent: writes into an existing state dir (re-runs converge), each
session's bundle under moltlog/sessions/<key>/, and refuses (exit 2) while the runtime's lock files
are there or a transcript there is newer than the log.")]
    Restore(RestoreArgs),

    /// Show where two sessions, or two points of one session, diverge.
    #[command(after_help = "\
A and B are each [BUNDLE][@SEQ|@TIME]; without BUNDLE they mean the source given by flags.

Examples:
  moltlog-replay diff ./before.bundle ./after.bundle
  moltlog-replay diff ./main.bundle@100 ./main.bundle@200
  moltlog-replay diff --url http://127.0.0.1:8787 --session agent:main:main @100 @2026-01-01T10:00:00Z")]
    Diff(DiffArgs),
}

/// Where to read, for commands that take one source.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// A bundle directory written by `pull`, or an export bundle file.
    #[arg(value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Remote sources and the session to read.
#[derive(Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Read from a running moltlog Worker at this base URL.
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub url: Option<String>,
    /// API token for --url (sent as `Authorization: Bearer`).
    #[arg(long, env = "MOLTLOG_TOKEN", hide_env_values = true, help_heading = "Source")]
    pub token: Option<String>,
    /// Read R2 through its S3 API at this endpoint (path-style).
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub s3_endpoint: Option<String>,
    /// The R2 bucket (for --s3-endpoint and --state-dir).
    #[arg(long, default_value = "moltlog-archive", help_heading = "Source")]
    pub bucket: String,
    /// S3 access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true, help_heading = "Source")]
    pub access_key_id: Option<String>,
    /// S3 secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, help_heading = "Source")]
    pub secret_access_key: Option<String>,
    /// S3 region (R2 takes `auto`).
    #[arg(long, env = "AWS_REGION", default_value = "auto", help_heading = "Source")]
    pub region: String,
    /// Read the R2 objects of a local wrangler state directory (`wrangler dev --persist-to DIR`).
    #[arg(long, value_name = "DIR", help_heading = "Source")]
    pub state_dir: Option<PathBuf>,
    /// The session key (e.g. agent:main:telegram:chat:42).
    #[arg(long, short = 's', value_name = "KEY", help_heading = "Source")]
    pub session: Option<String>,
}

impl RemoteArgs {
    /// The remote source the flags name, if any. More than one is a usage error.
    pub fn spec(&self) -> anyhow::Result<Option<SourceSpec>> {
        let mut specs = Vec::new();
        if let Some(url) = &self.url {
            specs.push(SourceSpec::Http { url: url.clone(), token: self.token.clone() });
        }
        if let Some(endpoint) = &self.s3_endpoint {
            let need = |v: &Option<String>, flag: &str, env: &str| {
                v.clone()
                    .ok_or_else(|| usage(format!("--s3-endpoint needs {flag} (or {env} in the environment)")))
            };
            specs.push(SourceSpec::S3(S3Config {
                endpoint: endpoint.clone(),
                bucket: self.bucket.clone(),
                access_key_id: need(&self.access_key_id, "--access-key-id", "AWS_ACCESS_KEY_ID")?,
                secret_access_key: need(
                    &self.secret_access_key,
                    "--secret-access-key",
                    "AWS_SECRET_ACCESS_KEY",
                )?,
                region: self.region.clone(),
            }));
        }
        if let Some(dir) = &self.state_dir {
            specs.push(SourceSpec::StateDir { dir: dir.clone(), bucket: self.bucket.clone() });
        }
        if specs.len() > 1 {
            return Err(usage("give one source: --url, --s3-endpoint or --state-dir").into());
        }
        Ok(specs.pop())
    }
}

impl SourceArgs {
    pub fn spec(&self) -> anyhow::Result<SourceSpec> {
        match (&self.bundle, self.remote.spec()?) {
            (Some(_), Some(_)) => {
                Err(usage("give either a BUNDLE path or a remote source (--url, --s3-endpoint, --state-dir)")
                    .into())
            }
            (Some(p), None) => Ok(SourceSpec::Bundle(p.clone())),
            (None, Some(s)) => Ok(s),
            (None, None) => Err(usage(
                "no source: give a BUNDLE path, or --url, --s3-endpoint or --state-dir (see --help)",
            )
            .into()),
        }
    }

    pub fn session(&self) -> Option<&str> {
        self.remote.session.as_deref()
    }
}

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The bundle directory to write (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Skip the blobs (attachments, large payloads) the log references.
    #[arg(long)]
    pub no_blobs: bool,
    /// With --url: fetch records page by page through the events API even on the first pull
    /// (resumable throughout, but without snapshots).
    #[arg(long)]
    pub no_export: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Skip checking blob digests.
    #[arg(long)]
    pub no_blobs: bool,
    /// The head the log must reach, `SEQ` or `SEQ:HASH`, from a record you trust (overrides the
    /// head the bundle states).
    #[arg(long, value_name = "SEQ[:HASH]")]
    pub expect_head: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only these kinds (chat_message, tool_call, tool_result, browser_action, model_call,
    /// webhook_received, lifecycle, delivery_receipt, redaction). Repeatable.
    #[arg(long, value_name = "KIND")]
    pub kind: Vec<String>,
    /// Only events appended by these actors (system, runtime, bridge, webhook, operator). Repeatable.
    #[arg(long, value_name = "ACTOR")]
    pub actor: Vec<String>,
    /// Only events at or after this time (RFC 3339 or ms since the epoch).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events at or before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events from this seq on.
    #[arg(long, value_name = "SEQ")]
    pub from: Option<u64>,
    /// Only events up to this seq.
    #[arg(long, value_name = "SEQ")]
    pub to: Option<u64>,
    /// One JSON object per line (the API's event JSON), for machines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StateArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// A seq (the state after it) or a time (the state after the last event at or before it).
    #[arg(long, value_name = "SEQ|TIME")]
    pub at: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One event per line, as the events API shows it.
    Jsonl,
    /// One JSON document: session, head and every event.
    Json,
    /// The transcript as the agent runtime's session JSONL (OpenClaw / pi-coding-agent).
    Openclaw,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Export up to this seq or time.
    #[arg(long, value_name = "SEQ|TIME")]
    pub at: Option<String>,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The runtime's state directory to write (e.g. ~/.openclaw in the sandbox).
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// Restore every session of this agent (keys `agent:ID:…`, from the Worker's session list or
    /// R2's listing) into one state dir with one merged sessions.json, instead of one --session.
    /// Re-runs converge; refuses (exit 2) if the runtime's lock files or a newer transcript are there.
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Write into a directory that is not empty (files of the same name are replaced).
    #[arg(long)]
    pub force: bool,
    /// The OpenClaw version restored for (2026.2.x, 2026.9.x), or `auto`: the `openclaw` package on PATH.
    #[arg(long, value_name = "VERSION", default_value = "auto")]
    pub runtime: String,
    /// The restore time stamped as `updatedAt` in sessions.json (RFC 3339 or ms; default now).
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_time)]
    pub restored_at: Option<u64>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first side: [BUNDLE][@SEQ|@TIME].
    #[arg(value_name = "A")]
    pub a: String,
    /// The second side: [BUNDLE][@SEQ|@TIME].
    #[arg(value_name = "B")]
    pub b: String,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The session of B when it comes from the flags' source (default: --session).
    #[arg(long, value_name = "KEY", help_heading = "Source")]
    pub session_b: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A usage error: the command line asks for something impossible (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

pub fn usage(msg: impl Into<String>) -> Usage {
    Usage(msg.into())
}

/// How a command ended, when it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The data failed verification (reported already).
    Failed,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::detect();
    let r = run(cli, &ui);
    let code = exit_code(&r);
    if let Err(e) = &r
        && code != 0
    {
        let what = if code == 1 { "verification failed" } else { "error" };
        let _ = writeln!(std::io::stderr(), "{}: {e:#}", ui.err_bad(what));
    }
    ExitCode::from(code)
}

/// The exit status a command's end maps to: 0 clean (or a closed pipe), 1 the data failed
/// verification, 2 a usage or IO error.
pub fn exit_code(r: &anyhow::Result<Verdict>) -> u8 {
    match r {
        Ok(Verdict::Clean) => 0,
        Ok(Verdict::Failed) => 1,
        Err(e) if is_broken_pipe(e) => 0,
        Err(e) if is_corrupt(e) => 1,
        Err(_) => 2,
    }
}

/// A source damaged as a whole is a failed verification, not an IO error.
fn is_corrupt(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::objects::SourceError>(),
            Some(crate::objects::SourceError::Corrupt(_))
        ) || matches!(
            c.downcast_ref::<crate::walk::WalkError>(),
            Some(crate::walk::WalkError::Source(crate::objects::SourceError::Corrupt(_)))
        )
    })
}

/// A reader that closed the pipe (`| head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<crate::walk::WalkError>().is_some_and(
                |w| matches!(w, crate::walk::WalkError::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe),
            )
    })
}

pub fn run(cli: Cli, ui: &Ui) -> anyhow::Result<Verdict> {
    match cli.command {
        Command::Pull(a) => commands::pull::run(&a, ui),
        Command::Verify(a) => commands::verify::run(&a, ui),
        Command::Log(a) => commands::log::run(&a, ui),
        Command::State(a) => commands::state::run(&a, ui),
        Command::Export(a) => commands::export::run(&a, ui),
        Command::Restore(a) => commands::restore::run(&a, ui),
        Command::Diff(a) => commands::diff::run(&a, ui),
    }
}
