//! What the ingest transaction hands the notifier and takes back: the
//! batch's events with their facts (from the store), and the outbox rows
//! and ticket changes the notifier planned from them (for the store to
//! write). Plain data, so that the store and the notifier's planner need
//! not know each other.

/// The events triggers react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    TicketCreated,
    CommentAdded,
    TicketPublished,
}

impl EventKind {
    pub fn parse(s: &str) -> Option<EventKind> {
        match s {
            "ticket_created" => Some(EventKind::TicketCreated),
            "comment_added" => Some(EventKind::CommentAdded),
            "ticket_published" => Some(EventKind::TicketPublished),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TicketCreated => "ticket_created",
            EventKind::CommentAdded => "comment_added",
            EventKind::TicketPublished => "ticket_published",
        }
    }
}

/// The comment an event is about.
#[derive(Debug, Clone)]
pub struct CommentFacts {
    pub id: Option<i64>,
    pub class: String,
    pub public: bool,
    /// Flagged as an internal note (e.g. a non-participant's message).
    pub flag: bool,
    pub message_id: Option<String>,
    /// Arrived by email (so a notification answers it with In-Reply-To).
    pub email: bool,
    /// Written by one of the desk's agents (`role = 'agent'`).
    pub agent: bool,
    /// A customer's message an agent forwarded on their behalf.
    pub forwarded: bool,
}

/// One event with what trigger conditions, recipients and headers need.
#[derive(Debug, Clone)]
pub struct EventFacts {
    pub event_id: i64,
    pub kind: EventKind,
    pub ticket_id: i64,
    pub status: TicketStatus,
    pub channel: String,
    pub ticket_public: bool,
    /// The ticket's tags before this batch's `set` actions.
    pub tags: String,
    pub requester_is_new: bool,
    /// Where `notify_requester` writes: the address the requester wrote this
    /// message from, otherwise the requester's first email address.
    pub requester_email: Option<String>,
    /// `requester_email` is the address the requester wrote this message
    /// from (which may not be their first).
    pub requester_wrote: bool,
    pub org_name: Option<String>,
    pub comment: CommentFacts,
    /// Facts the store could not tell from memory (their fields are
    /// placeholders until the store completes them, when a trigger needs them).
    pub unknown: Needs,
}

/// The facts that are not always in memory: what the enabled triggers on one
/// kind of event look at, or what an event's facts lack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub requester_email: bool,
    pub org_name: bool,
    pub requester_is_new: bool,
}

impl Needs {
    /// Whether any fact is in both.
    pub fn meets(self, other: Needs) -> bool {
        (self.requester_email && other.requester_email)
            || (self.org_name && other.org_name)
            || (self.requester_is_new && other.requester_is_new)
    }
}

/// What planning a `ticket_published` event needs beyond its facts: the
/// ticket's first comment (the event carries none) and the triggers that
/// already fired for it (the skipped acknowledgement fires once).
#[derive(Debug, Clone, Default)]
pub struct PublishedTickets {
    pub first_comment: std::collections::HashMap<i64, CommentFacts>,
    pub fired: std::collections::HashSet<(i64, String)>,
}

/// Changes `set` actions make to the ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketChanges {
    pub assignee: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<String>,
}

impl TicketChanges {
    pub fn is_empty(&self) -> bool {
        *self == TicketChanges::default()
    }
}

/// Whether a planned notification goes out or is held back at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Suppressed,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Suppressed => "suppressed",
        }
    }
}

/// One planned outbox row: the notification names its template (trigger and
/// action) and is rendered when sent.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub ticket_id: i64,
    pub event_id: i64,
    pub comment_id: Option<i64>,
    pub trigger: String,
    pub action: i64,
    pub to: String,
    pub message_id: String,
    pub status: OutboxStatus,
    pub reason: Option<String>,
}

/// What the notifier planned for a batch's events.
#[derive(Debug, Clone, Default)]
pub struct OutboxPlan {
    pub rows: Vec<OutboxRow>,
    /// Per ticket: the changes of its `set` actions and its tags before them.
    pub changes: Vec<(i64, TicketChanges, String)>,
}

/// The ticket a Message-ID of ours names (`HEX.TICKET@domain`, 32 hex digits
/// before the time-ordered format, 35 since), or None for anybody else's.
/// Only a hint: the outbox row with that exact Message-ID must exist.
pub fn ticket_of_message_id(mid: &str) -> Option<i64> {
    let local = mid.split_once('@')?.0;
    let (hex, ticket) = local.rsplit_once('.')?;
    let ours = (32..=35).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let digits =
        !ticket.is_empty() && ticket.len() <= 18 && ticket.bytes().all(|b| b.is_ascii_digit());
    if ours && digits {
        ticket.parse().ok()
    } else {
        None
    }
}

/// A ticket's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    New,
    Open,
    Pending,
    Solved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::New,
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::Solved,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::Solved => "solved",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<TicketStatus> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A stored status (the schema allows no other; an unknown one reads
    /// as open, the status that blocks nothing).
    pub fn from_db(s: &str) -> TicketStatus {
        Self::parse(s).unwrap_or(TicketStatus::Open)
    }

    /// The names, for messages: `new, open, pending, solved, closed`.
    pub fn names() -> String {
        Self::ALL.map(|t| t.as_str()).join(", ")
    }
}

impl std::fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a message reached the desk: email (a mailbox or the MTA pipe), or a
/// gateway's channel (`voice`, `chat`, `sms`, … as the gateway names it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Gateway(String),
}

impl Channel {
    /// A channel by its stored name.
    pub fn named(name: &str) -> Channel {
        match name {
            "email" => Channel::Email,
            other => Channel::Gateway(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Channel::Email => "email",
            Channel::Gateway(g) => g,
        }
    }

    pub fn is_email(&self) -> bool {
        *self == Channel::Email
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
