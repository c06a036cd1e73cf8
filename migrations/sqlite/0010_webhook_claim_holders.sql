-- Webhook idempotency claims name their holder (a daemon) and last until
-- claimed_until, renewed by the holder every second while its request is
-- alive: another daemon takes over the pending claim of a daemon that died
-- within seconds of its last renewal. Claims written by earlier versions
-- (both columns NULL) last 60 s from created_at, as before.
ALTER TABLE webhook_requests ADD COLUMN holder TEXT;
ALTER TABLE webhook_requests ADD COLUMN claimed_until INTEGER;
