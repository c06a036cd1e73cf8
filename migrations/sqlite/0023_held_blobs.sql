-- Quarantined, held-for-review and kept-bounce mail keeps its raw bytes in
-- the blob store too: new rows name them by hash (`quarantine.sha256` and
-- `review.sha256` already did; `bounces.raw_sha256` now) and leave `raw`
-- NULL; `raw` stays only for rows made before this, until `intake migrate`
-- moves their bytes out. SQLite cannot drop a NOT NULL: quarantine is
-- rebuilt with the same columns.
CREATE TABLE quarantine_new (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    mailbox TEXT,
    reason TEXT NOT NULL,
    raw BLOB,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 1,
    outcome TEXT,
    received_at INTEGER NOT NULL,
    replayed_at INTEGER
);
INSERT INTO quarantine_new (id, source, mailbox, reason, raw, sha256, size, truncated, status, attempts, outcome, received_at, replayed_at)
    SELECT id, source, mailbox, reason, raw, sha256, size, truncated, status, attempts, outcome, received_at, replayed_at FROM quarantine;
DROP TABLE quarantine;
ALTER TABLE quarantine_new RENAME TO quarantine;
ALTER TABLE bounces ADD COLUMN raw_sha256 TEXT;
CREATE INDEX bounces_raw_sha256 ON bounces (raw_sha256) WHERE raw_sha256 IS NOT NULL;
