-- Data migrations run by the daemon after the SQL ones (in Rust: they need
-- the address normaliser), each recorded here once done, with a summary.
CREATE TABLE data_migrations (
    name TEXT PRIMARY KEY,
    applied_at INTEGER NOT NULL,
    summary TEXT NOT NULL
);
-- Rows the address re-normalisation (data migration
-- 0011_renormalise_addresses) kept in their old spelling: the normal form
-- belongs to another owner (holder_id: a user for identities, an
-- organization for organization_domains), or the value no longer parses
-- (normal_value and holder_id NULL). owner_id owns the old row.
CREATE TABLE normalisation_conflicts (
    id INTEGER PRIMARY KEY,
    table_name TEXT NOT NULL,
    old_value TEXT NOT NULL,
    normal_value TEXT,
    owner_id INTEGER NOT NULL,
    holder_id INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (table_name, old_value)
);
