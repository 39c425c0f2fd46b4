-- SessionDO storage, schema version 1. One Durable Object holds one session.
-- Statements are separated by semicolons at line ends; no semicolons inside statements.

-- Small facts about the session: its key, archive and snapshot progress.
CREATE TABLE IF NOT EXISTS meta (
  k TEXT PRIMARY KEY,
  v TEXT NOT NULL
);

-- The log, as pages: each row holds the consecutive records first_seq..=last_seq as record
-- frames (schemas/FORMAT.md §4.1: header, chain hash, redaction flag, body — the body being the
-- skeleton once redacted), up to about 512 KiB. One append writes one row, not one per event.
-- last_hash is the chain hash of last_seq (the head, without decoding the page).
CREATE TABLE IF NOT EXISTS event_pages (
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  last_hash BLOB NOT NULL,
  records BLOB NOT NULL
);

-- Idempotency keys (batch keys and event keys) and what they answered.
CREATE TABLE IF NOT EXISTS idem (
  key TEXT PRIMARY KEY,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  last_hash BLOB NOT NULL,
  fingerprint BLOB NOT NULL
);

-- Local snapshots, split into parts because a row holds at most 2 MB.
CREATE TABLE IF NOT EXISTS snapshot_parts (
  seq INTEGER NOT NULL,
  part INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (seq, part)
);

-- Segments archived to R2. `stale` = 1 once a redaction erased a body inside: the archiver then
-- writes a new generation under a new key and deletes this one.
CREATE TABLE IF NOT EXISTS segments (
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  generation INTEGER NOT NULL,
  r2_key TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  stale INTEGER NOT NULL DEFAULT 0
);

-- Snapshots written to R2. `stale` = 1 once a redaction erased content they hold: deleted.
CREATE TABLE IF NOT EXISTS r2_snapshots (
  seq INTEGER PRIMARY KEY,
  r2_key TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  stale INTEGER NOT NULL DEFAULT 0
);

-- Blobs (R2 `blobs/sha256/{hex}`) referenced by events, for exports.
CREATE TABLE IF NOT EXISTS blob_refs (
  sha256 BLOB NOT NULL,
  seq INTEGER NOT NULL,
  len INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  PRIMARY KEY (sha256, seq)
);
