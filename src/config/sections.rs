//! The sections of the configuration file and their validation.

use super::{locate, Problem, Secret};
use serde::Deserialize;

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (default `sqlite://intake.db`) or `postgres://...`.
    pub url: String,
    /// Connections in the pool (PostgreSQL; SQLite uses one writer).
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://intake.db".into(),
            max_connections: 8,
        }
    }
}

/// `[desk]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskConfig {
    /// Domain used in our Message-IDs and loop header.
    pub domain: String,
    /// Our own support addresses (mailbox addresses are added to these).
    pub addresses: Vec<String>,
    /// Ticket tag in subjects; `{id}` is replaced by the ticket number.
    pub ticket_tag: String,
    /// Base URL of the agent interface, for templates (`{id}` replaced).
    pub ticket_url: Option<String>,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            domain: "intake.localhost".into(),
            addresses: vec![],
            ticket_tag: "[#{id}]".into(),
            ticket_url: None,
        }
    }
}

/// `[organizations]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrganizationsConfig {
    /// Create an organization for an unknown, non-free-mail domain.
    pub auto_create: bool,
    /// Extra free-mail domains, added to the built-in list (`name.*` allowed).
    pub free_mail_domains: Vec<String>,
}

impl Default for OrganizationsConfig {
    fn default() -> Self {
        OrganizationsConfig {
            auto_create: true,
            free_mail_domains: vec![],
        }
    }
}

/// `[identities]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitiesConfig {
    /// ISO 3166 region for phone numbers written without a country code.
    pub default_phone_region: String,
}

impl Default for IdentitiesConfig {
    fn default() -> Self {
        IdentitiesConfig {
            default_phone_region: "US".into(),
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest message accepted, in bytes; larger ones are quarantined.
    pub max_message_bytes: usize,
    /// Messages per storage transaction.
    pub batch_size: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 25 * 1024 * 1024,
            batch_size: 500,
        }
    }
}

/// `[logging]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `human` or `json`.
    pub format: String,
    /// tracing filter, e.g. `info,intake=debug`.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            format: "human".into(),
            level: "info".into(),
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: String,
    pub admin_token: Option<String>,
    pub admin_token_env: Option<String>,
    pub admin_token_file: Option<String>,
    /// Largest webhook body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            admin_token: None,
            admin_token_env: None,
            admin_token_file: None,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl HttpConfig {
    pub fn admin_token(&self) -> Secret {
        Secret::from_parts(
            self.admin_token.clone(),
            self.admin_token_env.clone(),
            self.admin_token_file.clone(),
        )
    }
}

/// One `[[mailboxes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// `tls` (implicit), `starttls`, or `none` (loopback only).
    #[serde(default = "default_tls")]
    pub tls: String,
    pub username: String,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    /// XOAUTH2 access token from a file or a command instead of a password.
    pub oauth2_token_file: Option<String>,
    pub oauth2_token_command: Option<String>,
    /// Folders to import; `folder` is a shorthand for one.
    pub folder: Option<String>,
    #[serde(default)]
    pub folders: Vec<String>,
    /// The support address this mailbox serves.
    pub address: Option<String>,
    /// `seen`, `move`, `delete` or `keep`.
    #[serde(default = "default_after_import")]
    pub after_import: String,
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

fn default_tls() -> String {
    "tls".into()
}
fn default_after_import() -> String {
    "seen".into()
}
fn default_true() -> bool {
    true
}
fn default_poll() -> u64 {
    60
}
fn default_timeout() -> u64 {
    30
}
fn default_fetch_batch() -> u32 {
    200
}

impl MailboxConfig {
    pub fn password(&self) -> Secret {
        Secret::from_parts(
            self.password.clone(),
            self.password_env.clone(),
            self.password_file.clone(),
        )
    }

    /// The folders to import (default INBOX).
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

/// One `[[webhook_sources]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSourceConfig {
    pub name: String,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<String>,
    /// Second secret accepted during rotation.
    pub previous_secret: Option<String>,
    pub previous_secret_env: Option<String>,
    pub previous_secret_file: Option<String>,
    #[serde(default = "default_rate")]
    pub rate_per_second: u32,
    #[serde(default = "default_burst")]
    pub burst: u32,
    #[serde(default = "default_channel")]
    pub default_channel: String,
}

fn default_rate() -> u32 {
    50
}
fn default_burst() -> u32 {
    100
}
fn default_channel() -> String {
    "api".into()
}

