-- Notifications are rendered at send time: a row names its template (trigger
-- name and action index) and the comment it quotes. Rows queued before this
-- migration keep their rendered subject/body (action_index NULL); new rows
-- write '' into those columns.
ALTER TABLE outbox ADD COLUMN action_index BIGINT;
ALTER TABLE outbox ADD COLUMN comment_id BIGINT;
