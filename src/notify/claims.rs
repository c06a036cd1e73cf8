//! What a sender holds while it delivers a batch, and the two companions of
//! its deliveries: the heartbeat that keeps its claims alive, and the
//! recorder that writes each result as soon as the SMTP server answered.
//!
//! A claim lasts [`CLAIM_TTL`] and is renewed every [`RENEW`] while the
//! sender holds the row, so the rows of a sender that died are taken again by
//! another one within [`CLAIM_TTL`]. A row goes on the wire only while its
//! claim is known to last at least [`MARGIN`] more (a sender that cannot
//! renew stops putting rows on the wire long before another may retake
//! them). An accepted message is recorded `sent` within milliseconds, not
//! after the rest of its batch: what a crash can leave accepted but not
//! recorded is what was on the wire at that moment (at most
//! `smtp::SMTP_PARALLEL` messages).

use crate::model::Delivery;
use crate::store::{now_ms, Store, StoreError};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long a claim lasts without renewal.
pub const CLAIM_TTL: Duration = Duration::from_secs(20);
/// How often the holder renews its claims.
pub const RENEW: Duration = Duration::from_secs(5);
/// A row is put on the wire only while its claim lasts at least this long.
pub const MARGIN: Duration = Duration::from_secs(10);
/// Attempts at recording a group of results before the batch gives up.
const RECORD_ATTEMPTS: u32 = 6;

/// The rows of one claimed batch not yet recorded.
pub struct Held {
    inner: Mutex<Inner>,
}

struct Inner {
    /// Claimed by us, result not yet recorded.
    rows: HashSet<i64>,
    /// Put on the wire.
    started: HashSet<i64>,
    /// No longer ours (retaken after an expiry): never put on the wire.
    lost: HashSet<i64>,
    /// Until when the claims are known to last.
    valid_until: Instant,
}

impl Held {
    /// The rows `ids`, claimed by a statement issued at `claimed_at`.
    pub fn new(ids: impl IntoIterator<Item = i64>, claimed_at: Instant) -> Held {
        Held {
            inner: Mutex::new(Inner {
                rows: ids.into_iter().collect(),
                started: HashSet::new(),
                lost: HashSet::new(),
                valid_until: claimed_at + CLAIM_TTL,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mark `id` as going on the wire: false when it must not (its claim may
    /// lapse before the message is through, or it is no longer ours).
    pub fn start(&self, id: i64) -> bool {
        let mut i = self.lock();
        let ok = i.rows.contains(&id)
            && !i.lost.contains(&id)
            && i.valid_until.saturating_duration_since(Instant::now()) >= MARGIN;
        if ok {
            i.started.insert(id);
        }
        ok
    }

    /// Results recorded: nothing more to hold.
    fn done(&self, ids: &[i64]) {
        let mut i = self.lock();
        for id in ids {
            i.rows.remove(id);
        }
    }

    /// The rows whose claims the heartbeat renews.
    fn ids(&self) -> Vec<i64> {
        let i = self.lock();
        let mut v: Vec<i64> = i.rows.difference(&i.lost).copied().collect();
        v.sort_unstable();
        v
    }

    /// A renewal issued at `at` for `asked` found `still` ours: the others
    /// not on the wire are lost (another sender retook them).
    fn renewed(&self, at: Instant, asked: &[i64], still: &[i64]) {
        let still: HashSet<i64> = still.iter().copied().collect();
        let mut i = self.lock();
        i.valid_until = i.valid_until.max(at + CLAIM_TTL);
        for id in asked {
            if !still.contains(id) && i.rows.contains(id) && !i.started.contains(id) {
                i.lost.insert(*id);
            }
        }
    }

    /// Rows still ours that never went on the wire (to release).
    pub fn unstarted(&self) -> Vec<i64> {
        let i = self.lock();
        let mut v: Vec<i64> = i
            .rows
            .iter()
            .filter(|id| !i.started.contains(id) && !i.lost.contains(id))
            .copied()
            .collect();
        v.sort_unstable();
        v
    }
}

/// Renew `held`'s claims every [`RENEW`] until `done` turns true.
pub async fn heartbeat(store: &Store, me: &str, held: &Held, mut done: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RENEW) => {}
            _ = done.wait_for(|d| *d) => return,
        }
        let ids = held.ids();
        if ids.is_empty() {
            continue;
        }
        let at = Instant::now();
        let until = now_ms() + CLAIM_TTL.as_millis() as i64;
        match store.renew_claims(me, &ids, until).await {
            Ok(still) => held.renewed(at, &ids, &still),
            Err(e) => tracing::warn!(error = %e, "notification sender: claims not renewed"),
        }
    }
}

/// Write every result received on `rx` as soon as it arrives; results that
/// arrive while a write is under way go together in the next one. Returns
/// when `rx` is closed and everything received is written, or with the
/// error once writing failed [`RECORD_ATTEMPTS`] times in a row.
pub async fn recorder(
    store: &Store,
    me: &str,
    held: &Held,
    mut rx: mpsc::UnboundedReceiver<Delivery>,
) -> Result<(), StoreError> {
    let mut todo: Vec<Delivery> = Vec::new();
    let mut failures = 0;
    loop {
        if todo.is_empty() {
            match rx.recv().await {
                Some(d) => todo.push(d),
                None => return Ok(()),
            }
        }
        while let Ok(d) = rx.try_recv() {
            todo.push(d);
        }
        match store.record_deliveries(me, &todo, now_ms()).await {
            Ok(()) => {
                let ids: Vec<i64> = todo.iter().map(Delivery::id).collect();
                held.done(&ids);
                todo.clear();
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, results = todo.len(), "notification results not recorded yet");
                if failures >= RECORD_ATTEMPTS {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(250 << failures.min(3))).await;
            }
        }
    }
}
