-- Core schema (SQLite). Timestamps are unix milliseconds; booleans are 0/1.
CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE organization_domains (
    domain TEXT PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id)
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    organization_id INTEGER REFERENCES organizations(id),
    merged_into INTEGER REFERENCES users(id),
    is_agent INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX users_org ON users(organization_id);
CREATE TABLE identities (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    domain TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX identities_user ON identities(user_id);
CREATE INDEX identities_domain ON identities(domain);
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    public INTEGER NOT NULL,
    requester_id INTEGER NOT NULL REFERENCES users(id),
    organization_id INTEGER REFERENCES organizations(id),
    follow_up_of INTEGER REFERENCES tickets(id),
    conversation_key TEXT UNIQUE,
    mailbox TEXT,
    assignee TEXT,
    group_name TEXT,
    tags TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX tickets_requester ON tickets(requester_id);
CREATE TABLE ticket_participants (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    address TEXT NOT NULL,
    PRIMARY KEY (ticket_id, address)
);
CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    author_id INTEGER NOT NULL REFERENCES users(id),
    public INTEGER NOT NULL,
    channel TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    class TEXT NOT NULL,
    flag TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    mailbox TEXT,
    raw BLOB,
    created_at INTEGER NOT NULL
);
CREATE INDEX comments_ticket ON comments(ticket_id);
CREATE INDEX comments_author ON comments(author_id);
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    comment_id INTEGER NOT NULL REFERENCES comments(id),
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    url TEXT,
    data BLOB
);
CREATE INDEX attachments_comment ON attachments(comment_id);
CREATE TABLE thread_refs (
    message_id TEXT PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    outbound INTEGER NOT NULL
);
CREATE INDEX thread_refs_ticket ON thread_refs(ticket_id);
CREATE TABLE ticket_events (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    kind TEXT NOT NULL,
    comment_id INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    mailbox TEXT,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 1,
    outcome TEXT,
    received_at INTEGER NOT NULL,
    replayed_at INTEGER
);
CREATE TABLE mailbox_cursors (
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (mailbox, folder)
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE webhook_requests (
    source TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (source, idem_key)
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    event_id INTEGER,
    trigger_name TEXT NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    message_id TEXT NOT NULL UNIQUE,
    in_reply_to TEXT,
    refs TEXT NOT NULL DEFAULT '',
    reply_to TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX outbox_pending ON outbox(status, next_attempt_at);
CREATE TABLE undeliverable (
    address TEXT PRIMARY KEY,
    until_at INTEGER NOT NULL,
    reason TEXT NOT NULL
);
