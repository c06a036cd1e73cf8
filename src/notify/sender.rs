//! The sender: claims due outbox rows (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, the write lock on SQLite), holds back what the loop brakes
//! forbid (`brakes`), renders the rest (`compose`), delivers
//! them through lettre and records the result: `sent`; rescheduled with
//! exponential backoff on connection errors and 4xx; `failed` on 5xx, after
//! `max_attempts`, or when the template cannot be rendered.

use super::compose::{contents, Content};
use super::smtp::{build_message, build_transport, OutMail, Transport};
use super::NotifySettings;
use crate::config::Config;
use crate::store::{get_i64, get_str, now_ms, Backend, Store, StoreError};
use futures::StreamExt;
use lettre::AsyncTransport;
use std::time::Duration;

/// Why the sender cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("smtp: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A sender: its SMTP transport, its claim id and its limits.
pub struct Sender {
    store: Store,
    notify: NotifySettings,
    transport: Transport,
    from: String,
    desk_domain: String,
    me: String,
    max_attempts: i64,
    timeout_secs: i64,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Delivered (outbox id).
    Sent(i64),
    /// Nothing due.
    Empty,
    /// Temporary failure: rescheduled.
    Retry(i64, String),
    /// Permanent failure (5xx, or too many attempts).
    Failed(i64, String),
    /// Held back by the loop brakes (rate limit, undeliverable, our own).
    Suppressed(i64, String),
}

/// Rows claimed at a time by `drain` and `run_sender`.
pub const BATCH: usize = 40;
const RETURNING: &str = "RETURNING id, to_addr, subject, body_text, body_html, message_id, in_reply_to, reply_to, attempts, trigger_name, action_index";

impl Sender {
    /// A sender for `cfg.smtp` (an error when `[smtp]` is missing or wrong).
    pub fn new(store: Store, cfg: &Config) -> Result<Sender, NotifyError> {
        let smtp = cfg
            .smtp
            .as_ref()
            .ok_or_else(|| NotifyError::Config("no [smtp] section".into()))?;
        Ok(Sender {
            store,
            notify: NotifySettings::from_config(cfg),
            transport: build_transport(smtp).map_err(NotifyError::Config)?,
            from: smtp.from.clone(),
            desk_domain: cfg.desk.domain.clone(),
            me: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
            max_attempts: cfg.notifications.max_attempts.max(1) as i64,
            timeout_secs: smtp.timeout.max(1) as i64,
        })
    }
}

/// Claim one due row, send it, record the result.
pub async fn try_send_one(s: &Sender) -> Result<SendOutcome, StoreError> {
    Ok(try_send_batch(s, 1)
        .await?
        .pop()
        .unwrap_or(SendOutcome::Empty))
}

