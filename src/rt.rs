//! Runtime glue for the Worker and its Durable Objects: clock, random bits, JSON responses, R2.

use wasm_bindgen::JsCast;
use worker::{Bucket, Date, Headers, Response};

use crate::http::ApiError;

/// Header the Worker sets on requests to a SessionDO: the session key it routed by.
pub const KEY_HEADER: &str = "x-moltlog-key";
/// Header the Worker sets on requests to a SessionDO: who is appending (from authentication).
pub const ACTOR_HEADER: &str = "x-moltlog-actor";
/// The R2 bucket binding.
pub const BUCKET: &str = "ARCHIVE";

pub fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// 128 random bits from `crypto.getRandomValues`.
pub fn entropy() -> u128 {
    let buf = js_sys::Uint8Array::new_with_length(16);
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok();
    let get = crypto.as_ref().and_then(|c| js_sys::Reflect::get(c, &"getRandomValues".into()).ok());
    if let (Some(c), Some(f)) = (crypto, get.and_then(|f| f.dyn_into::<js_sys::Function>().ok())) {
        let _ = f.call1(&c, &buf);
    }
    let mut bytes = [0u8; 16];
    buf.copy_to(&mut bytes);
    u128::from_le_bytes(bytes)
}

/// A JSON answer. Any `Serialize` body: documents holding stored JSON (`dto::Json`) are written
/// straight out, never through a `Value`.
pub fn json<T: serde::Serialize + ?Sized>(status: u16, body: &T) -> worker::Result<Response> {
    let text = serde_json::to_string(body).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(text)?.with_status(status).with_headers(headers))
}

pub fn error_response(e: &ApiError) -> worker::Result<Response> {
    json(e.status, &e.body())
}

pub fn bytes_response(bytes: Vec<u8>, content_type: &str) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", content_type)?;
    Ok(Response::from_bytes(bytes)?.with_headers(headers))
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::internal(e.to_string())
    }
}

/// Writes `bytes` at `key` unless an object is already there: archive keys are never
/// overwritten. Returns whether it wrote.
pub async fn put_if_absent(
    bucket: &Bucket,
    key: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> worker::Result<bool> {
    if bucket.head(key).await?.is_some() {
        return Ok(false);
    }
    let meta = worker::HttpMetadata { content_type: Some(content_type.to_owned()), ..Default::default() };
    bucket.put(key, bytes).http_metadata(meta).execute().await?;
    Ok(true)
}

pub async fn get_bytes(bucket: &Bucket, key: &str) -> worker::Result<Option<Vec<u8>>> {
    match bucket.get(key).execute().await? {
        Some(obj) => match obj.body() {
            Some(body) => Ok(Some(body.bytes().await?)),
            None => Ok(Some(Vec::new())),
        },
        None => Ok(None),
    }
}

/// Every object key (with its size) under `prefix`.
pub async fn list_all(bucket: &Bucket, prefix: &str) -> worker::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = bucket.list().prefix(prefix).limit(1000);
        if let Some(c) = cursor.take() {
            req = req.cursor(c);
        }
        let page = req.execute().await?;
        out.extend(page.objects().iter().map(|o| (o.key(), o.size())));
        if !page.truncated() {
            return Ok(out);
        }
        cursor = page.cursor();
        if cursor.is_none() {
            return Ok(out);
        }
    }
}
