//! The JSON body of a gateway contact (and of an agent's ticket), validated
//! field by field into a [`Contact`] with errors that name the field.
//!
//! Control characters: `message` may hold tab and line breaks; every other
//! text field refuses any control character (NUL included) with a `422`
//! naming the field. Attachment file names are cleaned as mail attachment
//! names are ([`clean_filename`]); attachment links must be plain http(s).

use super::problem::{Fields, Problem};
use crate::identity::{ContactPoint, EmailAddress, Handle, PhoneNumber};
use crate::model::{Contact, LinkedAttachment};
use crate::sanitize::{clean_filename, http_url};
use serde_json::{Map, Value};

/// Longest attachment content type accepted, in bytes.
const MAX_CONTENT_TYPE_BYTES: usize = 255;

/// The fields of a contact's `contact` object (and a ticket's `requester`).
pub const CONTACT_POINT_FIELDS: &[&str] = &["phone", "email", "handle", "name"];
/// The fields of a contact body.
pub const CONTACT_FIELDS: &[&str] = &[
    "channel",
    "contact",
    "conversation_id",
    "subject",
    "message",
    "public",
    "occurred_at",
    "attachments",
];
/// The fields of one of a contact's `attachments`.
pub const ATTACHMENT_FIELDS: &[&str] = &["filename", "content_type", "url"];

/// The `contact` object: `phone`, `email`, `handle`, `name`. Returns the
/// normalised contact points (phone, email, handle) and the name.
pub fn contact_points(
    m: Option<&Map<String, Value>>,
    field: &str,
    region: &str,
) -> Result<(Vec<ContactPoint>, Option<String>), Problem> {
    let empty = Map::new();
    let prefix = format!("{field}.");
    let f = Fields::new(m.unwrap_or(&empty), &prefix, CONTACT_POINT_FIELDS)?;
    let mut points = Vec::new();
    if let Some(p) = f.opt_line("phone")?.filter(|s| !s.trim().is_empty()) {
        let n = PhoneNumber::parse(p, region).map_err(|e| {
            Problem::unprocessable(format!("{field}.phone: {e} (default region {region})"))
        })?;
        points.push(ContactPoint::Phone(n));
    }
    if let Some(e) = f.opt_line("email")?.filter(|s| !s.trim().is_empty()) {
        let a = EmailAddress::parse(e)
            .map_err(|e| Problem::unprocessable(format!("{field}.email: {e}")))?;
        points.push(ContactPoint::Email(a));
    }
    if let Some(h) = f.opt_line("handle")?.filter(|s| !s.trim().is_empty()) {
        let h =
            Handle::parse(h).map_err(|e| Problem::unprocessable(format!("{field}.handle: {e}")))?;
        points.push(ContactPoint::Handle(h));
    }
    let name = f
        .opt_line("name")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok((points, name))
}

/// A webhook body. `source`, `default_channel` and `message_id` come from the
/// request, not the body.
pub fn parse_contact(
    body: &Map<String, Value>,
    source: &str,
    default_channel: &str,
    region: &str,
    message_id: String,
) -> Result<Contact, Problem> {
    let f = Fields::new(body, "", CONTACT_FIELDS)?;
    let channel = match f.opt_line("channel")? {
        Some(c) => valid_channel(c)?,
        None => default_channel.to_string(),
    };
    let (contacts, name) = contact_points(f.opt_object("contact")?, "contact", region)?;
    if contacts.is_empty() {
        return Err(Problem::unprocessable(
            "contact: at least one contact point is required (contact.phone, contact.email or contact.handle)",
        ));
    }
    let conversation_id = match f.opt_line("conversation_id")? {
        Some(c) if c.trim().is_empty() || c.len() > 200 => {
            return Err(Problem::unprocessable(
                "conversation_id must be 1 to 200 characters",
            ))
        }
        c => c.map(|c| c.trim().to_string()),
    };
    let subject = f.opt_line("subject")?.unwrap_or("").trim().to_string();
    let message = f.str("message")?.to_string();
    let occurred_at = match f.opt_line("occurred_at")? {
        None => None,
        Some(s) => Some(rfc3339_ms(s).ok_or_else(|| {
            Problem::unprocessable(format!(
                "occurred_at: {s:?} is not an RFC 3339 date-time such as 2026-11-21T10:00:00Z"
            ))
        })?),
    };
    let mut attachments = Vec::new();
    for (i, a) in f
        .opt_array("attachments")?
        .into_iter()
        .flatten()
        .enumerate()
    {
        let label = format!("attachments[{i}].");
        let Value::Object(m) = a else {
            return Err(Problem::unprocessable(format!(
                "attachments[{i}] must be an object"
            )));
        };
        let af = Fields::new(m, &label, ATTACHMENT_FIELDS)?;
        let url = http_url(af.line("url")?)
            .map_err(|e| Problem::unprocessable(format!("{label}url {e}")))?;
        let content_type = af
            .opt_line("content_type")?
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("application/octet-stream");
        if content_type.len() > MAX_CONTENT_TYPE_BYTES {
            return Err(Problem::unprocessable(format!(
                "{label}content_type must be at most {MAX_CONTENT_TYPE_BYTES} bytes"
            )));
        }
        // Named exactly as a mail attachment would be.
        let filename = af
            .opt_raw("filename")?
            .map(clean_filename)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("attachment-{}", i + 1));
        attachments.push(LinkedAttachment {
            filename,
            content_type: content_type.to_string(),
            url: url.to_string(),
        });
    }
    Ok(Contact {
        source: source.to_string(),
        channel,
        contacts,
        name,
        conversation_id,
        subject,
        message,
        public: f.opt_bool("public")?.unwrap_or(true),
        occurred_at,
        attachments,
        message_id,
    })
}

fn valid_channel(c: &str) -> Result<String, Problem> {
    let ok = !c.is_empty()
        && c.len() <= 32
        && c.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_');
    if ok {
        Ok(c.to_string())
    } else {
        Err(Problem::unprocessable(format!(
            "channel {c:?}: use 1 to 32 lower-case letters, digits, - or _ (e.g. voice, chat, sms)"
        )))
    }
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}
