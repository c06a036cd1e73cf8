-- When retention erased a closed ticket's content (`[retention]
-- closed_tickets_erase_after_days`); NULL while it has its content.
ALTER TABLE tickets ADD COLUMN content_erased_at BIGINT;
