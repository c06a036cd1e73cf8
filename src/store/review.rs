//! The review queue: mail that may not act as its From address, kept raw
//! until released (run through the pipeline as trusted) or rejected (its
//! bytes deleted, its Message-ID and hash remembered so that a re-delivery
//! is dropped). A message is in review, stored or quarantined, once.

use super::{get_i64, get_opt_i64, get_opt_str, get_str, now_ms, Store, StoreError};
use crate::model::{Outcome, OutcomeKind, ReviewIn};
use serde::Serialize;
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
    // The bytes are in the blob store (written before this transaction).
    let sha = super::blob_batch::raw_hash(&r.raw);
    let new = sqlx::query(
        "INSERT INTO review (source, mailbox, message_id, sender, subject, reason, sha256, size, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&r.source)
    .bind(r.mailbox.clone())
    .bind(&r.message_id)
    .bind(&r.sender)
    .bind(&r.subject)
    .bind(&r.reason)
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

/// Inside the transaction that stores a released mail: move its entry from
/// `releasing` to `released`, once. Returns who released it, or `None` when
/// another transaction did first (the mail is then a duplicate).
pub(crate) async fn settle_release(
    tx: &mut Transaction<'_, Any>,
    id: i64,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "UPDATE review SET status = 'released', raw = NULL, decided_at = $1 \
         WHERE id = $2 AND status = 'releasing' RETURNING decided_by",
    )
    .bind(now)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| get_opt_str(&r, "decided_by").unwrap_or_else(|| "someone".into())))
}

/// Rejected entries are remembered this long (without their bytes), so
/// that a late re-delivery is still dropped.
pub const REJECTED_KEPT_DAYS: i64 = 365;

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
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS}, raw, sha256 FROM review WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("review entry {id}")))?;
        let e = entry(&r);
        // Held mail is in the blob store (or, made before it, in `raw`).
        let raw = match r.try_get::<Option<Vec<u8>>, _>("raw")? {
            Some(b) => Some(b),
            None if matches!(e.status.as_str(), "pending" | "releasing") => Some(
                self.held_bytes("review entry", id, &get_str(&r, "sha256"))
                    .await?,
            ),
            None => None,
        };
        Ok((e, raw))
    }

    /// A pending entry, or why it cannot be decided.
    pub async fn review_pending_entry(
        &self,
        id: i64,
    ) -> Result<(ReviewEntry, Vec<u8>), StoreError> {
        let (e, raw) = self.review_get(id).await?;
        match raw {
            Some(raw) if e.status == "pending" => Ok((e, raw)),
            _ => Err(decided(&e)),
        }
    }

    /// Claim an entry for release: `pending` becomes `releasing` (with who
    /// releases it) before the mail runs through the pipeline, so that a
    /// concurrent reject finds it decided. An entry left `releasing` by a
    /// release that did not finish (a crash before its commit stored
    /// nothing) may be claimed again: the store moves it to `released` in
    /// the transaction that stores the mail, once.
    pub async fn review_claim(
        &self,
        id: i64,
        by: &str,
    ) -> Result<(ReviewEntry, Vec<u8>), StoreError> {
        self.observed(async {
            let _g = self.write_guard().await;
            sqlx::query(
                "UPDATE review SET status = 'releasing', decided_by = $1 \
                 WHERE id = $2 AND status IN ('pending', 'releasing')",
            )
            .bind(by)
            .bind(id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await?;
        let (e, raw) = self.review_get(id).await?;
        match raw {
            Some(raw) if e.status == "releasing" => Ok((e, raw)),
            _ => Err(decided(&e)),
        }
    }

    /// Record a release's outcome (the event on the ticket was written with
    /// the mail). An entry whose mail did not become a comment (a duplicate
    /// of stored mail, or quarantined) is marked released here.
    pub async fn review_released(
        &self,
        id: i64,
        by: &str,
        outcome: &Outcome,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(outcome).unwrap_or_default();
        self.observed(async {
            let _g = self.write_guard().await;
            sqlx::query(
                "UPDATE review SET status = 'released', raw = NULL, outcome = $1, \
                 decided_by = COALESCE(decided_by, $2), decided_at = COALESCE(decided_at, $3) \
                 WHERE id = $4 AND status IN ('releasing', 'released') AND outcome IS NULL",
            )
            .bind(&json)
            .bind(by)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// Reject a pending entry: its bytes are deleted, its Message-ID and
    /// hash kept so that a re-delivery is dropped.
    pub async fn review_reject(&self, id: i64, by: &str) -> Result<ReviewEntry, StoreError> {
        self.review_pending_entry(id).await?;
        let held = self
            .observed(async {
            let _g = self.write_guard().await;
            let row = sqlx::query(
                "UPDATE review SET status = 'rejected', raw = NULL, decided_by = $1, decided_at = $2 \
                 WHERE id = $3 AND status = 'pending' RETURNING sha256",
            )
            .bind(by)
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            match row {
                Some(r) => Ok(get_str(&r, "sha256")),
                None => Err(StoreError::conflict(format!(
                    "review entry {id} was decided meanwhile (released or rejected by someone else)"
                ))),
            }
        })
        .await
        .map(|sha| vec![sha])?;
        // Its mail goes from the blob store now, not at the next sweep.
        self.delete_unreferenced(&held.into()).await?;
        Ok(self.review_get(id).await?.0)
    }

    /// The retention, for entries received before `before` (unix ms):
    /// pending entries are rejected (their bytes deleted, their Message-ID
    /// and hash kept, decided by `retention`), released ones deleted (their
    /// mail is stored and deduplicated there); rejected entries are
    /// forgotten after [`REJECTED_KEPT_DAYS`]. Returns the entries purged.
    pub async fn review_purge(&self, before: i64) -> Result<u64, StoreError> {
        let forget = now_ms() - REJECTED_KEPT_DAYS * 86_400_000;
        let mut held = Vec::new();
        let n = self
            .observed(async {
            let mut tx = self.begin().await?;
            let rejected = sqlx::query(
                "UPDATE review SET status = 'rejected', raw = NULL, decided_by = 'retention', decided_at = $1 \
                 WHERE received_at < $2 AND status = 'pending' RETURNING sha256",
            )
            .bind(now_ms())
            .bind(before)
            .fetch_all(&mut *tx)
            .await?;
            held.extend(rejected.iter().map(|r| get_str(r, "sha256")));
            let rejected = rejected.len() as u64;
            let deleted = sqlx::query(
                "DELETE FROM review WHERE (received_at < $1 AND status = 'released') \
                 OR (received_at < $2 AND status = 'rejected')",
            )
            .bind(before)
            .bind(forget.min(before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(rejected + deleted)
        })
        .await?;
        // The rejected entries' mail goes from the blob store now.
        self.delete_unreferenced(&held.into()).await?;
        Ok(n)
    }
}

fn decided(e: &ReviewEntry) -> StoreError {
    StoreError::conflict(format!(
        "review entry {} was already {} by {}",
        e.id,
        e.status,
        e.decided_by.as_deref().unwrap_or("someone")
    ))
}
