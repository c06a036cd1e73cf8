-- Acknowledgements (after_import flag, move or delete) owed on the IMAP
-- server: one row per committed batch, written in the batch's transaction
-- together with the folder's cursor and removed once the server has done
-- it, so that mail committed just before a crash or a dropped connection is
-- still acknowledged on the next connection. `uids` is an IMAP UID set.
CREATE TABLE imap_acks_owed (
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    first_uid BIGINT NOT NULL,
    uids TEXT NOT NULL,
    count BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (mailbox, folder, uidvalidity, first_uid)
);
