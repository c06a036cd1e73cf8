//! Shared by the notification tests: a desk with an SMTP sink and the
//! default acknowledgement trigger.
#![allow(dead_code)]

use crate::common::{Db, Harness};
use crate::support::smtp::Captured;
use serde_json::Value;

pub const ACK: &str = r#"
[[triggers]]
name = "acknowledge new request"
on = "ticket_created"
actions = [{ type = "notify_requester", subject = "We received your request: {{ ticket.subject }}", template = "Hello {{ requester.name }},\nyour request {{ ticket.tag }} is in.\n> {{ comment.body }}\n" }]

[[triggers]]
name = "acknowledge comment"
on = "comment_added"
enabled = false
actions = [{ type = "notify_requester", template = "We got your comment on {{ ticket.tag }}." }]
"#;

pub const MAILBOX: &str = r#"
[[mailboxes]]
name = "support"
host = "127.0.0.1"
port = 143
tls = "none"
username = "u"
password = "p"
address = "help@desk.test"
"#;

pub fn smtp_toml(port: u16, extra: &str) -> String {
    format!("[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"support@desk.test\"\ntimeout = 5\n{MAILBOX}{extra}")
}

pub async fn desk(db: Db, port: u16, extra: &str) -> Harness {
    Harness::with(db, &smtp_toml(port, extra)).await
}

pub fn notifications(doc: &Value) -> Vec<Value> {
    doc["notifications"].as_array().unwrap().clone()
}

pub fn comments_of(doc: &Value, ticket: i64) -> Vec<Value> {
    let t = doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == ticket)
        .unwrap();
    t["comments"].as_array().unwrap().clone()
}

/// The customer answers a captured acknowledgement like a mail client does.
pub fn reply_to(ack: &Captured, from: &str, mid: &str, body: &str) -> String {
    let subject = format!("Re: {}", ack.header("Subject").unwrap());
    let refs = format!(
        "{} <{}>",
        ack.header("References").unwrap_or_default(),
        ack.message_id()
    );
    crate::common::mail(
        from,
        &subject,
        mid,
        &format!("In-Reply-To: <{}>\nReferences: {refs}\n", ack.message_id()),
        body,
    )
}
