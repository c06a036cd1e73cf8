//! Message-IDs: the mail's own id (or a generated one), bounded In-Reply-To and
//! References lists, and the ids of the original mail quoted by a bounce.

use std::borrow::Cow;
use std::collections::HashSet;

use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::{headers::mime_type, MAX_ID_BYTES, MAX_REFERENCES};

/// Header fields left out of the generated Message-ID hash because they are added
/// or changed on delivery (one copy per mailbox). A trailing `*` is a prefix.
pub const TRACE_HEADERS: &[&str] = &[
    "Received",
    "Return-Path",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Envelope-From",
    "Authentication-Results",
    "ARC-*",
    "DKIM-Signature",
    "X-Spam-*",
    "Received-SPF",
    "X-Received",
    "X-Delivered-To",
    "Delivery-Date",
    "X-Original-Authentication-Results",
    "X-Virus-*",
    "Status",
    "X-Status",
    "X-UID",
    "X-Keywords",
];

fn is_trace(name: &str) -> bool {
    TRACE_HEADERS.iter().any(|t| match t.strip_suffix('*') {
        Some(prefix) => name
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes())),
        None => name.eq_ignore_ascii_case(t),
    })
}

/// The id generated for a mail without a Message-ID (see the parent module's doc):
/// `<sha256 hex>@generated.intake`, without angle brackets.
pub fn generated_message_id(raw: &[u8]) -> String {
    let mut normalised = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        normalised.push(raw[i]);
        i += 1;
    }
    let mut rest: &[u8] = &normalised;
    if rest.starts_with(b"From ") {
        // An mbox separator line, added by local delivery.
        rest = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&[][..], |p| &rest[p + 1..]);
    }
    let split = rest.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(p) => (&rest[..=p], &rest[p + 1..]),
        None => (rest, &[][..]),
    };
    let mut hasher = Sha256::new();
    let mut keep = true;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            keep = !is_trace(String::from_utf8_lossy(name).trim());
        }
        if keep {
            hasher.update(line);
        }
    }
    let body_end = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    hasher.update(b"\n");
    hasher.update(&body[..body_end]);
    format!("{}@generated.intake", hex::encode(hasher.finalize()))
}

/// One id cleaned up: trimmed, without `<>`, non-empty, bounded, no whitespace.
fn clean_id(id: &str) -> Option<String> {
    clean_id_str(id).map(str::to_string)
}

fn clean_id_str(id: &str) -> Option<&str> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let ok = !id.is_empty() && id.len() <= MAX_ID_BYTES && !id.chars().any(char::is_whitespace);
    ok.then_some(id)
}

/// The mail's own Message-ID, when it has a usable one.
pub(super) fn own_message_id(msg: &Message<'_>) -> Option<String> {
    msg.message_id().and_then(clean_id)
}

/// In-Reply-To (`keep_last == false`: the first distinct ids) or References
/// (`keep_last == true`: the first id, which names the thread's root, and the last
/// distinct ids, which name the most recent mails), bounded to [`MAX_REFERENCES`],
/// in header order. Time is linear in the header: each id is cleaned and looked up
/// in a set at most once, and the walk stops once the bound is reached.
pub(super) fn bounded_ids(value: &HeaderValue<'_>, keep_last: bool) -> Vec<String> {
    let raw: &[Cow<'_, str>] = match value {
        HeaderValue::Text(t) => std::slice::from_ref(t),
        HeaderValue::TextList(list) => list,
        _ => &[],
    };
    let mut clean = raw.iter().filter_map(|t| clean_id_str(t));
    if !keep_last {
        return distinct(clean, MAX_REFERENCES);
    }
    let Some(root) = clean.next() else {
        return Vec::new();
    };
    // The rest, walked from the end; the root is kept once, in front.
    let rest = raw
        .iter()
        .rev()
        .filter_map(|t| clean_id_str(t))
        .filter(|id| *id != root);
    let mut recent = distinct(rest, MAX_REFERENCES - 1);
    recent.push(root.to_string());
    recent.reverse();
    recent
}

/// The first `max` distinct ids of `ids`, in order.
fn distinct<'a>(ids: impl Iterator<Item = &'a str>, max: usize) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for id in ids {
        if out.len() >= max {
            break;
        }
        if seen.insert(id) {
            out.push(id.to_string());
        }
    }
    out
}

/// `Message-ID:` lines in a body, as quoted by non-MIME bounces (qmail, old Exim).
fn ids_in_text(text: &str, out: &mut Vec<String>) {
    for line in text.lines() {
        let line = line.trim_start_matches(|c: char| c.is_whitespace() || c == '>');
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let value = value.trim();
        let value = match (value.find('<'), value.rfind('>')) {
            (Some(s), Some(e)) if s < e => &value[s + 1..e],
            _ => value,
        };
        out.extend(clean_id(value));
    }
}

