//! Retention by policy (`[retention]`): raw mails dropped from comments
//! past an age (the parsed comment stays), quarantine entries, the content
//! of tickets closed long ago, finished webhook request records and sent
//! notifications removed. Each kind goes in small batches, one short
//! transaction each, so ingestion (SQLite's one writer included) waits at
//! most one batch; blobs no row names any more are deleted after each
//! batch commits.

use super::blob_rows::Named;
use super::{get_i64, get_opt_i64, get_opt_str, Store, StoreError, ERASED};
use serde::Serialize;
use sqlx::Row;

/// The ages past which data goes, in milliseconds; `None` keeps it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionPolicy {
    pub raw_after_ms: Option<i64>,
    pub quarantine_ms: Option<i64>,
    pub closed_tickets_ms: Option<i64>,
    pub webhook_requests_ms: Option<i64>,
    pub outbox_sent_ms: Option<i64>,
}

/// What a run removed (or, dry, would remove), by kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Purged {
    pub dry_run: bool,
    /// Comments whose raw mail was dropped.
    pub raw_mails: u64,
    pub quarantine: u64,
    /// Closed tickets whose content was erased.
    pub closed_tickets: u64,
    pub webhook_requests: u64,
    pub outbox_sent: u64,
}

const BATCH: i64 = 200;
/// Closed tickets per batch (each has several comments).
const TICKETS: i64 = 25;

/// The rows each kind removes, with their age column and condition, for
/// the dry run's counts.
const COUNTS: [(&str, &str); 5] = [
    // A forwarded original is dated by the original's Date: it counts from
    // when it arrived (its events), not from then.
    (
        "comments",
        "created_at < $1 AND (raw_sha256 IS NOT NULL OR raw IS NOT NULL) \
         AND (forwarded_by IS NULL OR NOT EXISTS (SELECT 1 FROM ticket_events e \
         WHERE e.ticket_id = comments.ticket_id AND e.comment_id = comments.id AND e.created_at >= $1))",
    ),
    ("quarantine", "received_at < $1"),
    (
        "tickets",
        "status = 'closed' AND updated_at < $1 AND content_erased_at IS NULL",
    ),
    ("webhook_requests", "created_at < $1 AND status <> 0"),
    ("outbox", "status = 'sent' AND sent_at < $1"),
];

impl Store {
    /// Apply `policy` as of `now` (unix ms); `dry_run` only counts.
    pub async fn retention_run(
        &self,
        policy: &RetentionPolicy,
        now: i64,
        dry_run: bool,
    ) -> Result<Purged, StoreError> {
        let mut out = Purged {
            dry_run,
            ..Purged::default()
        };
        let ages = [
            policy.raw_after_ms,
            policy.quarantine_ms,
            policy.closed_tickets_ms,
            policy.webhook_requests_ms,
            policy.outbox_sent_ms,
        ];
        let mut counts = [0u64; 5];
        for (i, age) in ages.iter().enumerate() {
            let Some(age) = age else { continue };
            let cutoff = now - age;
            counts[i] = if dry_run {
                let (table, cond) = COUNTS[i];
                let r = sqlx::query(&format!("SELECT COUNT(*) FROM {table} WHERE {cond}"))
                    .bind(cutoff)
                    .fetch_one(&self.pool)
                    .await?;
                r.try_get::<i64, _>(0)? as u64
            } else {
                let mut n = 0;
                loop {
                    // Each batch commits first; then the blobs its rows named
                    // go, unless another row still names them.
                    let (done, blobs) = match i {
                        0 => self.drop_raw_batch(cutoff).await?,
                        1 => {
                            self.delete_batch("quarantine", "id", COUNTS[1].1, cutoff, "sha256")
                                .await?
                        }
                        2 => self.erase_closed_batch(cutoff, now).await?,
                        3 => {
                            self.delete_batch(
                                "webhook_requests",
                                "source, idem_key",
                                COUNTS[3].1,
                                cutoff,
                                "NULL",
                            )
                            .await?
                        }
                        _ => {
                            self.delete_batch("outbox", "id", COUNTS[4].1, cutoff, "NULL")
                                .await?
                        }
                    };
                    self.delete_unreferenced(&blobs).await?;
                    if done == 0 {
                        break;
                    }
                    n += done;
                    // Let waiting writers (ingestion) in between batches.
                    tokio::task::yield_now().await;
                }
                n
            };
        }
        [
            out.raw_mails,
            out.quarantine,
            out.closed_tickets,
            out.webhook_requests,
            out.outbox_sent,
        ] = counts;
        if !dry_run {
            for (kind, n) in [
                ("raw_mail", out.raw_mails),
                ("quarantine", out.quarantine),
                ("closed_ticket", out.closed_tickets),
                ("webhook_request", out.webhook_requests),
                ("outbox_sent", out.outbox_sent),
            ] {
                metrics::counter!("intake_retention_purged_total", "kind" => kind).increment(n);
            }
        }
        Ok(out)
    }

