//! Folder leases in the shared database, so that among several daemons on
//! one PostgreSQL exactly one works each folder at a time. A holder renews
//! every [`RENEW`]; a dead holder's lease expires after [`TTL`].

use crate::store::{Store, StoreError};
use std::time::Duration;

/// How long a lease lasts without renewal.
pub const TTL: Duration = Duration::from_secs(20);
/// How often the holder renews.
pub const RENEW: Duration = Duration::from_secs(5);

/// This process's holder id: host, pid and a random part.
pub fn holder_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!(
            "{}:{}:{:08x}",
            host.trim(),
            std::process::id(),
            rand::random::<u32>()
        )
    })
    .clone()
}

/// The lease name of a folder.
pub fn name(mailbox: &str, folder: &str) -> String {
    format!("imap:{mailbox}/{folder}")
}

/// Take or renew the lease; `false` when another live holder has it.
pub async fn acquire(store: &Store, name: &str, holder: &str) -> Result<bool, StoreError> {
    store
        .acquire_lease(name, holder, TTL.as_millis() as i64)
        .await
}

/// Give the lease up (on shutdown) so another daemon can take over at once.
pub async fn release(store: &Store, name: &str, holder: &str) -> Result<(), StoreError> {
    store.release_lease(name, holder).await
}
