//! The recipients a delivery report says failed: the per-recipient fields
//! of `message/delivery-status` parts (RFC 3464: `Final-Recipient`, else
//! `Original-Recipient`, with `Action` and `Status`) and the
//! `X-Failed-Recipients` header (Exim's, always a permanent failure).
//! Bounded: at most [`MAX_FAILED`] recipients, each part's fields read once.

use mail_parser::{HeaderName, Message, MimeHeaders};

use super::headers::mime_type;

/// Most failed recipients kept from one report.
pub const MAX_FAILED: usize = 100;

/// One recipient a delivery report names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecipient {
    /// The address as written, without `rfc822;` and angle brackets.
    pub address: String,
    /// A permanent failure (`Action: failed` or a `5.x.x` status);
    /// `false` for a delay or a temporary failure.
    pub permanent: bool,
}

/// The failed recipients of `msg` (see the module doc), deduplicated.
pub(super) fn failed_recipients(msg: &Message<'_>) -> Vec<FailedRecipient> {
    let mut out: Vec<FailedRecipient> = Vec::new();
    let mut add = |address: &str, permanent: bool| {
        let address = address
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if out.len() >= MAX_FAILED || !super::address::is_plausible(address) {
            return;
        }
        match out
            .iter_mut()
            .find(|f| f.address.eq_ignore_ascii_case(address))
        {
            Some(f) => f.permanent |= permanent,
            None => out.push(FailedRecipient {
                address: address.to_string(),
                permanent,
            }),
        }
    };
    for v in msg.header_values(HeaderName::Other("X-Failed-Recipients".into())) {
        if let Some(text) = v.as_text() {
            text.split(',').for_each(|a| add(a, true));
        }
    }
    for part in msg.parts.iter().skip(1) {
        let ctype = part.content_type().map(mime_type).unwrap_or_default();
        if ctype != "message/delivery-status" && ctype != "message/global-delivery-status" {
            continue;
        }
        let text = String::from_utf8_lossy(part.contents());
        // Field groups are separated by blank lines; the first is about the
        // message, the others one recipient each.
        for group in text.replace("\r\n", "\n").split("\n\n") {
            let (mut final_rcpt, mut original, mut action, mut status) = (None, None, None, None);
            for line in group.lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "final-recipient" => final_rcpt = Some(address_of(value)),
                    "original-recipient" => original = Some(address_of(value)),
                    "action" => action = Some(value.to_ascii_lowercase()),
                    "status" => status = Some(value.to_string()),
                    _ => {}
                }
            }
            let Some(address) = final_rcpt.or(original) else {
                continue;
            };
            let delivered = matches!(
                action.as_deref(),
                Some(a) if a.starts_with("delivered") || a.starts_with("relayed") || a.starts_with("expanded")
            );
            if delivered {
                continue;
            }
            let permanent = action.as_deref().is_some_and(|a| a.starts_with("failed"))
                || status.as_deref().is_some_and(|s| s.starts_with('5'));
            add(address, permanent);
        }
    }
    out
}

/// `rfc822; user@example.com` → `user@example.com`.
fn address_of(value: &str) -> &str {
    value.split_once(';').map_or(value, |(_, a)| a).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Vec<FailedRecipient> {
        let msg = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        failed_recipients(&msg)
    }

    #[test]
    fn dsn_fields_and_exim_header() {
        let dsn = "From: MAILER-DAEMON@mx.example\nX-Failed-Recipients: gone@example.com\n\
            Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n\
            Content-Type: text/plain\n\nsorry\n--b\nContent-Type: message/delivery-status\n\n\
            Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; <Ann@Example.com>\n\
            Action: failed\nStatus: 5.1.1\n\nOriginal-Recipient: rfc822;late@example.org\n\
            Action: delayed\nStatus: 4.4.7\n\nFinal-Recipient: rfc822; ok@example.org\n\
            Action: delivered\nStatus: 2.0.0\n\nFinal-Recipient: rfc822; gone@EXAMPLE.com\n\
            Action: failed\n--b--\n";
        let f = parse(dsn);
        let got: Vec<(&str, bool)> = f
            .iter()
            .map(|r| (r.address.as_str(), r.permanent))
            .collect();
        assert_eq!(
            got,
            vec![
                ("gone@example.com", true),
                ("Ann@Example.com", true),
                ("late@example.org", false)
            ]
        );
        assert!(parse("From: a@b.example\nSubject: delivery failed\n\nhi\n").is_empty());
    }
}
