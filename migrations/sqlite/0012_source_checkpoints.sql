-- Every source kind's position in one table: the checkpoint committed with
-- the messages it covers, and the acknowledgements (flag, move, delete)
-- still owed on the source. The state and the keys are the source's own
-- encoding (IMAP: state 'UIDVALIDITY:LAST_UID', key 'UIDVALIDITY:FIRST_UID'
-- zero-padded to ten digits each so that keys sort as numbers, what = a
-- UID set). Replaces mailbox_cursors and imap_acks_owed.
CREATE TABLE source_checkpoints (
    source TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, scope)
);
INSERT INTO source_checkpoints (source, scope, state, updated_at)
    SELECT mailbox, folder, CAST(uidvalidity AS TEXT) || ':' || CAST(last_uid AS TEXT), updated_at FROM mailbox_cursors;
CREATE TABLE source_acks_owed (
    source TEXT NOT NULL,
    scope TEXT NOT NULL,
    ack_key TEXT NOT NULL,
    what TEXT NOT NULL,
    count INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (source, scope, ack_key)
);
INSERT INTO source_acks_owed (source, scope, ack_key, what, count, created_at)
    SELECT mailbox, folder, printf('%010d:%010d', uidvalidity, first_uid), uids, count, created_at FROM imap_acks_owed;
DROP TABLE imap_acks_owed;
DROP TABLE mailbox_cursors;
