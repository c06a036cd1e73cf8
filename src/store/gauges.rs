//! The queue depths `GET /metrics` shows, counted in the database when
//! Prometheus scrapes: quarantine entries awaiting replay, outbox rows by
//! status, and how long the oldest due notification has waited.
//!
//! Two read statements on the pool (no write lock, no transaction). The
//! first counts the quarantine (a small table) and finds the oldest due row
//! through the `outbox_pending` partial index; the second counts the outbox
//! by status, which reads the whole table (about half a second per million
//! rows on SQLite): the caller decides how often it runs.

use super::{get_i64, get_opt_i64, get_str, Store, StoreError};

/// Every status an outbox row can have, in the order of
/// [`QueueDepths::outbox`].
pub const OUTBOX_STATUSES: [&str; 4] = ["pending", "failed", "suppressed", "sent"];

/// What the queues hold at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Quarantine entries not replayed yet.
    pub quarantine: i64,
    /// Review entries awaiting a decision.
    pub review: i64,
    /// Outbox rows per status of [`OUTBOX_STATUSES`] (0 when none).
    pub outbox: [i64; 4],
    /// How long (ms) the oldest pending notification whose next attempt is
    /// due has waited since it became due; 0 when none is due.
    pub oldest_due_ms: i64,
}

impl Store {
    /// The queue depths at `now` (unix ms).
    pub async fn queue_depths(&self, now: i64) -> Result<QueueDepths, StoreError> {
        // The literal 'pending' (not a parameter) lets both databases use
        // the partial index `outbox_pending ... WHERE status = 'pending'`.
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM quarantine WHERE status = 'pending') AS quarantine, \
             (SELECT COUNT(*) FROM review WHERE status = 'pending') AS review, \
             (SELECT MIN(next_attempt_at) FROM outbox \
              WHERE status = 'pending' AND next_attempt_at <= $1) AS oldest_due",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let by_status = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut outbox = [0; 4];
        for r in &by_status {
            let status = get_str(r, "status");
            if let Some(i) = OUTBOX_STATUSES.iter().position(|s| *s == status) {
                outbox[i] = get_i64(r, "n");
            }
        }
        Ok(QueueDepths {
            quarantine: get_i64(&row, "quarantine"),
            review: get_i64(&row, "review"),
            outbox,
            oldest_due_ms: get_opt_i64(&row, "oldest_due").map_or(0, |t| (now - t).max(0)),
        })
    }
}
