//! Sources' checkpoints and the acknowledgements they still owe: both
//! written in the transaction of the batch they cover, so that what was
//! committed but not yet acknowledged on the source (flagged, moved,
//! deleted) is known after a crash and done on the next connection. The
//! store keeps them as text: each source kind encodes its own position.

use super::{get_i64, get_str, now_ms, Store, StoreError};
use crate::model::{Checkpoint, OwedAck};
use sqlx::any::Any;
use sqlx::Transaction;

/// Write the checkpoint, the batch's owed acknowledgement and forget the
/// settled ones, inside the caller's transaction.
pub(super) async fn save_tx(
    tx: &mut Transaction<'_, Any>,
    c: &Checkpoint,
) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO source_checkpoints (source, scope, state, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (source, scope) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(&c.source)
    .bind(&c.scope)
    .bind(&c.state)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if let Some(o) = &c.owe {
        sqlx::query(
            "INSERT INTO source_acks_owed (source, scope, ack_key, what, count, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source, scope, ack_key) \
             DO UPDATE SET what = excluded.what, count = excluded.count, created_at = excluded.created_at",
        )
        .bind(&c.source)
        .bind(&c.scope)
        .bind(&o.key)
        .bind(&o.what)
        .bind(o.count as i64)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    forget_tx(tx, &c.source, &c.scope, &c.settled).await?;
    seen_tx(tx, c, now).await
}

/// Remember the checkpoint's seen items and forget its gone ones.
async fn seen_tx(
    tx: &mut Transaction<'_, Any>,
    c: &Checkpoint,
    now: i64,
) -> Result<(), StoreError> {
    for chunk in c.seen.chunks(200) {
        let sql = format!(
            "INSERT INTO source_seen (source, scope, item, seen_at) VALUES {} \
             ON CONFLICT (source, scope, item) DO NOTHING",
            super::value_rows(chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for item in chunk {
            q = q.bind(&c.source).bind(&c.scope).bind(item).bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    unsee_tx(tx, &c.source, &c.scope, &c.gone).await
}

/// Forget seen `items` of a source's scope.
async fn unsee_tx(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    scope: &str,
    items: &[String],
) -> Result<(), StoreError> {
    for chunk in items.chunks(500) {
        let sql = format!(
            "DELETE FROM source_seen WHERE source = $1 AND scope = $2 AND item IN ({})",
            super::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(source).bind(scope);
        for item in chunk {
            q = q.bind(item);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn forget_tx(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    scope: &str,
    keys: &[String],
) -> Result<(), StoreError> {
    for chunk in keys.chunks(500) {
        let sql = format!(
            "DELETE FROM source_acks_owed WHERE source = $1 AND scope = $2 AND ack_key IN ({})",
            super::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(source).bind(scope);
        for k in chunk {
            q = q.bind(k);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Commit a checkpoint on its own (nothing new, a reset).
    pub async fn save_checkpoint(&self, c: &Checkpoint) -> Result<(), StoreError> {
        self.observed(async {
            let mut tx = self.begin().await?;
            tx.save_checkpoint(c).await?;
            tx.commit().await
        })
        .await
    }

    /// The committed checkpoint state of a source's scope.
    pub async fn checkpoint(
        &self,
        source: &str,
        scope: &str,
    ) -> Result<Option<String>, StoreError> {
        let r =
            sqlx::query("SELECT state FROM source_checkpoints WHERE source = $1 AND scope = $2")
                .bind(source)
                .bind(scope)
                .fetch_optional(&self.pool)
                .await?;
        Ok(r.map(|r| get_str(&r, "state")))
    }

    /// The items a source's scope remembers as imported (see
    /// [`Checkpoint::seen`]).
    pub async fn seen_items(
        &self,
        source: &str,
        scope: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT item FROM source_seen WHERE source = $1 AND scope = $2")
            .bind(source)
            .bind(scope)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| get_str(r, "item")).collect())
    }

    /// The acknowledgements a source's scope still owes, in key order.
    pub async fn owed_acks(&self, source: &str, scope: &str) -> Result<Vec<OwedAck>, StoreError> {
        let rows = sqlx::query(
            "SELECT ack_key, what, count FROM source_acks_owed \
             WHERE source = $1 AND scope = $2 ORDER BY ack_key",
        )
        .bind(source)
        .bind(scope)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| OwedAck {
                key: get_str(r, "ack_key"),
                what: get_str(r, "what"),
                count: get_i64(r, "count") as u32,
            })
            .collect())
    }

    /// Forget owed acknowledgements by key: done on the source, or no
    /// longer meaningful.
    pub async fn forget_acks(
        &self,
        source: &str,
        scope: &str,
        keys: &[String],
    ) -> Result<(), StoreError> {
        self.settle(source, scope, keys, &[]).await
    }

    /// Forget owed acknowledgements by key and, in the same transaction,
    /// seen `items` the source no longer lists in this scope (mail the
    /// acknowledgement moved out of it).
    pub async fn settle(
        &self,
        source: &str,
        scope: &str,
        keys: &[String],
        items: &[String],
    ) -> Result<(), StoreError> {
        self.observed(async {
            if keys.is_empty() && items.is_empty() {
                return Ok(());
            }
            let mut tx = self.begin().await?;
            forget_tx(&mut tx.tx, source, scope, keys).await?;
            unsee_tx(&mut tx.tx, source, scope, items).await?;
            tx.commit().await
        })
        .await
    }
}