/// The Message-ID of a header block, also when the block starts with blank
/// lines (some mail systems write one before the returned headers); else
/// any `Message-ID:` line in it.
fn header_block_ids(bytes: &[u8], out: &mut Vec<String>) {
    let start = bytes
        .iter()
        .position(|&b| b != b'\n' && b != b'\r')
        .unwrap_or(bytes.len());
    let block = &bytes[start..];
    match MessageParser::default()
        .parse_headers(block)
        .and_then(|m| m.message_id().and_then(clean_id))
    {
        Some(id) => out.push(id),
        None => ids_in_text(&String::from_utf8_lossy(block), out),
    }
}

/// How deep attached mails are searched for the returned original (a bounce
/// forwarded as an attachment holds it one level further down).
const RETURNED_DEPTH: usize = 3;

fn returned_in(msg: &Message<'_>, depth: usize, found: &mut Vec<String>) {
    for part in msg.parts.iter().skip(1) {
        let ctype = part.content_type().map(mime_type).unwrap_or_default();
        match &part.body {
            PartType::Message(nested) => {
                found.extend(nested.message_id().and_then(clean_id));
                if depth > 1 {
                    returned_in(nested, depth - 1, found);
                }
            }
            _ if ctype.ends_with("rfc822-headers")
                || ctype == "message/global-headers"
                || ctype == "message/rfc822"
                || ctype == "message/global" =>
            {
                header_block_ids(part.contents(), found);
            }
            // Some mail systems quote the original's headers inside the
            // delivery-status part.
            _ if ctype.ends_with("delivery-status") => {
                ids_in_text(&String::from_utf8_lossy(part.contents()), found);
            }
            _ => {}
        }
    }
}

/// Whether `text` holds `message-id` in any case: a memchr over the dashes
/// spares ordinary mail the line walk.
fn names_message_id(text: &[u8]) -> bool {
    memchr::memchr_iter(b'-', text).any(|i| {
        i >= 7
            && text
                .get(i + 1..i + 3)
                .is_some_and(|id| id.eq_ignore_ascii_case(b"id"))
            && text[i - 7..i].eq_ignore_ascii_case(b"message")
    })
}

