//! The built `intake run` binary as ops run it: SIGKILL at random points of a
//! 2,000-message import then a restart stores every message exactly once;
//! three daemons on one PostgreSQL share the mailboxes through leases and
//! survive one of them being killed; SIGTERM exits 0 promptly.

use crate::common;
#[allow(unused_imports)]
use crate::common::CursorExt;
use crate::support;

use common::{fresh_url, Db};
use intake::store::Store;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::dovecot::Dovecot;
use support::kinds::{daemon_config, spawn, stored};
use support::{count, eventually, mailbox_toml, numbered};

async fn distinct(store: &Store) -> i64 {
    count(
        store,
        "SELECT COUNT(DISTINCT message_id) AS n FROM comments",
    )
    .await
}

async fn sigkill_during_import_then_restart_is_exactly_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("intake.log");
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let (url, _keep) = fresh_url(db).await;
    let store = Store::open(&url, 2).await.unwrap();
    dc.deliver("support", "INBOX", &numbered(0, 2000));
    let cfg = daemon_config(
        dir.path(),
        &url,
        &mailbox_toml(
            "support",
            dc.port,
            "support",
            "supportpw",
            "fetch_batch = 50",
        ),
    );
    let mut kills = 0;
    for round in 0..4 {
        let before = stored(&store).await;
        if before >= 2000 {
            break;
        }
        let target = before + 30 + (rand::random::<u64>() % 400) as i64;
        let mut child = spawn(&cfg, false, &log);
        // The lease of a killed daemon expires before its successor may work (PostgreSQL).
        let reached = eventually(60, || async { stored(&store).await >= target }).await;
        // ...then a random moment inside the next fetch/commit/acknowledge.
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 150)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        eprintln!(
            "round {round}: killed at {} stored (target {target}, reached {reached})",
            stored(&store).await
        );
    }
    assert!(
        kills >= 2,
        "the import finished before it could be killed twice"
    );
    let mut once = spawn(&cfg, true, &log);
    let status = once.wait().unwrap();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "intake run --once failed: {status}\n{logs}"
    );
    assert_eq!(stored(&store).await, 2000, "{logs}");
    assert_eq!(distinct(&store).await, 2000);
    assert_eq!(
        store.cursor("support", "INBOX").await.unwrap().unwrap().1,
        2000
    );
    // Every committed row's raw mail is in the blob store, whole: the
    // kills left at most bytes no row locates (a batch that never
    // committed) and, had one struck between a commit and the removal of
    // a second delivery's copy, locations no row names; the sweep removes
    // those and keeps everything rows name.
    let check = store.blobs_verify().await.unwrap();
    assert_eq!(check.rows, 2000);
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    let swept = store.blobs_gc(Duration::ZERO, false).await.unwrap();
    assert_eq!(swept.stored - swept.removed, 2000, "{swept:?}");
    assert_eq!(swept.orphans, swept.removed, "{swept:?}");
    assert_eq!(store.blob_list().await.unwrap().len(), 2000);
    assert!(store.blobs_verify().await.unwrap().problems.is_empty());
}

async fn sigterm_exits_zero_quickly(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("intake.log");
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let (url, _keep) = fresh_url(db).await;
    let store = Store::open(&url, 2).await.unwrap();
    dc.deliver("support", "INBOX", &numbered(0, 500));
    let cfg = daemon_config(
        dir.path(),
        &url,
        &mailbox_toml("support", dc.port, "support", "supportpw", ""),
    );
    let mut child = spawn(&cfg, false, &log);
    assert!(eventually(30, || async { stored(&store).await > 0 }).await);
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "{status}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // What was committed is whole: a second run completes the import exactly once.
    assert!(spawn(&cfg, true, &log).wait().unwrap().success());
    assert_eq!((stored(&store).await, distinct(&store).await), (500, 500));
}

/// systemd protocol: READY=1 once listening, then WATCHDOG=1 pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_systemd_ready_and_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let (url, _keep) = fresh_url(Db::Sqlite).await;
    let cfg = daemon_config(
        dir.path(),
        &url,
        &mailbox_toml("support", dc.port, "support", "supportpw", ""),
    );
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // systemd sets WATCHDOG_PID to the service's pid: `exec` keeps the shell's.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_intake"))
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.iter().any(|m: &String| m.contains("WATCHDOG=1")) {
        match sock.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).to_string()),
            Err(e) => {
                let _ = child.kill();
                panic!("no notification ({e}); got {got:?}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(got[0].contains("READY=1"), "{got:?}");
}

/// Three daemons, three mailboxes of 1,000 messages, one daemon killed midway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_share_one_postgres_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("intake.log");
    let users = [("ua", "pa"), ("ub", "pb"), ("uc", "pc")];
    let dc = Dovecot::start(&users);
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let store = Store::open(&url, 2).await.unwrap();
    let mut mbs = String::new();
    for (i, (u, p)) in users.iter().enumerate() {
        dc.deliver(u, "INBOX", &numbered(i * 1000, 1000));
        mbs.push_str(&mailbox_toml(u, dc.port, u, p, "fetch_batch = 50"));
    }
    let cfg = daemon_config(dir.path(), &url, &mbs);
    let mut daemons: Vec<Child> = (0..3).map(|_| spawn(&cfg, false, &log)).collect();
    assert!(eventually(60, || async { stored(&store).await >= 600 }).await);
    // Kill a daemon that holds a lease (its pid is part of the holder id).
    use sqlx::Row;
    let holders: Vec<String> = sqlx::query("SELECT holder FROM leases")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("holder"))
        .collect();
    let victim = daemons
        .iter()
        .position(|c| holders.iter().any(|h| h.contains(&format!(":{}:", c.id()))))
        .expect("some daemon holds a lease");
    daemons[victim].kill().unwrap();
    daemons[victim].wait().unwrap();
    let at = stored(&store).await;
    eprintln!("killed daemon {victim} at {at} stored; holders {holders:?}");
    let done = eventually(90, || async { stored(&store).await >= 3000 }).await;
    for d in daemons.iter_mut() {
        let _ = d.kill();
        let _ = d.wait();
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(done, "only {} of 3000 stored\n{logs}", stored(&store).await);
    assert_eq!(stored(&store).await, 3000);
    assert_eq!(distinct(&store).await, 3000);
}

both_backends!(
    sigkill_during_import_then_restart_is_exactly_once,
    sigterm_exits_zero_quickly
);
