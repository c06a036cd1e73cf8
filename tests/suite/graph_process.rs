//! Graph as ops run it: the built `intake run` binary SIGKILLed at random
//! points of an import from the local Graph while more mail arrives, then
//! `run --once`: every message stored once and marked read, nothing owed;
//! on PostgreSQL two daemons share the mailbox through its lease.

use crate::common;
use crate::support;

use common::{fresh_url, Db};
use intake::store::Store;
use support::graph_stand_in::GraphStandIn;
use support::kinds::{daemon_config, lease_takeover, sigkill_rounds};
use support::numbered;

async fn sigkill_during_a_graph_import_is_exactly_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let g = GraphStandIn::start("s3cret").await;
    let (url, _keep) = fresh_url(db).await;
    let store = Store::open(&url, 2).await.unwrap();
    g.deliver(&numbered(0, 800));
    let cfg = daemon_config(
        dir.path(),
        &url,
        &crate::graph::graph_toml(&g, "fetch_batch = 25"),
    );
    let deliver = |from, n| g.deliver(&numbered(from, n));
    let all = sigkill_rounds(
        &store,
        &cfg,
        &dir.path().join("intake.log"),
        800,
        20,
        deliver,
    )
    .await;
    assert_eq!(g.count("inbox"), (all, all), "all marked read");
}

/// Two daemons on one PostgreSQL: one works the mailbox, the other takes
/// over when it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_a_graph_mailbox_through_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let g = GraphStandIn::start("s3cret").await;
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let store = Store::open(&url, 2).await.unwrap();
    g.deliver(&numbered(0, 100));
    let cfg = daemon_config(dir.path(), &url, &crate::graph::graph_toml(&g, ""));
    let deliver = |from, n| g.deliver(&numbered(from, n));
    lease_takeover(
        &store,
        &cfg,
        &dir.path().join("intake.log"),
        "graph:support",
        100,
        deliver,
    )
    .await;
}

both_backends!(sigkill_during_a_graph_import_is_exactly_once);
