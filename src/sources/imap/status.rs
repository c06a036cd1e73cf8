//! Per-folder worker state, shared with the health endpoint and metrics.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a folder worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Starting,
    Connected,
    Idle,
    BackingOff,
    Error,
    /// Another daemon holds this folder's lease.
    Standby,
    Stopped,
}

/// The visible state of one (mailbox, folder).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FolderStatus {
    /// The mailbox's protocol (`imap`, `pop3`).
    #[serde(default = "imap")]
    pub kind: String,
    pub mailbox: String,
    pub folder: String,
    pub state: State,
    pub last_error: Option<String>,
    /// Unix ms of the last complete drain.
    pub last_success: Option<i64>,
    /// Messages on the server not imported yet, as of the last look.
    pub lag: u64,
    pub imported: u64,
    pub reconnects: u64,
    /// Acknowledgements (flag, move, delete) the server refused.
    pub ack_failures: u64,
    /// Imported messages whose acknowledgement is still owed on the server.
    pub acks_owed: u64,
    /// Unix ms the worker registered: the last-success gauge shows it
    /// until a first complete drain, so a folder that never drains ages.
    #[serde(skip)]
    pub registered_at: i64,
}

fn imap() -> String {
    "imap".into()
}

/// (mailbox, folder, UIDVALIDITY, UID).
pub(super) type FetchKey = (String, String, u32, u32);

/// A folder's acknowledgement bookkeeping, kept across reconnects (see `owed`).
#[derive(Debug, Default)]
pub(super) struct AckLedger {
    /// Owed batches (by key) that the server has acknowledged but the
    /// database still lists.
    pub settled: Vec<String>,
    /// After a refusal: no retry before this, except on a new connection.
    pub retry_at: Option<Instant>,
    /// The wait after the next refusal.
    pub backoff: Duration,
}

/// A folder's gauges from its status.
fn set_gauges(s: &FolderStatus) {
    let labels = [("mailbox", s.mailbox.clone()), ("folder", s.folder.clone())];
    metrics::gauge!("intake_mailbox_lag_messages", &labels).set(s.lag as f64);
    metrics::gauge!("intake_mailbox_acks_owed", &labels).set(s.acks_owed as f64);
    let up = matches!(s.state, State::Connected | State::Idle) as u8;
    metrics::gauge!("intake_mailbox_up", &labels).set(up as f64);
    let success_ms = s.last_success.unwrap_or(s.registered_at);
    metrics::gauge!("intake_mailbox_last_success_timestamp_seconds", &labels)
        .set(success_ms as f64 / 1000.0);
}

/// All folders' status; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<BTreeMap<String, FolderStatus>>>,
    /// Failed FETCH attempts per (mailbox, folder, UIDVALIDITY, UID),
    /// kept across reconnects (see `retry`).
    pub(super) fetch_failures: Arc<Mutex<HashMap<FetchKey, u32>>>,
    /// Per "mailbox/folder".
    pub(super) ledgers: Arc<Mutex<HashMap<String, AckLedger>>>,
    /// Sessions in which a polling kind's server refused an item, per
    /// "mailbox/scope/item", kept across sessions (see `poller`).
    pub(crate) refusals: Arc<Mutex<HashMap<String, u32>>>,
}

pub(super) fn key(mailbox: &str, folder: &str) -> String {
    format!("{mailbox}/{folder}")
}

impl Registry {
    pub fn register(&self, mailbox: &str, folder: &str) {
        self.register_kind(mailbox, folder, "imap")
    }

    /// Register a folder of a mailbox of `kind` (`imap`, `pop3`).
    pub fn register_kind(&self, mailbox: &str, folder: &str, kind: &str) {
        let st = FolderStatus {
            kind: kind.into(),
            mailbox: mailbox.into(),
            folder: folder.into(),
            state: State::Starting,
            last_error: None,
            last_success: None,
            lag: 0,
            imported: 0,
            reconnects: 0,
            ack_failures: 0,
            acks_owed: 0,
            registered_at: crate::store::now_ms(),
        };
        set_gauges(&st);
        self.inner
            .lock()
            .expect("status lock")
            .insert(key(mailbox, folder), st);
    }

    /// Change one folder's status.
    pub fn update(&self, mailbox: &str, folder: &str, f: impl FnOnce(&mut FolderStatus)) {
        let mut g = self.inner.lock().expect("status lock");
        if let Some(s) = g.get_mut(&key(mailbox, folder)) {
            let before = s.state;
            f(s);
            if s.state != before {
                tracing::info!(mailbox, folder, state = ?s.state, last_error = ?s.last_error, "mailbox state");
            }
            set_gauges(s);
        }
    }

    pub fn set_state(&self, mailbox: &str, folder: &str, state: State) {
        self.update(mailbox, folder, |s| s.state = state);
    }

    pub fn snapshot(&self) -> Vec<FolderStatus> {
        self.inner
            .lock()
            .expect("status lock")
            .values()
            .cloned()
            .collect()
    }

    /// Every folder is connected or idle (standby counts: another daemon works it).
    pub fn all_ready(&self) -> bool {
        self.snapshot()
            .iter()
            .all(|s| matches!(s.state, State::Connected | State::Idle | State::Standby))
    }
}
