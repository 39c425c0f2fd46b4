//! The session log in the Durable Object's SQLite storage: `LogStore` for the engine, plus the
//! archive bookkeeping the alarm needs. Passes core's store conformance suite inside workerd.

use moltlog_core::Hash;
use moltlog_core::StoredRecord;
use moltlog_core::state::Head;
use moltlog_core::store::{CommitBatch, CommitError, KeyEntry, LogStore};
use wasm_bindgen::JsValue;
use worker::{SqlStorage, SqlStorageValue as V, Storage};

use super::tx::transaction_sync;

/// Snapshots are stored in parts of this size (a row holds at most 2 MB).
const SNAPSHOT_PART_BYTES: usize = 1 << 20;

const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../../schemas/sql/0001_init.sql")),
    (2, include_str!("../../schemas/sql/0002_bridge.sql")),
    (3, include_str!("../../schemas/sql/0003_outbox_parts.sql")),
];

#[derive(Debug, Clone, thiserror::Error)]
#[error("SQLite storage: {0}")]
pub struct SqlError(pub String);

impl From<worker::Error> for SqlError {
    fn from(e: worker::Error) -> Self {
        SqlError(e.to_string())
    }
}

#[derive(Clone)]
pub struct SqlStore {
    /// The `DurableObjectStorage` object, for `transactionSync`.
    raw: JsValue,
    sql: SqlStorage,
}

/// A u64 as an SQL integer; a value past the column's range (only a client could name one) is
/// an error, never a panic or a wrap.
pub(super) fn int(v: u64) -> Result<V, SqlError> {
    i64::try_from(v).map(V::Integer).map_err(|_| SqlError(format!("{v} does not fit an SQLite integer")))
}

pub(super) fn as_u64(v: &V) -> Result<u64, SqlError> {
    match v {
        V::Integer(i) if *i >= 0 => Ok(*i as u64),
        V::Float(f) if *f >= 0.0 && f.fract() == 0.0 => Ok(*f as u64),
        other => Err(SqlError(format!("expected an integer column, got {other:?}"))),
    }
}

pub(super) fn as_bytes(v: V) -> Result<Vec<u8>, SqlError> {
    match v {
        V::Blob(b) => Ok(b),
        V::Null => Ok(Vec::new()),
        other => Err(SqlError(format!("expected a blob column, got {other:?}"))),
    }
}

pub(super) fn as_hash(v: V) -> Result<Hash, SqlError> {
    as_bytes(v)?.try_into().map_err(|b: Vec<u8>| SqlError(format!("hash column has {} bytes", b.len())))
}

pub(super) fn exec(sql: &SqlStorage, q: &str, args: Vec<V>) -> Result<worker::SqlCursor, SqlError> {
    Ok(sql.exec(q, Some(args))?)
}

/// Most bound parameters one Durable Object SQL statement takes.
const MAX_BOUND_PARAMETERS: usize = 100;

/// Inserts rows (all of the same width) with as few statements as the parameter limit allows.
fn insert_rows(sql: &SqlStorage, insert: &str, rows: impl Iterator<Item = Vec<V>>) -> Result<(), SqlError> {
    let mut rows = rows.peekable();
    let Some(width) = rows.peek().map(Vec::len) else { return Ok(()) };
    let per_statement = (MAX_BOUND_PARAMETERS / width).max(1);
    let tuple = format!("({})", vec!["?"; width].join(", "));
    loop {
        let chunk: Vec<Vec<V>> = rows.by_ref().take(per_statement).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        let q = format!("{insert} {}", vec![tuple.as_str(); chunk.len()].join(", "));
        exec(sql, &q, chunk.into_iter().flatten().collect())?;
    }
}

pub(super) fn rows(sql: &SqlStorage, q: &str, args: Vec<V>) -> Result<Vec<Vec<V>>, SqlError> {
    exec(sql, q, args)?.raw().map(|r| r.map_err(SqlError::from)).collect()
}

