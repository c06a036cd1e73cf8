//! Bounces of our notifications: a DSN naming one of our outbox Message-IDs
//! marks that recipient undeliverable for `undeliverable_days`. (The DSN itself
//! threads to the notification's ticket by that Message-ID, as an internal note.)

use super::outbox_write::by_message_id;
use super::{get_i64, get_str, placeholders, value_rows, StoreError};
use sqlx::any::Any;
use sqlx::Transaction;

type Tx<'a> = Transaction<'a, Any>;

/// DSNs returned these notifications of ours: their recipients are
/// undeliverable until `until`.
pub(super) async fn mark_bounced(
    tx: &mut Tx<'_>,
    bounced: &[String],
    until: i64,
) -> Result<(), StoreError> {
    let rows = by_message_id(tx, "id, to_addr, message_id", bounced).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| get_i64(r, "id")).collect();
    let mut addrs: Vec<(String, String)> = rows
        .iter()
        .map(|r| (get_str(r, "to_addr"), get_str(r, "message_id")))
        .collect();
    addrs.sort();
    addrs.dedup_by(|a, b| a.0 == b.0);
    let sql = format!(
        "INSERT INTO undeliverable (address, until_at, reason) VALUES {} ON CONFLICT (address) DO UPDATE SET until_at = excluded.until_at, reason = excluded.reason",
        value_rows(addrs.len(), 3)
    );
    let mut q = sqlx::query(&sql);
    for (a, mid) in &addrs {
        tracing::warn!(address = %a, message_id = %mid, "notification bounced: address marked undeliverable");
        q = q.bind(a).bind(until).bind(format!("bounce of <{mid}>"));
    }
    q.execute(&mut **tx).await?;
    // Whatever is still queued for a bounced address stays unsent.
    let sql = format!(
        "UPDATE outbox SET status = 'suppressed', last_error = 'undeliverable: an earlier notification bounced' \
         WHERE status = 'pending' AND to_addr IN ({})",
        placeholders(0, addrs.len())
    );
    let mut q = sqlx::query(&sql);
    for (a, _) in &addrs {
        q = q.bind(a);
    }
    q.execute(&mut **tx).await?;
    let sql = format!(
        "UPDATE outbox SET last_error = 'bounced' WHERE id IN ({})",
        placeholders(0, ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(*id);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}
