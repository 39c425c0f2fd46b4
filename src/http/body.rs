//! The one way a request body is read: refused at once when `Content-Length` declares more than
//! the route's limit, otherwise read chunk by chunk with a running count that stops at the limit
//! (chunked bodies declare nothing). Nothing is buffered past the limit, so an unauthenticated
//! 400 MiB upload costs one chunk of memory, not 400 MiB.

/// Largest body of a subscription request (`POST …/subscriptions`): a URL, a secret, filters.
pub const MAX_SUBSCRIPTION_BODY_BYTES: u64 = 64 << 10;

/// Most bytes reserved up front from a declared length (the declaration may be a lie).
const MAX_RESERVE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body declares {declared} bytes; at most {max_bytes} are allowed")]
    DeclaredTooLarge { declared: u64, max_bytes: u64 },
    #[error("the request body is over {max_bytes} bytes, the most allowed")]
    TooLarge { max_bytes: u64 },
    #[error("{0}")]
    BadLength(#[from] super::param::ParamError),
}

impl BodyError {
    pub fn status(&self) -> u16 {
        match self {
            BodyError::DeclaredTooLarge { .. } | BodyError::TooLarge { .. } => 413,
            BodyError::BadLength(_) => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            BodyError::DeclaredTooLarge { .. } | BodyError::TooLarge { .. } => "body_too_large",
            BodyError::BadLength(_) => "invalid_parameter",
        }
    }
}

/// Checks a `Content-Length` value against `max_bytes`, before anything is read.
/// Returns the bytes worth reserving for the body.
pub fn check_declared(content_length: Option<&str>, max_bytes: u64) -> Result<u64, BodyError> {
    let Some(text) = content_length else { return Ok(0) };
    let declared = super::param::parse_u64("content-length", text.trim(), 0..=u64::MAX)?;
    if declared > max_bytes {
        return Err(BodyError::DeclaredTooLarge { declared, max_bytes });
    }
    Ok(declared.min(MAX_RESERVE_BYTES))
}

/// A body being read: the bytes so far, never more than the limit.
#[derive(Debug)]
pub struct Limited {
    max_bytes: u64,
    buf: Vec<u8>,
}

impl Limited {
    pub fn new(max_bytes: u64, reserve_bytes: u64) -> Limited {
        let reserve = usize::try_from(reserve_bytes.min(max_bytes)).unwrap_or(0);
        Limited { max_bytes, buf: Vec::with_capacity(reserve) }
    }

    /// Whether `len` more bytes would stay within the limit.
    pub fn admit(&self, len: u64) -> Result<(), BodyError> {
        if (self.buf.len() as u64).saturating_add(len) > self.max_bytes {
            return Err(BodyError::TooLarge { max_bytes: self.max_bytes });
        }
        Ok(())
    }

    /// Adds the next chunk, or refuses it (keeping nothing more) when it passes the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        self.admit(chunk.len() as u64)?;
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

impl From<BodyError> for super::ApiError {
    fn from(e: BodyError) -> Self {
        super::ApiError::new(e.status(), e.code(), e.to_string())
    }
}

/// Reads `req`'s body, at most `max_bytes` of it (see the module doc). Past the limit the
/// reader is released, not cancelled: the rest is left unread, and the 413 still reaches the
/// client through any proxy that pipes the body (a cancelled pipe fails the whole exchange).
#[cfg(target_arch = "wasm32")]
pub async fn read(req: &mut worker::Request, max_bytes: u64) -> Result<Vec<u8>, super::ApiError> {
    use wasm_bindgen::JsCast;
    let declared = req.headers().get("content-length")?;
    let reserve = check_declared(declared.as_deref(), max_bytes)?;
    let Some(stream) = req.inner().body() else { return Ok(Vec::new()) };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let js = |e: wasm_bindgen::JsValue| super::ApiError::new(400, "body_unreadable", format!("{e:?}"));
    let mut body = Limited::new(max_bytes, reserve);
    loop {
        let next = wasm_bindgen_futures::JsFuture::from(reader.read()).await.map_err(js)?;
        let done = js_sys::Reflect::get(&next, &"done".into()).map_err(js)?;
        if done.as_bool().unwrap_or(true) {
            break;
        }
        let chunk: js_sys::Uint8Array =
            js_sys::Reflect::get(&next, &"value".into()).map_err(js)?.unchecked_into();
        // Counted before it is copied: a chunk past the limit never enters Wasm memory.
        if let Err(e) = body.admit(u64::from(chunk.length())) {
            reader.release_lock();
            return Err(e.into());
        }
        body.push(&chunk.to_vec())?;
    }
    Ok(body.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let e = check_declared(Some("419430400"), 1 << 20).unwrap_err();
        assert_eq!(e, BodyError::DeclaredTooLarge { declared: 400 << 20, max_bytes: 1 << 20 });
        assert_eq!((e.status(), e.code()), (413, "body_too_large"));
        assert_eq!(check_declared(Some("18446744073709551615"), 10).unwrap_err().status(), 413);
    }

    #[test]
    fn a_declared_length_within_the_limit_reserves_at_most_a_mebibyte() {
        assert_eq!(check_declared(None, 10), Ok(0));
        assert_eq!(check_declared(Some("10"), 10), Ok(10));
        assert_eq!(check_declared(Some(" 10 "), 10), Ok(10));
        assert_eq!(check_declared(Some("0"), 10), Ok(0));
        assert_eq!(check_declared(Some("33554432"), 64 << 20), Ok(MAX_RESERVE_BYTES));
    }

    #[test]
    fn a_malformed_length_is_a_400() {
        for v in ["-1", "1e3", "", "ten", "18446744073709551616"] {
            let e = check_declared(Some(v), 10).unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{v:?}");
            assert_eq!(e.status(), 400, "{v:?}");
            assert!(e.to_string().starts_with("content-length: "), "{e}");
        }
    }

    #[test]
    fn the_running_count_stops_at_the_limit_and_keeps_nothing_past_it() {
        let mut b = Limited::new(10, 0);
        b.push(b"12345").unwrap();
        b.push(b"").unwrap();
        b.push(b"67890").unwrap();
        assert_eq!(b.push(b"x"), Err(BodyError::TooLarge { max_bytes: 10 }));
        assert_eq!(b.finish(), b"1234567890");
        assert_eq!(Limited::new(10, 0).admit(10), Ok(()));
        assert!(Limited::new(10, 0).admit(u64::MAX).is_err());
        let mut one_big = Limited::new(10, 0);
        assert!(one_big.push(&[0u8; 11]).is_err());
        assert!(one_big.finish().is_empty());
    }

    #[test]
    fn the_reserve_never_exceeds_the_limit() {
        assert_eq!(Limited::new(4, 1 << 20).buf.capacity(), 4);
        assert!(Limited::new(0, 0).push(b"").is_ok());
        assert!(Limited::new(0, 0).push(b"a").is_err());
    }
}
