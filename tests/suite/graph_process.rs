//! Graph as ops run it: the built `intake run` binary SIGKILLed at random
//! points of an import from the local Graph while more mail arrives, then
//! `run --once`: every message stored once and marked read, nothing owed;
//! on PostgreSQL two daemons share the mailbox through its lease.

use crate::common;
use crate::pop3_process::{daemon_config, spawn, stored, write_config};
use crate::support;

use common::{fresh_url, Db};
use intake::store::Store;
use std::process::Child;
use std::time::Duration;
use support::graph_stand_in::GraphStandIn;
use support::{count, eventually, numbered};

async fn sigkill_during_a_graph_import_is_exactly_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("intake.log");
    let g = GraphStandIn::start("s3cret").await;
    let (url, _keep) = fresh_url(db).await;
    let store = Store::open(&url, 2).await.unwrap();
    g.deliver(&numbered(0, 800));
    let text = crate::graph::graph_toml(&g, "fetch_batch = 25");
    let cfg = write_config(dir.path(), &daemon_config(&url, &text));
    let (mut kills, mut delivered) = (0, 800);
    for round in 0..4 {
        let before = stored(&store).await;
        if before >= 800 {
            break;
        }
        let target = before + 20 + (rand::random::<u64>() % 200) as i64;
        let mut child = spawn(&cfg, false, &log);
        let reached = eventually(60, || async { stored(&store).await >= target }).await;
        g.deliver(&numbered(delivered, 20));
        delivered += 20;
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 150)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        eprintln!(
            "round {round}: killed at {} stored (target {target}, reached {reached})",
            stored(&store).await
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
    assert_eq!(g.count("inbox"), (delivered, delivered), "all marked read");
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM source_acks_owed").await,
        0
    );
}

/// Two daemons on one PostgreSQL: one works the mailbox, the other takes
/// over when it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_a_graph_mailbox_through_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("intake.log");
    let g = GraphStandIn::start("s3cret").await;
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let store = Store::open(&url, 2).await.unwrap();
    g.deliver(&numbered(0, 100));
    let cfg = write_config(
        dir.path(),
        &daemon_config(&url, &crate::graph::graph_toml(&g, "")),
    );
    let mut daemons: Vec<Child> = (0..2).map(|_| spawn(&cfg, false, &log)).collect();
    assert!(eventually(60, || async { stored(&store).await == 100 }).await);
    use sqlx::Row;
    let holder = || async {
        sqlx::query("SELECT holder FROM leases WHERE name = 'graph:support'")
            .fetch_optional(store.pool())
            .await
            .unwrap()
            .map(|r| r.get::<String, _>("holder"))
            .unwrap_or_default()
    };
    let first = holder().await;
    let victim = daemons
        .iter()
        .position(|c| first.contains(&format!(":{}:", c.id())))
        .expect("one of the two holds the lease");
    daemons[victim].kill().unwrap();
    daemons[victim].wait().unwrap();
    g.deliver(&numbered(100, 5));
    let took_over = eventually(60, || async { stored(&store).await == 105 }).await;
    let now = holder().await;
    for d in daemons.iter_mut() {
        let _ = d.kill();
        let _ = d.wait();
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(took_over, "{} stored\n{logs}", stored(&store).await);
    assert_ne!(now, first);
    let distinct = count(
        &store,
        "SELECT COUNT(DISTINCT message_id) AS n FROM comments",
    )
    .await;
    assert_eq!((stored(&store).await, distinct), (105, 105));
}

both_backends!(sigkill_during_a_graph_import_is_exactly_once);