impl WebhookSourceConfig {
    pub fn secret(&self) -> Secret {
        Secret::from_parts(
            self.secret.clone(),
            self.secret_env.clone(),
            self.secret_file.clone(),
        )
    }
    pub fn previous_secret(&self) -> Secret {
        Secret::from_parts(
            self.previous_secret.clone(),
            self.previous_secret_env.clone(),
            self.previous_secret_file.clone(),
        )
    }
}

/// `[smtp]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    /// From address of notifications.
    pub from: String,
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

impl SmtpConfig {
    pub fn password(&self) -> Secret {
        Secret::from_parts(
            self.password.clone(),
            self.password_env.clone(),
            self.password_file.clone(),
        )
    }
}

/// `[notifications]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// At most this many notifications per recipient per window.
    pub per_recipient_limit: u32,
    pub per_recipient_window_secs: u64,
    /// How long a bounced address stays undeliverable.
    pub undeliverable_days: u32,
    /// Delivery attempts before a notification is failed.
    pub max_attempts: u32,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            per_recipient_limit: 10,
            per_recipient_window_secs: 3600,
            undeliverable_days: 60,
            max_attempts: 8,
        }
    }
}

/// One `[[triggers]]` entry; conditions and actions are validated by the
/// notifier module, which owns their meaning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    pub name: String,
    pub on: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub conditions: toml::Table,
    #[serde(default)]
    pub actions: Vec<toml::Table>,
}

