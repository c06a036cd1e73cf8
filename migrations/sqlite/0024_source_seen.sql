-- The items a source has imported, by the source's own id (a POP3 UIDL),
-- for sources whose position is a set rather than a cursor: written in
-- the transaction of the batch that stored them, forgotten once the item
-- is gone from the server.
CREATE TABLE source_seen (
    source TEXT NOT NULL,
    scope TEXT NOT NULL,
    item TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (source, scope, item)
);
