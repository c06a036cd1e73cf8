//! The values that travel between pipeline stages: inbound messages in,
//! prepared messages in the middle, outcomes out.

use crate::classify::MailClass;
use crate::identity::{ContactPoint, EmailAddress};
use serde::Serialize;

mod error;
mod notice;
mod outbox;
pub use error::DomainError;
pub use notice::*;
pub use outbox::*;

/// One raw mail as a source hands it over.
#[derive(Debug, Clone)]
pub struct RawMail {
    pub raw: Vec<u8>,
    /// Configured mailbox name (IMAP) or `--mailbox` (MTA pipe).
    pub mailbox: Option<String>,
    /// Where it came from, for quarantine records: `imap`, `pipe`, `replay`.
    pub source: String,
}

/// An attachment a gateway links to rather than uploads.
#[derive(Debug, Clone)]
pub struct LinkedAttachment {
    pub filename: String,
    pub content_type: String,
    pub url: String,
}

/// A contact posted by a voice/chat gateway, already validated.
#[derive(Debug, Clone)]
pub struct Contact {
    pub source: String,
    pub channel: String,
    /// Normalised contact points, most specific first.
    pub contacts: Vec<ContactPoint>,
    pub name: Option<String>,
    pub conversation_id: Option<String>,
    pub subject: String,
    pub message: String,
    pub public: bool,
    pub occurred_at: Option<i64>,
    pub attachments: Vec<LinkedAttachment>,
    /// Stable id of this contact (e.g. from the idempotency key) so a retry
    /// can never store it twice.
    pub message_id: String,
}

/// Anything that can become a comment.
#[derive(Debug, Clone)]
pub enum Inbound {
    Mail(RawMail),
    Contact(Contact),
    /// What the source already knows cannot be processed (an oversize
    /// message fetched with its headers only, a response it cannot read):
    /// kept raw with its reason.
    Quarantine(QuarantineIn),
    /// A mail released from the review queue: it acts as its From address
    /// whatever its authentication results say.
    Released(RawMail),
}

