-- An attachment's Content-ID, whether the HTML shows it as an inline image
-- (cid:), and why its body is not stored (`too large`: over
-- [limits] max_attachment_bytes; the raw message keeps it).
ALTER TABLE attachments ADD COLUMN content_id TEXT;
ALTER TABLE attachments ADD COLUMN inline INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attachments ADD COLUMN omitted TEXT;
