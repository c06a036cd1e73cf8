-- The loop brakes move to the sender (checked when a notification is taken
-- for delivery), so queuing one costs the ingest transaction as little as
-- possible: the rate-limit index covers only notifications taken for
-- delivery (`counted_at`, set by the sender), and Message-IDs lose their
-- unique index (they are 96-bit random; look-ups go by the ticket id our
-- Message-IDs carry, through outbox_ticket).
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_message_id_key;
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_ticket_id_fkey;
DROP INDEX IF EXISTS outbox_recipient;
ALTER TABLE outbox ADD COLUMN counted_at BIGINT;
UPDATE outbox SET counted_at = COALESCE(sent_at, created_at) WHERE status = 'sent';
CREATE INDEX outbox_counted ON outbox(to_addr, counted_at) WHERE counted_at IS NOT NULL;
