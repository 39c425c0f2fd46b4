//! moltlog Worker: the Cloudflare adapter around moltlog-core.
//!
//! Pure modules (routes, config, errors, scheduling) build natively and are unit-tested there;
//! everything that touches the Workers runtime is compiled for wasm32 only.

pub mod api;
pub mod auth;
pub mod bridge;
pub mod cdp;
pub mod config;
pub mod hooks;
pub mod http;
pub mod schedule;
pub mod sig;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
mod directory;
#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod rt;
#[cfg(target_arch = "wasm32")]
mod session;
