-- Notifier: per-recipient rate-limit counts and per-ticket look-ups on the outbox.
CREATE INDEX outbox_recipient ON outbox(to_addr, created_at);
CREATE INDEX outbox_ticket ON outbox(ticket_id);
