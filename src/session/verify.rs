//! `GET /v1/sessions/{key}/verify`: the local log (read::verify), then the archive: every segment
//! the session recorded as archived is read back from R2 and checked against the local log
//! (core's `ArchiveCheck`). `?archive=0` skips the archive part (it reads every segment).

use moltlog_core::store::read_one;
use moltlog_core::verify::ArchiveCheck;
use serde_json::{Value, json};
use worker::{Request, Response};

use super::SessionDO;
use crate::http::ApiError;
use crate::rt;

fn wants_archive(req: &Request) -> Result<bool, ApiError> {
    let url = req.url()?;
    match url.query_pairs().find(|(k, _)| k == "archive").map(|(_, v)| v.into_owned()).as_deref() {
        None | Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(other) => {
            Err(ApiError::bad_request("bad_query", format!("archive must be 0 or 1, got {other:?}")))
        }
    }
}

pub(super) async fn handle(so: &SessionDO, req: &Request) -> Result<Response, ApiError> {
    let archive = wants_archive(req)?;
    let mut answer = super::read::verify(so)?;
    if archive {
        let block = check_archive(so).await?;
        let ok = answer["ok"] == true && block["ok"] == true;
        answer["ok"] = Value::Bool(ok);
        answer["archive"] = block;
    } else {
        answer["archive"] = Value::Null;
    }
    Ok(rt::json(200, &answer)?)
}

/// The archive block: `ok`, `segments_checked`, `archived_seq`, and the first bad segment.
async fn check_archive(so: &SessionDO) -> Result<Value, ApiError> {
    let sql = |e: super::sql_store::SqlError| ApiError::new(500, "storage_error", e.to_string());
    let (key, rows) = so.with_live(|l| Ok((l.key.clone(), l.store.segments().map_err(sql)?)))?;
    let bucket = so.env.bucket(rt::BUCKET)?;
    let mut check = ArchiveCheck::new(key.as_str());
    for row in &rows {
        let bytes = rt::get_bytes(&bucket, &row.key).await?;
        let result = so.with_live(|l| {
            let local = |seq| read_one(&l.store, seq).ok().flatten().map(|r| r.hash);
            Ok(check.check(&row.key, bytes.as_deref(), local))
        })?;
        if let Err(bad) = result {
            return Ok(json!({
                "ok": false,
                "segments_checked": check.checked(),
                "archived_seq": check.next_seq() - 1,
                "first_bad": {"key": bad.key, "reason": bad.problem.to_string()},
            }));
        }
    }
    Ok(json!({
        "ok": true,
        "segments_checked": check.checked(),
        "archived_seq": check.next_seq() - 1,
        "first_bad": null,
    }))
}
