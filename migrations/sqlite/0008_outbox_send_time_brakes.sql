-- The loop brakes move to the sender (checked when a notification is taken
-- for delivery), so queuing one costs the ingest transaction as little as
-- possible: the rate-limit index covers only notifications taken for
-- delivery (`counted_at`, set by the sender), and Message-IDs lose their
-- unique index (they are 96-bit random; look-ups go by the ticket id our
-- Message-IDs carry, through outbox_ticket). SQLite cannot drop a UNIQUE
-- column constraint, so the table is rebuilt.
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL,
    event_id INTEGER,
    trigger_name TEXT NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    message_id TEXT NOT NULL,
    in_reply_to TEXT,
    refs TEXT NOT NULL DEFAULT '',
    reply_to TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    action_index INTEGER,
    comment_id INTEGER,
    counted_at INTEGER
);
INSERT INTO outbox_new (id, ticket_id, event_id, trigger_name, to_addr, subject, body_text, body_html,
    message_id, in_reply_to, refs, reply_to, status, attempts, next_attempt_at, claimed_by,
    claimed_until, last_error, created_at, sent_at, action_index, comment_id, counted_at)
SELECT id, ticket_id, event_id, trigger_name, to_addr, subject, body_text, body_html,
    message_id, in_reply_to, refs, reply_to, status, attempts, next_attempt_at, claimed_by,
    claimed_until, last_error, created_at, sent_at, action_index, comment_id,
    CASE WHEN status = 'sent' THEN COALESCE(sent_at, created_at) END
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_ticket ON outbox(ticket_id);
CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_counted ON outbox(to_addr, counted_at) WHERE counted_at IS NOT NULL;
