//! The sections of the configuration file and their validation.

use super::mailbox::{default_timeout, default_true};
use super::{Address, Secret};
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
    pub addresses: Vec<Address>,
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

/// `[agents]`: the desk's agents. Their mail is never a customer's: no
/// organization comes from their domains, their replies are agent comments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    pub addresses: Vec<String>,
    pub domains: Vec<String>,
    /// An agent's reply starting with this is an internal note.
    pub private_marker: String,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            addresses: Vec::new(),
            domains: Vec::new(),
            private_marker: "#note".into(),
        }
    }
}

/// `[trust]`: who may act as their From address (see [`crate::trust`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// Authentication service ids (RFC 8601) of the desk's own receiving
    /// MTAs; empty: senders are not verified.
    pub authserv_ids: Vec<String>,
    /// Review mail whose trusted DMARC result is anything but `pass`.
    pub require_pass: bool,
    /// Spam score at or above which mail goes to review.
    pub spam_score_review: f64,
    /// Review entries older than this many days are purged.
    pub review_retention_days: u32,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            authserv_ids: Vec::new(),
            require_pass: false,
            spam_score_review: 5.0,
            review_retention_days: 14,
        }
    }
}

impl TrustConfig {
    /// The pipeline's view: ids lower-cased.
    pub fn settings(&self) -> crate::trust::Trust {
        crate::trust::Trust {
            authserv_ids: self
                .authserv_ids
                .iter()
                .map(|i| i.trim().to_ascii_lowercase())
                .collect(),
            require_pass: self.require_pass,
            spam_score_review: self.spam_score_review,
        }
    }

    /// Review entries are kept this long (ms).
    pub fn retention_ms(&self) -> i64 {
        i64::from(self.review_retention_days) * 86_400_000
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
    /// Largest attachment stored with its body, in bytes; a larger one is
    /// recorded (name, type, size) as omitted, while the raw message keeps
    /// it. Unset: attachments are bounded only by `max_message_bytes`.
    pub max_attachment_bytes: Option<usize>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 25 * 1024 * 1024,
            batch_size: 500,
            max_attachment_bytes: None,
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
    #[serde(default)]
    pub admin_token: Secret,
    /// Largest webhook body, in bytes.
    pub max_body_bytes: usize,
    /// Most connections open at once; at the limit the connection that has
    /// waited longest on its client is closed to make room.
    pub max_connections: usize,
    /// Seconds a client has to send a whole request head.
    pub header_read_timeout: u64,
    /// Seconds a client has to send a whole request body.
    pub body_read_timeout: u64,
    /// Seconds an idle keep-alive connection is kept open.
    pub keepalive_timeout: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            admin_token: Secret::default(),
            max_body_bytes: 1024 * 1024,
            max_connections: 512,
            header_read_timeout: 10,
            body_read_timeout: 30,
            keepalive_timeout: 60,
        }
    }
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// TLS from the first byte (implicit).
    #[default]
    Tls,
    /// A plain connection upgraded with STARTTLS.
    Starttls,
    /// No encryption: loopback hosts only.
    None,
}

/// One `[[webhook_sources]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSourceConfig {
    pub name: String,
    #[serde(default)]
    pub secret: Secret,
    /// Second secret accepted during rotation.
    #[serde(default)]
    pub previous_secret: Secret,
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

/// `[smtp]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: Tls,
    pub username: Option<String>,
    #[serde(default)]
    pub password: Secret,
    /// From address of notifications.
    pub from: Address,
    #[serde(default = "default_timeout")]
    pub timeout: u64,
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
