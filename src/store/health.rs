//! Write health: whether writes currently reach the database.
//!
//! `SELECT 1` still answers on a full disk, so readiness cannot come from a
//! ping. Every write path reports its result here ([`Store::observe`]): a
//! storage fault (not contention) marks the store unwritable, a successful
//! write marks it writable again. While unwritable, a probe writes (and
//! deletes) one small row every [`PROBE_EVERY`], so the store notices by
//! itself, even without traffic, when the fault has cleared.

use super::{now_ms, Fault, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often an unwritable store tries a write of its own.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Why writes are failing, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub fault: Fault,
    pub error: String,
    /// Unix milliseconds of the first failure.
    pub since: i64,
}

/// Shared by every clone of a [`Store`].
pub(crate) struct Health {
    /// `None` while writes succeed.
    state: watch::Sender<Option<Outage>>,
    probing: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: watch::Sender::new(None),
            probing: AtomicBool::new(false),
        }
    }
}

impl Store {
    /// True unless the last write failed with a storage fault.
    pub fn writable(&self) -> bool {
        self.health.state.borrow().is_none()
    }

    /// The current write outage, if any.
    pub fn outage(&self) -> Option<Outage> {
        self.health.state.borrow().clone()
    }

    /// Resolves once writes succeed (at once when they do now).
    pub async fn wait_writable(&self) {
        let mut rx = self.health.state.subscribe();
        // The sender lives as long as the store: this cannot fail.
        let _ = rx.wait_for(|s| s.is_none()).await;
    }

    /// Record the result of a write: count errors by kind, mark the store
    /// unwritable on a storage fault and writable again on success.
    pub(crate) fn observe<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        match &r {
            Ok(_) => self.mark_writable(),
            Err(e) => {
                let kind = e.fault();
                let label = kind.map_or("other", Fault::as_str);
                metrics::counter!("intake_database_errors_total", "kind" => label).increment(1);
                if let Some(f) = kind.filter(|f| f.is_outage()) {
                    self.mark_unwritable(f, e);
                }
            }
        }
        r
    }

    fn mark_writable(&self) {
        let was = self.health.state.send_if_modified(|s| s.take().is_some());
        if was {
            metrics::gauge!("intake_database_writable").set(1.0);
            tracing::info!("database writable again");
        }
    }

    fn mark_unwritable(&self, fault: Fault, e: &StoreError) {
        let first = self.health.state.send_if_modified(|s| {
            let first = s.is_none();
            let since = s.as_ref().map_or_else(now_ms, |o| o.since);
            *s = Some(Outage {
                fault,
                error: e.to_string(),
                since,
            });
            first
        });
        if first {
            metrics::gauge!("intake_database_writable").set(0.0);
            tracing::error!(kind = fault.as_str(), error = %e, "database writes failing: work is retried until they succeed");
        }
        if !self.health.probing.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn(self.clone().probe_until_writable());
                }
                Err(_) => self.health.probing.store(false, Ordering::Release),
            }
        }
    }

    /// Probe every [`PROBE_EVERY`] until writes succeed again (by the
    /// probe or by any other write).
    async fn probe_until_writable(self) {
        loop {
            while !self.writable() {
                tokio::time::sleep(PROBE_EVERY).await;
                if self.writable() {
                    break;
                }
                let r = self.write_probe().await;
                if let Err(e) = self.observe(r) {
                    tracing::debug!(error = %e, "database write probe failed");
                }
            }
            self.health.probing.store(false, Ordering::Release);
            // An outage that began after the last look needs a prober again.
            if self.writable() || self.health.probing.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }

    /// One small write transaction that leaves nothing behind: a row
    /// written to the `leases` table and deleted again before the commit.
    async fn write_probe(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ('store:write-probe', $1, 0) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = 0",
        )
        .bind(now_ms().to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM leases WHERE name = 'store:write-probe'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// [`Store::observe`] the result of a write.
    pub(crate) async fn observed<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.observe(write.await)
    }
}
