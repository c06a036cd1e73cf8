-- A customer's message that one of the desk's agents forwarded on the
-- customer's behalf records the agent's address (trigger condition
-- `forwarded_by_agent`); NULL for everything else.
ALTER TABLE comments ADD COLUMN forwarded_by TEXT;
