//! The review queue: mail that may not act as its From address, kept raw
//! until released (run through the pipeline as trusted) or rejected (its
//! bytes deleted, its Message-ID and hash remembered so that a re-delivery
//! is dropped). A message is in review, stored or quarantined, once.

use super::{get_i64, get_opt_i64, get_opt_str, get_str, now_ms, Store, StoreError};
use crate::model::{Outcome, OutcomeKind, ReviewIn};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::any::Any;
use sqlx::{Row, Transaction};

/// One review entry, without its bytes.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewEntry {
    pub id: i64,
    pub source: String,
    pub mailbox: Option<String>,
    pub message_id: String,
    /// The From address the mail claims.
    pub sender: String,
    pub subject: String,
    pub reason: String,
    pub size: i64,
    /// `pending`, `released` or `rejected`.
    pub status: String,
    /// Deliveries seen (a re-delivery counts here, stores nothing).
    pub attempts: i64,
    /// The pipeline's outcome of a release, as JSON.
    pub outcome: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub received_at: i64,
}

pub(super) const COLUMNS: &str = "id, source, mailbox, message_id, sender, subject, reason, size, status, attempts, outcome, decided_by, decided_at, received_at";

pub(super) fn entry(r: &sqlx::any::AnyRow) -> ReviewEntry {
    ReviewEntry {
        id: get_i64(r, "id"),
        source: get_str(r, "source"),
        mailbox: get_opt_str(r, "mailbox"),
        message_id: get_str(r, "message_id"),
        sender: get_str(r, "sender"),
        subject: get_str(r, "subject"),
        reason: get_str(r, "reason"),
        size: get_i64(r, "size"),
        status: get_str(r, "status"),
        attempts: get_i64(r, "attempts"),
        outcome: get_opt_str(r, "outcome"),
        decided_by: get_opt_str(r, "decided_by"),
        decided_at: get_opt_i64(r, "decided_at"),
        received_at: get_i64(r, "received_at"),
    }
}

/// Hold a message for review once: the same Message-ID or bytes again only
/// count a delivery (still in review, or a duplicate once decided).
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    r: &ReviewIn,
    now: i64,
) -> Result<Outcome, StoreError> {
    let sha = hex::encode(Sha256::digest(&r.raw));
    let new = sqlx::query(
        "INSERT INTO review (source, mailbox, message_id, sender, subject, reason, raw, sha256, size, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&r.source)
    .bind(r.mailbox.clone())
    .bind(&r.message_id)
    .bind(&r.sender)
    .bind(&r.subject)
    .bind(&r.reason)
    .bind(r.raw.clone())
    .bind(&sha)
    .bind(r.raw.len() as i64)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    let (id, status) = match new {
        Some(row) => {
            let id: i64 = row.try_get(0)?;
            tracing::warn!(review_id = id, sender = %r.sender, reason = %r.reason, "message held for review");
            (id, "pending".to_string())
        }
        None => {
            let row = sqlx::query(
                "SELECT id, status FROM review WHERE message_id = $1 OR sha256 = $2 ORDER BY id LIMIT 1",
            )
            .bind(&r.message_id)
            .bind(&sha)
            .fetch_one(&mut **tx)
            .await?;
            let id = get_i64(&row, "id");
            sqlx::query("UPDATE review SET attempts = attempts + 1 WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            (id, get_str(&row, "status"))
        }
    };
    let mut o = Outcome::new(if status == "pending" {
        OutcomeKind::Review
    } else {
        OutcomeKind::Duplicate
    });
    o.review_id = Some(id);
    o.message_id = Some(r.message_id.clone());
    o.reason = Some(r.reason.clone());
    Ok(o)
}

impl Store {
    /// Review entries, newest first (decided ones too, until purged).
    pub async fn review_list(&self) -> Result<Vec<ReviewEntry>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM review ORDER BY id DESC"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// At most `limit` entries awaiting a decision, newest first.
    pub async fn review_pending(&self, limit: i64) -> Result<Vec<ReviewEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM review WHERE status = 'pending' ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// Entries awaiting a decision.
    pub async fn review_depth(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM review WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        Ok(get_i64(&r, "n"))
    }

    /// One entry with its bytes (`None` once rejected).
    pub async fn review_get(&self, id: i64) -> Result<(ReviewEntry, Option<Vec<u8>>), StoreError> {
        let r = sqlx::query(&format!("SELECT {COLUMNS}, raw FROM review WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("review entry {id}")))?;
        Ok((entry(&r), r.try_get::<Option<Vec<u8>>, _>("raw")?))
    }

    /// A pending entry, or why it cannot be decided.
    pub async fn review_pending_entry(
        &self,
        id: i64,
    ) -> Result<(ReviewEntry, Vec<u8>), StoreError> {
        let (e, raw) = self.review_get(id).await?;
        match raw {
            Some(raw) if e.status == "pending" => Ok((e, raw)),
            _ => Err(StoreError::conflict(format!(
                "review entry {id} was already {} by {}",
                e.status,
                e.decided_by.as_deref().unwrap_or("someone")
            ))),
        }
    }

    /// Record a release: the entry's outcome and, when it joined a ticket,
    /// a `released_from_review` event on that ticket saying by whom.
    pub async fn review_released(
        &self,
        id: i64,
        by: &str,
        outcome: &Outcome,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(outcome).unwrap_or_default();
        self.observed(async {
            let mut tx = self.begin().await?;
            let now = now_ms();
            sqlx::query(
                "UPDATE review SET status = 'released', outcome = $1, decided_by = $2, decided_at = $3 \
                 WHERE id = $4 AND status = 'pending'",
            )
            .bind(&json)
            .bind(by)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if let Some(t) = outcome.ticket_id {
                sqlx::query(
                    "INSERT INTO ticket_events (ticket_id, kind, comment_id, detail, created_at) \
                     VALUES ($1, 'released_from_review', $2, $3, $4)",
                )
                .bind(t)
                .bind(outcome.comment_id)
                .bind(format!("review entry {id} released by {by}"))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
        .await
    }

    /// Reject a pending entry: its bytes are deleted, its Message-ID and
    /// hash kept so that a re-delivery is dropped.
    pub async fn review_reject(&self, id: i64, by: &str) -> Result<ReviewEntry, StoreError> {
        self.review_pending_entry(id).await?;
        self.observed(async {
            let _g = self.write_guard().await;
            let n = sqlx::query(
                "UPDATE review SET status = 'rejected', raw = NULL, decided_by = $1, decided_at = $2 \
                 WHERE id = $3 AND status = 'pending'",
            )
            .bind(by)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::conflict(format!(
                    "review entry {id} was decided meanwhile"
                )));
            }
            Ok(())
        })
        .await?;
        Ok(self.review_get(id).await?.0)
    }

    /// Delete entries received before `before` (unix ms): the retention.
    pub async fn review_purge(&self, before: i64) -> Result<u64, StoreError> {
        self.observed(async {
            let _g = self.write_guard().await;
            Ok(sqlx::query("DELETE FROM review WHERE received_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected())
        })
        .await
    }
}
