//! The recording CDP proxy's pure half: message parsing, the recorder, the page-socket bridge,
//! the discovery documents and the upstream configuration. Compiled natively and for wasm32, so
//! everything that decides what is recorded is unit-tested on canned CDP traffic; the Durable
//! Object that pumps the sockets is `crate::browser` (wasm only).

pub mod action;
pub mod config;
pub mod discovery;
pub mod input;
pub mod message;
pub mod page_bridge;
pub mod recorder;

pub use action::{Image, Recorded, StoredImage};
pub use recorder::{Recorder, RecorderLimits};
