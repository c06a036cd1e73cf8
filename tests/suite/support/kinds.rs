//! What the tests of the polling mailbox kinds (POP3, JMAP, Graph) share:
//! an in-process environment (a database, a configuration, `run --once`),
//! and the two process-level stories — `intake run` SIGKILLed at random
//! points while mail keeps arriving, and two daemons on one PostgreSQL
//! sharing a mailbox through its lease.

use super::{count, eventually};
use crate::common::{config, TestDb};
use intake::pipeline::{Pipeline, Settings};
use intake::sources::imap::{FolderStatus, Registry};
use intake::store::Store;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `[[mailboxes]]` entry: `head`, then `extra`, then each default whose
/// key `extra` does not set.
pub fn entry(head: &str, extra: &str, defaults: &[(&str, &str)]) -> String {
    let mut t = format!("[[mailboxes]]\n{head}\n{extra}\n");
    for (k, v) in defaults {
        if !extra.contains(&format!("{k} =")) {
            t.push_str(&format!("{k} = {v}\n"));
        }
    }
    t
}

/// A database and a configuration with one mailbox, drained in process.
pub struct KindEnv {
    pub db: TestDb,
    pub cfg: intake::config::Config,
    pub pipeline: Pipeline,
    pub registry: Registry,
}

/// A mailbox kind's test: the server it reads (Dovecot, Cyrus, the Graph
/// stand-in) and the daemon's parts, which it derefs to.
pub struct WithServer<S> {
    pub server: S,
    pub env: KindEnv,
}

impl<S> std::ops::Deref for WithServer<S> {
    type Target = KindEnv;
    fn deref(&self) -> &KindEnv {
        &self.env
    }
}

impl<S> WithServer<S> {
    /// The parts on a fresh `db` with the config `text`.
    pub async fn start(db: crate::common::Db, server: S, text: &str) -> Self {
        let env = KindEnv::new(TestDb::new(db).await, text).await;
        WithServer { server, env }
    }
}

impl KindEnv {
    pub async fn new(db: TestDb, text: &str) -> KindEnv {
        let cfg = config(&db.url, text);
        let pipeline = Pipeline::new(db.store.clone(), Settings::from_config(&cfg));
        KindEnv {
            db,
            cfg,
            pipeline,
            registry: Registry::default(),
        }
    }
    /// `intake run --once`, in process.
    pub async fn drain(&self) -> bool {
        tokio::time::timeout(
            Duration::from_secs(60),
            intake::daemon::drain_once(&self.cfg, &self.pipeline, &self.registry),
        )
        .await
        .expect("drain_once hangs")
    }
    /// `run --once` with another mailbox entry on the same database:
    /// whether it succeeded, and the mailbox's status.
    pub async fn drain_with(&self, mailbox: &str) -> (bool, FolderStatus) {
        let cfg = config(&self.db.url, mailbox);
        let reg = Registry::default();
        let ok = intake::daemon::drain_once(&cfg, &self.pipeline, &reg).await;
        (ok, reg.snapshot().remove(0))
    }
    pub fn status(&self) -> FolderStatus {
        self.registry.snapshot().remove(0)
    }
    pub async fn comments(&self) -> i64 {
        count(&self.db.store, "SELECT COUNT(*) AS n FROM comments").await
    }
    pub async fn distinct(&self) -> i64 {
        count(
            &self.db.store,
            "SELECT COUNT(DISTINCT message_id) AS n FROM comments",
        )
        .await
    }
    pub async fn quarantined(&self) -> i64 {
        count(&self.db.store, "SELECT COUNT(*) AS n FROM quarantine").await
    }
    /// The one quarantined message's reason and raw bytes.
    pub async fn quarantined_one(&self) -> (String, String) {
        let q = self.db.store.quarantine_list().await.unwrap();
        assert_eq!(q.len(), 1, "{q:?}");
        let (_, raw) = self.db.store.quarantine_get(q[0].id).await.unwrap();
        (
            q[0].reason.clone(),
            String::from_utf8_lossy(&raw).into_owned(),
        )
    }
}

