//! Quarantine: messages that could not be processed, kept raw with the
//! reason, listed for ops and replayable.

use super::{get_i64, get_opt_i64, get_opt_str, get_str, now_ms, Store, StoreError};
use crate::model::{Outcome, OutcomeKind, QuarantineIn};
use serde::Serialize;
use sqlx::any::Any;
use sqlx::Transaction;

/// One quarantined message, without its bytes.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub source: String,
    pub mailbox: Option<String>,
    pub reason: String,
    pub size: i64,
    pub truncated: bool,
    pub status: String,
    pub attempts: i64,
    pub outcome: Option<String>,
    pub received_at: i64,
    pub replayed_at: Option<i64>,
}

pub(super) const COLUMNS: &str = "id, source, mailbox, reason, size, truncated, status, attempts, outcome, received_at, replayed_at";

pub(super) fn entry(r: &sqlx::any::AnyRow) -> QuarantineEntry {
    QuarantineEntry {
        id: get_i64(r, "id"),
        source: get_str(r, "source"),
        mailbox: get_opt_str(r, "mailbox"),
        reason: get_str(r, "reason"),
        size: get_i64(r, "size"),
        truncated: get_i64(r, "truncated") != 0,
        status: get_str(r, "status"),
        attempts: get_i64(r, "attempts"),
        outcome: get_opt_str(r, "outcome"),
        received_at: get_i64(r, "received_at"),
        replayed_at: get_opt_i64(r, "replayed_at"),
    }
}

/// Store a quarantined message once: the same bytes again only count an attempt.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    q: &QuarantineIn,
    now: i64,
) -> Result<Outcome, StoreError> {
    // The bytes are in the blob store (written before this transaction).
    let sha = super::blob_batch::raw_hash(&q.raw);
    let id: i64 = {
        use sqlx::Row;
        sqlx::query(
            "INSERT INTO quarantine (source, mailbox, reason, sha256, size, truncated, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (sha256) DO UPDATE SET attempts = quarantine.attempts + 1, reason = excluded.reason RETURNING id",
        )
        .bind(&q.source).bind(q.mailbox.clone()).bind(&q.reason).bind(&sha)
        .bind(q.size).bind(q.truncated as i64).bind(now)
        .fetch_one(&mut **tx).await?
        .try_get(0)?
    };
    tracing::warn!(quarantine_id = id, mailbox = ?q.mailbox, reason = %q.reason, size = q.size, "message quarantined");
    let mut o = Outcome::new(OutcomeKind::Quarantined);
    o.quarantine_id = Some(id);
    o.reason = Some(q.reason.clone());
    Ok(o)
}

impl Store {
    /// Quarantined messages, newest first.
    pub async fn quarantine_list(&self) -> Result<Vec<QuarantineEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM quarantine ORDER BY id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// At most `limit` entries awaiting replay, newest first.
    pub async fn quarantine_pending(&self, limit: i64) -> Result<Vec<QuarantineEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM quarantine WHERE status = 'pending' ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// One entry with its raw bytes.
    pub async fn quarantine_get(&self, id: i64) -> Result<(QuarantineEntry, Vec<u8>), StoreError> {
        use sqlx::Row;
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS}, raw, sha256 FROM quarantine WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("quarantine entry {id}")))?;
        let raw = match r.try_get::<Option<Vec<u8>>, _>("raw")? {
            Some(b) => b,
            None => {
                self.held_bytes("quarantine entry", id, &get_str(&r, "sha256"))
                    .await?
            }
        };
        Ok((entry(&r), raw))
    }

    /// Record the result of a replay.
    pub async fn quarantine_mark(
        &self,
        id: i64,
        status: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.observed(async {
        let _g = self.write_guard().await;
        sqlx::query("UPDATE quarantine SET status = $1, outcome = $2, replayed_at = $3, attempts = attempts + 1 WHERE id = $4")
            .bind(status)
            .bind(outcome)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
        })
        .await
    }
}
