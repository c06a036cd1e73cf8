//! IMAP folder cursors and the acknowledgements owed on the server: both
//! written in the transaction of the batch they cover, so that what was
//! committed but not yet flagged, moved or deleted on the server is known
//! after a crash and done on the next connection.

use super::{get_i64, get_str, now_ms, Store, StoreError};
use crate::model::{CursorUpdate, OwedAck};
use sqlx::any::Any;
use sqlx::Transaction;

/// Write the cursor, the batch's owed acknowledgement and forget the
/// settled ones, inside the caller's transaction.
pub(crate) async fn save_cursor_tx(
    tx: &mut Transaction<'_, Any>,
    c: &CursorUpdate,
) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO mailbox_cursors (mailbox, folder, uidvalidity, last_uid, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (mailbox, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at",
    )
    .bind(&c.mailbox)
    .bind(&c.folder)
    .bind(c.uidvalidity as i64)
    .bind(c.last_uid as i64)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if let Some(o) = &c.owe {
        sqlx::query(
            "INSERT INTO imap_acks_owed (mailbox, folder, uidvalidity, first_uid, uids, count, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (mailbox, folder, uidvalidity, first_uid) \
             DO UPDATE SET uids = excluded.uids, count = excluded.count, created_at = excluded.created_at",
        )
        .bind(&c.mailbox)
        .bind(&c.folder)
        .bind(o.uidvalidity as i64)
        .bind(o.first_uid as i64)
        .bind(&o.uids)
        .bind(o.count as i64)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    forget_tx(tx, &c.mailbox, &c.folder, c.uidvalidity, &c.settled).await
}

async fn forget_tx(
    tx: &mut Transaction<'_, Any>,
    mailbox: &str,
    folder: &str,
    uidvalidity: u32,
    first_uids: &[u32],
) -> Result<(), StoreError> {
    if first_uids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "DELETE FROM imap_acks_owed WHERE mailbox = $1 AND folder = $2 AND uidvalidity = $3 AND first_uid IN ({})",
        super::placeholders(3, first_uids.len())
    );
    let mut q = sqlx::query(&sql)
        .bind(mailbox)
        .bind(folder)
        .bind(uidvalidity as i64);
    for f in first_uids {
        q = q.bind(*f as i64);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

impl Store {
    /// Commit an IMAP cursor on its own (an empty fetch, a UIDVALIDITY reset).
    pub async fn save_cursor(&self, c: &CursorUpdate) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        save_cursor_tx(&mut tx, c).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The committed cursor of a mailbox folder: (uidvalidity, last_uid).
    pub async fn cursor(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>, StoreError> {
        let r = sqlx::query(
            "SELECT uidvalidity, last_uid FROM mailbox_cursors WHERE mailbox = $1 AND folder = $2",
        )
        .bind(mailbox)
        .bind(folder)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| {
            (
                get_i64(&r, "uidvalidity") as u32,
                get_i64(&r, "last_uid") as u32,
            )
        }))
    }

    /// The acknowledgements a folder still owes the server, oldest first.
    pub async fn owed_acks(&self, mailbox: &str, folder: &str) -> Result<Vec<OwedAck>, StoreError> {
        let rows = sqlx::query(
            "SELECT uidvalidity, first_uid, uids, count FROM imap_acks_owed \
             WHERE mailbox = $1 AND folder = $2 ORDER BY uidvalidity, first_uid",
        )
        .bind(mailbox)
        .bind(folder)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| OwedAck {
                uidvalidity: get_i64(r, "uidvalidity") as u32,
                first_uid: get_i64(r, "first_uid") as u32,
                uids: get_str(r, "uids"),
                count: get_i64(r, "count") as u32,
            })
            .collect())
    }

    /// Forget owed acknowledgements, given as (uidvalidity, first UID): done
    /// on the server, or no longer meaningful (UIDVALIDITY changed,
    /// `after_import = "keep"`).
    pub async fn forget_acks(
        &self,
        mailbox: &str,
        folder: &str,
        rows: &[(u32, u32)],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let _g = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut by_uv: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for (uv, first) in rows {
            by_uv.entry(*uv).or_default().push(*first);
        }
        for (uv, firsts) in by_uv {
            forget_tx(&mut tx, mailbox, folder, uv, &firsts).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
