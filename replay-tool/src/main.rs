//! `moltlog-replay`: see `moltlog-replay --help` and the README's "moltlog-replay" section.

fn main() -> std::process::ExitCode {
    moltlog_replay::cli::main()
}
