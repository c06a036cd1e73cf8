-- The review queue: mail that may not act as its From address (a failing
-- DMARC result of our own MTA, a spam verdict of our filter), kept raw until
-- released or rejected. A rejected entry keeps its Message-ID and hash (not
-- its bytes) so that a re-delivery is dropped, not queued again.
CREATE TABLE review (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    mailbox TEXT,
    message_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw BLOB,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 1,
    outcome TEXT,
    decided_by TEXT,
    decided_at INTEGER,
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX review_message_id ON review(message_id);
CREATE INDEX review_received ON review(received_at);
