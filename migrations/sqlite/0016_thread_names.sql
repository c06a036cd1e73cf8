-- Threads whatever the arrival order: every stored message's In-Reply-To and
-- bounded References (the nearest ids and the thread's root) with its ticket,
-- so that a late parent finds the ticket of a reply that names it, and two
-- messages naming the same absent ancestor meet. Messages stored before this
-- migration are found by their own Message-ID only (thread_refs), as before.
CREATE TABLE thread_names (
    message_id TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    PRIMARY KEY (message_id, ticket_id)
) WITHOUT ROWID;
-- Tickets a message linked but did not join (it joined the first): related,
-- never merged. One row a pair, the smaller id first.
CREATE TABLE ticket_links (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    related_id INTEGER NOT NULL REFERENCES tickets(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, related_id)
) WITHOUT ROWID;
-- A reply to a closed ticket joins its open follow-up.
CREATE INDEX tickets_follow_up ON tickets(follow_up_of) WHERE follow_up_of IS NOT NULL;
