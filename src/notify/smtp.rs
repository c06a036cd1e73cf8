//! SMTP with lettre: the pooled transport from `[smtp]`, and the message with
//! our threading and anti-loop headers, every value cleaned by
//! [`header_text`](super::header_text).

use super::header_text;
use crate::config::{SmtpConfig, Tls};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, Message, Tokio1Executor};
use std::time::Duration;

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Connections in the pool, and messages a sender has on the wire at once.
pub const SMTP_PARALLEL: usize = 8;

/// One notification to put on the wire.
pub struct OutMail<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
    /// Without angle brackets.
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub desk_domain: &'a str,
}

/// A pooled transport: `tls` (implicit TLS), `starttls`, or `none` (loopback only).
pub fn build_transport(c: &SmtpConfig) -> Result<Transport, String> {
    let b = match c.tls {
        Tls::Tls => Transport::relay(&c.host).map_err(|e| e.to_string())?,
        Tls::Starttls => Transport::starttls_relay(&c.host).map_err(|e| e.to_string())?,
        Tls::None => Transport::builder_dangerous(&c.host),
    };
    let mut b = b
        .port(c.port)
        .timeout(Some(Duration::from_secs(c.timeout.max(1))))
        .pool_config(
            PoolConfig::new()
                .max_size(SMTP_PARALLEL as u32)
                .idle_timeout(Duration::from_secs(60)),
        );
    if let Some(user) = &c.username {
        let pass = c.password.resolve().map_err(|e| format!("password: {e}"))?;
        b = b.credentials(Credentials::new(user.clone(), pass));
    }
    Ok(b.build())
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

/// Build the message. An error means the row can never be sent. Every header
/// value passes through [`header_text`] first.
pub fn build_message(m: &OutMail<'_>) -> Result<Message, String> {
    let mb = |what: &str, a: &str| {
        let a = header_text::value(a);
        a.parse::<Mailbox>()
            .map_err(|e| format!("{what} {a:?}: {e}"))
    };
    let mid = header_text::message_id(m.message_id)
        .ok_or_else(|| format!("message id {:?} is empty", m.message_id))?;
    let mut b = Message::builder()
        .from(mb("from", m.from)?)
        .to(mb("to", m.to)?)
        .subject(header_text::subject(m.subject))
        .message_id(Some(format!("<{mid}>")));
    if let Some(r) = m.reply_to {
        b = b.reply_to(mb("reply-to", r)?);
    }
    if let Some(irt) = m.in_reply_to.and_then(header_text::message_id) {
        b = b
            .in_reply_to(format!("<{irt}>"))
            .references(format!("<{irt}>"));
    }
    let mut msg = match m.html {
        Some(h) => b.multipart(MultiPart::alternative_plain_html(
            m.text.to_string(),
            h.to_string(),
        )),
        None => b.header(ContentType::TEXT_PLAIN).body(m.text.to_string()),
    }
    .map_err(|e| e.to_string())?;
    let h = msg.headers_mut();
    h.insert_raw(raw("Auto-Submitted", "auto-replied"));
    h.insert_raw(raw("X-Auto-Response-Suppress", "All"));
    h.insert_raw(raw("X-Intake-Loop", &header_text::value(m.desk_domain)));
    h.insert_raw(raw("Precedence", "bulk"));
    Ok(msg)
}
