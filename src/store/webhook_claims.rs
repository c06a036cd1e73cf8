//! Who holds the pending webhook claims of this process, and the heartbeat
//! that keeps them alive.
//!
//! A claim row names its holder (this process's id) and lasts until
//! `claimed_until`: [`CLAIM_TTL`] after it was taken, renewed every
//! [`RENEW`] while a request of this process works on it. A claim whose
//! holder died (a daemon killed mid-request) lapses within [`CLAIM_TTL`]
//! and a retry, in any daemon sharing the database, takes it over then.
//! A claim held for longer than [`MAX_HOLD`] is no longer renewed (a
//! request stuck that long is taken over as before). Claims written by
//! earlier versions have no `claimed_until` and last [`MAX_HOLD`] from
//! `created_at`.
//!
//! Within the process, the claims of failed requests whose release failed
//! too are *orphans*: the next request with that key takes them over at once.

use super::{now_ms, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// How long a claim lasts without renewal.
pub const CLAIM_TTL: Duration = Duration::from_secs(5);
/// How often the holder renews the claims it has held for a while.
pub const RENEW: Duration = Duration::from_secs(1);
/// A claim is renewed for at most this long after it was taken; also the
/// lifetime of claims written without `claimed_until`.
pub const MAX_HOLD: Duration = Duration::from_secs(60);

type Key = (String, String);

fn key(source: &str, idem_key: &str) -> Key {
    (source.to_string(), idem_key.to_string())
}

/// A claim held by a live request of this process.
#[derive(Clone, Copy)]
struct Hold {
    /// When it was taken (unix ms).
    since: i64,
    /// Until when the row says it lasts (unix ms).
    until: i64,
}

/// The webhook claims of this process: its holder id, the claims its live
/// requests hold, and the orphaned ones.
pub(crate) struct Claims {
    holder: String,
    held: Mutex<HashMap<Key, Hold>>,
    orphans: Mutex<HashSet<Key>>,
}

impl Default for Claims {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Claims {
            holder: format!(
                "{}:{}:{:08x}",
                host.trim(),
                std::process::id(),
                rand::random::<u32>()
            ),
            held: Mutex::default(),
            orphans: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Claims {
    /// This process's holder id, written into the claims it takes.
    pub(crate) fn holder(&self) -> &str {
        &self.holder
    }

    /// The expiry of a claim taken or renewed at `now`.
    pub(crate) fn until(now: i64) -> i64 {
        now + CLAIM_TTL.as_millis() as i64
    }

    /// Claims taken at `now` by live requests of this process.
    pub(crate) fn hold<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a str)>, now: i64) {
        // Lock order everywhere: held, then orphans.
        let mut held = lock(&self.held);
        let mut orphans = lock(&self.orphans);
        let until = Self::until(now);
        for (s, k) in keys {
            let k = key(s, k);
            orphans.remove(&k);
            held.insert(k, Hold { since: now, until });
        }
    }

    /// The requests holding these claims are done with them (answered or
    /// released).
    pub(crate) fn let_go<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut held = lock(&self.held);
        let mut orphans = lock(&self.orphans);
        if held.is_empty() && orphans.is_empty() {
            return;
        }
        for (s, k) in keys {
            let k = key(s, k);
            held.remove(&k);
            orphans.remove(&k);
        }
    }

    /// No request of this process works on these claims any more, but they
    /// may still be pending: the next request with the key takes them over.
    pub(crate) fn orphan<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut held = lock(&self.held);
        let mut orphans = lock(&self.orphans);
        for (s, k) in keys {
            let k = key(s, k);
            held.remove(&k);
            orphans.insert(k);
        }
    }

    /// Held by a live request of this process (for less than [`MAX_HOLD`]:
    /// a request stuck longer is taken over, as another daemon would).
    pub(crate) fn is_held(&self, source: &str, idem_key: &str) -> bool {
        let max = MAX_HOLD.as_millis() as i64;
        lock(&self.held)
            .get(&key(source, idem_key))
            .is_some_and(|h| now_ms() - h.since < max)
    }

    pub(crate) fn is_orphan(&self, source: &str, idem_key: &str) -> bool {
        lock(&self.orphans).contains(&key(source, idem_key))
    }

    /// Held claims due for renewal at `now`: renewed more than [`RENEW`]
    /// ago and taken less than [`MAX_HOLD`] ago.
    fn due(&self, now: i64) -> Vec<Key> {
        let ttl = CLAIM_TTL.as_millis() as i64;
        let renew = RENEW.as_millis() as i64;
        let max = MAX_HOLD.as_millis() as i64;
        let mut v: Vec<Key> = lock(&self.held)
            .iter()
            .filter(|(_, h)| h.until - now <= ttl - renew && now - h.since < max)
            .map(|(k, _)| k.clone())
            .collect();
        v.sort_unstable();
        v
    }

    fn renewed(&self, keys: &[Key], until: i64) {
        let mut held = lock(&self.held);
        for k in keys {
            if let Some(h) = held.get_mut(k) {
                h.until = until;
            }
        }
    }
}

impl Store {
    /// Renew, every [`RENEW`], the claims this process's requests hold,
    /// until the store is closed. Started with the webhook batcher.
    pub async fn webhook_heartbeat(&self) {
        while !self.pool.is_closed() {
            tokio::time::sleep(RENEW).await;
            if let Err(e) = self.webhook_renew().await {
                tracing::warn!(error = %e, "webhook idempotency claims not renewed");
            }
        }
    }

    /// One renewal of the held claims that need it. Returns how many rows
    /// are still ours.
    pub async fn webhook_renew(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let due = self.claims.due(now);
        if due.is_empty() {
            return Ok(0);
        }
        let until = Claims::until(now);
        let r = async {
            let mut tx = self.begin().await?;
            let mut still = 0;
            for (source, idem_key) in &due {
                let n = sqlx::query(
                    "UPDATE webhook_requests SET claimed_until = $1 \
                     WHERE source = $2 AND idem_key = $3 AND status = 0 AND holder = $4",
                )
                .bind(until)
                .bind(source)
                .bind(idem_key)
                .bind(self.claims.holder())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    tracing::info!(
                        source,
                        "webhook claim no longer ours (answered, or taken over)"
                    );
                }
                still += n as usize;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(still)
        }
        .await;
        let still = self.observe(r)?;
        self.claims.renewed(&due, until);
        Ok(still)
    }
}
