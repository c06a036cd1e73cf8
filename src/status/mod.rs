//! What ops look at first, gathered once and shown twice: the status page
//! (`GET /status`, [`crate::http::status`]) renders it as HTML and
//! `intake status` ([`text`]) as lines in the terminal.
//!
//! The report has two halves. What only the running daemon knows (every
//! mailbox folder's state, webhook requests by result, throughput of the last
//! hour) is a [`DaemonView`]: the daemon builds it in process, serves it as
//! `GET /readyz`, and the CLI reads it from there. What the database knows
//! (outbox and quarantine) is read from the store by whoever shows the report.

pub mod text;

pub use crate::metrics::throughput::{Minute, Throughput};
use crate::sources::imap::{FolderStatus, Registry};
use crate::store::{
    now_ms, QuarantineEntry, QueueDepths, ReviewEntry, Store, StoreError, OUTBOX_STATUSES,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most quarantine entries a report lists (the count covers them all).
pub const QUARANTINE_SHOWN: i64 = 50;

/// What the running daemon knows: the body of `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonView {
    /// The database takes writes and every folder is connected or idle.
    pub ready: bool,
    pub database: bool,
    pub database_error: Option<String>,
    pub mailboxes: Vec<FolderStatus>,
    /// Configured webhook sources (and unconfigured ones asked for), by name.
    #[serde(default)]
    pub webhooks: Vec<WebhookCounts>,
    #[serde(default)]
    pub throughput: Throughput,
    /// Mail held for review (`None` when the database did not answer).
    #[serde(default)]
    pub review_pending: Option<i64>,
}

/// One webhook source's requests since the daemon started, by result
/// (the names of `metrics::WEBHOOK_RESULTS`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WebhookCounts {
    pub source: String,
    pub results: BTreeMap<String, u64>,
}

impl WebhookCounts {
    pub fn accepted(&self) -> u64 {
        self.results.get("accepted").copied().unwrap_or(0)
            + self.results.get("replayed").copied().unwrap_or(0)
    }

    /// The refusals that happened, most frequent first.
    pub fn refused(&self) -> Vec<(String, u64)> {
        let mut r: Vec<(String, u64)> = self
            .results
            .iter()
            .filter(|(k, n)| **n > 0 && *k != "accepted" && *k != "replayed")
            .map(|(k, n)| (k.replace('_', " "), *n))
            .collect();
        r.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        r
    }
}

impl DaemonView {
    /// The daemon's own view, in process.
    pub async fn of(store: &Store, folders: &Registry) -> DaemonView {
        let outage = store.outage();
        let database = outage.is_none() && store.ping().await;
        let mut mailboxes = folders.snapshot();
        mailboxes.sort_by(|a, b| (&a.mailbox, &a.folder).cmp(&(&b.mailbox, &b.folder)));
        DaemonView {
            ready: database && folders.all_ready(),
            database,
            database_error: outage.map(|o| format!("{}: {}", o.fault.as_str(), o.error)),
            mailboxes,
            webhooks: crate::metrics::webhook_counts()
                .into_iter()
                .map(|(source, results)| WebhookCounts { source, results })
                .collect(),
            throughput: crate::metrics::throughput::snapshot(now_ms()),
            review_pending: store.review_depth().await.ok(),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct Report {
    /// Unix ms the report was made.
    pub at: i64,
    /// The daemon's view, or why it could not be had.
    pub daemon: Result<DaemonView, String>,
    pub queues: QueueDepths,
    /// Quarantine entries awaiting replay, newest first (at most
    /// [`QUARANTINE_SHOWN`]; `queues.quarantine` counts them all).
    pub quarantine: Vec<QuarantineEntry>,
    /// Review entries awaiting a decision, newest first (at most
    /// [`QUARANTINE_SHOWN`]; `queues.review` counts them all).
    pub review: Vec<ReviewEntry>,
}

impl Report {
    /// Complete a daemon view (or the reason there is none) with the store's half.
    pub async fn gather(
        store: &Store,
        daemon: Result<DaemonView, String>,
    ) -> Result<Report, StoreError> {
        let at = now_ms();
        Ok(Report {
            at,
            daemon,
            queues: store.queue_depths(at).await?,
            quarantine: store.quarantine_pending(QUARANTINE_SHOWN).await?,
            review: store.review_pending(QUARANTINE_SHOWN).await?,
        })
    }

    /// The outbox as (status, count) pairs.
    pub fn outbox(&self) -> Vec<(&'static str, i64)> {
        OUTBOX_STATUSES
            .iter()
            .copied()
            .zip(self.queues.outbox)
            .collect()
    }
}

/// A duration in ms, as a person says it.
pub fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// A folder worker's state in plain words.
pub fn state_words(s: crate::sources::imap::State) -> &'static str {
    use crate::sources::imap::State::*;
    match s {
        Starting => "starting",
        Connected => "connected, importing",
        Idle => "idle, waiting for new mail",
        BackingOff => "backing off after an error",
        Error => "failing",
        Standby => "standby: another daemon holds it",
        Stopped => "stopped",
    }
}

/// Whether a folder needs someone to look.
pub fn folder_stuck(f: &FolderStatus) -> bool {
    use crate::sources::imap::State::*;
    matches!(f.state, BackingOff | Error | Stopped) || f.last_error.is_some() && f.state == Starting
}
