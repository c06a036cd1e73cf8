//! Bodies: a parsed message in, its bounded text body and its attachments out.

use std::borrow::Cow;

use mail_parser::{decoders::html::html_to_text, Message, MessagePart, MimeHeaders, PartType};

use std::collections::{HashMap, HashSet};

use super::{
    headers::mime_type, inline, legacy, truncate_str, Attachment, MAX_ID_BYTES, MAX_TEXT_BYTES,
};
use crate::reply::{self, Visible};
use crate::sanitize::clean_filename;

/// A part's text, and its visible text when that differs (see
/// [`crate::reply`]); `block` says whether a separator, header block or
/// quote container was found.
fn part_text<'a>(
    part: &'a MessagePart<'_>,
    raw: &[u8],
    charset: &str,
    images: &HashMap<String, String>,
) -> (Cow<'a, str>, Visible) {
    let fixed = legacy::redecode(part, raw, charset);
    let is_html = matches!(part.body, PartType::Html(_));
    if is_html {
        let source = match (&fixed, &part.body) {
            (Some(f), _) => f.as_str(),
            (None, PartType::Html(t)) => t.as_ref(),
            _ => "",
        };
        // Inline images show as `[image: name]` where they stood.
        let source = inline::images_as_text(source, images);
        let text = html_to_text(&reply::html_lines(&source));
        let visible = reply::of_html(&source, &text);
        return (crlf(Cow::Owned(text)), visible);
    }
    let text = match (fixed, &part.body) {
        (Some(f), _) => crlf(Cow::Owned(f)),
        (None, PartType::Text(t)) => crlf(Cow::Borrowed(t.as_ref())),
        _ => return (Cow::Borrowed(""), Visible::default()),
    };
    let visible = reply::of_text(&text);
    (text, visible)
}

fn crlf(text: Cow<'_, str>) -> Cow<'_, str> {
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        text
    }
}

/// Every text body part joined by a newline (HTML converted to text when a part
/// has no plain alternative), with CRLF turned into LF, cut to [`MAX_TEXT_BYTES`];
/// and its visible text, the parts' visible texts joined alike.
pub(super) fn text(
    msg: &Message<'_>,
    charset: &str,
    images: &HashMap<String, String>,
) -> (String, Visible) {
    let mut pieces = Vec::with_capacity(msg.text_body.len());
    for &id in &msg.text_body {
        if let Some(part) = msg.parts.get(id as usize) {
            pieces.push(part_text(part, &msg.raw_message, charset, images));
        }
    }
    let out = join(pieces.iter().map(|(t, _)| t.as_ref()));
    let block = pieces.iter().any(|(_, v)| v.block);
    if pieces.iter().all(|(_, v)| v.text.is_none()) {
        return (out, Visible { text: None, block });
    }
    let seen = pieces
        .iter()
        .map(|(t, v)| v.text.as_deref().unwrap_or(t.as_ref()));
    (
        out,
        Visible {
            text: Some(join(seen)),
            block,
        },
    )
}

/// Pieces joined by a newline (empty ones skipped), cut to [`MAX_TEXT_BYTES`].
fn join<'a>(pieces: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for piece in pieces {
        if !out.is_empty() && !piece.is_empty() {
            out.push('\n');
        }
        out.push_str(truncate_str(
            piece,
            MAX_TEXT_BYTES.saturating_sub(out.len()),
        ));
        if out.len() >= MAX_TEXT_BYTES {
            break;
        }
    }
    out
}

fn content_type(part: &MessagePart<'_>) -> String {
    match (part.content_type(), &part.body) {
        (Some(ct), _) if !ct.ctype().trim().is_empty() && ct.subtype().is_some() => mime_type(ct),
        (_, PartType::Text(_)) => "text/plain".to_string(),
        (_, PartType::Html(_)) => "text/html".to_string(),
        (_, PartType::Message(_)) => "message/rfc822".to_string(),
        _ => "application/octet-stream".to_string(),
    }
}

/// The Content-IDs the message's HTML parts show as images, as keys.
pub(super) fn cid_refs(msg: &Message<'_>) -> HashSet<String> {
    msg.html_body
        .iter()
        .filter_map(|&id| msg.parts.get(id as usize))
        .filter_map(|p| match &p.body {
            PartType::Html(h) => Some(inline::cid_refs(h)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Every attachment of the top-level message (inline images and attached mails
/// included; parts of attached mails are not split out). A part whose
/// Content-ID the HTML shows (`refs`) is inline, whatever its
/// Content-Disposition says (Apple Mail and Outlook say `attachment`).
pub(super) fn attachments(msg: &Message<'_>, refs: &HashSet<String>) -> Vec<Attachment> {
    msg.attachments
        .iter()
        .filter_map(|&id| msg.parts.get(id as usize))
        .enumerate()
        .map(|(i, part)| {
            let filename = part
                .attachment_name()
                .map(clean_filename)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            let content_id = part
                .content_id()
                .map(inline::cid_key)
                .filter(|c| !c.is_empty() && c.len() <= MAX_ID_BYTES);
            Attachment {
                filename,
                content_type: content_type(part),
                inline: content_id.as_ref().is_some_and(|c| refs.contains(c)),
                content_id,
                data: part.contents().to_vec(),
            }
        })
        .collect()
}
