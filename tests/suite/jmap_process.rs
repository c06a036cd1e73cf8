//! JMAP as ops run it: the built `intake run` binary SIGKILLed at random
//! points of an import while more mail arrives, then `run --once`: every
//! message stored once and flagged $seen, nothing left owed; two daemons on
//! one PostgreSQL share the mailbox through its lease.

use crate::common;
use crate::support;

use common::{fresh_url, Db};
use intake::store::Store;
use support::cyrus::Cyrus;
use support::kinds::{daemon_config, lease_takeover, sigkill_rounds};
use support::numbered;

async fn sigkill_during_a_jmap_import_is_exactly_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let cy = Cyrus::start(&[("support", "supportpw")]);
    let (url, _keep) = fresh_url(db).await;
    let store = Store::open(&url, 2).await.unwrap();
    cy.deliver("support", &numbered(0, 800));
    let cfg = daemon_config(
        dir.path(),
        &url,
        &crate::jmap::jmap_toml(&cy.url(), "fetch_batch = 40"),
    );
    let deliver = |from, n| cy.deliver("support", &numbered(from, n));
    let all = sigkill_rounds(
        &store,
        &cfg,
        &dir.path().join("intake.log"),
        800,
        20,
        deliver,
    )
    .await;
    assert_eq!(
        cy.count("support", "supportpw", "inbox").await,
        (all, all),
        "all flagged $seen"
    );
}

/// Two daemons on one PostgreSQL: one works the mailbox, the other takes
/// over when it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_a_jmap_mailbox_through_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let cy = Cyrus::start(&[("support", "supportpw")]);
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let store = Store::open(&url, 2).await.unwrap();
    cy.deliver("support", &numbered(0, 100));
    let cfg = daemon_config(
        dir.path(),
        &url,
        &crate::jmap::jmap_toml(&cy.url(), "fetch_batch = 20"),
    );
    let deliver = |from, n| cy.deliver("support", &numbered(from, n));
    lease_takeover(
        &store,
        &cfg,
        &dir.path().join("intake.log"),
        "jmap:support",
        100,
        deliver,
    )
    .await;
}

both_backends!(sigkill_during_a_jmap_import_is_exactly_once);
