//! Loop brakes on a batch's notifications, before they are written: never our
//! own addresses, never an address marked undeliverable by a bounce, and at
//! most `per_recipient_limit` per recipient per window; what is held back is
//! written as `suppressed` with its reason. One query for all recipients;
//! the rate-limit count reads only the `(to_addr, created_at, status)` index.

use super::outbox::OutboxRow;
use super::NotifySettings;
use crate::store::StoreError;
use sqlx::any::Any;
use sqlx::Transaction;
use std::collections::{HashMap, HashSet};

type Tx<'a> = Transaction<'a, Any>;

/// Per recipient of the batch: notifications counted against the rate limit
/// in the window, and why it is undeliverable, as one JSON array of
/// `[address, count, reason]` in a single row. The recipients travel as one
/// JSON array too, so the statement's text never changes (its prepared form
/// is reused) and nothing is streamed row by row.
fn brakes_sql(sqlite: bool) -> &'static str {
    if sqlite {
        "SELECT json_group_array(json_array(j.value, \
         (SELECT COUNT(*) FROM outbox o WHERE o.to_addr = j.value AND o.created_at > ?1 AND o.status IN ('pending', 'sent')), \
         (SELECT u.reason FROM undeliverable u WHERE u.address = j.value AND u.until_at > ?2))) FROM json_each(?3) j"
    } else {
        "SELECT COALESCE(json_agg(json_build_array(j.value, \
         (SELECT COUNT(*) FROM outbox o WHERE o.to_addr = j.value AND o.created_at > $1 AND o.status IN ('pending', 'sent')), \
         (SELECT u.reason FROM undeliverable u WHERE u.address = j.value AND u.until_at > $2))), '[]')::text \
         FROM json_array_elements_text($3::json) AS j(value)"
    }
}

/// Mark the rows that must not be sent as `suppressed`, with the reason.
pub(super) async fn apply(
    tx: &mut Tx<'_>,
    n: &NotifySettings,
    rows: &mut [OutboxRow],
    now: i64,
) -> Result<(), StoreError> {
    let addrs: Vec<String> = rows
        .iter()
        .filter(|r| !n.own.contains(&r.to))
        .map(|r| r.to.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut dead: HashMap<String, String> = HashMap::new();
    let mut counts: HashMap<String, i64> = HashMap::new();
    if !addrs.is_empty() {
        let sqlite = tx.backend_name().eq_ignore_ascii_case("sqlite");
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
    for r in rows.iter_mut() {
        let reason = if n.own.contains(&r.to) {
            Some("our own address".to_string())
        } else if let Some(why) = dead.get(&r.to) {
            Some(format!("undeliverable: {why}"))
        } else {
            let c = counts.entry(r.to.clone()).or_default();
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
            tracing::info!(to = %r.to, ticket_id = r.ticket_id, %reason, "notification suppressed");
            r.status = "suppressed";
            r.reason = Some(reason);
        }
    }
    Ok(())
}
