//! Parse: raw RFC 5322 bytes in, one owned and bounded [`ParsedMail`] out (or a
//! [`ParseError`] saying why not). mail-parser types never leave this module.
//!
//! # Guarantees
//! * [`parse`] is total: it never panics. mail-parser is lenient already; it is also
//!   wrapped in [`std::panic::catch_unwind`] and a panic becomes [`ParseError::Panic`].
//! * Work is linear in the input's size. Shapes on which mail-parser itself is
//!   superlinear (unterminated Q-encoded words, huge RFC 2231 parameter fields)
//!   are refused before it sees them, with [`ParseError::TooComplex`] naming the
//!   shape (the guard rules are in `guard.rs`).
//! * Everything is bounded: the input by `max_bytes`, the text body by
//!   [`MAX_TEXT_BYTES`], the subject by [`MAX_SUBJECT_BYTES`], References and
//!   In-Reply-To by [`MAX_REFERENCES`] ids of at most [`MAX_ID_BYTES`] bytes each.
//! * Legacy charsets: bodies are decoded with their declared charset (windows-125x,
//!   KOI8-R, ISO-2022-JP, GB18030, ... through mail-parser's `full_encoding`). Header
//!   lines in raw 8-bit (no RFC 2047), and text bodies whose charset label is missing,
//!   unknown or wrong, are decoded with the first non-UTF-8 charset the message
//!   declares anywhere, else windows-1252, instead of becoming U+FFFD mojibake.
//!
//! # Sender rule
//! The sender is the first address, in this order, that is one RFC 5322
//! addr-spec (one `@` with a non-empty local part and domain; no white space
//! or angle brackets outside a quoted local part such as `"John Doe"`; see
//! [`crate::identity::addr_spec`]):
//! 1. the From addresses, in order;
//! 2. when a From header is there but holds none: an addr-spec a careful
//!    reader finds in its text (inside angle brackets first, white space
//!    around the `@` dropped; then a word of the rest), then the first
//!    Reply-To address, then the Sender address;
//! 3. without a From header: the Sender address, then the first Reply-To;
//! 4. the Return-Path address, unless it is the null path `<>`.
//!
//! [`ParsedMail::sender_source`] records which one was used. With none, [`parse`]
//! fails with [`ParseError::NoSender`], except for mail-system messages: a mail
//! with a null Return-Path (`<>`), a null From (`<>`), a From naming a mail system
//! (`MAILER-DAEMON`, `postmaster`, `Mail Delivery ...`) or a delivery/feedback
//! report structure parses with `sender: None` and `sender_source: ReturnPath`.
//! Real bounces often look like that (`From: Mail Delivery Subsystem
//! <MAILER-DAEMON>`, `Return-Path: <>`) and must reach classification (which calls
//! them automatic) rather than quarantine.
//!
//! # Generated Message-IDs
//! A mail without a usable Message-ID gets `<sha256 hex>@generated.intake` (stored
//! without the angle brackets, like every id here), hashed
//! over the raw bytes with CRLF turned into LF, a leading mbox `From ` line dropped,
//! trailing whitespace ignored and the trace fields that differ between two
//! deliveries of the same mail removed (see [`TRACE_HEADERS`]). The same mail
//! delivered to two mailboxes therefore gets the same id.

mod address;
pub(crate) use address::return_path_address;
mod body;
pub mod detect;
mod dsn;
mod guard;
mod headers;
mod ids;
mod inline;
mod legacy;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mail_parser::{Message, MessageParser};

pub use dsn::{FailedRecipient, MAX_FAILED};
pub use guard::{MAX_MESSAGE_PARTS, MAX_PARAMETER_WORK, MAX_WORD_SCAN_BYTES};
pub use ids::{generated_message_id, TRACE_HEADERS};

/// Largest text body kept, in bytes; longer bodies are cut on a character boundary.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Largest subject kept, in bytes; longer subjects are cut on a character boundary.
pub const MAX_SUBJECT_BYTES: usize = 4096;
/// Most ids kept from References (the first one, naming the thread's root, and the
/// last ones) and from In-Reply-To (the first ones), duplicates removed.
pub const MAX_REFERENCES: usize = 50;
/// Longest Message-ID kept in References / In-Reply-To / returned ids (RFC 5322 line limit).
pub const MAX_ID_BYTES: usize = 998;

