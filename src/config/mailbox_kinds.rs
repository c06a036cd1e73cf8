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
    match m.url.as_deref() {
        None => add(
            "url",
            "missing: the JMAP session URL or the server's base URL".into(),
        ),
        Some(u) => {
            if let Err(e) = web_url_ok(u) {
                add("url", e);
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

/// Graph needs the tenant, the application and its secret or certificate,
/// and the mailbox; its URLs must be https (or http on loopback).
pub(super) fn graph_ok(m: &MailboxConfig, add: &mut dyn FnMut(&'static str, String)) {
    for (key, v) in [
        ("tenant_id", &m.tenant_id),
        ("client_id", &m.client_id),
        ("mailbox", &m.mailbox),
    ] {
        if v.as_deref().unwrap_or_default().is_empty() {
            add(
                key,
                "missing: Microsoft Graph needs tenant_id, client_id and mailbox".into(),
            );
        }
    }
    let cert = m.client_certificate_file.is_some() || m.client_key_file.is_some();
    if cert && (m.client_certificate_file.is_none() || m.client_key_file.is_none()) {
        add(
            "client_certificate_file",
            "set both client_certificate_file and client_key_file".into(),
        );
    }
    for (key, f) in [
        ("client_certificate_file", &m.client_certificate_file),
        ("client_key_file", &m.client_key_file),
    ] {
        if let Some(Err(e)) = f.as_ref().map(std::fs::read) {
            add(
                key,
                format!("cannot read {:?}: {e}", f.as_deref().unwrap_or_default()),
            );
        }
    }
    if !cert && m.client_secret.is_unset() {
        add(
            "client_secret",
            "missing: set client_secret (or client_certificate_file and client_key_file)".into(),
        );
    }
    for (key, v) in [("graph_url", &m.graph_url), ("token_url", &m.token_url)] {
        if let Some(u) = v {
            if let Err(e) = web_url_ok(u) {
                add(key, e);
            }
        }
    }
    if !m.folders.is_empty() {
        add("folders", "a Graph mailbox reads one folder: use folder (a well-known name such as inbox, or a path)".into());
    }
}

/// An https URL, or http on a loopback host.
fn web_url_ok(u: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(u).map_err(|e| format!("not a URL: {e}"))?;
    let host = u.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(host) => Ok(()),
        "http" => Err(format!(
            "plain http is allowed only for loopback hosts, not {host:?}"
        )),
        s => Err(format!("must be https (or http on loopback), not {s}")),
    }
}