impl SqlStore {
    /// Opens the store, applying any pending schema migrations.
    pub fn open(storage: &Storage) -> Result<SqlStore, SqlError> {
        let sql = storage.sql();
        let raw: &JsValue = storage.as_raw().as_ref();
        let store = SqlStore { raw: raw.clone(), sql };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), SqlError> {
        exec(&self.sql, "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)", vec![])?;
        let current: u32 = self.meta("schema_version")?.and_then(|v| v.parse().ok()).unwrap_or(0);
        for &(version, ddl) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            let sql = self.sql.clone();
            transaction_sync(&self.raw, move || {
                for stmt in ddl.split(";\n").map(str::trim).filter(|s| !s.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))) {
                    sql.exec(stmt, None).map_err(|e| format!("migration {version}: {e}"))?;
                }
                sql.exec(
                    "INSERT INTO meta (k, v) VALUES ('schema_version', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                    Some(vec![V::String(version.to_string())]),
                )
                .map_err(|e| e.to_string())?;
                Ok(())
            })
            .map_err(SqlError)?;
        }
        Ok(())
    }

    pub fn meta(&self, k: &str) -> Result<Option<String>, SqlError> {
        let r = rows(&self.sql, "SELECT v FROM meta WHERE k = ?", vec![V::String(k.into())])?;
        Ok(r.into_iter().next().and_then(|mut row| match row.pop() {
            Some(V::String(s)) => Some(s),
            _ => None,
        }))
    }

    pub fn meta_u64(&self, k: &str) -> Result<u64, SqlError> {
        Ok(self.meta(k)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub fn set_meta(&self, k: &str, v: &str) -> Result<(), SqlError> {
        exec(
            &self.sql,
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            vec![V::String(k.into()), V::String(v.into())],
        )?;
        Ok(())
    }

    pub fn delete_meta(&self, k: &str) -> Result<(), SqlError> {
        exec(&self.sql, "DELETE FROM meta WHERE k = ?", vec![V::String(k.into())])?;
        Ok(())
    }

    /// Records `first..=last` as their stored frames (for archive segments).
    pub fn frames(&self, first: u64, last: u64) -> Result<super::pages::Run, SqlError> {
        super::pages::run(&self.sql, first, last)
    }

    pub fn record_at(&self, seq: u64) -> Result<Option<StoredRecord>, SqlError> {
        Ok(self.read(seq, 1)?.into_iter().next().filter(|r| r.seq == seq))
    }

    /// Records an archived segment (replacing an older generation of the same range).
    pub fn put_segment_row(
        &self,
        first: u64,
        last: u64,
        generation: u32,
        key: &str,
        bytes: u64,
    ) -> Result<(), SqlError> {
        exec(
            &self.sql,
            "INSERT INTO segments (first_seq, last_seq, generation, r2_key, bytes, stale) VALUES (?, ?, ?, ?, ?, 0)
             ON CONFLICT(first_seq) DO UPDATE SET last_seq = excluded.last_seq, generation = excluded.generation,
             r2_key = excluded.r2_key, bytes = excluded.bytes, stale = 0",
            vec![int(first)?, int(last)?, int(u64::from(generation))?, V::String(key.into()), int(bytes)?],
        )?;
        Ok(())
    }

    /// Archived segments: (first, last, generation, key, bytes, stale), in seq order.
    pub fn segments(&self) -> Result<Vec<SegmentRow>, SqlError> {
        self.segments_where("")
    }

    fn segments_where(&self, filter: &str) -> Result<Vec<SegmentRow>, SqlError> {
        rows(
            &self.sql,
            &format!("SELECT first_seq, last_seq, generation, r2_key, bytes, stale FROM segments {filter} ORDER BY first_seq"),
            vec![],
        )?
        .into_iter()
        .map(|r| match r.as_slice() {
            [f, l, g, V::String(k), b, s] => Ok(SegmentRow {
                first_seq: as_u64(f)?,
                last_seq: as_u64(l)?,
                generation: as_u64(g)? as u32,
                key: k.clone(),
                bytes: as_u64(b)?,
                stale: as_u64(s)? != 0,
            }),
            other => Err(SqlError(format!("bad segments row {other:?}"))),
        })
        .collect()
    }

    /// Marks archived copies that hold content a redaction erased after they were written.
    pub fn mark_stale(
        &self,
        segment_first_seq: Option<u64>,
        r2_snapshot_seq: Option<u64>,
    ) -> Result<(), SqlError> {
        if let Some(first) = segment_first_seq {
            exec(&self.sql, "UPDATE segments SET stale = 1 WHERE first_seq = ?", vec![int(first)?])?;
        }
        if let Some(seq) = r2_snapshot_seq {
            exec(&self.sql, "UPDATE r2_snapshots SET stale = 1 WHERE seq = ?", vec![int(seq)?])?;
        }
        Ok(())
    }

    /// Whether any archived copy waits to be rewritten or deleted after a redaction.
    pub fn any_stale(&self) -> Result<bool, SqlError> {
        let r = rows(
            &self.sql,
            "SELECT 1 FROM segments WHERE stale = 1 UNION ALL SELECT 1 FROM r2_snapshots WHERE stale = 1 LIMIT 1",
            vec![],
        )?;
        Ok(!r.is_empty())
    }

    /// Segments waiting to be rewritten after a redaction.
    pub fn stale_segments(&self) -> Result<Vec<SegmentRow>, SqlError> {
        self.segments_where("WHERE stale = 1")
    }

    pub fn put_r2_snapshot_row(&self, seq: u64, key: &str, bytes: u64) -> Result<(), SqlError> {
        exec(
            &self.sql,
            "INSERT INTO r2_snapshots (seq, r2_key, bytes, stale) VALUES (?, ?, ?, 0)
             ON CONFLICT(seq) DO UPDATE SET r2_key = excluded.r2_key, bytes = excluded.bytes, stale = 0",
            vec![int(seq)?, V::String(key.into()), int(bytes)?],
        )?;
        Ok(())
    }

    /// Snapshots in R2: (seq, key, bytes, stale), ascending.
    pub fn r2_snapshots(&self) -> Result<Vec<(u64, String, u64, bool)>, SqlError> {
        rows(&self.sql, "SELECT seq, r2_key, bytes, stale FROM r2_snapshots ORDER BY seq", vec![])?
            .into_iter()
            .map(|r| match r.as_slice() {
                [q, V::String(k), b, s] => Ok((as_u64(q)?, k.clone(), as_u64(b)?, as_u64(s)? != 0)),
                other => Err(SqlError(format!("bad r2_snapshots row {other:?}"))),
            })
            .collect()
    }

    pub fn delete_r2_snapshot_row(&self, seq: u64) -> Result<(), SqlError> {
        exec(&self.sql, "DELETE FROM r2_snapshots WHERE seq = ?", vec![int(seq)?])?;
        Ok(())
    }

    /// Distinct blobs the log references: (sha256, len, content_type).
    pub fn blob_refs(&self) -> Result<Vec<(Hash, u64, String)>, SqlError> {
        rows(
            &self.sql,
            "SELECT sha256, max(len), max(content_type) FROM blob_refs GROUP BY sha256 ORDER BY sha256",
            vec![],
        )?
        .into_iter()
        .map(|r| {
            let mut it = r.into_iter();
            let sha = as_hash(it.next().unwrap_or(V::Null))?;
            let len = as_u64(&it.next().unwrap_or(V::Null))?;
            let ct = match it.next() {
                Some(V::String(s)) => s,
                _ => String::new(),
            };
            Ok((sha, len, ct))
        })
        .collect()
    }

    /// Drops every table (test harness only: simulates a Durable Object that lost its storage).
    #[cfg(feature = "test-harness")]
    pub fn wipe(&self) -> Result<(), SqlError> {
        for t in [
            "event_pages",
            "idem",
            "snapshot_parts",
            "segments",
            "r2_snapshots",
            "blob_refs",
            "outbox_inflight",
            "discord_interactions",
            "subscriptions",
            "subscription_cursors",
            "subscription_deliveries",
            "meta",
        ] {
            exec(&self.sql, &format!("DROP TABLE IF EXISTS {t}"), vec![])?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRow {
    pub first_seq: u64,
    pub last_seq: u64,
    pub generation: u32,
    pub key: String,
    pub bytes: u64,
    pub stale: bool,
}

impl LogStore for SqlStore {
    type Error = SqlError;

    fn head(&self) -> Result<Option<Head>, SqlError> {
        super::pages::head(&self.sql)
    }

    fn read(&self, from_seq: u64, limit: u32) -> Result<Vec<StoredRecord>, SqlError> {
        super::pages::read(&self.sql, from_seq, limit)
    }

    fn append(&mut self, batch: &CommitBatch) -> Result<(), CommitError<SqlError>> {
        let sql = self.sql.clone();
        let expected_seq = batch.expected_seq;
        let batch = batch.clone();
        let result = transaction_sync(&self.raw, move || {
            let err = |e: SqlError| e.0;
            let head_seq = super::pages::head(&sql).map_err(err)?.map_or(0, |h| h.seq);
            if head_seq != batch.expected_seq {
                return Ok(Err(head_seq));
            }
            // Multi-row inserts: far fewer crossings into the runtime than one statement a row.
            super::pages::insert(&sql, &batch.records).map_err(err)?;
            let keys = batch
                .keys
                .iter()
                .map(|(key, e)| {
                    Ok(vec![
                        V::String(key.clone()),
                        int(e.first_seq)?,
                        int(e.last_seq)?,
                        V::Blob(e.last_hash.to_vec()),
                        V::Blob(e.fingerprint.to_vec()),
                    ])
                })
                .collect::<Result<Vec<_>, SqlError>>()
                .map_err(err)?;
            insert_rows(
                &sql,
                "INSERT INTO idem (key, first_seq, last_seq, last_hash, fingerprint) VALUES",
                keys.into_iter(),
            )
            .map_err(err)?;
            let blob_refs = batch
                .blob_refs
                .iter()
                .map(|(seq, b)| {
                    Ok(vec![
                        V::Blob(b.sha256.to_vec()),
                        int(*seq)?,
                        int(b.len)?,
                        V::String(b.content_type.clone()),
                    ])
                })
                .collect::<Result<Vec<_>, SqlError>>()
                .map_err(err)?;
            insert_rows(
                &sql,
                "INSERT OR IGNORE INTO blob_refs (sha256, seq, len, content_type) VALUES",
                blob_refs.into_iter(),
            )
            .map_err(err)?;
            for e in &batch.erasures {
                super::pages::erase(&sql, e.seq, &e.skeleton).map_err(err)?;
                // Every copy of the erased content goes: local snapshots now, archived segments and
                // R2 snapshots by the archiver (marked stale here, in the same transaction).
                exec(
                    &sql,
                    "DELETE FROM snapshot_parts WHERE seq >= ? AND seq <= ?",
                    vec![int(e.seq).map_err(err)?, int(head_seq).map_err(err)?],
                )
                .map_err(err)?;
                exec(
                    &sql,
                    "UPDATE segments SET stale = 1 WHERE first_seq <= ? AND last_seq >= ?",
                    vec![int(e.seq).map_err(err)?, int(e.seq).map_err(err)?],
                )
                .map_err(err)?;
                exec(
                    &sql,
                    "UPDATE r2_snapshots SET stale = 1 WHERE seq >= ? AND seq <= ?",
                    vec![int(e.seq).map_err(err)?, int(head_seq).map_err(err)?],
                )
                .map_err(err)?;
            }
            Ok(Ok(()))
        });
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(head_seq)) => Err(CommitError::Conflict { expected_seq, head_seq }),
            Err(e) => Err(CommitError::Store(SqlError(e))),
        }
    }

    fn lookup_key(&self, key: &str) -> Result<Option<KeyEntry>, SqlError> {
        let r = rows(
            &self.sql,
            "SELECT first_seq, last_seq, last_hash, fingerprint FROM idem WHERE key = ?",
            vec![V::String(key.into())],
        )?;
        r.into_iter()
            .next()
            .map(|row| {
                let mut it = row.into_iter();
                let mut next = || it.next().unwrap_or(V::Null);
                Ok(KeyEntry {
                    first_seq: as_u64(&next())?,
                    last_seq: as_u64(&next())?,
                    last_hash: as_hash(next())?,
                    fingerprint: as_hash(next())?,
                })
            })
            .transpose()
    }

    fn put_snapshot(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SqlError> {
        let sql = self.sql.clone();
        let bytes = bytes.to_vec();
        transaction_sync(&self.raw, move || {
            exec(&sql, "DELETE FROM snapshot_parts WHERE seq = ?", vec![int(seq).map_err(|e| e.0)?])
                .map_err(|e| e.0)?;
            for (i, part) in bytes.chunks(SNAPSHOT_PART_BYTES).enumerate() {
                exec(
                    &sql,
                    "INSERT INTO snapshot_parts (seq, part, bytes) VALUES (?, ?, ?)",
                    vec![int(seq).map_err(|e| e.0)?, int(i as u64).map_err(|e| e.0)?, V::Blob(part.to_vec())],
                )
                .map_err(|e| e.0)?;
            }
            Ok(())
        })
        .map_err(SqlError)
    }

    fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, SqlError> {
        let Some(&seq) = self.snapshot_seqs()?.last() else { return Ok(None) };
        let mut bytes = Vec::new();
        for row in
            rows(&self.sql, "SELECT bytes FROM snapshot_parts WHERE seq = ? ORDER BY part", vec![int(seq)?])?
        {
            bytes.extend(as_bytes(row.into_iter().next().unwrap_or(V::Null))?);
        }
        Ok(Some((seq, bytes)))
    }

    fn snapshot_seqs(&self) -> Result<Vec<u64>, SqlError> {
        rows(&self.sql, "SELECT DISTINCT seq FROM snapshot_parts ORDER BY seq", vec![])?
            .iter()
            .map(|r| as_u64(r.first().unwrap_or(&V::Null)))
            .collect()
    }

    fn prune_snapshots_before(&mut self, seq: u64) -> Result<(), SqlError> {
        exec(&self.sql, "DELETE FROM snapshot_parts WHERE seq < ?", vec![int(seq)?])?;
        Ok(())
    }
}
