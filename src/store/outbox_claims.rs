//! The sender's outbox statements: claims of due rows, their renewal and
//! release, and each delivery's result. A claim names its sender
//! (`claimed_by`) and lasts until `claimed_until`: short, and renewed by the
//! sender's heartbeat while it holds the row, so that the rows of a sender
//! that died are taken again by another one soon after (see
//! `notify::claims`).

use super::{placeholders, Backend, Store, StoreError};
use crate::model::Delivery;
use sqlx::any::{Any, AnyRow};
use sqlx::Transaction;

type Tx = Transaction<'static, Any>;

const RETURNING: &str = "RETURNING id, to_addr, subject, body_text, body_html, message_id, in_reply_to, reply_to, attempts, trigger_name, action_index";

/// Claim up to `max` rows due at `now` for `me` until `until`: rows nobody
/// holds, or whose claim expired (its sender died or lost the database). A
/// retaken row no longer counts against its recipient (`counted_at`): the
/// caller counts what it takes, in the same transaction.
pub(super) async fn claim_due(
    tx: &mut Tx,
    backend: Backend,
    me: &str,
    now: i64,
    until: i64,
    max: usize,
) -> Result<Vec<AnyRow>, StoreError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // The CTE runs once (an `IN (subquery)` may be re-run per row by the
    // planner); due order is the pending index's order, so the claim reads
    // only the rows it takes.
    let sql = format!(
        "WITH c AS (SELECT id AS cid FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
         AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY next_attempt_at, id LIMIT $4{lock}) \
         UPDATE outbox SET claimed_by = $1, claimed_until = $2, counted_at = NULL FROM c \
         WHERE outbox.id = c.cid AND outbox.status = 'pending' AND (outbox.claimed_until IS NULL OR outbox.claimed_until < $3) {RETURNING}"
    );
    Ok(sqlx::query(&sql)
        .bind(me)
        .bind(until)
        .bind(now)
        .bind(max.max(1) as i64)
        .fetch_all(&mut **tx)
        .await?)
}

/// A claimed row the loop brakes hold back: `suppressed` with its reason.
pub(super) async fn suppress_claimed(tx: &mut Tx, id: i64, reason: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE outbox SET status = 'suppressed', last_error = $1, claimed_by = NULL, claimed_until = NULL WHERE id = $2")
        .bind(reason)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Claimed rows taken for delivery count against their recipient from `now`.
pub(super) async fn count_taken(tx: &mut Tx, ids: &[i64], now: i64) -> Result<(), StoreError> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE outbox SET counted_at = $1 WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Extend `me`'s claims on `ids` until `until`; returns the ids still held
    /// (a row missing was delivered, released, or retaken after its claim
    /// expired).
    pub async fn renew_claims(
        &self,
        me: &str,
        ids: &[i64],
        until: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.observed(async {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1 WHERE claimed_by = $2 AND status = 'pending' AND id IN ({}) RETURNING id",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(until).bind(me);
        for id in ids {
            q = q.bind(*id);
        }
        let _g = self.write_guard().await;
        Ok(q.fetch_all(self.pool()).await?)
        })
        .await
    }

    /// Give up `me`'s claims on `ids` that were never put on the wire (a sender
    /// stopping): another sender may take them at once. They no longer count
    /// against their recipient.
    pub async fn release_claims(&self, me: &str, ids: &[i64]) -> Result<u64, StoreError> {
        self.observed(async {
            if ids.is_empty() {
                return Ok(0);
            }
            let sql = format!(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, counted_at = NULL \
             WHERE claimed_by = $1 AND status = 'pending' AND id IN ({})",
                placeholders(1, ids.len())
            );
            let mut q = sqlx::query(&sql).bind(me);
            for id in ids {
                q = q.bind(*id);
            }
            let _g = self.write_guard().await;
            Ok(q.execute(self.pool()).await?.rows_affected())
        })
        .await
    }

    /// Record deliveries in one short transaction. An accepted message is
    /// `sent` whoever holds its claim now (it is on its way to the customer, and
    /// a sender that retook it after an expiry must not be told otherwise); a
    /// refusal is recorded only while `me` still holds the row.
    pub async fn record_deliveries(
        &self,
        me: &str,
        done: &[Delivery],
        now: i64,
    ) -> Result<(), StoreError> {
        self.observed(async {
        if done.is_empty() {
            return Ok(());
        }
        let release = "claimed_by = NULL, claimed_until = NULL";
        let sent: Vec<i64> = done
            .iter()
            .filter_map(|d| match d {
                Delivery::Sent { id } => Some(*id),
                Delivery::Refused { .. } => None,
            })
            .collect();
        let mut tx = self.begin().await?;
        if !sent.is_empty() {
            let sql = format!(
                "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL, {release} \
                 WHERE status <> 'sent' AND id IN ({})",
                placeholders(1, sent.len())
            );
            let mut q = sqlx::query(&sql).bind(now);
            for id in &sent {
                q = q.bind(*id);
            }
            q.execute(&mut *tx).await?;
        }
        for d in done {
            let Delivery::Refused {
                id,
                attempts,
                give_up,
                next,
                error,
            } = d
            else {
                continue;
            };
            let status = if *give_up { "failed" } else { "pending" };
            sqlx::query(&format!("UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, counted_at = NULL, {release} WHERE id = $5 AND claimed_by = $6"))
                .bind(status).bind(*attempts).bind(*next).bind(error).bind(*id).bind(me)
                .execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
        })
        .await
    }
}
