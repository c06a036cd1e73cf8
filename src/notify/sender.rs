//! The sender: claims due outbox rows for a short, renewed while (`claims`;
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock on SQLite), holds
//! back what the loop brakes forbid (`brakes`), renders the rest
//! (`compose`), delivers them through lettre and records each result as
//! soon as the SMTP server answered: `sent`; rescheduled with exponential
//! backoff on connection errors and 4xx; `failed` on 5xx, after
//! `max_attempts`, or when the template cannot be rendered.

use super::claims::{heartbeat, recorder, Held, CLAIM_TTL};
use super::compose::{contents, Content};
use super::smtp::{build_message, build_transport, OutMail, Transport};
use super::NotifySettings;
use crate::config::Config;
use crate::model::{Claimed, Delivery, RecipientLoad};
use crate::store::{now_ms, Store, StoreError};
use futures::StreamExt;
use lettre::AsyncTransport;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

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
    notify: Arc<NotifySettings>,
    transport: Transport,
    from: String,
    desk_domain: String,
    me: String,
    max_attempts: i64,
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
/// After a stop is asked, how long messages already on the wire may take.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(5);

impl Sender {
    /// A sender for `cfg.smtp` (an error when `[smtp]` is missing or wrong),
    /// compiling the triggers (see [`Sender::with_settings`]).
    pub fn new(store: Store, cfg: &Config) -> Result<Sender, NotifyError> {
        Self::with_settings(store, cfg, Arc::new(NotifySettings::from_config(cfg)))
    }

