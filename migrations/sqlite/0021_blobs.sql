-- Raw mail and attachment bodies live in the blob store (`[blobs]`), once
-- by SHA-256; rows keep the hash and size. `comments.raw` and
-- `attachments.data` stay only for databases made before this, until
-- `intake migrate` moves their bytes out.
ALTER TABLE comments ADD COLUMN raw_sha256 TEXT;
ALTER TABLE comments ADD COLUMN raw_size BIGINT;
ALTER TABLE attachments ADD COLUMN sha256 TEXT;
-- Which rows still name a blob (erasure, retention, the orphan sweep).
CREATE INDEX comments_raw_sha256 ON comments (raw_sha256) WHERE raw_sha256 IS NOT NULL;
CREATE INDEX attachments_sha256 ON attachments (sha256) WHERE sha256 IS NOT NULL;
-- Where a directory blob store packed each blob (`[blobs] backend =
-- "filesystem"`): its pack file, position and size; `used_at` is when a
-- batch last wrote or found it (the sweep's grace period counts from it).
CREATE TABLE blob_locations (
    sha256 TEXT PRIMARY KEY,
    pack TEXT NOT NULL,
    pos BIGINT NOT NULL,
    size BIGINT NOT NULL,
    used_at BIGINT NOT NULL
);
CREATE INDEX blob_locations_pack ON blob_locations (pack);
