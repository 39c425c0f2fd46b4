//! Webhook integrations.
//!
//! Inbound (`inbound`): `POST /hooks/{name}` for the integrations configured in `HOOKS`, each
//! checked by its own signature (GitHub's `X-Hub-Signature-256`; for generic hooks Standard
//! Webhooks or moltlog's timestamped HMAC-SHA256) over the raw body, and appended to the session it is bound to as a
//! `webhook_received` event by the webhook actor, keyed by the sender's delivery id so that
//! redeliveries append nothing. Large payloads go to R2 blobs by the engine's usual offload.
//!
//! Outbound (`subscription`): subscribers receive a session's new events as signed POSTs,
//! at least once, in order, with a stable delivery id. The bookkeeping lives in each session's
//! Durable Object SQLite (`session/subscriptions.rs`); subscriptions for all sessions live in a
//! registry (`registry.rs`, in the directory Durable Object) that sessions read and cache.
//!
//! The signature schemes (`signature`, `standard`) are the same in both directions: a moltlog
//! subscription can post into another moltlog's generic hook. Subscriber URLs must name public
//! hosts (`address`) unless `WEBHOOKS_ALLOW_PRIVATE` is set.

pub mod address;
pub mod config;
pub mod inbound;
pub mod signature;
pub mod standard;
pub mod subscription;

#[cfg(target_arch = "wasm32")]
pub mod registry;
#[cfg(target_arch = "wasm32")]
pub mod worker;