/// One address with its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The address as written, trimmed, not lower-cased.
    pub address: String,
    /// The display name, RFC 2047 decoded; `None` when absent or blank.
    pub name: Option<String>,
}

/// Which header the sender was taken from (see the module's sender rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderSource {
    /// The From header (the normal case).
    From,
    /// Recovered from the text of a From header that holds no well-formed
    /// address (`From: Test test@example.com`, `<joe @ example.com>`).
    FromText,
    /// The Sender header, because no From address was usable.
    Sender,
    /// The first Reply-To address, because neither From nor Sender was usable.
    ReplyTo,
    /// The Return-Path, as a last resort.
    ReturnPath,
}

/// One attachment (any non-body part, including inline images and attached mails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name, RFC 2047 / RFC 2231 decoded; `attachment-N` (1-based) when none.
    pub filename: String,
    /// Lower-case `type/subtype`, `application/octet-stream` when unknown.
    pub content_type: String,
    /// Its Content-ID, without angle brackets, lower-cased.
    pub content_id: Option<String>,
    /// The HTML shows it as an image (`cid:`): an inline image.
    pub inline: bool,
    /// The decoded content (text attachments are converted to UTF-8; an attached
    /// mail is its raw bytes).
    pub data: Vec<u8>,
}

/// The top-level header fields that classification looks at, as raw unfolded values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassHeaders {
    /// RFC 3834 `Auto-Submitted`.
    pub auto_submitted: Option<String>,
    /// `X-Autoreply`.
    pub x_autoreply: Option<String>,
    /// `X-Autorespond`.
    pub x_autorespond: Option<String>,
    /// Microsoft `X-Auto-Response-Suppress`.
    pub x_auto_response_suppress: Option<String>,
    /// `Precedence`.
    pub precedence: Option<String>,
    /// `List-Id`.
    pub list_id: Option<String>,
    /// `List-Unsubscribe`.
    pub list_unsubscribe: Option<String>,
    /// The first `Return-Path`, raw: the null path stays `<>` (or `""`).
    pub return_path: Option<String>,
    /// Top-level `type/subtype`, lower-case; `text/plain` when absent.
    pub content_type: String,
    /// The `report-type` parameter of a top-level `multipart/report`, lower-case.
    pub report_type: Option<String>,
    /// Every `X-Loop` value.
    pub x_loop: Vec<String>,
    /// Every value of our own `X-Intake-Loop` header.
    pub intake_loop: Vec<String>,
    /// `X-Failed-Recipients` (Exim and others on bounces).
    pub x_failed_recipients: Option<String>,
    /// A `message/delivery-status` (or `message/global-delivery-status`) part in
    /// this mail's MIME tree, not counting parts of attached mails.
    pub has_delivery_status_part: bool,
    /// A `message/feedback-report` part (ARF abuse report), same scope.
    pub has_feedback_report_part: bool,
    /// A `message/disposition-notification` part (read receipt), same scope.
    pub has_disposition_notification_part: bool,
    /// A `message/rfc822` or `text/rfc822-headers` part (a returned original),
    /// same scope as `has_delivery_status_part`.
    pub has_returned_message_part: bool,
    /// Lower-case names of other list-server headers present: `List-Post`,
    /// `List-Help`, `List-Subscribe`, `List-Owner`, `List-Archive`, `Mailing-List`,
    /// `X-Mailman-Version`, `X-MLServer`, `X-ML-Name`, `X-Ezmlm-*`.
    pub other_list_headers: Vec<String>,
    /// The first `From`, raw (to recognise `MAILER-DAEMON` without a domain).
    pub from: Option<String>,
    /// `X-Autogenerated` (e.g. `Reply`).
    pub x_autogenerated: Option<String>,
    /// `X-Apple-Action` (`VACATION` on iCloud vacation replies).
    pub x_apple_action: Option<String>,
    /// `X-MS-Exchange-Inbox-Rules-Loop`, set by Exchange on rule-generated mail.
    pub x_ms_exchange_inbox_rules_loop: Option<String>,
    /// `X-MS-Exchange-Generated-Message-Source` (Exchange system messages).
    pub x_ms_exchange_generated_message_source: Option<String>,
}