/// Message-IDs of the original mail inside a bounce or report: attached
/// `message/rfc822` mails (and the mails attached to those, [`RETURNED_DEPTH`]
/// levels down), `text/rfc822-headers` parts (leading blank lines allowed),
/// and `Message-ID:` lines in the text body and in delivery-status parts.
/// `own` (the bounce's own id) is left out.
pub(super) fn returned_message_ids(msg: &Message<'_>, text: &str, own: &str) -> Vec<String> {
    let mut found = Vec::new();
    returned_in(msg, RETURNED_DEPTH, &mut found);
    // A SIMD search for the field name spares ordinary mail the line walk.
    if names_message_id(text.as_bytes()) {
        ids_in_text(text, &mut found);
    }
    distinct(
        found.iter().map(String::as_str).filter(|id| *id != own),
        MAX_REFERENCES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &str = "From: Ann <ann@example.com>\nTo: support@desk.example\n\
        Subject: Printer on fire\nDate: Mon, 3 Mar 2025 10:00:00 +0100\n\
        MIME-Version: 1.0\nContent-Type: text/plain\n\nIt is really on fire.\n";

    #[test]
    fn generated_id_ignores_trace_headers_and_line_endings() {
        let plain = generated_message_id(MAIL.as_bytes());
        let delivered_a = format!(
            "Return-Path: <ann@example.com>\nDelivered-To: support@desk.example\n\
             Received: from mx1 by a; Mon, 3 Mar 2025 10:00:01 +0100\n\
             X-Spam-Status: No, score=0.1\n{MAIL}"
        );
        let delivered_b = format!(
            "From MAILER-DAEMON Mon Mar  3 10:00:02 2025\n\
             Return-Path: <ann@example.com>\nDelivered-To: sales@desk.example\n\
             Received: from mx2 by b;\n\tMon, 3 Mar 2025 10:00:02 +0100\n\
             X-Original-To: sales@desk.example\n\
             ARC-Seal: i=1; a=rsa-sha256; cv=none\n{MAIL}\n\n"
        )
        .replace('\n', "\r\n");
        assert_eq!(generated_message_id(delivered_a.as_bytes()), plain);
        assert_eq!(generated_message_id(delivered_b.as_bytes()), plain);
        assert!(plain.ends_with("@generated.intake"));
        assert_eq!(plain.len(), 64 + "@generated.intake".len());
    }

    #[test]
    fn generated_id_differs_for_different_mail() {
        let other = MAIL.replace("really", "no longer");
        assert_ne!(
            generated_message_id(MAIL.as_bytes()),
            generated_message_id(other.as_bytes())
        );
        let other_sender = MAIL.replace("ann@", "bob@");
        assert_ne!(
            generated_message_id(MAIL.as_bytes()),
            generated_message_id(other_sender.as_bytes())
        );
    }

    #[test]
    fn trace_names_may_hold_any_characters() {
        assert!(is_trace("ARC-Seal"));
        assert!(is_trace("x-spam-status"));
        assert!(!is_trace("Subject"));
        assert!(!is_trace("A\u{fffd}C-Seal")); // non-ASCII inside the prefix length
        assert!(!is_trace("\u{fffd}"));
    }

    #[test]
    fn ids_are_bounded_and_cleaned() {
        let many: Vec<std::borrow::Cow<'_, str>> =
            (0..120).map(|i| format!("id{i}@x").into()).collect();
        let refs = bounded_ids(&HeaderValue::TextList(many.clone()), true);
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(refs[0], "id0@x"); // the thread's root
        assert_eq!(refs[1], "id71@x");
        assert_eq!(refs[49], "id119@x");
        let irt = bounded_ids(&HeaderValue::TextList(many), false);
        assert_eq!(irt.len(), MAX_REFERENCES);
        assert_eq!(irt[0], "id0@x");
        assert_eq!(irt[49], "id49@x");
        let long = "a".repeat(MAX_ID_BYTES + 1);
        assert!(bounded_ids(&HeaderValue::Text(long.into()), true).is_empty());
        assert_eq!(clean_id(" <x@y> ").as_deref(), Some("x@y"));
        assert_eq!(clean_id("<>"), None);
    }

    #[test]
    fn duplicate_ids_are_kept_once() {
        let list =
            |ids: &[&'static str]| HeaderValue::TextList(ids.iter().map(|&i| i.into()).collect());
        // The root repeated later stays in front, once; a later repeat of another
        // id counts at its last position.
        let refs = bounded_ids(&list(&["<r@x>", "<a@x>", "<b@x>", "<a@x>", "<r@x>"]), true);
        assert_eq!(refs, vec!["r@x", "b@x", "a@x"]);
        let irt = bounded_ids(&list(&["<a@x>", "<b@x>", "<a@x>"]), false);
        assert_eq!(irt, vec!["a@x", "b@x"]);
        assert_eq!(bounded_ids(&list(&["<r@x>"]), true), vec!["r@x"]);
        assert!(bounded_ids(&list(&["< >", "<>"]), true).is_empty());
        let same: Vec<Cow<'_, str>> = (0..10_000).map(|_| "<same@x>".into()).collect();
        assert_eq!(
            bounded_ids(&HeaderValue::TextList(same), true),
            vec!["same@x"]
        );
    }

    #[test]
    fn message_id_lines_in_bodies() {
        let mut out = Vec::new();
        ids_in_text(
            "--- copy of the message\nMessage-ID: <orig@desk.example>\n> message-id: <q@x>\n",
            &mut out,
        );
        assert_eq!(out, vec!["orig@desk.example", "q@x"]);
    }

    #[test]
    fn returned_original_found_however_wrapped() {
        let report = |inner: &str| {
            format!(
                "From: MAILER-DAEMON@mx.example\nMessage-ID: <dsn@mx>\n\
                 Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n\
                 --b\nContent-Type: text/plain\n\nfailed\n{inner}--b--\n"
            )
        };
        let ids = |raw: &str| {
            let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
            returned_message_ids(&msg, "", "dsn@mx")
        };
        // A blank line before the returned headers.
        let blank = report(
            "--b\nContent-Type: text/rfc822-headers\n\n\nFrom: us@desk\nMessage-ID: <n1@desk>\n\n",
        );
        assert_eq!(ids(&blank), ["n1@desk"]);
        // Inside the delivery-status part.
        let in_status = report(
            "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n\
             Final-Recipient: rfc822; a@b.example\nAction: failed\nMessage-ID: <n2@desk>\n\n",
        );
        assert_eq!(ids(&in_status), ["n2@desk"]);
        // A bounce forwarded as an attachment: the original one level deeper.
        let deeper = "From: a@b.example\nMessage-ID: <fwd@b>\nContent-Type: multipart/mixed; boundary=o\n\n\
             --o\nContent-Type: text/plain\n\nsee below\n--o\nContent-Type: message/rfc822\n\n\
             From: MAILER-DAEMON@mx.example\nMessage-ID: <dsn3@mx>\nContent-Type: multipart/mixed; boundary=i\n\n\
             --i\nContent-Type: text/plain\n\nfailed\n--i\nContent-Type: message/rfc822\n\n\
             From: us@desk\nMessage-ID: <n3@desk>\n\nhello\n--i--\n--o--\n";
        let got = ids(deeper);
        assert!(got.contains(&"n3@desk".to_string()), "{got:?}");
    }
}
