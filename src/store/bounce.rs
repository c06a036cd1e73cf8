//! Bounces of our notifications: a DSN naming one of our outbox Message-IDs
//! marks that recipient undeliverable for `undeliverable_days`. (The DSN itself
//! threads to the notification's ticket by that Message-ID, as an internal note.)
//! A report's permanent failures (`Final-Recipient`, `X-Failed-Recipients`) for
//! an address we notified within that window mark it too, Message-ID or not.

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
    let addrs: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let mid = get_str(r, "message_id");
            tracing::warn!(address = %get_str(r, "to_addr"), message_id = %mid, "notification bounced: address marked undeliverable");
            (get_str(r, "to_addr"), format!("bounce of <{mid}>"))
        })
        .collect();
    mark(tx, addrs, until).await?;
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

/// A delivery report's permanent failures for addresses we sent a
/// notification to at or after `since` (the undeliverable window): those
/// addresses are undeliverable until `until`, even when the report returned
/// no Message-ID of ours. A report naming an address we never wrote to
/// silences nobody.
pub(super) async fn mark_failed_recipients(
    tx: &mut Tx<'_>,
    addresses: &[String],
    since: i64,
    until: i64,
) -> Result<(), StoreError> {
    let mut keys: Vec<String> = addresses.to_vec();
    keys.sort();
    keys.dedup();
    let rows = super::sql::select_in(
        tx,
        "SELECT DISTINCT to_addr FROM outbox WHERE to_addr IN",
        &format!("AND status = 'sent' AND sent_at >= {since}"),
        &keys,
    )
    .await?;
    let addrs = rows
        .iter()
        .map(|r| {
            let a = get_str(r, "to_addr");
            tracing::warn!(address = %a, "delivery report names a notified address as failed: marked undeliverable");
            (a, "delivery report: permanent failure".to_string())
        })
        .collect();
    mark(tx, addrs, until).await
}

/// Record `addrs` (address, reason) as undeliverable until `until` and
/// suppress what is still queued for them.
async fn mark(
    tx: &mut Tx<'_>,
    mut addrs: Vec<(String, String)>,
    until: i64,
) -> Result<(), StoreError> {
    addrs.sort();
    addrs.dedup_by(|a, b| a.0 == b.0);
    if addrs.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO undeliverable (address, until_at, reason) VALUES {} ON CONFLICT (address) DO UPDATE SET until_at = excluded.until_at, reason = excluded.reason",
        value_rows(addrs.len(), 3)
    );
    let mut q = sqlx::query(&sql);
    for (a, reason) in &addrs {
        q = q.bind(a).bind(until).bind(reason);
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
    Ok(())
}
