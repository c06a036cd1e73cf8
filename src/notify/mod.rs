//! Notifications: a pure planner (`plan`) turns a batch's events into
//! outbox rows by the triggers, which the pipeline's commit step writes in
//! the transaction of the events; the sender task delivers them by SMTP.
//!
//! Whatever a trigger says, the outbox enforces: a private ticket, an internal
//! note or an automatic message (auto-reply, bounce, list, loop) notifies
//! nobody; our own and undeliverable addresses are never written to, and each
//! recipient gets at most `per_recipient_limit` per window.

mod brakes;
mod claims;
pub mod compose;
pub mod header_text;
mod parse;
mod plan;
pub mod render;
pub mod sender;
pub mod smtp;
pub mod triggers;

use crate::config::Config;
use crate::thread::TicketTag;
pub use plan::plan_outbox;
pub use sender::{
    drain, drain_once, run_sender, try_send_batch, try_send_one, NotifyError, SendOutcome, Sender,
};
use std::collections::HashMap;
pub use triggers::{plan, select, EventContext, PlannedNotification, Selected, TriggerSet};

/// What the outbox needs from the configuration, built once.
#[derive(Debug)]
pub struct NotifySettings {
    pub triggers: TriggerSet,
    pub own: crate::classify::OwnAddresses,
    pub tag: TicketTag,
    pub desk_domain: String,
    pub ticket_url: Option<String>,
    /// Mailbox name → the address customers write to.
    pub mailbox_addresses: HashMap<String, String>,
    /// Reply-To when the ticket's mailbox has no address.
    pub default_reply_to: Option<String>,
    pub per_recipient_limit: u32,
    pub window_ms: i64,
    pub undeliverable_ms: i64,
}

impl NotifySettings {
    /// Build from a validated configuration (a trigger with problems is left
    /// out and logged; `check-config` reports it with its line).
    pub fn from_config(cfg: &Config) -> Self {
        let (triggers, problems) = TriggerSet::build(cfg, None);
        for p in problems {
            tracing::error!(problem = %p, "trigger disabled");
        }
        NotifySettings {
            triggers,
            own: cfg.own(),
            tag: TicketTag::new(&cfg.desk.ticket_tag),
            desk_domain: cfg.desk.domain.clone(),
            ticket_url: cfg.desk.ticket_url.clone(),
            mailbox_addresses: cfg
                .mailboxes
                .iter()
                .filter_map(|m| Some((m.name.clone(), m.address.as_ref()?.to_string())))
                .collect(),
            default_reply_to: cfg.desk.addresses.first().map(|a| a.to_string()),
            per_recipient_limit: cfg.notifications.per_recipient_limit,
            window_ms: cfg.notifications.per_recipient_window_secs as i64 * 1000,
            undeliverable_ms: cfg.notifications.undeliverable_days as i64 * 86_400_000,
        }
    }
}

/// Problems in `[[triggers]]`, for `check-config`.
pub fn validate(cfg: &Config, text: &str) -> Vec<crate::config::Problem> {
    TriggerSet::build(cfg, Some(text)).1
}

/// A fresh unguessable Message-ID (without angle brackets) for `ticket`:
/// the time in milliseconds, then 96 random bits, then the ticket id. The
/// ticket id is how a reply's References find the notification (see
/// `outbox::by_message_id`); the random part is what proves it ours.
pub fn new_message_id(ticket: i64, domain: &str) -> String {
    let r: u128 = rand::random::<u128>() >> 32;
    format!("{:011x}{r:024x}.{ticket}@{domain}", crate::store::now_ms())
}

pub use crate::model::ticket_of_message_id;

#[cfg(test)]
mod tests;
