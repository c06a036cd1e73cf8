//! Loop brakes. When a notification is queued: never our own addresses (told
//! from the configuration, no query). When the sender takes it for delivery:
//! never an address marked undeliverable by a bounce, and at most
//! `per_recipient_limit` per recipient per window. Deciding at send time
//! keeps the ingest transaction free of the rate-limit query and index, sees
//! a bounce that arrived while the notification waited, and counts what was
//! really taken for delivery. What is held back is recorded as `suppressed`
//! with its reason.
//!
//! A notification counts against its recipient from the moment a sender
//! takes it (`counted_at`, reset if delivery fails), so rows in flight in
//! another sender count too; senders decide one at a time (the SQLite write
//! lock; a transaction-scoped advisory lock on PostgreSQL).

use super::NotifySettings;
use crate::model::{OutboxRow, OutboxStatus, RecipientLoad};
use std::collections::HashMap;

/// Queue time: a notification to one of our own addresses is written as
/// `suppressed` (it would start a loop with ourselves).
pub(super) fn at_queue(n: &NotifySettings, rows: &mut [OutboxRow]) {
    for r in rows.iter_mut().filter(|r| n.own.contains(&r.to)) {
        tracing::info!(to = %r.to, ticket_id = r.ticket_id, "notification suppressed: our own address");
        r.status = OutboxStatus::Suppressed;
        r.reason = Some("our own address".into());
    }
}

/// Send time, inside the claim transaction (see the store's
/// `claim_notifications`): for claimed rows `(id, to)` in id order and
/// their recipients' load, the reason each held-back row must not be sent.
/// The others count against their recipient from then on.
pub(super) fn at_send(
    n: &NotifySettings,
    rows: &[(i64, String)],
    load: &RecipientLoad,
) -> HashMap<i64, String> {
    let mut counts = load.counts.clone();
    let mut held = HashMap::new();
    for (id, to) in rows {
        let reason = if n.own.contains(to) {
            Some("our own address".to_string())
        } else if let Some(why) = load.undeliverable.get(to) {
            Some(format!("undeliverable: {why}"))
        } else {
            let c = counts.entry(to.clone()).or_default();
            if *c >= n.per_recipient_limit as i64 {
                Some(format!(
                    "rate limit: {} per {} s",
                    n.per_recipient_limit,
                    n.window_ms / 1000
                ))
            } else {
                *c += 1;
                None
            }
        };
        if let Some(reason) = reason {
            tracing::info!(id, to = %to, %reason, "notification suppressed");
            held.insert(*id, reason);
        }
    }
    held
}
