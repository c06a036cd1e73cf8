//! The checks of `[[mailboxes]]` that depend on the mailbox's kind: what
//! IMAP and POP3 need (a server and a user), what POP3 cannot do, what JMAP
//! needs (its URL and credentials).

use super::validate::is_loopback;
use super::{AfterImport, MailboxConfig};

/// What POP3 cannot do: it has one maildrop (no folders) and no flags or
/// folders to move to (`seen`, the default, leaves the mail as `keep` does).
pub(super) fn pop3_ok(m: &MailboxConfig, add: &mut dyn FnMut(&'static str, String)) {
    if m.folder.is_some() || !m.folders.is_empty() {
        add(
            "folder",
            "a POP3 mailbox has one maildrop: folder and folders are for IMAP".into(),
        );
    }
    if m.after_import == AfterImport::Move || m.move_to.is_some() {
        add(
            "after_import",
            "POP3 cannot move mail: after_import must be \"keep\" or \"delete\"".into(),
        );
    }
}

/// IMAP and POP3 need a server and a user.
pub(super) fn server_ok(m: &MailboxConfig, add: &mut dyn FnMut(&'static str, String)) {
    if m.host.is_empty() {
        add("host", "missing: the server's host name".into());
    }
    if m.port == 0 {
        add("port", "missing: the server's port".into());
    }
    if m.username.is_empty() {
        add("username", "missing: the login name".into());
    }
}

/// JMAP needs its URL (plain http on loopback only), and either a bearer
/// token or a user; it reads one mailbox.
pub(super) fn jmap_ok(m: &MailboxConfig, add: &mut dyn FnMut(&'static str, String)) {
    match m.url.as_deref().map(reqwest::Url::parse) {
        None => add(
            "url",
            "missing: the JMAP session URL or the server's base URL".into(),
        ),
        Some(Err(e)) => add("url", format!("not a URL: {e}")),
        Some(Ok(u)) => {
            let host = u.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if u.scheme() == "http" && !is_loopback(host) {
                add(
                    "url",
                    format!("plain http is allowed only for loopback hosts, not {host:?}"),
                );
            } else if !matches!(u.scheme(), "http" | "https") {
                add(
                    "url",
                    format!("must be https (or http on loopback), not {}", u.scheme()),
                );
            }
        }
    }
    if m.bearer_token.is_unset() && m.username.is_empty() {
        add(
            "username",
            "missing: set username (with password) or bearer_token".into(),
        );
    }
    if !m.folders.is_empty() {
        add(
            "folders",
            "a JMAP mailbox reads one mailbox: use folder (a name or a role such as inbox)".into(),
        );
    }
}
