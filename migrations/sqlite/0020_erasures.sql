-- Erasures on request: that a user's personal data was removed, and when,
-- with counts of what went; never the data itself.
CREATE TABLE erasures (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    erased_at INTEGER NOT NULL,
    comments INTEGER NOT NULL,
    tickets INTEGER NOT NULL,
    attachments INTEGER NOT NULL
);
