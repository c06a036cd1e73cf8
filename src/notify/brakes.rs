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

use super::outbox::OutboxRow;
use super::NotifySettings;
use crate::store::StoreError;
use sqlx::any::Any;
use sqlx::Transaction;
use std::collections::{HashMap, HashSet};

type Tx<'a> = Transaction<'a, Any>;

/// The advisory lock key that serialises the senders' decisions on PostgreSQL.
const SENDERS_LOCK: i64 = 0x696e_7461_6b65_0001;

/// Queue time: a notification to one of our own addresses is written as
/// `suppressed` (it would start a loop with ourselves).
pub(super) fn at_queue(n: &NotifySettings, rows: &mut [OutboxRow]) {
    for r in rows.iter_mut().filter(|r| n.own.contains(&r.to)) {
        tracing::info!(to = %r.to, ticket_id = r.ticket_id, "notification suppressed: our own address");
        r.status = "suppressed";
        r.reason = Some("our own address".into());
    }
}

/// Per recipient: notifications taken for delivery in the window, and why it
/// is undeliverable, as one JSON array of `[address, count, reason]` in a
/// single row (the recipients travel as one JSON array, so the statement's
/// text never changes and nothing is streamed row by row).
fn brakes_sql(sqlite: bool) -> &'static str {
    if sqlite {
        "SELECT json_group_array(json_array(j.value, \
         (SELECT COUNT(*) FROM outbox o WHERE o.to_addr = j.value AND o.counted_at > ?1), \
         (SELECT u.reason FROM undeliverable u WHERE u.address = j.value AND u.until_at > ?2))) FROM json_each(?3) j"
    } else {
        "SELECT COALESCE(json_agg(json_build_array(j.value, \
         (SELECT COUNT(*) FROM outbox o WHERE o.to_addr = j.value AND o.counted_at > $1), \
         (SELECT u.reason FROM undeliverable u WHERE u.address = j.value AND u.until_at > $2))), '[]')::text \
         FROM json_array_elements_text($3::json) AS j(value)"
    }
}

/// Send time, inside the claim transaction: for claimed rows `(id, to)` in
/// id order, the reason each held-back row must not be sent. The caller
/// marks the others as counted (`counted_at`) in the same transaction.
pub(super) async fn at_send(
    tx: &mut Tx<'_>,
    n: &NotifySettings,
    rows: &[(i64, String)],
    now: i64,
) -> Result<HashMap<i64, String>, StoreError> {
    let sqlite = tx.backend_name().eq_ignore_ascii_case("sqlite");
    if !sqlite {
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(SENDERS_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    let addrs: Vec<&String> = rows
        .iter()
        .map(|(_, to)| to)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut dead: HashMap<String, String> = HashMap::new();
    let mut counts: HashMap<String, i64> = HashMap::new();
    if !addrs.is_empty() {
        let json: String = sqlx::query_scalar(brakes_sql(sqlite))
            .bind(now - n.window_ms)
            .bind(now)
            .bind(serde_json::to_string(&addrs).unwrap_or_default())
            .fetch_one(&mut **tx)
            .await?;
        let found: Vec<(String, i64, Option<String>)> = serde_json::from_str(&json)
            .map_err(|e| StoreError::Invalid(format!("rate-limit counts: {e}")))?;
        for (a, count, why) in found {
            if let Some(why) = why {
                dead.insert(a.clone(), why);
            }
            counts.insert(a, count);
        }
    }
    let mut held = HashMap::new();
    for (id, to) in rows {
        let reason = if n.own.contains(to) {
            Some("our own address".to_string())
        } else if let Some(why) = dead.get(to) {
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
    Ok(held)
}