    /// A sender over notification settings built already (the pipeline's).
    pub fn with_settings(
        store: Store,
        cfg: &Config,
        notify: Arc<NotifySettings>,
    ) -> Result<Sender, NotifyError> {
        let smtp = cfg
            .smtp
            .as_ref()
            .ok_or_else(|| NotifyError::Config("no [smtp] section".into()))?;
        crate::metrics::register_notifications();
        Ok(Sender {
            store,
            notify,
            transport: build_transport(smtp).map_err(NotifyError::Config)?,
            from: smtp.from.to_string(),
            desk_domain: cfg.desk.domain.clone(),
            me: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
            max_attempts: cfg.notifications.max_attempts.max(1) as i64,
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
/// transaction, then send the others over the pooled connection, each
/// result recorded as soon as the SMTP server answered (see `claims`).
/// Empty when nothing is due.
pub async fn try_send_batch(s: &Sender, max: usize) -> Result<Vec<SendOutcome>, StoreError> {
    let (_running, stop) = watch::channel(false);
    send_batch(s, max, &stop).await
}

/// [`try_send_batch`] that stops when `stop` turns true: rows not yet on the
/// wire are released at once (another sender may take them), the messages
/// on the wire get [`IN_FLIGHT_GRACE`] to finish and be recorded.
async fn send_batch(
    s: &Sender,
    max: usize,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<SendOutcome>, StoreError> {
    let now = now_ms();
    let claimed_at = Instant::now();
    let until = now + CLAIM_TTL.as_millis() as i64;
    let brakes =
        |who: &[(i64, String)], load: &RecipientLoad| super::brakes::at_send(&s.notify, who, load);
    let (rows, held) = s
        .store
        .claim_notifications(&s.me, now, until, now - s.notify.window_ms, max, &brakes)
        .await?;
    let suppressed: Vec<SendOutcome> = held
        .into_iter()
        .map(|(id, reason)| {
            crate::metrics::notification("suppressed");
            SendOutcome::Suppressed(id, reason)
        })
        .collect();
    if rows.is_empty() {
        return Ok(if suppressed.is_empty() {
            vec![SendOutcome::Empty]
        } else {
            suppressed
        });
    }
    let held = Held::new(rows.iter().map(|r| r.id), claimed_at);
    let mut content = match contents(&s.store, &s.notify, &rows).await {
        Ok(c) => c,
        Err(e) => {
            release(s, &held).await;
            return Err(e);
        }
    };
    let (results, record) = {
        let (done_tx, done_rx) = watch::channel(false);
        let (rec_tx, rec_rx) = mpsc::unbounded_channel();
        // Up to SMTP_PARALLEL messages on the wire at all times (the transport's pool).
        let wire: Vec<_> = rows
            .iter()
            .map(|r| {
                let c = content.remove(&r.id);
                let (held, rec_tx) = (&held, rec_tx.clone());
                async move {
                    let id = r.id;
                    if *stop.borrow() || !held.start(id) {
                        return None;
                    }
                    let (delivery, outcome) = tokio::select! {
                        d = send_row(s, r, c) => d,
                        _ = grace_over(stop.clone()) => return None,
                    };
                    let _ = rec_tx.send(delivery);
                    Some(outcome)
                }
            })
            .collect();
        drop(rec_tx);
        let work = async {
            let sends = futures::stream::iter(wire)
                .buffer_unordered(super::smtp::SMTP_PARALLEL)
                .filter_map(|o| async move { o })
                .collect::<Vec<_>>();
            let r = tokio::join!(sends, recorder(&s.store, &s.me, &held, rec_rx));
            let _ = done_tx.send(true);
            r
        };
        tokio::join!(work, heartbeat(&s.store, &s.me, &held, done_rx)).0
    };
    // Rows never put on the wire (a stop, or claims that could not be
    // renewed) are given back; rows abandoned on the wire keep their claim
    // until it expires, as their message may have been accepted.
    release(s, &held).await;
    record?;
    let mut out = suppressed;
    out.extend(results);
    Ok(out)
}

/// Give back the held rows that never went on the wire.
async fn release(s: &Sender, held: &Held) {
    let ids = held.unstarted();
    if ids.is_empty() {
        return;
    }
    match s.store.release_claims(&s.me, &ids).await {
        Ok(n) => tracing::info!(released = n, "notification sender: unsent claims released"),
        Err(e) => {
            tracing::warn!(error = %e, "notification sender: claims not released; they expire")
        }
    }
}

/// Resolves [`IN_FLIGHT_GRACE`] after `stop` turned true (never if it does not).
async fn grace_over(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(IN_FLIGHT_GRACE).await;
}

/// Send one claimed row with its content: the result to record and to report.
async fn send_row(
    s: &Sender,
    r: &Claimed,
    content: Option<Result<Content, String>>,
) -> (Delivery, SendOutcome) {
    let result = match content {
        Some(Ok(c)) => send(s, r, &c).await,
        Some(Err(e)) => Err((true, e)),
        None => Err((true, "not rendered".to_string())),
    };
    let (id, to) = (r.id, &r.to);
    let attempts = r.attempts + 1;
    match result {
        Ok(()) => {
            tracing::info!(id, to = %to, "notification sent");
            crate::metrics::notification("sent");
            (Delivery::Sent { id }, SendOutcome::Sent(id))
        }
        Err((permanent, error)) => {
            let give_up = permanent || attempts >= s.max_attempts;
            let outcome = if give_up {
                tracing::warn!(id, to = %to, attempts, %error, "notification failed");
                crate::metrics::notification("failed");
                SendOutcome::Failed(id, error.clone())
            } else {
                tracing::info!(id, to = %to, attempts, %error, "notification delivery will be retried");
                crate::metrics::notification("retry");
                SendOutcome::Retry(id, error.clone())
            };
            let next = now_ms() + backoff_ms(attempts);
            let d = Delivery::Refused {
                id,
                attempts,
                give_up,
                next,
                error,
            };
            (d, outcome)
        }
    }
}

/// Send one claimed row: Err((permanent, reason)).
async fn send(s: &Sender, r: &Claimed, c: &Content) -> Result<(), (bool, String)> {
    let (to, mid) = (&r.to, &r.message_id);
    let msg = build_message(&OutMail {
        from: &s.from,
        to,
        reply_to: c.reply_to.as_deref(),
        subject: &c.subject,
        text: &c.text,
        html: c.html.as_deref(),
        message_id: mid,
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

/// The daemon's sender task: runs until `shutdown` turns true, then gives
/// back what it claimed but did not put on the wire and lets what is on the
/// wire finish (within [`IN_FLIGHT_GRACE`]). A restart resumes pending rows;
/// rows claimed by a crashed sender are retaken when their claim expires
/// (within `claims::CLAIM_TTL`).
pub async fn run_sender(
    s: Sender,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), NotifyError> {
    tracing::info!(me = %s.me, "notification sender started");
    while !*shutdown.borrow() {
        let pause = match send_batch(&s, BATCH, &shutdown).await.as_deref() {
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
