//! Named leases in the shared database, so that among several daemons on
//! one PostgreSQL exactly one works a source at a time. The holder renews
//! before `ttl_ms` runs out; a dead holder's lease then expires.

use super::{now_ms, Store, StoreError};

impl Store {
    /// Take or renew the lease `name` for `ttl_ms`; `false` when another
    /// live holder has it.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
             WHERE leases.expires_at < $4 OR leases.holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Give a lease up (on shutdown) so another daemon can take over at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let _g = self.write_guard().await;
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
