//! Validation the types cannot express: every problem with its line and key.

use super::mailbox_kinds as kinds;
use super::{locate, Address, AfterImport, Problem, Protocol, Secret, Secrets, Tls};

/// Checks serde cannot express. Returns every problem found.
pub(super) fn validate(cfg: &super::Config, text: &str, secrets: Secrets) -> Vec<Problem> {
    let mut p = Vec::new();
    let secret_ok = |s: &Secret, optional: bool| secret_ok(s, optional, secrets);
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
    for (key, msg) in cfg.blobs.problems(secrets) {
        add("blobs", 0, key, format!("blobs.{key}"), msg);
    }
    let window = cfg.notifications.per_recipient_window_secs;
    for (key, msg) in cfg.retention.problems(window) {
        add("retention", 0, key, format!("retention.{key}"), msg);
    }
    if cfg.desk.domain.contains(['@', ' ', '<', '>'])
        || crate::identity::normalise_domain(&cfg.desk.domain).is_none()
    {
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
        if let Err(e) = address_ok(a) {
            add("desk", 0, "addresses", "desk.addresses".into(), e);
        }
    }
    for a in &cfg.agents.addresses {
        if let Err(e) = crate::identity::EmailAddress::parse(a) {
            add(
                "agents",
                0,
                "addresses",
                "agents.addresses".into(),
                format!("{a:?}: {e}"),
            );
        }
    }
    for d in &cfg.agents.domains {
        if d.contains(['@', ' ']) || crate::identity::normalise_domain(d).is_none() {
            add(
                "agents",
                0,
                "domains",
                "agents.domains".into(),
                format!("{d:?} is not a domain name"),
            );
        }
    }
    for id in &cfg.trust.authserv_ids {
        if id.trim().is_empty() || id.contains([';', ' ', '\t', '"']) {
            add(
                "trust",
                0,
                "authserv_ids",
                "trust.authserv_ids".into(),
                format!("{id:?} is not an authentication service id (a host name such as \"mx.example.com\")"),
            );
        }
    }
    if !cfg.trust.spam_score_review.is_finite() {
        add(
            "trust",
            0,
            "spam_score_review",
            "trust.spam_score_review".into(),
            "must be a number".into(),
        );
    }
    if cfg.trust.review_retention_days == 0 {
        add(
            "trust",
            0,
            "review_retention_days",
            "trust.review_retention_days".into(),
            "must be at least 1".into(),
        );
    }
    if cfg.trust.require_pass && cfg.trust.authserv_ids.is_empty() {
        add(
            "trust",
            0,
            "require_pass",
            "trust.require_pass".into(),
            "needs trust.authserv_ids: without our MTA's results nothing could pass".into(),
        );
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
    if cfg.limits.max_attachment_bytes == Some(0) {
        add(
            "limits",
            0,
            "max_attachment_bytes",
            "limits.max_attachment_bytes".into(),
            "must be at least 1 (leave it out for no limit but max_message_bytes)".into(),
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
    if !(1..=100_000).contains(&cfg.http.max_connections) {
        add(
            "http",
            0,
            "max_connections",
            "http.max_connections".into(),
            "must be between 1 and 100000".into(),
        );
    }
    for (key, secs) in [
        ("header_read_timeout", cfg.http.header_read_timeout),
        ("body_read_timeout", cfg.http.body_read_timeout),
        ("keepalive_timeout", cfg.http.keepalive_timeout),
    ] {
        if !(1..=3600).contains(&secs) {
            add(
                "http",
                0,
                key,
                format!("http.{key}"),
                "must be between 1 and 3600 seconds".into(),
            );
        }
    }
    if let Err(e) = secret_ok(&cfg.http.admin_token, true) {
        add("http", 0, "admin_token", "http.admin_token".into(), e);
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
        if m.tls == Tls::None
            && matches!(m.protocol, Protocol::Imap | Protocol::Pop3)
            && !is_loopback(&m.host)
        {
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
        let mut problem = |key, msg| add("mailboxes", i, key, label(key), msg);
        match m.protocol {
            Protocol::Imap => kinds::server_ok(m, &mut problem),
            Protocol::Pop3 => {
                kinds::server_ok(m, &mut problem);
                kinds::pop3_ok(m, &mut problem)
            }
            Protocol::Jmap => kinds::jmap_ok(m, &mut problem),
            Protocol::Graph => kinds::graph_ok(m, &mut problem),
        }
        if m.after_import == AfterImport::Move && m.move_to.is_none() {
            add(
                "mailboxes",
                i,
                "after_import",
                label("move_to"),
                "after_import = \"move\" needs move_to".into(),
            );
        }
        let oauth = m.oauth2_token_file.is_some() || m.oauth2_token_command.is_some();
        let bearer = (m.protocol == Protocol::Jmap && !m.bearer_token.is_unset())
            || m.protocol == Protocol::Graph;
        if !oauth && !bearer {
            if let Err(e) = secret_ok(&m.password, false) {
                add("mailboxes", i, "password", label("password"), e);
            }
        }
        for (key, secret) in [
            ("bearer_token", &m.bearer_token),
            ("client_secret", &m.client_secret),
        ] {
            if let Err(e) = secret_ok(secret, true) {
                add("mailboxes", i, key, label(key), e);
            }
        }
        if let Some(a) = &m.address {
            if let Err(e) = address_ok(a) {
                add("mailboxes", i, "address", label("address"), e);
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
        if let Err(e) = secret_ok(&w.secret, false) {
            add("webhook_sources", i, "secret", label("secret"), e);
        }
        if let Err(e) = secret_ok(&w.previous_secret, true) {
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
        if s.tls == Tls::None && !is_loopback(&s.host) {
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
        if let Err(e) = address_ok(&s.from) {
            add("smtp", 0, "from", "smtp.from".into(), e);
        }
        if s.username.is_some() {
            if let Err(e) = secret_ok(&s.password, false) {
                add("smtp", 0, "password", "smtp.password".into(), e);
            }
        }
    }
    p
}

/// `addr` or `Name <addr>`, as a From or Reply-To header will carry it.
fn address_ok(a: &Address) -> Result<(), String> {
    let bad = || {
        format!(
            "{:?} is not an email address (write `addr` or `Name <addr>`)",
            a.as_str()
        )
    };
    crate::identity::EmailAddress::parse(a.email()).map_err(|_| bad())?;
    a.as_str()
        .parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|_| bad())
}

fn secret_ok(s: &Secret, optional: bool, secrets: Secrets) -> Result<(), String> {
    if s.is_unset() {
        return if optional {
            Ok(())
        } else {
            Err("no secret: set the key, its _env or its _file variant".into())
        };
    }
    match secrets {
        Secrets::Read => s.resolve().map(|_| ()),
        Secrets::Skip => Ok(()),
    }
}

pub(super) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}
