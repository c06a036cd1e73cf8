//! Storage: the only module that speaks SQL.
//!
//! One [`Store`] over sqlx's `Any` driver serves SQLite (embedded default, WAL,
//! foreign keys on) and PostgreSQL (shared deployments). SQL is written once
//! with `$n` placeholders, which both accept; each backend has its own
//! migrations folder. SQLite writes are serialised in-process by a mutex and
//! retried when another process holds the lock. Storage faults (a full disk,
//! I/O errors, a lost connection) are classified in `fault`, tracked as the
//! store's write health in `health`, and never leave a broken connection in
//! the pool.

mod admin;
mod agents;
mod blob_batch;
mod blob_check;
mod blob_removal;
mod blob_rows;
mod blob_upkeep;
pub mod blobs;
mod bounce;
mod bounces;
mod checkpoints;
mod erase;
mod event_facts;
mod events;
mod export;
pub mod fault;
mod files;
mod forwards;
mod gauges;
mod health;
mod ingest;
mod leases;
mod links;
mod lookup;
mod outbox_claims;
mod outbox_insert;
mod outbox_send;
mod outbox_write;
mod quarantine;
pub mod renormalise;
mod requesters;
mod retention;
mod review;
mod review_gate;
mod sql;
mod tx;
mod views;
mod webhook_claims;
mod webhook_requests;
mod write;

pub use admin::*;
pub use agents::AgentEntry;

pub use blob_batch::BatchBlobs;
use blob_batch::BlobNumbers;
pub use blob_check::{BlobCheck, BlobProblem};
pub use blob_rows::BlobCursor;
pub use blob_upkeep::{BlobMove, BlobSweep};
pub use blobs::{BlobSettings, Blobs, Location};
pub use erase::{Erasure, ERASED};
pub use export::{ExportError, ExportFilter};
pub use fault::Fault;
pub use files::{AttachmentFile, BodyRef};
pub use gauges::{QueueDepths, OUTBOX_STATUSES};
pub use health::Outage;
pub use ingest::StoredBatch;
pub use outbox_send::Brakes;
pub use quarantine::*;
pub use requesters::Policy;
pub use retention::{Purged, RetentionPolicy};
pub use review::ReviewEntry;
pub(crate) use sql::{
    get_i64, get_opt_i64, get_opt_str, get_str, markers, placeholders, value_rows,
};
pub use tx::WriteTx;
pub use views::*;
pub use webhook_claims::{CLAIM_TTL, MAX_HOLD, RENEW};
pub use webhook_requests::*;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor};
use std::sync::Arc;
use std::time::Duration;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Storage errors, split by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the work: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A concurrent writer got in the way: retry at once.
    #[error("database busy: {0}")]
    Busy(String),
    /// Refused by the desk's rules (unknown id, invalid merge, ...): the
    /// caller's mistake, never retried.
    #[error(transparent)]
    Domain(#[from] crate::model::DomainError),
    /// Any other database error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The blob store failed (a full disk, an unreachable object store).
    #[error("blob store: {0}")]
    Blob(String, Fault),
    /// Stored data is damaged (a blob a row names is missing or altered):
    /// `intake blobs verify` lists every case.
    #[error("damaged data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A [`DomainError::Invalid`](crate::model::DomainError) refusal.
    pub fn invalid(m: impl Into<String>) -> Self {
        StoreError::Domain(crate::model::DomainError::Invalid(m.into()))
    }

    /// A [`DomainError::NotFound`](crate::model::DomainError) refusal.
    pub fn not_found(m: impl Into<String>) -> Self {
        StoreError::Domain(crate::model::DomainError::NotFound(m.into()))
    }

    /// A [`DomainError::Conflict`](crate::model::DomainError) refusal.
    pub fn conflict(m: impl Into<String>) -> Self {
        StoreError::Domain(crate::model::DomainError::Conflict(m.into()))
    }

    /// True when retrying later may succeed (a full disk, an I/O error, a
    /// lost connection, a lock): the work is retried, never quarantined.
    pub fn is_transient(&self) -> bool {
        self.fault().is_some()
    }

    /// A blob the batch found stored was removed before its transaction
    /// (see [`WriteTx::record_blobs`]): retry after writing the blobs again.
    pub fn is_blob_gone(&self) -> bool {
        matches!(self, StoreError::Blob(m, Fault::Contention) if m == blob_batch::BLOB_GONE)
    }

    /// The kind of passing fault this is, `None` when permanent.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            StoreError::Unavailable(_) => Some(Fault::Connection),
            StoreError::Busy(_) => Some(Fault::Contention),
            StoreError::Db(e) => fault::classify(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => fault::classify(e),
            StoreError::Blob(_, f) => Some(*f),
            _ => None,
        }
    }
}

/// Handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// SQLite has one writer: take this before a write transaction.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// The SQLite file, to notice it vanishing under open connections.
    sqlite_file: Option<std::path::PathBuf>,
    /// Whether writes currently succeed.
    health: Arc<health::Health>,
    /// Webhook claims held or given up by this process (see `webhook_claims`).
    claims: Arc<webhook_claims::Claims>,
    /// Raw mails and attachment bodies (see `blobs`).
    blobs: Blobs,
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

impl Store {
    /// Connect (creating a SQLite file if needed) without migrating, with
    /// the default blob store.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::connect_with(url, max_connections, &BlobSettings::default()).await
    }

    /// Connect (creating a SQLite file if needed) without migrating.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        blobs: &BlobSettings,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::invalid(format!(
                "unsupported database URL {url:?}"
            )));
        };
        let (url, max) = match backend {
            Backend::Sqlite => {
                let u = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                (u, max_connections.clamp(1, 4))
            }
            Backend::Postgres => (url.to_string(), max_connections.max(2)),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // A new file gets 2 KiB pages (an existing one keeps
                        // its own): each message dirties a page at a random
                        // place in two indexes, and a smaller page is fewer
                        // bytes logged and copied for it; 16% fewer bytes
                        // written and a 5% smaller file at a million
                        // messages, the same speed (docs/BENCHMARKS.md).
                        conn.execute("PRAGMA page_size=2048").await?;
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA synchronous=FULL").await?;
                        conn.execute("PRAGMA foreign_keys=ON").await?;
                        // Freed pages are zeroed: an erased customer leaves no trace.
                        conn.execute("PRAGMA secure_delete=ON").await?;
                        conn.execute("PRAGMA busy_timeout=10000").await?;
                        // Checkpoint when the log holds 100,000 pages (200 MB
                        // of 2 KiB pages, 400 MB in an older 4 KiB-page file),
                        // not SQLite's 1,000: a large store's random-key
                        // indexes dirty a page per message, and a page
                        // dirtied again before the checkpoint is copied into
                        // the database once (docs/BENCHMARKS.md, "SQLite at
                        // scale"). After a checkpoint the log file is cut back
                        // to 64 MiB.
                        conn.execute("PRAGMA wal_autocheckpoint=100000").await?;
                        conn.execute("PRAGMA journal_size_limit=67108864").await?;
                    }
                    Ok(())
                })
            })
            // A transaction whose COMMIT or ROLLBACK failed (a full disk, a
            // lost connection) can leave its connection inside it, and every
            // later BEGIN on it fails: such a connection is closed, never
            // handed out again.
            .after_release(|conn, _| {
                Box::pin(async move {
                    if conn.is_in_transaction() {
                        // SQLite runs a dropped transaction's ROLLBACK on its
                        // worker thread: wait until it has.
                        conn.ping().await?;
                    }
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::warn!(
                            "closing a database connection left inside a failed transaction"
                        );
                    }
                    Ok(clean)
                })
            })
            .connect(&url)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let blobs = Blobs::open(blobs, blob_rows::default_dir(backend, &url))
            .map_err(|e| StoreError::Blob(e.to_string(), Fault::Io))?;
        // A new store takes writes until one fails (see `health`).
        metrics::gauge!("intake_database_writable").set(1.0);
        Ok(Store {
            blobs,
            pool,
            backend,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            sqlite_file: sqlite_path(&url),
            health: Arc::default(),
            claims: Arc::default(),
        })
    }

    /// Connect and apply migrations, with the default blob store.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::open_with(url, max_connections, &BlobSettings::default()).await
    }

    /// Connect and apply migrations.
    pub async fn open_with(
        url: &str,
        max_connections: u32,
        blobs: &BlobSettings,
    ) -> Result<Store, StoreError> {
        let s = Store::connect_with(url, max_connections, blobs).await?;
        s.migrate().await?;
        Ok(s)
    }

    /// Apply pending migrations for this backend, then the data migrations
    /// (`renormalise`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let m = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        m.run(&self.pool).await?;
        // Then the data migrations, each once.
        self.renormalise_once().await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool (tests and benchmarks inspect the database through it).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Is the database reachable?
    pub async fn ping(&self) -> bool {
        // Open SQLite connections keep working on a deleted or moved file,
        // silently writing where nobody will read: check the path too.
        if let Some(f) = &self.sqlite_file {
            if !f.exists() {
                return false;
            }
        }
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Serialise writers on SQLite (no-op guard on PostgreSQL).
    pub async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_lock.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Begin a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that has read cannot wait
    /// for the lock when it first writes, and fails with "database is
    /// locked" while another connection finishes (e.g. a dropped
    /// transaction's rollback still on its way).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file of a `sqlite://PATH[?...]` URL (None for in-memory databases).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}
