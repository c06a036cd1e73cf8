//! POP3 as ops run it: the built `intake run` binary SIGKILLed at random
//! points of an import with deletion while more mail arrives, then
//! `run --once`, stores every message exactly once and leaves the maildrop
//! empty; the daemon polls for new mail, shows the mailbox in /readyz and
//! metrics, and on PostgreSQL a second daemon stands by on the lease and
//! takes over when the first stops.

use crate::common;
use crate::support;

use common::{config, fresh_url, Db, TestDb};
use intake::daemon::Daemon;
use intake::store::Store;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::dovecot::Dovecot;
use support::{count, eventually, numbered};

pub fn spawn(cfg: &std::path::Path, once: bool, log: &std::path::Path) -> Child {
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

pub fn daemon_config(url: &str, mailboxes: &str) -> String {
    format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[logging]\nlevel = \"warn\"\n{mailboxes}"
    )
}

pub fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join(format!("intake-{}.toml", rand::random::<u32>()));
    std::fs::write(&p, text).unwrap();
    p
}

pub async fn stored(store: &Store) -> i64 {
    count(store, "SELECT COUNT(*) AS n FROM comments").await
}

async fn sigkill_during_a_pop3_import_with_deletion_is_exactly_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("intake.log");
    let dc = Dovecot::start_pop3(&[("support", "supportpw")], "");
    let (url, _keep) = fresh_url(db).await;
    let store = Store::open(&url, 2).await.unwrap();
    dc.deliver("support", "INBOX", &numbered(0, 1500));
    let text = crate::pop3::pop3_toml(dc.pop3_port, "after_import = \"delete\"\nfetch_batch = 50");
    let text = daemon_config(&url, &text);
    let cfg = write_config(dir.path(), &text);
    let (mut kills, mut delivered) = (0, 1500);
    for round in 0..4 {
        let before = stored(&store).await;
        if before >= 1500 {
            break;
        }
        let target = before + 30 + (rand::random::<u64>() % 300) as i64;
        let mut child = spawn(&cfg, false, &log);
        let reached = eventually(60, || async { stored(&store).await >= target }).await;
        // Mail arrives while the daemon works, then a random moment inside
        // the next fetch / commit / DELE.
        dc.deliver("support", "INBOX", &numbered(delivered, 40));
        delivered += 40;
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 150)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        eprintln!(
            "round {round}: killed at {} stored (target {target}, reached {reached}), {} on the server",
            stored(&store).await,
            dc.count("support", "INBOX")
        );
    }
    assert!(kills >= 2, "the import finished before it was killed twice");
    let status = spawn(&cfg, true, &log).wait().unwrap();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "intake run --once failed: {status}\n{logs}"
    );
    let total = delivered as i64;
    assert_eq!(stored(&store).await, total, "{logs}");
    let distinct = count(
        &store,
        "SELECT COUNT(DISTINCT message_id) AS n FROM comments",
    )
    .await;
    assert_eq!(distinct, total);
    assert_eq!(
        dc.count("support", "INBOX"),
        0,
        "every imported message deleted"
    );
    let check = store.blobs_verify().await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

async fn metric_line(addr: std::net::SocketAddr, needle: &str) -> Option<String> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(needle) && l.contains("mailbox=\"support\""))
        .map(str::to_string)
}

/// The daemon polls the maildrop and reports it in /readyz and metrics.
async fn the_daemon_polls_and_reports_the_maildrop(db: Db) {
    let dc = Dovecot::start_pop3(&[("support", "supportpw")], "");
    let tdb = TestDb::new(db).await;
    let cfg = config(
        &tdb.url,
        &format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n{}",
            crate::pop3::pop3_toml(dc.pop3_port, "after_import = \"delete\"")
        ),
    );
    let comments = || async { count(&tdb.store, "SELECT COUNT(*) AS n FROM comments").await };
    dc.deliver("support", "INBOX", &numbered(0, 3));
    let a = Daemon::start(cfg.clone()).await.unwrap();
    assert!(eventually(20, || async { comments().await == 3 }).await);
    // New mail is found by the next poll.
    dc.deliver("support", "INBOX", &numbered(3, 2));
    assert!(eventually(20, || async { comments().await == 5 }).await);
    assert!(eventually(10, || async { dc.count("support", "INBOX") == 0 }).await);
    let r = reqwest::get(format!("http://{}/readyz", a.addr))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("\"pop3\"") && body.contains("support"),
        "{body}"
    );
    let up = metric_line(a.addr, "intake_mailbox_up").await;
    assert!(up.as_deref().is_some_and(|l| l.ends_with(" 1")), "{up:?}");
    let fetched = metric_line(a.addr, "intake_messages_fetched_total").await;
    assert!(fetched.is_some(), "fetched counter exported");
    a.shutdown().await;
    assert_eq!(
        count(
            &tdb.store,
            "SELECT COUNT(DISTINCT message_id) AS n FROM comments"
        )
        .await,
        comments().await
    );
}

/// The lease's holder (host:pid:random) of the maildrop, if any.
async fn holder(store: &Store) -> Option<String> {
    use sqlx::Row;
    sqlx::query("SELECT holder FROM leases WHERE name = 'pop3:support'")
        .fetch_optional(store.pool())
        .await
        .unwrap()
        .map(|r| r.get::<String, _>("holder"))
}

/// Two daemons on one PostgreSQL: one works the maildrop, the other stands
/// by; when the worker is killed, the other takes over after the lease
/// expires and nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_a_maildrop_through_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("intake.log");
    let dc = Dovecot::start_pop3(&[("support", "supportpw")], "");
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let store = Store::open(&url, 2).await.unwrap();
    dc.deliver("support", "INBOX", &numbered(0, 300));
    let text = crate::pop3::pop3_toml(dc.pop3_port, "after_import = \"delete\"\nfetch_batch = 20");
    let cfg = write_config(dir.path(), &daemon_config(&url, &text));
    let mut daemons: Vec<Child> = (0..2).map(|_| spawn(&cfg, false, &log)).collect();
    assert!(eventually(60, || async { stored(&store).await == 300 }).await);
    let first = holder(&store).await.expect("a daemon holds the lease");
    let victim = daemons
        .iter()
        .position(|c| first.contains(&format!(":{}:", c.id())))
        .expect("one of the two holds it");
    daemons[victim].kill().unwrap();
    daemons[victim].wait().unwrap();
    dc.deliver("support", "INBOX", &numbered(300, 5));
    let took_over = eventually(60, || async { stored(&store).await == 305 }).await;
    let now = holder(&store).await.unwrap_or_default();
    for d in daemons.iter_mut() {
        let _ = d.kill();
        let _ = d.wait();
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(took_over, "{} stored\n{logs}", stored(&store).await);
    assert_ne!(now, first, "the other daemon holds the lease now");
    let distinct = count(
        &store,
        "SELECT COUNT(DISTINCT message_id) AS n FROM comments",
    )
    .await;
    assert_eq!((stored(&store).await, distinct), (305, 305));
    assert!(eventually(10, || async { dc.count("support", "INBOX") == 0 }).await);
}

both_backends!(
    sigkill_during_a_pop3_import_with_deletion_is_exactly_once,
    the_daemon_polls_and_reports_the_maildrop,
);
