//! Idempotency records of gateway webhooks: `(source, Idempotency-Key)` →
//! body hash and the first answer, kept at least 24 hours.
//!
//! A request first *claims* its key with a pending row (status 0) inserted
//! with `ON CONFLICT DO NOTHING`, so of any number of concurrent identical
//! requests exactly one runs the ingestion; the others wait for its answer.
//! The contact's Message-ID is derived from the key, so even a claim taken
//! over after a crash can never store the contact twice.

use super::{get_i64, get_opt_i64, get_str, now_ms, Store, StoreError};

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key: ingest, then [`Store::webhook_complete`].
    Owned,
    /// Answered before: replay this status and body.
    Done { status: u16, response: String },
    /// The key was used with another body.
    Mismatch,
    /// Another request with this key is being processed.
    InFlight,
}

/// Pending rows older than this are taken over (their owner died).
const STALE_MS: i64 = 60_000;
/// Records younger than this are never purged.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// Claim `(source, key)` for a body with hash `sha`.
    pub async fn webhook_claim(
        &self,
        source: &str,
        key: &str,
        sha: &str,
    ) -> Result<Claim, StoreError> {
        let now = now_ms();
        {
            let _g = self.write_guard().await;
            let inserted = sqlx::query(
                "INSERT INTO webhook_requests (source, idem_key, body_sha256, status, response, created_at) \
                 VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (source, idem_key) DO NOTHING RETURNING status",
            )
            .bind(source)
            .bind(key)
            .bind(sha)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            if inserted.is_some() {
                return Ok(Claim::Owned);
            }
        }
        let r = sqlx::query(
            "SELECT body_sha256, status, response, created_at FROM webhook_requests WHERE source = $1 AND idem_key = $2",
        )
        .bind(source)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = r else {
            // Released by a failed owner between our insert and select.
            return Ok(Claim::InFlight);
        };
        if get_str(&r, "body_sha256") != sha {
            return Ok(Claim::Mismatch);
        }
        let status = get_i64(&r, "status");
        if status != 0 {
            return Ok(Claim::Done {
                status: status as u16,
                response: get_str(&r, "response"),
            });
        }
        if get_i64(&r, "created_at") < now - STALE_MS {
            let _g = self.write_guard().await;
            let n = sqlx::query(
                "UPDATE webhook_requests SET created_at = $1 WHERE source = $2 AND idem_key = $3 AND status = 0 AND created_at < $4",
            )
            .bind(now)
            .bind(source)
            .bind(key)
            .bind(now - STALE_MS)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 1 {
                tracing::warn!(source, "taking over a stale idempotency claim");
                return Ok(Claim::Owned);
            }
        }
        Ok(Claim::InFlight)
    }

    /// Record the answer of an owned claim.
    pub async fn webhook_complete(
        &self,
        source: &str,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query("UPDATE webhook_requests SET status = $1, response = $2 WHERE source = $3 AND idem_key = $4")
            .bind(status as i64)
            .bind(response)
            .bind(source)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drop an owned claim whose request failed, so nothing stays stored.
    pub async fn webhook_release(&self, source: &str, key: &str) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query(
            "DELETE FROM webhook_requests WHERE source = $1 AND idem_key = $2 AND status = 0",
        )
        .bind(source)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delete answered records older than [`KEEP_MS`]. Returns how many.
    pub async fn webhook_purge(&self) -> Result<u64, StoreError> {
        let _g = self.write_guard().await;
        Ok(
            sqlx::query("DELETE FROM webhook_requests WHERE created_at < $1 AND status <> 0")
                .bind(now_ms() - KEEP_MS)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// For a stored contact comment: its author and whether it opened its
    /// ticket. Rebuilds the answer of a request whose record was lost.
    pub async fn comment_origin(&self, comment_id: i64) -> Result<(i64, bool), StoreError> {
        let r = sqlx::query(
            "SELECT c.author_id, (SELECT MIN(e.id) FROM ticket_events e WHERE e.ticket_id = c.ticket_id \
             AND e.kind = 'ticket_created' AND e.comment_id = c.id) AS created_event FROM comments c WHERE c.id = $1",
        )
        .bind(comment_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("comment {comment_id}")))?;
        Ok((
            get_i64(&r, "author_id"),
            get_opt_i64(&r, "created_event").is_some(),
        ))
    }
}
