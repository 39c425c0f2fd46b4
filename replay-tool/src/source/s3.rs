//! R2 through its S3-compatible API (object_store's S3 client, path-style requests), e.g.
//! `https://<account>.r2.cloudflarestorage.com` in production or wrangler's local endpoint
//! `http://127.0.0.1:PORT/cdn-cgi/local/r2/s3` (see ../shared/TOOLCHAIN.md).
//!
//! object_store is async; the tool is not, so each call runs on a small current-thread runtime.

use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use tokio::runtime::Runtime;

use crate::objects::{ObjectInfo, ObjectSource, SourceError, session_of};

/// Where and how to reach the bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// R2 takes `auto`.
    pub region: String,
}

pub struct S3Source {
    store: AmazonS3,
    runtime: Runtime,
    endpoint: String,
    bucket: String,
}

fn s3(e: object_store::Error) -> SourceError {
    SourceError::S3(e.to_string())
}

impl S3Source {
    pub fn open(cfg: &S3Config) -> Result<S3Source, SourceError> {
        let retry =
            RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(20), ..RetryConfig::default() };
        let store = AmazonS3Builder::new()
            .with_endpoint(cfg.endpoint.trim_end_matches('/'))
            .with_bucket_name(&cfg.bucket)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(&cfg.secret_access_key)
            .with_region(&cfg.region)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_retry(retry)
            .build()
            .map_err(s3)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::S3(format!("starting the async runtime: {e}")))?;
        Ok(S3Source { store, runtime, endpoint: cfg.endpoint.clone(), bucket: cfg.bucket.clone() })
    }
}

impl ObjectSource for S3Source {
    fn describe(&self) -> String {
        format!("s3://{} at {}", self.bucket, self.endpoint)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, SourceError> {
        let p = Path::from(prefix.trim_end_matches('/'));
        let listed = self.runtime.block_on(self.store.list_with_delimiter(Some(&p))).map_err(s3)?;
        let mut out: Vec<ObjectInfo> = listed
            .objects
            .into_iter()
            .map(|o| ObjectInfo { key: o.location.to_string(), size: o.size })
            .filter(|o| o.key.starts_with(prefix))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn read_into(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, SourceError> {
        let path = Path::from(key);
        let mut start = std::mem::take(buf);
        start.clear();
        let result = self.runtime.block_on(async {
            let got = self.store.get(&path).await?;
            got.into_stream()
                .try_fold(start, |mut acc, chunk| async move {
                    acc.extend_from_slice(&chunk);
                    Ok(acc)
                })
                .await
        });
        match result {
            Ok(mut bytes) => {
                std::mem::swap(buf, &mut bytes);
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(s3(e)),
        }
    }

    fn sessions(&self) -> Result<Vec<String>, SourceError> {
        let p = Path::from("sessions");
        let listed = self.runtime.block_on(self.store.list_with_delimiter(Some(&p))).map_err(s3)?;
        let mut out: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| session_of(&format!("{p}/")).map(str::to_owned))
            .collect();
        if out.is_empty() {
            // Some S3 implementations do not group by delimiter: fall back to a full listing.
            let all: Vec<_> =
                self.runtime.block_on(self.store.list(Some(&p)).try_collect::<Vec<_>>()).map_err(s3)?;
            out = all.iter().filter_map(|o| session_of(o.location.as_ref()).map(str::to_owned)).collect();
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
