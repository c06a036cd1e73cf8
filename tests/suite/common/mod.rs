//! Test helpers: a fresh database per test (SQLite file or PostgreSQL
//! database on 127.0.0.1:5432), a pipeline over it, and mail builders.
#![allow(dead_code)]

use intake::config::Config;
use intake::model::{Inbound, Outcome, RawMail};
use intake::pipeline::{Pipeline, Settings};
use intake::store::Store;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A database that lives as long as the test.
pub struct TestDb {
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

/// Base URL of the PostgreSQL server (`INTAKE_TEST_PG` overrides).
pub fn pg_base() -> String {
    std::env::var("INTAKE_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh, empty database URL for `db` (the temp dir must outlive it).
pub async fn fresh_url(db: Db) -> (String, Option<tempfile::TempDir>) {
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/intake.db", dir.path().display());
            (url, Some(dir))
        }
        Db::Postgres => {
            use sqlx::Connection;
            let name = format!("intake_t_{}_{}", std::process::id(), rand_suffix());
            let mut c = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base()))
                .await
                .expect("PostgreSQL must run on 127.0.0.1:5432 (see .ci/run)");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .await
                .unwrap();
            (format!("{}/{name}", pg_base()), None)
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{}", t, N.fetch_add(1, Ordering::Relaxed))
}

impl TestDb {
    pub async fn new(db: Db) -> TestDb {
        let (url, dir) = fresh_url(db).await;
        let store = Store::open(&url, 8).await.expect("open store");
        TestDb {
            url,
            store,
            _dir: dir,
        }
    }
}

/// A test desk configuration, overridable with extra TOML.
pub fn config(url: &str, extra: &str) -> Config {
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n{extra}"
    );
    intake::app::config_from_toml(&text).unwrap_or_else(|e| panic!("test config: {e:?}"))
}

/// A pipeline on a fresh database.
pub struct Harness {
    pub db: TestDb,
    pub pipeline: Pipeline,
    pub cfg: Config,
}

impl Harness {
    pub async fn new(db: Db) -> Harness {
        Self::with(db, "").await
    }

    pub async fn with(db: Db, extra: &str) -> Harness {
        let db = TestDb::new(db).await;
        let cfg = config(&db.url, extra);
        let pipeline = Pipeline::new(db.store.clone(), Settings::from_config(&cfg));
        Harness { db, pipeline, cfg }
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    /// Ingest one raw mail.
    pub async fn mail(&self, raw: &str) -> Outcome {
        self.mails(&[raw]).await.remove(0)
    }

    /// Ingest several raw mails in one batch.
    pub async fn mails(&self, raws: &[&str]) -> Vec<Outcome> {
        let items = raws
            .iter()
            .map(|r| {
                Inbound::Mail(RawMail {
                    raw: r.as_bytes().to_vec(),
                    mailbox: Some("support".into()),
                    source: "test".into(),
                })
            })
            .collect();
        self.pipeline.ingest(items, None).await.expect("ingest")
    }

    pub async fn export(&self) -> serde_json::Value {
        self.store().export().await.unwrap()
    }
}

/// A plain mail. `extra` is inserted as additional header lines.
pub fn mail(from: &str, subject: &str, message_id: &str, extra: &str, body: &str) -> String {
    let mid = if message_id.is_empty() {
        String::new()
    } else {
        format!("Message-ID: <{message_id}>\n")
    };
    format!(
        "From: {from}\nTo: Support <support@desk.test>\nSubject: {subject}\nDate: Sat, 21 Nov 2026 10:00:00 +0000\n{mid}{extra}MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
}

/// Define `name::sqlite` and `name::postgres` tests running `body(Db)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::common::Db::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::common::Db::Postgres).await }
        }
    )*};
}

/// An IMAP folder's committed position, read back from its source
/// checkpoint (`UIDVALIDITY:LAST_UID`).
#[allow(async_fn_in_trait)]
pub trait CursorExt {
    async fn cursor(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>, intake::store::StoreError>;
}

impl CursorExt for intake::store::Store {
    async fn cursor(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<(u32, u32)>, intake::store::StoreError> {
        let state = self.checkpoint(mailbox, folder).await?;
        Ok(state.and_then(|s| {
            let (v, last) = s.split_once(':')?;
            Some((v.parse().ok()?, last.parse().ok()?))
        }))
    }
}

/// PostgreSQL's count of deadlocks it broke in the database of `url`, once
/// every backend has reported: the stores are closed, any connection a
/// closed pool still left open is ended (a backend flushes its statistics
/// as it exits), and the count is read when no other backend is left.
pub async fn pg_deadlocks_when_closed(url: &str, stores: &[&Store]) -> i64 {
    use sqlx::{Connection, Row};
    for s in stores {
        s.close().await;
    }
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let others =
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    sqlx::query(&format!("SELECT pg_terminate_backend(pid) {others}"))
        .fetch_all(&mut c)
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let left: i64 = sqlx::query(&format!("SELECT COUNT(*) {others}"))
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "backends did not exit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    sqlx::query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get(0)
}
