-- Fewer indexes on random keys written by every message (docs/BENCHMARKS.md,
-- "SQLite at scale"). Messages stored from now on are found by their
-- Message-ID in `comments` alone: `thread_refs` keeps the rows older versions
-- wrote and gets no more.
--
-- Comments and attachments name their blob by number as well as by hash.
-- A number grows with time, so the indexes that find a blob's rows are
-- written at their end; the hash indexes took a page of their own for every
-- message once the store was large (docs/BENCHMARKS.md, "SQLite at scale").
-- The hash indexes now hold only rows without a number: those made before
-- this and naming a blob without a location. A location rows name cannot be
-- deleted (the foreign keys), so a number always leads to its blob.
CREATE TABLE blob_locations_numbered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL UNIQUE,
    pack TEXT NOT NULL,
    pos BIGINT NOT NULL,
    size BIGINT NOT NULL,
    used_at BIGINT NOT NULL
);
INSERT INTO blob_locations_numbered (sha256, pack, pos, size, used_at)
    SELECT sha256, pack, pos, size, used_at FROM blob_locations ORDER BY rowid;
DROP TABLE blob_locations;
ALTER TABLE blob_locations_numbered RENAME TO blob_locations;
CREATE INDEX blob_locations_pack ON blob_locations (pack);
ALTER TABLE comments ADD COLUMN raw_blob BIGINT REFERENCES blob_locations (id);
ALTER TABLE attachments ADD COLUMN blob BIGINT REFERENCES blob_locations (id);
UPDATE comments SET raw_blob = (SELECT b.id FROM blob_locations b WHERE b.sha256 = comments.raw_sha256)
    WHERE raw_sha256 IS NOT NULL;
UPDATE attachments SET blob = (SELECT b.id FROM blob_locations b WHERE b.sha256 = attachments.sha256)
    WHERE sha256 IS NOT NULL;
DROP INDEX comments_raw_sha256;
DROP INDEX attachments_sha256;
CREATE INDEX comments_raw_sha256 ON comments (raw_sha256) WHERE raw_sha256 IS NOT NULL AND raw_blob IS NULL;
CREATE INDEX attachments_sha256 ON attachments (sha256) WHERE sha256 IS NOT NULL AND blob IS NULL;
-- The number indexes are partial too: a look-up of rows without a number
-- then goes to the hash index, not through every such row; the foreign
-- keys' check when a location is deleted still uses them.
CREATE INDEX comments_raw_blob ON comments (raw_blob) WHERE raw_blob IS NOT NULL;
CREATE INDEX attachments_blob ON attachments (blob) WHERE blob IS NOT NULL;
-- Who wrote a comment and who asked for a ticket are not indexed either:
-- every message wrote a page of each at a random place, for look-ups only an
-- erasure and a merge of two users make (one scan of each table). PostgreSQL
-- keeps both indexes.
DROP INDEX IF EXISTS comments_author;
DROP INDEX IF EXISTS tickets_requester;