/// Checks serde cannot express. Returns every problem found.
pub(super) fn validate(cfg: &super::Config, text: &str) -> Vec<Problem> {
    let mut p = Vec::new();
    let mut add = |table: &str, n: usize, key: &str, label: String, msg: String| {
        p.push(Problem {
            line: locate(text, table, n, key),
            key: label,
            message: msg,
        })
    };
    let url = &cfg.database.url;
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        add(
            "database",
            0,
            "url",
            "database.url".into(),
            format!("unsupported database URL {url:?}: use sqlite://PATH or postgres://..."),
        );
    }
    if cfg.desk.domain.trim().is_empty() || cfg.desk.domain.contains(['@', ' ', '<', '>']) {
        add(
            "desk",
            0,
            "domain",
            "desk.domain".into(),
            format!("{:?} is not a domain name", cfg.desk.domain),
        );
    }
    if !cfg.desk.ticket_tag.contains("{id}") {
        add(
            "desk",
            0,
            "ticket_tag",
            "desk.ticket_tag".into(),
            "must contain {id}".into(),
        );
    }
    for a in &cfg.desk.addresses {
        if crate::identity::EmailAddress::parse(a).is_err() {
            add(
                "desk",
                0,
                "addresses",
                "desk.addresses".into(),
                format!("{a:?} is not an email address"),
            );
        }
    }
    let region = &cfg.identities.default_phone_region;
    if region.parse::<phonenumber::country::Id>().is_err() {
        add(
            "identities",
            0,
            "default_phone_region",
            "identities.default_phone_region".into(),
            format!("{region:?} is not an ISO 3166 region code such as \"US\" or \"IT\""),
        );
    }
    if cfg.limits.batch_size == 0 || cfg.limits.batch_size > 5000 {
        add(
            "limits",
            0,
            "batch_size",
            "limits.batch_size".into(),
            "must be between 1 and 5000".into(),
        );
    }
    if !matches!(cfg.logging.format.as_str(), "human" | "json") {
        add(
            "logging",
            0,
            "format",
            "logging.format".into(),
            "must be \"human\" or \"json\"".into(),
        );
    }
    if cfg.http.listen.parse::<std::net::SocketAddr>().is_err() {
        add(
            "http",
            0,
            "listen",
            "http.listen".into(),
            format!("{:?} is not an address:port", cfg.http.listen),
        );
    }
    if let Err(e) = secret_ok(&cfg.http.admin_token(), true) {
        add("http", 0, "admin_token_env", "http.admin_token".into(), e);
    }
    let mut names = std::collections::HashSet::new();
    for (i, m) in cfg.mailboxes.iter().enumerate() {
        let label = |k: &str| format!("mailboxes[{i}].{k}");
        if !names.insert(m.name.clone()) {
            add(
                "mailboxes",
                i,
                "name",
                label("name"),
                format!("duplicate mailbox name {:?}", m.name),
            );
        }
        if !matches!(m.tls.as_str(), "tls" | "starttls" | "none") {
            add(
                "mailboxes",
                i,
                "tls",
                label("tls"),
                "must be \"tls\", \"starttls\" or \"none\"".into(),
            );
        } else if m.tls == "none" && !is_loopback(&m.host) {
            add(
                "mailboxes",
                i,
                "tls",
                label("tls"),
                format!(
                    "tls = \"none\" is allowed only for loopback hosts, not {:?}",
                    m.host
                ),
            );
        }
        match m.after_import.as_str() {
            "seen" | "delete" | "keep" => {}
            "move" if m.move_to.is_some() => {}
            "move" => add(
                "mailboxes",
                i,
                "after_import",
                label("move_to"),
                "after_import = \"move\" needs move_to".into(),
            ),
            other => add(
                "mailboxes",
                i,
                "after_import",
                label("after_import"),
                format!("{other:?}: use seen, move, delete or keep"),
            ),
        }
        let oauth = m.oauth2_token_file.is_some() || m.oauth2_token_command.is_some();
        if !oauth {
            if let Err(e) = secret_ok(&m.password(), false) {
                add("mailboxes", i, "password", label("password"), e);
            }
        }
        if let Some(a) = &m.address {
            if crate::identity::EmailAddress::parse(a).is_err() {
                add(
                    "mailboxes",
                    i,
                    "address",
                    label("address"),
                    format!("{a:?} is not an email address"),
                );
            }
        }
        if let Some(f) = &m.ca_file {
            if let Err(e) = std::fs::read(f) {
                add(
                    "mailboxes",
                    i,
                    "ca_file",
                    label("ca_file"),
                    format!("cannot read {f:?}: {e}"),
                );
            }
        }
        if m.fetch_batch == 0 {
            add(
                "mailboxes",
                i,
                "fetch_batch",
                label("fetch_batch"),
                "must be at least 1".into(),
            );
        }
        if m.timeout == 0 {
            add(
                "mailboxes",
                i,
                "timeout",
                label("timeout"),
                "must be at least 1 second".into(),
            );
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, w) in cfg.webhook_sources.iter().enumerate() {
        let label = |k: &str| format!("webhook_sources[{i}].{k}");
        if !names.insert(w.name.clone())
            || w.name.is_empty()
            || !w
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            add(
                "webhook_sources",
                i,
                "name",
                label("name"),
                format!(
                    "{:?}: names must be unique and use only letters, digits, - and _",
                    w.name
                ),
            );
        }
        if let Err(e) = secret_ok(&w.secret(), false) {
            add("webhook_sources", i, "secret", label("secret"), e);
        }
        if let Err(e) = secret_ok(&w.previous_secret(), true) {
            add(
                "webhook_sources",
                i,
                "previous_secret",
                label("previous_secret"),
                e,
            );
        }
        if w.rate_per_second == 0 || w.burst == 0 {
            add(
                "webhook_sources",
                i,
                "rate_per_second",
                label("rate_per_second"),
                "rate_per_second and burst must be at least 1".into(),
            );
        }
    }
    if let Some(s) = &cfg.smtp {
        if !matches!(s.tls.as_str(), "tls" | "starttls" | "none") {
            add(
                "smtp",
                0,
                "tls",
                "smtp.tls".into(),
                "must be \"tls\", \"starttls\" or \"none\"".into(),
            );
        } else if s.tls == "none" && !is_loopback(&s.host) {
            add(
                "smtp",
                0,
                "tls",
                "smtp.tls".into(),
                format!(
                    "tls = \"none\" is allowed only for loopback hosts, not {:?}",
                    s.host
                ),
            );
        }
        if crate::identity::EmailAddress::parse(&s.from).is_err() {
            add(
                "smtp",
                0,
                "from",
                "smtp.from".into(),
                format!("{:?} is not an email address", s.from),
            );
        }
        if s.username.is_some() {
            if let Err(e) = secret_ok(&s.password(), false) {
                add("smtp", 0, "password", "smtp.password".into(), e);
            }
        }
    }
    p.extend(crate::notify::validate(cfg, text));
    p
}

fn secret_ok(s: &Secret, optional: bool) -> Result<(), String> {
    if s.is_unset() {
        return if optional {
            Ok(())
        } else {
            Err("no secret: set the key, its _env or its _file variant".into())
        };
    }
    s.resolve().map(|_| ())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}