    /// Delete one batch of `table`'s rows matching `cond` (keyed by `key`);
    /// returns how many, and the blob hashes they named (column `blob`).
    async fn delete_batch(
        &self,
        table: &str,
        key: &str,
        cond: &str,
        cutoff: i64,
        blob: &str,
    ) -> Result<(u64, Named), StoreError> {
        let _guard = self.write_guard().await;
        let which = if key.contains(',') {
            format!("({key}) IN (SELECT {key} FROM {table} WHERE {cond} LIMIT {BATCH})")
        } else {
            format!(
                "{key} IN (SELECT {key} FROM {table} WHERE {cond} ORDER BY {key} LIMIT {BATCH})"
            )
        };
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "DELETE FROM {table} WHERE {which} RETURNING {blob} AS h"
        ))
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let blobs: Vec<String> = rows.iter().filter_map(|r| get_opt_str(r, "h")).collect();
        Ok((rows.len() as u64, Named::from(blobs)))
    }

    /// Drop one batch of old comments' raw mail; returns how many, and
    /// their blobs.
    async fn drop_raw_batch(&self, cutoff: i64) -> Result<(u64, Named), StoreError> {
        Ok({
            let _guard = self.write_guard().await;
            let mut tx = self.begin_write().await?;
            let rows = sqlx::query(&format!(
                "SELECT id, raw_sha256, raw_blob FROM comments WHERE {} ORDER BY id LIMIT {BATCH}",
                COUNTS[0].1
            ))
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await?;
            let ids: Vec<String> = rows.iter().map(|r| get_i64(r, "id").to_string()).collect();
            let blobs = Named {
                hashes: rows
                    .iter()
                    .filter_map(|r| get_opt_str(r, "raw_sha256"))
                    .collect(),
                raws: rows
                    .iter()
                    .filter_map(|r| get_opt_i64(r, "raw_blob"))
                    .collect(),
            };
            if !ids.is_empty() {
                sqlx::query(&format!(
                    "UPDATE comments SET raw = NULL, raw_sha256 = NULL, raw_blob = NULL, raw_size = NULL WHERE id IN ({})",
                    ids.join(", ")
                ))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            (ids.len() as u64, blobs)
        })
    }

    /// Erase the content of one batch of tickets closed before `cutoff`:
    /// subjects and bodies become the erased marker, raw mails,
    /// attachments, notifications and event details go; the tickets, their
    /// status, dates and threading stay. Returns how many, and their blobs.
    async fn erase_closed_batch(&self, cutoff: i64, now: i64) -> Result<(u64, Named), StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        // Marked first, with the condition checked again on each row as it
        // is updated (PostgreSQL re-reads a row a concurrent transaction
        // changed): a ticket reopened meanwhile is left alone.
        let ids: Vec<String> = sqlx::query(&format!(
            "UPDATE tickets SET subject = $1, content_erased_at = $2 WHERE id IN \
             (SELECT id FROM tickets WHERE {cond} ORDER BY id LIMIT {TICKETS}) AND {cond} RETURNING id",
            cond = COUNTS[2].1.replace("$1", "$3")
        ))
        .bind(ERASED)
        .bind(now)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| get_i64(r, "id").to_string())
        .collect();
        if ids.is_empty() {
            return Ok((0, Named::default()));
        }
        let list = ids.join(", ");
        let comments = format!("SELECT id FROM comments WHERE ticket_id IN ({list})");
        let which = format!("ticket_id IN ({list})");
        let blobs = super::blob_rows::blobs_of_comments(&mut tx, &which).await?;
        for sql in [
            format!("DELETE FROM attachments WHERE comment_id IN ({comments})"),
            // Not a notification still to send, or being sent.
            format!("DELETE FROM outbox WHERE ticket_id IN ({list}) AND status <> 'pending'"),
            format!("UPDATE ticket_events SET detail = '' WHERE ticket_id IN ({list})"),
        ] {
            sqlx::query(&sql).execute(&mut *tx).await?;
        }
        sqlx::query(&format!(
            "UPDATE comments SET subject = $1, body = $1, visible_body = NULL, raw = NULL, \
             raw_sha256 = NULL, raw_blob = NULL, raw_size = NULL WHERE ticket_id IN ({list})"
        ))
        .bind(ERASED)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((ids.len() as u64, blobs))
    }
}