/// Bytes kept once by their SHA-256 in the blob store (`[blobs]`): a raw
/// mail or an attachment's body. Rows hold the hash and the size only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Lower-case hex SHA-256 of `bytes`.
    pub sha256: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Blob {
        use sha2::Digest;
        Blob {
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// An attachment ready to store.
#[derive(Debug, Clone)]
pub struct AttachmentIn {
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub data: Option<Blob>,
    pub url: Option<String>,
    /// Its Content-ID (lower-cased, no angle brackets).
    pub content_id: Option<String>,
    /// An image the HTML shows (`cid:`), not a file the sender attached.
    pub inline: bool,
    /// Why its body is not stored (`too large`), when it is not.
    pub omitted: Option<String>,
}

/// The reason an attachment over `[limits] max_attachment_bytes` records.
pub const OMITTED_TOO_LARGE: &str = "too large";

/// A message that passed parsing and classification, ready for the store.
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    pub channel: Channel,
    pub mailbox: Option<String>,
    pub message_id: String,
    /// Contact points of the author, the first being the one it wrote from.
    pub contacts: Vec<ContactPoint>,
    pub sender_name: Option<String>,
    pub subject: String,
    pub body: String,
    /// The body without quoted history, forwarded header blocks and
    /// signature, when that differs from `body` (see `crate::reply`).
    pub visible_body: Option<String>,
    pub class: MailClass,
    /// In-Reply-To first, then References newest first.
    pub refs: Vec<String>,
    /// Ticket number from our tag in the subject.
    pub tag_ticket: Option<i64>,
    /// `source:conversation_id` for gateway contacts.
    pub conversation_key: Option<String>,
    /// Email tickets are always public; gateways may ask for private.
    pub public: bool,
    /// Other people addressed (To/Cc minus our own addresses).
    pub copied: Vec<EmailAddress>,
    pub attachments: Vec<AttachmentIn>,
    pub raw: Option<Blob>,
    pub received_at: i64,
    /// For bounces: Message-IDs of the returned original.
    pub returned_message_ids: Vec<String>,
    /// For bounces: the recipients it says failed permanently, normalised.
    pub failed_recipients: Vec<String>,
    /// Whether the sender may be recognised as one of the desk's agents: a
    /// mail whose From address our own MTA authenticated (a trusted DMARC
    /// pass for its domain), or any mail when senders are not verified
    /// (`[trust]` unset). Never a gateway contact: a webhook names a contact
    /// point, it does not prove it.
    pub may_be_agent: bool,
    /// What the mail forwards, should its sender be an agent (the store
    /// decides that): the customer's message, or why it cannot be told.
    pub forward: Option<ForwardIn>,
    /// On a customer's message an agent forwarded: the agent's address.
    pub forwarded_by: Option<String>,
    /// When the sender was not the From header's address: where it was
    /// found and what From said (recorded as a `sender_recovered` event).
    pub sender_recovered: Option<String>,
}

/// What an agent's mail forwards (see `crate::forward`).
#[derive(Debug, Clone)]
pub enum ForwardIn {
    Original(Box<ForwardedIn>),
    /// It looks forwarded, but its original sender is not certain: why.
    Unsure(&'static str),
}

/// A customer's message forwarded by an agent, ready to store as the
/// customer's own.
#[derive(Debug, Clone)]
pub struct ForwardedIn {
    /// `attached`, `gmail`, `outlook`, `apple` or `thunderbird`.
    pub client: &'static str,
    /// The original's Message-ID, or one derived from the agent's mail's.
    pub message_id: String,
    /// The original sender's address.
    pub contact: ContactPoint,
    pub sender_name: Option<String>,
    pub subject: String,
    pub body: String,
    /// Its visible text, when that differs from `body`.
    pub visible_body: Option<String>,
    /// Its own date (unix ms), else the agent's mail's arrival.
    pub received_at: i64,
    pub attachments: Vec<AttachmentIn>,
    pub raw: Option<Blob>,
    /// The agent's own text and attachments: an internal note.
    pub note: String,
    pub note_attachments: Vec<AttachmentIn>,
}

/// A message that cannot be processed, kept raw with its reason.
#[derive(Debug, Clone)]
pub struct QuarantineIn {
    pub source: String,
    pub mailbox: Option<String>,
    pub reason: String,
    pub raw: Vec<u8>,
    /// Size of the original when `raw` holds only part of it.
    pub size: i64,
    pub truncated: bool,
}

/// A mail that may not act as its From address (a failing DMARC result of
/// our own MTA, a spam verdict of our filter): held for review, raw.
#[derive(Debug, Clone)]
pub struct ReviewIn {
    pub source: String,
    pub mailbox: Option<String>,
    pub message_id: String,
    /// The From address it claims.
    pub sender: String,
    pub subject: String,
    /// Which header and verdict sent it here.
    pub reason: String,
    pub raw: Vec<u8>,
}

/// Output of the prepare stages.
#[derive(Debug, Clone)]
pub enum Prepared {
    Message(Box<PreparedMessage>),
    Quarantine(QuarantineIn),
    Review(ReviewIn),
}

/// What happened to one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Created,
    Appended,
    Duplicate,
    Quarantined,
    /// Held in the review queue.
    Review,
    /// A delivery report not linked to any notification of ours: kept for
    /// ops (`bounces` in the export), never a user, organization or ticket.
    Kept,
}

/// The result reported for one inbound message.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub outcome: OutcomeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<MailClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Why a comment was made internal (e.g. a non-participant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up_of: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Outcome {
    pub fn new(outcome: OutcomeKind) -> Self {
        Outcome {
            outcome,
            ticket_id: None,
            user_id: None,
            comment_id: None,
            message_id: None,
            class: None,
            public: None,
            flag: None,
            follow_up_of: None,
            quarantine_id: None,
            review_id: None,
            bounce_id: None,
            reason: None,
        }
    }
}

/// A source's position, committed in the transaction of the messages it
/// covers, so that it never runs ahead of (or behind) what is stored. The
/// pipeline and the store do not read it: each source kind writes and reads
/// its own `state` (IMAP: UIDVALIDITY and last UID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The source (a mailbox's name).
    pub source: String,
    /// Where in the source (an IMAP folder; empty when the source has one place).
    pub scope: String,
    /// The source's own encoding of its position.
    pub state: String,
    /// The acknowledgement (flag, move, delete) these messages now owe the
    /// source, remembered until the source has done it.
    pub owe: Option<OwedAck>,
    /// Keys of owed acknowledgements the source has done since: forgotten in
    /// the same transaction.
    pub settled: Vec<String>,
    /// Items (the source's own ids, e.g. POP3 UIDLs) these messages were,
    /// remembered as imported in the same transaction: for sources whose
    /// position is a set rather than a cursor.
    pub seen: Vec<String>,
    /// Remembered items gone from the source: forgotten in the same
    /// transaction.
    pub gone: Vec<String>,
}

/// One committed batch's acknowledgement still owed on its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedAck {
    /// Unique within the source and scope; owed acknowledgements are
    /// returned in key order.
    pub key: String,
    /// What to acknowledge, in the source's own terms (IMAP: a UID set).
    pub what: String,
    /// How many messages it covers.
    pub count: u32,
}