pub fn spawn(cfg: &Path, once: bool, log: &Path) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_intake"));
    c.arg("run").arg("--config").arg(cfg);
    if once {
        c.arg("--once");
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start intake")
}

/// A daemon's configuration file in `dir` for `url` with `mailboxes`.
pub fn daemon_config(dir: &Path, url: &str, mailboxes: &str) -> PathBuf {
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[logging]\nlevel = \"warn\"\n{mailboxes}"
    );
    let p = dir.join(format!("intake-{}.toml", rand::random::<u32>()));
    std::fs::write(&p, text).unwrap();
    p
}

pub async fn stored(store: &Store) -> i64 {
    count(store, "SELECT COUNT(*) AS n FROM comments").await
}

/// `intake run` killed (SIGKILL) at random points of an import of `first`
/// messages, `more` arriving before each kill, then `run --once`, which must
/// succeed. `deliver(from, n)` puts mail on the server. Returns how many
/// were delivered in all, once every one of them is stored exactly once.
pub async fn sigkill_rounds(
    store: &Store,
    cfg: &Path,
    log: &Path,
    first: usize,
    more: usize,
    deliver: impl Fn(usize, usize),
) -> usize {
    let mut delivered = first;
    let mut kills = 0;
    for round in 0..4 {
        let before = stored(store).await;
        if before >= first as i64 {
            break;
        }
        let target = before + 20 + (rand::random::<u64>() % (first as u64 / 4)) as i64;
        let mut child = spawn(cfg, false, log);
        let reached = eventually(60, || async { stored(store).await >= target }).await;
        deliver(delivered, more);
        delivered += more;
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 150)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        eprintln!(
            "round {round}: killed at {} stored (target {target}, reached {reached})",
            stored(store).await
        );
    }
    assert!(kills >= 2, "the import finished before it was killed twice");
    let status = spawn(cfg, true, log).wait().unwrap();
    let logs = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        status.success(),
        "intake run --once failed: {status}\n{logs}"
    );
    assert_eq!(stored(store).await, delivered as i64, "{logs}");
    let distinct = count(
        store,
        "SELECT COUNT(DISTINCT message_id) AS n FROM comments",
    )
    .await;
    assert_eq!(distinct, delivered as i64);
    assert_eq!(
        count(store, "SELECT COUNT(*) AS n FROM source_acks_owed").await,
        0,
        "nothing left owed"
    );
    delivered
}

/// Two daemons on one PostgreSQL with the same mailbox (lease `lease`):
/// once the `first` messages are stored, the one holding the lease is
/// killed; the other must take over and store 5 more, nothing twice.
pub async fn lease_takeover(
    store: &Store,
    cfg: &Path,
    log: &Path,
    lease: &str,
    first: usize,
    deliver: impl Fn(usize, usize),
) {
    use sqlx::Row;
    let holder = || async {
        sqlx::query("SELECT holder FROM leases WHERE name = $1")
            .bind(lease)
            .fetch_optional(store.pool())
            .await
            .unwrap()
            .map(|r| r.get::<String, _>("holder"))
            .unwrap_or_default()
    };
    let mut daemons: Vec<Child> = (0..2).map(|_| spawn(cfg, false, log)).collect();
    assert!(eventually(60, || async { stored(store).await == first as i64 }).await);
    let was = holder().await;
    let victim = daemons
        .iter()
        .position(|c| was.contains(&format!(":{}:", c.id())))
        .expect("one of the two holds the lease");
    daemons[victim].kill().unwrap();
    daemons[victim].wait().unwrap();
    deliver(first, 5);
    let total = first as i64 + 5;
    let took_over = eventually(60, || async { stored(store).await == total }).await;
    let now = holder().await;
    for d in daemons.iter_mut() {
        let _ = d.kill();
        let _ = d.wait();
    }
    let logs = std::fs::read_to_string(log).unwrap_or_default();
    assert!(took_over, "{} stored\n{logs}", stored(store).await);
    assert_ne!(now, was, "the other daemon holds the lease now");
    let distinct = count(
        store,
        "SELECT COUNT(DISTINCT message_id) AS n FROM comments",
    )
    .await;
    assert_eq!((stored(store).await, distinct), (total, total));
}
