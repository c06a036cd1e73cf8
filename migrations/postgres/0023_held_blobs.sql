-- Quarantined, held-for-review and kept-bounce mail keeps its raw bytes in
-- the blob store too: new rows name them by hash (`quarantine.sha256` and
-- `review.sha256` already did; `bounces.raw_sha256` now) and leave `raw`
-- NULL; `raw` stays only for rows made before this, until `intake migrate`
-- moves their bytes out.
ALTER TABLE quarantine ALTER COLUMN raw DROP NOT NULL;
ALTER TABLE bounces ADD COLUMN raw_sha256 TEXT;
CREATE INDEX bounces_raw_sha256 ON bounces (raw_sha256) WHERE raw_sha256 IS NOT NULL;
