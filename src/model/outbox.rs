//! The outbox as the notification sender sees it: claimed rows, what
//! rendering them needs, and what the loop brakes count. Plain data between
//! the store (which reads and writes it) and the sender (which decides).

use std::collections::HashMap;

/// A notification claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub to: String,
    pub message_id: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// The template it names (trigger, action index); None for rows queued
    /// with their rendered text (before migration 0005).
    pub template: Option<(String, usize)>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub in_reply_to: Option<String>,
    pub reply_to: Option<String>,
}

/// What rendering a notification reads at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendContext {
    pub ticket_id: i64,
    /// The ticket is public now (the sender's own last check).
    pub public: bool,
    pub subject: String,
    pub status: String,
    /// The mailbox the ticket came in by.
    pub mailbox: Option<String>,
    pub requester_name: String,
    /// The requester's first email address.
    pub requester_email: Option<String>,
    pub org_name: Option<String>,
    /// The comment the notification quotes: its visible text.
    pub comment_body: Option<String>,
    /// The comment's whole text.
    pub comment_full_body: Option<String>,
    pub comment_message_id: Option<String>,
    /// The comment arrived by email.
    pub comment_by_email: bool,
}

/// Per recipient, what the loop brakes weigh at send time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientLoad {
    /// Notifications taken for delivery within the window.
    pub counts: HashMap<String, i64>,
    /// Why an address is undeliverable (a bounce), while it is.
    pub undeliverable: HashMap<String, String>,
}

/// What became of one claimed row on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The SMTP server accepted it.
    Sent { id: i64 },
    /// Refused or not delivered: `pending` again from `next` (a retry), or
    /// `failed` for good; `attempts` counts this one.
    Refused {
        id: i64,
        attempts: i64,
        give_up: bool,
        next: i64,
        error: String,
    },
}

impl Delivery {
    pub fn id(&self) -> i64 {
        match self {
            Delivery::Sent { id } | Delivery::Refused { id, .. } => *id,
        }
    }
}
