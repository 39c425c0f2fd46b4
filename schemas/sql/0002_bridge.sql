-- SessionDO storage, schema version 2: chat bridge and webhook delivery bookkeeping.
-- Nothing here is session state: the outbox itself is derived from events. These rows record
-- what the log cannot: sends in flight, reply credentials, and subscription delivery progress.
-- Statements are separated by semicolons at line ends; no semicolons inside statements.

-- An outbox send that started and has no final receipt yet. Written before the request goes
-- out, removed after the receipt. A row found on wake means the send's outcome is unknown.
-- `uncertain` = 1: the request got no answer (its receipt says failed, but it may have landed).
CREATE TABLE IF NOT EXISTS outbox_inflight (
  seq INTEGER PRIMARY KEY,
  attempt INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  uncertain INTEGER NOT NULL DEFAULT 0
);

-- Discord interaction tokens (valid 15 minutes), kept out of the log. `original_seq` is the
-- outbox message that claimed the interaction's deferred response (edited in place).
CREATE TABLE IF NOT EXISTS discord_interactions (
  interaction_id TEXT PRIMARY KEY,
  application_id TEXT NOT NULL,
  token TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  original_seq INTEGER
);

-- Outbound webhook subscriptions of this session (those for all sessions live in the registry).
CREATE TABLE IF NOT EXISTS subscriptions (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  kinds TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);

-- Delivery progress of every subscription that applies to this session. `batch_first` and
-- `batch_last` fix the delivery in progress before its first attempt, so that every retry sends
-- the same range under the same delivery id.
CREATE TABLE IF NOT EXISTS subscription_cursors (
  sub_id TEXT PRIMARY KEY,
  delivered_seq INTEGER NOT NULL,
  batch_first INTEGER,
  batch_last INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  paused INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);

-- The delivery log: one row per attempt, the newest kept per subscription.
CREATE TABLE IF NOT EXISTS subscription_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sub_id TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  events INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  ts_ms INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  error TEXT
);

CREATE INDEX IF NOT EXISTS subscription_deliveries_by_sub ON subscription_deliveries (sub_id, id);
