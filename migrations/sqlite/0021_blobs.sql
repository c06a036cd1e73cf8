-- Raw mail and attachment bodies live in the blob store (`[blobs]`), once
-- by SHA-256; rows keep the hash and size. `comments.raw` and
-- `attachments.data` stay only for databases made before this, until
-- `intake migrate` moves their bytes out.
ALTER TABLE comments ADD COLUMN raw_sha256 TEXT;
ALTER TABLE comments ADD COLUMN raw_size BIGINT;
ALTER TABLE attachments ADD COLUMN sha256 TEXT;