/// Claim up to `max` due rows and put the loop brakes on them in one
/// transaction, send the others over the pooled connection, and record every
/// result in one transaction (on SQLite that is two short write locks per
/// batch, not two per message). Empty when nothing is due.
pub async fn try_send_batch(s: &Sender, max: usize) -> Result<Vec<SendOutcome>, StoreError> {
    let now = now_ms();
    let lock = match s.store.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // The CTE runs once (an `IN (subquery)` may be re-run per row by the
    // planner); due order is the pending index's order, so the claim reads
    // only the rows it takes.
    let sql = format!(
        "WITH c AS (SELECT id AS cid FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
         AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY next_attempt_at, id LIMIT $4{lock}) \
         UPDATE outbox SET claimed_by = $1, claimed_until = $2 FROM c \
         WHERE outbox.id = c.cid AND outbox.status = 'pending' AND (outbox.claimed_until IS NULL OR outbox.claimed_until < $3) {RETURNING}"
    );
    // The claim outlives the worst case of the whole batch.
    let rounds = max.div_ceil(super::smtp::SMTP_PARALLEL) as i64;
    let hold = (60 + rounds * s.timeout_secs) * 1000;
    let (mut rows, held) = {
        let _g = s.store.write_guard().await;
        let mut tx = s.store.begin_write().await?;
        let rows = sqlx::query(&sql)
            .bind(&s.me)
            .bind(now + hold)
            .bind(now)
            .bind(max.max(1) as i64)
            .fetch_all(&mut *tx)
            .await?;
        let (rows, held) = take(&mut tx, s, rows, now).await?;
        tx.commit().await?;
        (rows, held)
    };
    if rows.is_empty() {
        return Ok(if held.is_empty() {
            vec![SendOutcome::Empty]
        } else {
            held
        });
    }
    rows.sort_by_key(|r| get_i64(r, "id"));
    let mut content = contents(&s.store, &s.notify, &rows).await?;
    // Up to SMTP_PARALLEL messages on the wire at all times (the transport's pool).
    let wire: Vec<_> = rows
        .iter()
        .map(|r| send_row(s, r, content.remove(&get_i64(r, "id"))))
        .collect();
    let results: Vec<_> = futures::stream::iter(wire)
        .buffer_unordered(super::smtp::SMTP_PARALLEL)
        .collect()
        .await;
    let now = now_ms();
    let _g = s.store.write_guard().await;
    let mut tx = s.store.begin_write().await?;
    let release = "claimed_by = NULL, claimed_until = NULL";
    let mut out: Vec<SendOutcome> = held;
    let mut sent: Vec<i64> = Vec::new();
    for (id, attempts, to, result) in results {
        match result {
            Ok(()) => {
                tracing::info!(id, to = %to, "notification sent");
                sent.push(id);
                out.push(SendOutcome::Sent(id));
            }
            Err((permanent, err)) => {
                let give_up = permanent || attempts >= s.max_attempts;
                let status = if give_up { "failed" } else { "pending" };
                let next = now + backoff_ms(attempts);
                sqlx::query(&format!("UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, counted_at = NULL, {release} WHERE id = $5 AND claimed_by = $6"))
                    .bind(status).bind(attempts).bind(next).bind(&err).bind(id).bind(&s.me).execute(&mut *tx).await?;
                if give_up {
                    tracing::warn!(id, to = %to, attempts, error = %err, "notification failed");
                    out.push(SendOutcome::Failed(id, err));
                } else {
                    tracing::info!(id, to = %to, attempts, error = %err, "notification delivery will be retried");
                    out.push(SendOutcome::Retry(id, err));
                }
            }
        }
    }
    // Every delivered row in one statement (the write lock is held briefly).
    if !sent.is_empty() {
        let sql = format!(
            "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL, {release} \
             WHERE claimed_by = $2 AND id IN ({})",
            crate::store::placeholders(2, sent.len())
        );
        let mut q = sqlx::query(&sql).bind(now).bind(&s.me);
        for id in &sent {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// The loop brakes on claimed rows, in the claim's transaction: held-back
/// rows are recorded as suppressed (and released), the others count against
/// their recipient from now on. Returns the rows to send and what was held.
async fn take(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    s: &Sender,
    rows: Vec<sqlx::any::AnyRow>,
    now: i64,
) -> Result<(Vec<sqlx::any::AnyRow>, Vec<SendOutcome>), StoreError> {
    if rows.is_empty() {
        return Ok((rows, Vec::new()));
    }
    let mut who: Vec<(i64, String)> = rows
        .iter()
        .map(|r| (get_i64(r, "id"), get_str(r, "to_addr")))
        .collect();
    who.sort_unstable();
    let held = super::brakes::at_send(tx, &s.notify, &who, now).await?;
    let mut outcomes = Vec::with_capacity(held.len());
    let mut go: Vec<i64> = Vec::with_capacity(who.len());
    for (id, _) in &who {
        let Some(reason) = held.get(id) else {
            go.push(*id);
            continue;
        };
        sqlx::query("UPDATE outbox SET status = 'suppressed', last_error = $1, claimed_by = NULL, claimed_until = NULL WHERE id = $2")
            .bind(reason)
            .bind(*id)
            .execute(&mut **tx)
            .await?;
        outcomes.push(SendOutcome::Suppressed(*id, reason.clone()));
    }
    for chunk in go.chunks(500) {
        let sql = format!(
            "UPDATE outbox SET counted_at = $1 WHERE id IN ({})",
            crate::store::placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    let rows = rows
        .into_iter()
        .filter(|r| !held.contains_key(&get_i64(r, "id")))
        .collect();
    Ok((rows, outcomes))
}

/// Send one claimed row with its content: (id, attempts, to, result).
async fn send_row(
    s: &Sender,
    r: &sqlx::any::AnyRow,
    content: Option<Result<Content, String>>,
) -> (i64, i64, String, Result<(), (bool, String)>) {
    let result = match content {
        Some(Ok(c)) => send(s, r, &c).await,
        Some(Err(e)) => Err((true, e)),
        None => Err((true, "not rendered".to_string())),
    };
    (
        get_i64(r, "id"),
        get_i64(r, "attempts") + 1,
        get_str(r, "to_addr"),
        result,
    )
}

/// Send one claimed row: Err((permanent, reason)).
async fn send(s: &Sender, r: &sqlx::any::AnyRow, c: &Content) -> Result<(), (bool, String)> {
    let to = get_str(r, "to_addr");
    let mid = get_str(r, "message_id");
    let msg = build_message(&OutMail {
        from: &s.from,
        to: &to,
        reply_to: c.reply_to.as_deref(),
        subject: &c.subject,
        text: &c.text,
        html: c.html.as_deref(),
        message_id: &mid,
        in_reply_to: c.in_reply_to.as_deref(),
        desk_domain: &s.desk_domain,
    })
    .map_err(|e| (true, e))?;
    s.transport
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| (e.is_permanent(), e.to_string()))
}

/// min(2^attempts s, 1 h).
pub fn backoff_ms(attempts: i64) -> i64 {
    (1i64 << attempts.clamp(0, 12)).min(3600) * 1000
}

/// Send every due notification once (tests, `intake run --once`); returns
/// how many were delivered.
pub async fn drain_once(store: &Store, cfg: &Config) -> Result<usize, NotifyError> {
    let s = Sender::new(store.clone(), cfg)?;
    drain(&s).await
}

/// Send until nothing is due; returns how many were delivered.
pub async fn drain(s: &Sender) -> Result<usize, NotifyError> {
    let mut sent = 0;
    loop {
        for o in try_send_batch(s, BATCH).await? {
            match o {
                SendOutcome::Sent(_) => sent += 1,
                SendOutcome::Empty => return Ok(sent),
                _ => {}
            }
        }
    }
}

/// The daemon's sender task: runs until `shutdown` turns true. A restart
/// resumes pending rows; rows claimed by a crashed sender are retaken after
/// their 60 s claim expires.
pub async fn run_sender(
    store: Store,
    cfg: std::sync::Arc<Config>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), NotifyError> {
    let s = Sender::new(store, &cfg)?;
    tracing::info!(me = %s.me, "notification sender started");
    while !*shutdown.borrow() {
        let pause = match try_send_batch(&s, BATCH).await.as_deref() {
            Ok([SendOutcome::Empty]) => Duration::from_secs(1),
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "notification sender: database error");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!("notification sender stopped");
    Ok(())
}
