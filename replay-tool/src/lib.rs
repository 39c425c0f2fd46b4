//! moltlog-replay: the native audit and restore tool for moltlog sessions.
//!
//! It reads a session's archive wherever it lives (a running Worker over HTTP, R2 through its S3
//! API, a local wrangler state directory, an export bundle file, or a bundle directory written by
//! `pull`), and uses moltlog-core for every decode, chain check and state fold: the Durable Object
//! and this tool share one implementation of the format, the chain and the reducer. It depends on
//! core, never on the Worker package.
//!
//! Map: `objects` (the one interface every source implements) → `source::*` (the sources) →
//! `archive` (a session's segments and snapshots in a source) → `walk` (the verifying walk every
//! command reads through) → `commands::*`. `layout` is the bundle directory, `file_store` the
//! `LogStore` over it, `synth` realistic sessions for tests and benchmarks.

pub mod archive;
pub mod audit;
pub mod cli;
pub mod commands;
pub mod failure;
pub mod file_store;
pub mod layout;
pub mod objects;
pub mod render;
pub mod runtime;
pub mod source;
pub mod synth;
pub mod time;
pub mod transcript;
pub mod ui;
pub mod walk;
