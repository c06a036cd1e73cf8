-- Look-ups of a batch's contact points by value; organizations created
-- automatically for a domain (a domain may later move to a real organization).
CREATE INDEX identities_value ON identities(value);
ALTER TABLE organizations ADD COLUMN auto_created BIGINT NOT NULL DEFAULT 0;
