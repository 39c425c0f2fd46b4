//! Where recorded actions go: screenshots to R2 as content-addressed blobs first, then the
//! actions as one batched append to the session's Durable Object, as the agent runtime.
//!
//! Runs on the recorder's task, never on the pump's, and never fails the browser session: a
//! batch that cannot be stored after a few tries is logged and dropped.

use std::time::Duration;

use moltlog_core::chain;
use moltlog_core::engine::blob_object_key;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use worker::{Delay, Env, Headers, Method, Request, RequestInit, console_error, console_warn};

use crate::cdp::{Recorded, StoredImage};
use crate::entry::SESSIONS_BINDING;
use crate::rt;

/// Attempts per batch (a Durable Object restart or an R2 hiccup should not lose actions).
const ATTEMPTS: u32 = 3;
/// Actions per append, well within the append limits (events and bytes per batch).
const BATCH: usize = 100;

pub struct Sink {
    env: Env,
    key: String,
    /// Names this connection's batches, so a retried append is not recorded twice.
    connection: String,
    batches: u64,
    max_blob_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error("storing the screenshot: {0}")]
    Blob(String),
    #[error("appending to the session ({status}): {body}")]
    Append { status: u16, body: String },
    #[error("reaching the session: {0}")]
    Unreachable(String),
}

impl Sink {
    pub fn new(env: Env, key: &str, connection: String, max_blob_bytes: u64) -> Sink {
        Sink { env, key: key.to_owned(), connection, batches: 0, max_blob_bytes }
    }

    /// Records `actions` in the session, in order, in as few appends as the limits allow.
    pub async fn store(&mut self, mut actions: Vec<Recorded>) {
        while !actions.is_empty() {
            let rest = actions.split_off(actions.len().min(BATCH));
            self.store_batch(actions).await;
            actions = rest;
        }
    }

    async fn store_batch(&mut self, actions: Vec<Recorded>) {
        self.batches += 1;
        let idempotency_key = format!("cdp:{}:{}", self.connection, self.batches);
        let mut events = Vec::with_capacity(actions.len());
        for mut a in actions {
            let stored = match a.screenshot.take() {
                Some(img) => match self.put_image(img.bytes, &img.content_type).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        a.error = Some(e.to_string());
                        None
                    }
                },
                None => None,
            };
            events.push(a.event_json(stored.as_ref()));
        }
        let body = json!({"events": events, "idempotency_key": idempotency_key});
        let mut wait = 200;
        for attempt in 1..=ATTEMPTS {
            match self.append(&body).await {
                Ok(()) => return,
                Err(e) if attempt == ATTEMPTS => {
                    console_error!(
                        "moltlog cdp {}: dropped {} recorded actions: {e}",
                        self.key,
                        events_len(&body)
                    );
                }
                Err(e) => {
                    console_warn!("moltlog cdp {}: recording failed, retrying: {e}", self.key);
                    Delay::from(Duration::from_millis(wait)).await;
                    wait *= 4;
                }
            }
        }
    }

    /// Stores an image as a content-addressed blob (never overwriting), the way appends store
    /// large payloads: the blob is in R2 before any event references it.
    async fn put_image(&self, bytes: Vec<u8>, content_type: &str) -> Result<StoredImage, SinkError> {
        let len = bytes.len() as u64;
        if len > self.max_blob_bytes {
            return Err(SinkError::Blob(format!(
                "{len} bytes is over the blob limit {}",
                self.max_blob_bytes
            )));
        }
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        let bucket = self.env.bucket(rt::BUCKET).map_err(|e| SinkError::Blob(e.to_string()))?;
        rt::put_if_absent(&bucket, &blob_object_key(&sha), bytes, content_type)
            .await
            .map_err(|e| SinkError::Blob(e.to_string()))?;
        Ok(StoredImage { sha256_hex: chain::to_hex(&sha), len, content_type: content_type.to_owned() })
    }

    async fn append(&self, body: &Value) -> Result<(), SinkError> {
        let fail = |e: worker::Error| SinkError::Unreachable(e.to_string());
        let headers = Headers::new();
        headers.set("content-type", "application/json").map_err(fail)?;
        headers.set(rt::KEY_HEADER, &self.key).map_err(fail)?;
        // The agent's browser: its actions are the runtime's, whoever opened the proxy.
        headers.set(rt::ACTOR_HEADER, "runtime").map_err(fail)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(headers).with_body(Some(body.to_string().into()));
        let url = format!("https://session.internal/v1/sessions/{}/events", self.key);
        let req = Request::new_with_init(&url, &init).map_err(fail)?;
        let namespace = self.env.durable_object(SESSIONS_BINDING).map_err(fail)?;
        let stub = namespace.id_from_name(&self.key).and_then(|id| id.get_stub()).map_err(fail)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(fail)?;
        let status = resp.status_code();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(SinkError::Append { status, body: crate::cdp::message::truncate(&body, 300) })
    }
}

fn events_len(body: &Value) -> usize {
    body["events"].as_array().map_or(0, Vec::len)
}
