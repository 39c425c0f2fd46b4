-- SessionDO storage, schema version 3: progress of chat replies sent as several messages.
-- A reply longer than the platform's message limit goes out as parts, in order; each part that
-- the platform took is recorded here before the next one is sent, so a retry after a partial
-- delivery resumes at the first part without a row. Rows go when the reply's final receipt
-- (delivered or dead-lettered) is in the log. Replies sent before this version have no rows
-- and simply start at part 0.
CREATE TABLE IF NOT EXISTS outbox_parts (
  seq INTEGER NOT NULL,
  part INTEGER NOT NULL,
  remote_id TEXT,
  PRIMARY KEY (seq, part)
);
