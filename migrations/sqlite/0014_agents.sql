-- A comment records whether an end user or one of the desk's agents wrote
-- it. (Agents added at run time are users with is_agent = 1, a column the
-- first migration already has; agents by configuration are recognised by
-- address or domain.)
ALTER TABLE comments ADD COLUMN role TEXT NOT NULL DEFAULT 'end_user';
