//! Forward: the message an agent forwarded on a customer's behalf, found in
//! the agent's mail. A pure stage over a [`ParsedMail`]: a forwarded
//! `message/rfc822` attachment (parsed like any mail), or an inline forward
//! block of Gmail, Outlook/Exchange, Apple Mail or Thunderbird in seven
//! languages (`crate::reply::markers`), in the text part or the text of an HTML-only
//! mail. The store decides whether the sender is an agent; this module only
//! says what was forwarded, or that the mail looks forwarded but its
//! original sender cannot be told with confidence (never a guess).
//!
//! Work is linear in the mail's size: one pass over the text's lines, and
//! an attached message parsed under the same bounds as the mail itself.

mod date;
mod inline;

#[cfg(test)]
mod tests;

use crate::parse::{Attachment, Mailbox, ParsedMail};
pub use crate::reply::markers::strip_prefixes;

/// The forwarded message, found with confidence.
#[derive(Debug, Clone)]
pub struct Original {
    /// `attached`, `gmail`, `outlook`, `apple` or `thunderbird`.
    pub client: &'static str,
    pub from: Mailbox,
    /// Its subject without forward and reply prefixes (the outer subject's
    /// when the block names none).
    pub subject: String,
    /// Unix milliseconds, when its date could be read.
    pub date: Option<i64>,
    pub text: String,
    /// The original's attachments.
    pub attachments: Vec<Attachment>,
    /// The original's raw bytes, when it was attached whole.
    pub raw: Option<Vec<u8>>,
    /// The original's Message-ID, when it was attached whole.
    pub message_id: Option<String>,
    /// The agent's own text.
    pub note: String,
    /// The agent's mail's attachments that are not the original's.
    pub note_attachments: Vec<Attachment>,
}

/// What an agent's mail forwards.
#[derive(Debug, Clone)]
pub enum Forward {
    Original(Box<Original>),
    /// It looks forwarded, but who wrote the original cannot be told: why.
    Unsure(&'static str),
}

/// No address in the forwarded header block.
pub const NO_ADDRESS: &str = "forwarded message: its From line names no address";
/// A forward prefix in the subject, but no forwarded message.
pub const NO_BLOCK: &str = "forwarded message: no forwarded header block found";
/// An attached message without a usable sender.
pub const BAD_ATTACHED: &str = "forwarded message: the attached message has no usable sender";

/// Find what `mail` forwards; `None` when it does not look forwarded.
/// `max_bytes` bounds an attached message as it bounds mail.
pub fn find(mail: &ParsedMail, max_bytes: usize) -> Option<Forward> {
    let (outer_subject, forward_subject) = strip_prefixes(&mail.subject);
    if let Some(i) = mail
        .attachments
        .iter()
        .position(|a| a.content_type == "message/rfc822")
    {
        let a = &mail.attachments[i];
        let inner = match crate::parse::parse(&a.data, max_bytes) {
            Ok(p) => p,
            Err(_) => return Some(Forward::Unsure(BAD_ATTACHED)),
        };
        let Some(from) = inner.sender.clone() else {
            return Some(Forward::Unsure(BAD_ATTACHED));
        };
        let subject = strip_prefixes(&inner.subject).0;
        let mut note_attachments = mail.attachments.clone();
        note_attachments.remove(i);
        return Some(Forward::Original(Box::new(Original {
            client: "attached",
            from,
            subject: if subject.is_empty() {
                outer_subject
            } else {
                subject
            },
            date: inner.date.map(|s| s * 1000),
            text: inner.text,
            attachments: inner.attachments,
            raw: Some(a.data.clone()),
            message_id: (!inner.message_id_generated).then_some(inner.message_id),
            note: mail.text.trim().to_string(),
            note_attachments,
        })));
    }
    // Without a forward prefix, only a separator, header block or quote
    // container that parsing found can introduce a forward.
    if !forward_subject && !mail.history_block {
        return None;
    }
    let Some(block) = inline::find(&mail.text, forward_subject) else {
        return forward_subject.then_some(Forward::Unsure(NO_BLOCK));
    };
    let Some(from) = block.from else {
        return Some(Forward::Unsure(NO_ADDRESS));
    };
    let subject = block
        .subject
        .map(|s| strip_prefixes(&s).0)
        .filter(|s| !s.is_empty())
        .unwrap_or(outer_subject);
    Some(Forward::Original(Box::new(Original {
        client: block.client,
        from,
        subject,
        date: block.date.as_deref().and_then(date::parse),
        text: block.text,
        // An inline forward carries the original's attachments along.
        attachments: mail.attachments.clone(),
        raw: None,
        message_id: None,
        note: block.note,
        note_attachments: vec![],
    })))
}
