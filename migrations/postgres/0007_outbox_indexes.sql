-- Indexes that cost nothing for suppressed rows (most of a loop's or a
-- burst's notifications) and answer the rate-limit count from the index:
-- the count reads pending and sent rows of one recipient in a window, the
-- sender's claim reads pending rows by due time.
DROP INDEX outbox_recipient;
CREATE INDEX outbox_recipient ON outbox(to_addr, created_at, status) WHERE status IN ('pending', 'sent');
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE status = 'pending';
