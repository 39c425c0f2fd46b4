//! `GET /v1/sessions/{key}/export`: the verifiable audit bundle (core::bundle) as one streamed
//! download: R2 snapshots, archived segments, the unarchived tail as a last segment, and with
//! `?blobs=1` the blobs the log references.
//!
//! The answer is 200 before the R2 copies are read, so a part that cannot be read mid-stream
//! (an object missing or of the wrong size) cannot change the status: the stream then ends with
//! the bundle's failure trailer naming the object, never with a clean end or a silent cut.

use std::collections::VecDeque;

use futures::stream;
use moltlog_core::bundle::{Manifest, Tag, Writer};
use moltlog_core::chain::Hash;
use moltlog_core::engine::blob_object_key;
use moltlog_core::segment;
use moltlog_core::store::LogStore;
use worker::{Bucket, Headers, Request, Response, console_error};

use super::SessionDO;
use crate::http::ApiError;
use crate::rt;

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.moltlog.bundle";

enum Part {
    /// Bytes already written through the bundle writer.
    Raw(Vec<u8>),
    /// A segment encoded from the live log.
    Segment(Vec<u8>),
    /// An R2 object copied whole into a section of this tag.
    Object {
        tag: Tag,
        key: String,
        size: u64,
    },
    Blob {
        sha256: Hash,
        size: u64,
    },
}

fn sql(e: super::sql_store::SqlError) -> ApiError {
    ApiError::new(500, "storage_error", e.to_string())
}

pub(super) async fn handle(so: &SessionDO, req: &Request) -> Result<Response, ApiError> {
    let url = req.url()?;
    let blobs = url.query_pairs().any(|(k, v)| k == "blobs" && (v == "1" || v == "true"));
    let (manifest, mut parts) = so.with_live(|l| {
        let head = l.engine.head();
        let segments = l.store.segments().map_err(sql)?;
        let archived_seq =
            segments.iter().filter(|r| r.last_seq <= head.seq).map(|r| r.last_seq).max().unwrap_or(0);
        let manifest = Manifest {
            session_key: l.key.to_string(),
            head_seq: head.seq,
            head_hash: head.hash,
            archived_seq,
            created_ms: rt::now_ms(),
        };
        let mut parts = VecDeque::new();
        for (seq, key, size, stale) in l.store.r2_snapshots().map_err(sql)? {
            if !stale && seq <= head.seq {
                parts.push_back(Part::Object { tag: Tag::Snapshot, key, size });
            }
        }
        for row in &segments {
            if row.stale {
                // Its R2 copy still holds erased content: send the current records instead.
                let records =
                    l.store.read(row.first_seq, (row.last_seq - row.first_seq + 1) as u32).map_err(sql)?;
                let prev = prev_hash(l, row.first_seq)?;
                parts.push_back(Part::Segment(segment::encode(l.key.as_str(), prev, &records, rt::now_ms())));
            } else {
                parts.push_back(Part::Object { tag: Tag::Segment, key: row.key.clone(), size: row.bytes });
            }
        }
        let mut from = archived_seq + 1;
        while from <= head.seq {
            let mut records = l.store.read(from, 1000).map_err(sql)?;
            // A recorded gap ends a segment; the next one starts with its event.
            moltlog_core::recovery::cut_at_gap(&mut records);
            let (Some(first), Some(last)) = (records.first().map(|r| r.seq), records.last().map(|r| r.seq))
            else {
                break;
            };
            let prev = prev_hash(l, first)?;
            parts.push_back(Part::Segment(segment::encode(l.key.as_str(), prev, &records, rt::now_ms())));
            from = last + 1;
        }
        if blobs {
            for (sha256, size, _) in l.store.blob_refs().map_err(sql)? {
                parts.push_back(Part::Blob { sha256, size });
            }
        }
        Ok((manifest, parts))
    })?;
    let mut writer = Writer::new();
    let mut opening = writer.start();
    opening.extend(writer.manifest(&manifest));
    parts.push_front(Part::Raw(opening));
    let bucket = so.env.bucket(rt::BUCKET)?;
    let session_key = manifest.session_key.clone();
    let body = stream::unfold((parts, Some(writer), bucket), move |(mut parts, mut writer, bucket)| {
        let session_key = session_key.clone();
        async move {
            let w = writer.as_mut()?; // None: the end section or the failure trailer was sent
            let chunk = match parts.pop_front() {
                None => Ok(writer.take().expect("present").finish()),
                Some(Part::Raw(b)) => Ok(b),
                Some(Part::Segment(b)) => Ok(w.section(Tag::Segment, b)),
                Some(Part::Object { tag, key, size }) => object_section(w, &bucket, tag, &key, size).await,
                Some(Part::Blob { sha256, size }) => blob_section(w, &bucket, &sha256, size).await,
            };
            // Each part is built whole before it is sent, so a failure falls between sections.
            let chunk = chunk.or_else(|e| {
                let message = e.to_string();
                console_error!("export of {session_key} failed: {message}");
                Ok::<_, worker::Error>(writer.take().expect("present").fail(&message))
            });
            Some((chunk, (parts, writer, bucket)))
        }
    });
    let headers = Headers::new();
    headers.set("content-type", BUNDLE_MEDIA_TYPE)?;
    let name = manifest.session_key.replace(':', "_");
    headers.set("content-disposition", &format!("attachment; filename=\"{name}.moltlog\""))?;
    Ok(Response::from_stream(body)?.with_headers(headers))
}

fn prev_hash(l: &super::live::Live, first: u64) -> Result<Hash, ApiError> {
    moltlog_core::recovery::hash_before(&l.store, l.key.as_str(), first)
        .map_err(sql)?
        .ok_or_else(|| ApiError::internal(format!("the record before seq {first} is missing")))
}

async fn object_section(
    w: &mut Writer,
    bucket: &Bucket,
    tag: Tag,
    key: &str,
    size: u64,
) -> worker::Result<Vec<u8>> {
    let bytes = rt::get_bytes(bucket, key)
        .await?
        .ok_or_else(|| worker::Error::RustError(format!("{key} is missing from R2")))?;
    if bytes.len() as u64 != size {
        return Err(worker::Error::RustError(format!("{key} is {} bytes, expected {size}", bytes.len())));
    }
    Ok(w.section(tag, bytes))
}

async fn blob_section(w: &mut Writer, bucket: &Bucket, sha256: &Hash, size: u64) -> worker::Result<Vec<u8>> {
    let key = blob_object_key(sha256);
    let hex = moltlog_core::chain::to_hex(sha256);
    let bytes = rt::get_bytes(bucket, &key)
        .await?
        .ok_or_else(|| worker::Error::RustError(format!("blob {hex} ({key}) is missing from R2")))?;
    if bytes.len() as u64 != size {
        return Err(worker::Error::RustError(format!(
            "blob {hex} ({key}) is {} bytes in R2, the log says {size}",
            bytes.len()
        )));
    }
    let mut out = w.blob_header(sha256, size);
    out.extend(w.content(bytes));
    Ok(out)
}
