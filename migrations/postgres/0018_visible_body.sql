-- A comment's visible text: its body without quoted history, forwarded
-- header blocks and signature (see src/reply). NULL when it is the body
-- itself, so a mail without history costs nothing more.
ALTER TABLE comments ADD COLUMN visible_body TEXT;