/// A parsed inbound mail: owned, bounded, free of mail-parser types.
#[derive(Debug, Clone)]
pub struct ParsedMail {
    /// The Message-ID without `<>`, trimmed; generated when the mail has none or an
    /// unusable one (empty, over [`MAX_ID_BYTES`], or containing whitespace).
    pub message_id: String,
    /// True when `message_id` was generated (see the module doc).
    pub message_id_generated: bool,
    /// The sender chosen by the module's sender rule; `None` only for mail-system
    /// messages without any address (see the module doc), which classify as
    /// automatic.
    pub sender: Option<Mailbox>,
    /// Where `sender` came from.
    pub sender_source: SenderSource,
    /// Plausible To addresses, groups flattened.
    pub to: Vec<Mailbox>,
    /// Plausible Cc addresses, groups flattened.
    pub cc: Vec<Mailbox>,
    /// Plausible Reply-To addresses.
    pub reply_to: Vec<Mailbox>,
    /// The decoded subject, `""` when missing.
    pub subject: String,
    /// In-Reply-To ids without `<>`, bounded.
    pub in_reply_to: Vec<String>,
    /// References ids without `<>`, in header order, duplicates removed: the first
    /// (the thread's root) and the last ones, [`MAX_REFERENCES`] in all, each at
    /// most [`MAX_ID_BYTES`].
    pub references: Vec<String>,
    /// The Date header as unix seconds, when present and valid.
    pub date: Option<i64>,
    /// The text body (HTML converted when there is no text part), line ends as LF,
    /// at most [`MAX_TEXT_BYTES`].
    pub text: String,
    /// The visible text, when it differs from `text`: without quoted
    /// history, forwarded header blocks and signature (see [`crate::reply`]).
    pub visible: Option<String>,
    /// Whether the text holds a separator, a header block or an HTML quote
    /// container (so it may forward a message).
    pub history_block: bool,
    /// Every non-body part.
    pub attachments: Vec<Attachment>,
    /// Header fields for classification.
    pub headers: ClassHeaders,
    /// Message-IDs of the original mail quoted by a bounce or report: from attached
    /// `message/rfc822` / `text/rfc822-headers` parts and `Message-ID:` lines in the
    /// body. Only meaningful when classification says the mail is automatic
    /// (a customer who forwards a mail as an attachment fills it too).
    pub returned_message_ids: Vec<String>,
    /// The recipients a delivery report says failed (`Final-Recipient` /
    /// `Original-Recipient` of its delivery-status parts, `X-Failed-Recipients`),
    /// at most [`MAX_FAILED`]; empty for ordinary mail.
    pub failed_recipients: Vec<FailedRecipient>,
    /// The raw size in bytes.
    pub size: usize,
}

/// Why a raw message could not become a [`ParsedMail`].
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The raw message is bigger than the configured limit.
    #[error("message is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Raw size in bytes.
        size: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// Nothing but whitespace.
    #[error("empty message")]
    Empty,
    /// No header section could be found.
    #[error("not an RFC 5322 message: {0}")]
    Unparseable(String),
    /// No usable address in From, Sender, Reply-To or Return-Path.
    #[error("no sender address in From, Sender, Reply-To or Return-Path")]
    NoSender,
    /// The message has a shape that mail-parser would take superlinear time on
    /// (see the guard rules in the module doc); it is refused unparsed.
    #[error("refused before parsing: {0}")]
    TooComplex(String),
    /// mail-parser panicked (a bug there); the message should be quarantined.
    #[error("parser panicked: {0}")]
    Panic(String),
}

