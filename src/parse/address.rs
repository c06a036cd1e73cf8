//! Addresses: mail-parser address headers in, plausible [`Mailbox`]es and the
//! sender chosen by the rule in the parent module's doc out.

use mail_parser::{Addr, Address, HeaderName, HeaderValue, Message};

use super::{ClassHeaders, Mailbox, SenderSource};

/// Words in a raw From value that name a mail system rather than a person.
const SYSTEM_SENDER_WORDS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "postmaster",
    "mail delivery",
    "mail-delivery",
];

/// True for exactly one RFC 5322 addr-spec (`local@domain`; see
/// [`crate::identity::addr_spec`]): no white space, control characters or
/// angle brackets outside a quoted local part, one `@`.
pub(crate) fn is_plausible(address: &str) -> bool {
    crate::identity::addr_spec::split(address).is_some()
}

fn to_mailbox(addr: &Addr<'_>) -> Option<Mailbox> {
    let address = addr.address.as_deref()?.trim();
    if !is_plausible(address) {
        return None;
    }
    let name = addr
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Some(Mailbox {
        address: address.to_string(),
        name,
    })
}

fn addrs<'m>(value: &'m HeaderValue<'m>) -> Vec<&'m Addr<'m>> {
    match value {
        HeaderValue::Address(Address::List(list)) => list.iter().collect(),
        HeaderValue::Address(Address::Group(groups)) => {
            groups.iter().flat_map(|g| g.addresses.iter()).collect()
        }
        _ => Vec::new(),
    }
}

/// Every plausible address in every `name` header, in order.
pub(super) fn mailboxes(msg: &Message<'_>, name: HeaderName<'static>) -> Vec<Mailbox> {
    msg.header_values(name)
        .flat_map(addrs)
        .filter_map(to_mailbox)
        .collect()
}

/// The address inside a raw Return-Path value, `None` for the null path.
pub(crate) fn return_path_address(raw: &str) -> Option<String> {
    let inner = raw.trim();
    let inner = match (inner.find('<'), inner.rfind('>')) {
        (Some(start), Some(end)) if start < end => &inner[start + 1..end],
        _ => inner,
    };
    let inner = inner.trim();
    is_plausible(inner).then(|| inner.to_string())
}

/// True for mail sent by a mail system (see the parent module's sender rule):
/// null Return-Path or From, a system name in From, or a report structure.
pub(super) fn is_system_mail(h: &ClassHeaders) -> bool {
    let null = |v: &str| v.trim().trim_matches(['<', '>']).trim().is_empty();
    let from = h.from.as_deref().unwrap_or_default().to_lowercase();
    h.return_path.as_deref().is_some_and(null)
        || from.contains("<>")
        || SYSTEM_SENDER_WORDS.iter().any(|w| from.contains(w))
        || h.content_type == "multipart/report"
        || h.has_delivery_status_part
        || h.has_feedback_report_part
}

/// Applies the sender rule (see the parent module's doc): From; a From that
/// holds no usable address is read as a careful human would (an addr-spec in
/// its text, then the first Reply-To, Sender, Return-Path); without any From,
/// Sender, first Reply-To, Return-Path.
pub(super) fn choose_sender(
    msg: &Message<'_>,
    return_path: Option<&str>,
) -> Option<(Mailbox, SenderSource)> {
    if let Some(m) = mailboxes(msg, HeaderName::From).into_iter().next() {
        return Some((m, SenderSource::From));
    }
    let bare = |address: String| Mailbox {
        address,
        name: None,
    };
    let from = msg
        .header_raw(HeaderName::From)
        .map(str::trim)
        .filter(|f| !f.trim_matches(['<', '>', ' ']).is_empty());
    let mut order = [HeaderName::Sender, HeaderName::ReplyTo];
    if let Some(text) = from {
        if let Some(address) = crate::identity::addr_spec::find_in_text(text) {
            // A lone quoted local part (`"John Doe"@example.com`) is a
            // well-formed From that the parser reads as a display name.
            let exact = text.trim_matches(['<', '>']).trim() == address;
            let source = if exact {
                SenderSource::From
            } else {
                SenderSource::FromText
            };
            return Some((bare(address), source));
        }
        order = [HeaderName::ReplyTo, HeaderName::Sender];
    }
    for name in order {
        if let Some(m) = mailboxes(msg, name.clone()).into_iter().next() {
            let source = match name {
                HeaderName::Sender => SenderSource::Sender,
                _ => SenderSource::ReplyTo,
            };
            return Some((m, source));
        }
    }
    let address = return_path_address(return_path?)?;
    Some((bare(address), SenderSource::ReturnPath))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_addresses() {
        assert!(is_plausible("a@b"));
        assert!(is_plausible("Joe.Bloggs+tag@Example.COM"));
        assert!(!is_plausible("@example.com"));
        assert!(!is_plausible("joe@"));
        assert!(!is_plausible("joe"));
        assert!(!is_plausible("joe bloggs@example.com"));
        assert!(!is_plausible("<joe@example.com>"));
        assert!(!is_plausible(""));
        assert!(!is_plausible("postmaster@xxx.com@xxx.com"));
        assert!(is_plausible("\"John Doe\"@example.com"));
    }

    #[test]
    fn return_path_values() {
        assert_eq!(return_path_address("<>"), None);
        assert_eq!(return_path_address(""), None);
        assert_eq!(return_path_address(" < > "), None);
        assert_eq!(
            return_path_address(" <Bounce@Example.org> ").as_deref(),
            Some("Bounce@Example.org")
        );
        assert_eq!(
            return_path_address("bare@example.org").as_deref(),
            Some("bare@example.org")
        );
    }
}
