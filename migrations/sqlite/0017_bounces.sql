-- Delivery reports not linked to any notification of ours: kept for ops
-- (listed under `bounces` in the export, counted in metrics), never a
-- user, organization or ticket. The raw report is kept; a re-delivery of
-- the same Message-ID is a duplicate.
CREATE TABLE bounces (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    mailbox TEXT,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    recipients TEXT NOT NULL,
    raw BLOB,
    received_at INTEGER NOT NULL
);
