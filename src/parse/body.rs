//! Bodies: a parsed message in, its bounded text body and its attachments out.

use std::borrow::Cow;

use mail_parser::{decoders::html::html_to_text, Message, MessagePart, MimeHeaders, PartType};

use super::{headers::mime_type, legacy, truncate_str, Attachment, MAX_TEXT_BYTES};
use crate::sanitize::clean_filename;

fn part_text<'a>(part: &'a MessagePart<'_>, raw: &[u8], charset: &str) -> Cow<'a, str> {
    let is_html = matches!(part.body, PartType::Html(_));
    if let Some(fixed) = legacy::redecode(part, raw, charset) {
        return if is_html {
            html_to_text(&fixed).into()
        } else {
            fixed.into()
        };
    }
    match &part.body {
        PartType::Text(text) => Cow::Borrowed(text.as_ref()),
        PartType::Html(html) => html_to_text(html).into(),
        _ => Cow::Borrowed(""),
    }
}

/// Every text body part joined by a newline (HTML converted to text when a part
/// has no plain alternative), with CRLF turned into LF, cut to [`MAX_TEXT_BYTES`].
pub(super) fn text(msg: &Message<'_>, charset: &str) -> String {
    let mut out = String::new();
    for &id in &msg.text_body {
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        let piece = part_text(part, &msg.raw_message, charset);
        let piece = if piece.contains('\r') {
            Cow::Owned(piece.replace("\r\n", "\n"))
        } else {
            piece
        };
        if !out.is_empty() && !piece.is_empty() {
            out.push('\n');
        }
        out.push_str(truncate_str(
            &piece,
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

/// Every attachment of the top-level message (inline images and attached mails
/// included; parts of attached mails are not split out).
pub(super) fn attachments(msg: &Message<'_>) -> Vec<Attachment> {
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
            Attachment {
                filename,
                content_type: content_type(part),
                data: part.contents().to_vec(),
            }
        })
        .collect()
}
