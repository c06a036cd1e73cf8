//! One `[[mailboxes]]` entry: its protocol, connection, credentials and
//! what becomes of imported mail.

use super::{Address, Secret, Tls};
use serde::Deserialize;

/// The kind of mailbox (each kind is a folder under `src/sources/`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Imap,
    /// POP3 (RFC 1939): one maildrop, exactly-once by UIDL.
    Pop3,
    /// JMAP (RFC 8620/8621): one mailbox of an account, by Email/changes.
    Jmap,
    /// Microsoft Graph (Microsoft 365, Exchange Online): a mail folder of a
    /// user or shared mailbox, by delta query, with app-only OAuth.
    Graph,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Jmap => "jmap",
            Protocol::Graph => "graph",
        }
    }
}

/// What a mailbox does with a message once it is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterImport {
    /// Flag it `\Seen`.
    #[default]
    Seen,
    /// Move it to `move_to`.
    Move,
    /// Delete (and expunge) it.
    Delete,
    /// Leave it as it is.
    Keep,
}

impl AfterImport {
    pub fn as_str(self) -> &'static str {
        match self {
            AfterImport::Seen => "seen",
            AfterImport::Move => "move",
            AfterImport::Delete => "delete",
            AfterImport::Keep => "keep",
        }
    }
}

/// One `[[mailboxes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    pub name: String,
    /// `imap` (the default), `pop3`, `jmap` or `graph`.
    #[serde(default)]
    pub protocol: Protocol,
    /// IMAP and POP3: the server.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    /// JMAP: the session resource, or the server's base URL (its
    /// `/.well-known/jmap` is asked).
    pub url: Option<String>,
    /// JMAP: a bearer token instead of `username` and `password`.
    #[serde(default)]
    pub bearer_token: Secret,
    /// Graph: the directory (tenant) id or domain.
    pub tenant_id: Option<String>,
    /// Graph: the application (client) id.
    pub client_id: Option<String>,
    /// Graph: the application's client secret.
    #[serde(default)]
    pub client_secret: Secret,
    /// Graph: a certificate (PEM) and its RSA key (PKCS#8 PEM) instead of
    /// the client secret.
    pub client_certificate_file: Option<String>,
    pub client_key_file: Option<String>,
    /// Graph: the mailbox, as a user id or address (shared mailboxes too).
    pub mailbox: Option<String>,
    /// Graph: the API base (default Microsoft's global cloud,
    /// `https://graph.microsoft.com/v1.0`; national clouds have their own).
    pub graph_url: Option<String>,
    /// Graph: the token endpoint (default
    /// `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`).
    pub token_url: Option<String>,
    /// `tls` (implicit), `starttls`, or `none` (loopback only).
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    /// XOAUTH2 access token from a file or a command instead of a password.
    pub oauth2_token_file: Option<String>,
    pub oauth2_token_command: Option<String>,
    /// Folders to import; `folder` is a shorthand for one.
    pub folder: Option<String>,
    #[serde(default)]
    pub folders: Vec<String>,
    /// The support address this mailbox serves.
    pub address: Option<Address>,
    /// `seen`, `move`, `delete` or `keep`.
    #[serde(default)]
    pub after_import: AfterImport,
    pub move_to: Option<String>,
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Seconds between polls when IDLE is off or unavailable.
    #[serde(default = "default_poll")]
    pub poll_interval: u64,
    /// Seconds allowed for connect, login and each command.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Messages per UID FETCH batch.
    #[serde(default = "default_fetch_batch")]
    pub fetch_batch: u32,
    /// PEM file of extra CA certificates trusted for this server (private
    /// CAs), in addition to the public web roots.
    pub ca_file: Option<String>,
}

pub(super) fn default_true() -> bool {
    true
}
fn default_poll() -> u64 {
    60
}
pub(super) fn default_timeout() -> u64 {
    30
}
fn default_fetch_batch() -> u32 {
    200
}

impl MailboxConfig {
    /// The folders to import (default INBOX; a POP3 maildrop is one).
    pub fn folder_list(&self) -> Vec<String> {
        let mut v = self.folders.clone();
        if let Some(f) = &self.folder {
            v.insert(0, f.clone());
        }
        if v.is_empty() {
            v.push("INBOX".into());
        }
        v
    }
}
