//! A running moltlog Worker over HTTP: the export API (one streamed bundle), the events API in
//! segment form (`Accept: application/vnd.moltlog.segment`, for resumable pulls) and blobs.
//! Sends `Authorization: Bearer` when given a token.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;
use moltlog_core::chain::{self, Hash};
use ureq::http::Response;
use ureq::{Agent, Body};

use crate::objects::SourceError;

/// Media type of the events API's segment form.
pub const SEGMENT_MEDIA_TYPE: &str = "application/vnd.moltlog.segment";
/// Records per events page (the API's maximum).
pub const PAGE: u32 = 1000;

pub struct Api {
    base: String,
    token: Option<String>,
    agent: Agent,
}

impl Api {
    pub fn new(base: &str, token: Option<&str>) -> Api {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .build()
            .into();
        Api { base: base.trim_end_matches('/').to_owned(), token: token.map(str::to_owned), agent }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn get(&self, path: &str, accept: Option<&str>) -> Result<Response<Body>, SourceError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        req.call().map_err(|e| {
            SourceError::Http(format!(
                "cannot reach {}: {e}. Check the URL and that the Worker is running (`make dev` serves one \
                 on http://127.0.0.1:8787)",
                self.base
            ))
        })
    }

    /// The error a non-success answer means, with the server's own message.
    fn refused(&self, what: &str, mut resp: Response<Body>) -> SourceError {
        let status = resp.status().as_u16();
        let text = resp.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        let hint = match status {
            401 | 403 if self.token.is_none() => " Pass an API token with --token (or MOLTLOG_TOKEN).",
            401 | 403 => " Check that the token is valid and may read this session.",
            _ => "",
        };
        SourceError::Http(format!("{what}: {} answered HTTP {status}: {message}.{hint}", self.base))
    }

    /// Streams the session's export bundle into `dest` (a temporary file the caller renames),
    /// counting bytes on `progress`. Returns its size.
    pub fn download_export(
        &self,
        session_key: &str,
        blobs: bool,
        dest: &Path,
        progress: &ProgressBar,
    ) -> Result<u64, SourceError> {
        let path = format!("/v1/sessions/{session_key}/export{}", if blobs { "?blobs=1" } else { "" });
        let mut resp = self.get(&path, None)?;
        if !resp.status().is_success() {
            return Err(self.refused("export", resp));
        }
        let mut file = fs::File::create(dest).map_err(SourceError::io("creating", dest))?;
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                SourceError::Http(format!("export download from {} broke off: {e}", self.base))
            })?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(SourceError::io("writing", dest))?;
            total += n as u64;
            progress.set_position(total);
        }
        file.sync_data().map_err(SourceError::io("writing", dest))?;
        Ok(total)
    }

    /// Up to `PAGE` records after `after`, as a segment; `None` when there are none.
    pub fn events_segment(&self, session_key: &str, after: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let path = format!("/v1/sessions/{session_key}/events?after={after}&limit={PAGE}");
        let mut resp = self.get(&path, Some(SEGMENT_MEDIA_TYPE))?;
        match resp.status().as_u16() {
            204 => Ok(None),
            200 => {
                let bytes = resp
                    .body_mut()
                    .with_config()
                    .limit(u64::MAX)
                    .read_to_vec()
                    .map_err(|e| SourceError::Http(format!("reading events after seq {after}: {e}")))?;
                Ok(Some(bytes))
            }
            _ => Err(self.refused(&format!("events after seq {after}"), resp)),
        }
    }

    /// Every session whose key starts with `prefix`, from `GET /v1/sessions?prefix=&after=&limit=`,
    /// paged on `next_after` (an operator route: needs an admin token or dev mode).
    pub fn session_keys(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let mut keys = Vec::new();
        let mut after = String::new();
        loop {
            let path = format!("/v1/sessions?prefix={prefix}&after={after}&limit={PAGE}");
            let mut resp = self.get(&path, None)?;
            if resp.status().as_u16() != 200 {
                return Err(self.refused(&format!("listing sessions {prefix}*"), resp));
            }
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .map_err(|e| SourceError::Http(format!("reading the session list: {e}")))?;
            let page: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| SourceError::Http(format!("the session list is not JSON: {e}")))?;
            for s in page["sessions"].as_array().into_iter().flatten() {
                if let Some(k) = s["key"].as_str() {
                    keys.push(k.to_owned());
                }
            }
            match page["next_after"].as_str() {
                Some(next) if next > after.as_str() => after = next.to_owned(),
                _ => break,
            }
        }
        Ok(keys)
    }

    /// A blob's content; `None` when the server has no such blob.
    pub fn blob(&self, sha256: &Hash) -> Result<Option<Vec<u8>>, SourceError> {
        let hex = chain::to_hex(sha256);
        let mut resp = self.get(&format!("/v1/blobs/{hex}"), None)?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200 => Ok(Some(
                resp.body_mut()
                    .with_config()
                    .limit(u64::MAX)
                    .read_to_vec()
                    .map_err(|e| SourceError::Http(format!("reading blob {hex}: {e}")))?,
            )),
            _ => Err(self.refused(&format!("blob {hex}"), resp)),
        }
    }
}