/// Parses one raw message of at most `max_bytes` bytes. Never panics.
pub fn parse(raw: &[u8], max_bytes: usize) -> Result<ParsedMail, ParseError> {
    if raw.len() > max_bytes {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            limit: max_bytes,
        });
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let shape = guard::check(raw).map_err(ParseError::TooComplex)?;
    // Encoded message parts go to mail-parser as opaque attachments (guard.rs).
    let opaque: Vec<u8>;
    let bytes = if shape.encoded_messages.is_empty() {
        raw
    } else {
        let mut copy = raw.to_vec();
        for &at in &shape.encoded_messages {
            copy[at..at + guard::OPAQUE_MESSAGE.len()].copy_from_slice(guard::OPAQUE_MESSAGE);
        }
        opaque = copy;
        &opaque
    };
    // Only the bytes cross the boundary and they are never mutated, so a panic
    // cannot leave anything half-updated behind.
    match catch_unwind(AssertUnwindSafe(|| parse_unguarded(bytes, raw))) {
        Ok(result) => result,
        Err(payload) => Err(ParseError::Panic(panic_text(payload.as_ref()))),
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Parses `bytes` (the mail as mail-parser should see it); `raw` is the mail as
/// received, for the generated Message-ID and the size.
fn parse_unguarded(bytes: &[u8], raw: &[u8]) -> Result<ParsedMail, ParseError> {
    let parser = MessageParser::default();
    let unparseable = || ParseError::Unparseable("no header fields found".to_string());
    let first = parser.parse(bytes).ok_or_else(unparseable)?;
    if first.parts.is_empty() || first.headers().is_empty() {
        return Err(unparseable());
    }
    let charset = legacy::guess_charset(&first);
    // Raw 8-bit header lines are transcoded to UTF-8 and the mail parsed again.
    let transcoded: Vec<u8>;
    let msg = match legacy::transcode_header_lines(&first, bytes, &legacy::hints(&first)) {
        Some(fixed) => {
            transcoded = fixed;
            parser.parse(&transcoded).ok_or_else(unparseable)?
        }
        None => first,
    };
    build(&msg, raw, &charset)
}

fn build(msg: &Message<'_>, raw: &[u8], charset: &str) -> Result<ParsedMail, ParseError> {
    let headers = headers::class_headers(msg);
    let (sender, sender_source) = match address::choose_sender(msg, headers.return_path.as_deref())
    {
        Some((mailbox, source)) => (Some(mailbox), source),
        None if address::is_system_mail(&headers) => (None, SenderSource::ReturnPath),
        None => return Err(ParseError::NoSender),
    };
    let (message_id, message_id_generated) = match ids::own_message_id(msg) {
        Some(id) => (id, false),
        None => (generated_message_id(raw), true),
    };
    let refs = body::cid_refs(msg);
    let attachments = body::attachments(msg, &refs);
    let images: HashMap<String, String> = attachments
        .iter()
        .filter(|a| a.inline)
        .filter_map(|a| Some((a.content_id.clone()?, a.filename.clone())))
        .collect();
    let (text, visible) = body::text(msg, charset, &images);
    let returned_message_ids = ids::returned_message_ids(msg, &text, &message_id);
    Ok(ParsedMail {
        sender,
        sender_source,
        to: address::mailboxes(msg, mail_parser::HeaderName::To),
        cc: address::mailboxes(msg, mail_parser::HeaderName::Cc),
        reply_to: address::mailboxes(msg, mail_parser::HeaderName::ReplyTo),
        subject: truncate_str(msg.subject().unwrap_or_default().trim(), MAX_SUBJECT_BYTES)
            .to_string(),
        in_reply_to: ids::bounded_ids(msg.in_reply_to(), false),
        references: ids::bounded_ids(msg.references(), true),
        date: msg
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp()),
        attachments,
        text,
        visible: visible.text,
        history_block: visible.block,
        headers,
        returned_message_ids,
        failed_recipients: dsn::failed_recipients(msg),
        message_id,
        message_id_generated,
        size: raw.len(),
    })
}

pub(crate) use crate::sanitize::truncate_str;

#[cfg(test)]
mod tests;
