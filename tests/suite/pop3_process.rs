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
use support::dovecot::Dovecot;
use support::kinds::{daemon_config, lease_takeover, sigkill_rounds};
use support::{count, eventually, numbered};

async fn sigkill_during_a_pop3_import_with_deletion_is_exactly_once(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let dc = Dovecot::start_pop3(&[("support", "supportpw")], "");
    let (url, _keep) = fresh_url(db).await;
    let store = Store::open(&url, 2).await.unwrap();
    dc.deliver("support", "INBOX", &numbered(0, 1500));
    let mb = crate::pop3::pop3_toml(dc.pop3_port, "after_import = \"delete\"\nfetch_batch = 50");
    let cfg = daemon_config(dir.path(), &url, &mb);
    let deliver = |from, n| dc.deliver("support", "INBOX", &numbered(from, n));
    sigkill_rounds(
        &store,
        &cfg,
        &dir.path().join("intake.log"),
        1500,
        40,
        deliver,
    )
    .await;
    assert_eq!(
        dc.count("support", "INBOX"),
        0,
        "every imported message deleted"
    );
    let check = store.blobs_verify().await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

/// The first `/metrics` line of `needle` for `mailbox` (its maildrop, not
/// another test's IMAP folder of the same name).
async fn metric_line(addr: std::net::SocketAddr, mailbox: &str, needle: &str) -> Option<String> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| {
            l.starts_with(needle)
                && l.contains(&format!("mailbox=\"{mailbox}\""))
                && !l.contains("folder=\"inbox\"")
        })
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
    // The gauges are the process's: other tests' mailboxes named "support"
    // share them, so only their presence is checked here (/readyz above
    // is this daemon's own).
    let up = metric_line(a.addr, "support", "intake_mailbox_up").await;
    assert!(up.is_some(), "mailbox gauge exported");
    let fetched = metric_line(a.addr, "support", "intake_messages_fetched_total").await;
    assert!(fetched.is_some(), "fetched counter exported");
    let owed = metric_line(a.addr, "support", "intake_mailbox_acks_owed").await;
    assert!(owed.is_some(), "acknowledgements owed exported");
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

/// A POP3 mailbox whose login is refused counts its failed sessions under
/// the mailbox family of metrics, not under an IMAP name, and /readyz says
/// it is backing off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_counted_as_the_mailbox_s() {
    let dc = Dovecot::start_pop3(&[("support", "supportpw")], "");
    let tdb = TestDb::new(Db::Sqlite).await;
    let mailbox = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n[[mailboxes]]\nname = \"pop3-refused\"\nprotocol = \"pop3\"\nhost = \"127.0.0.1\"\nport = {}\nusername = \"support\"\npassword = \"wrong\"\ntls = \"none\"\ntimeout = 5\npoll_interval = 1\n",
        dc.pop3_port
    );
    let a = Daemon::start(config(&tdb.url, &mailbox)).await.unwrap();
    let line = |needle| metric_line(a.addr, "pop3-refused", needle);
    assert!(
        eventually(20, || async {
            line("intake_mailbox_reconnects_total").await.is_some()
        })
        .await,
        "no failed session counted"
    );
    assert!(line("intake_mailbox_acks_owed").await.is_some());
    assert_eq!(line("intake_imap_").await, None);
    let ready = reqwest::get(format!("http://{}/readyz", a.addr))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body = ready.text().await.unwrap();
    assert!(
        body.contains("backing_off") && body.contains("authentication"),
        "{body}"
    );
    a.shutdown().await;
}

/// Two daemons on one PostgreSQL: one works the maildrop, the other takes
/// over after the lease expires when the first is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_a_maildrop_through_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let dc = Dovecot::start_pop3(&[("support", "supportpw")], "");
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let store = Store::open(&url, 2).await.unwrap();
    dc.deliver("support", "INBOX", &numbered(0, 300));
    let mb = crate::pop3::pop3_toml(dc.pop3_port, "after_import = \"delete\"\nfetch_batch = 20");
    let cfg = daemon_config(dir.path(), &url, &mb);
    let deliver = |from, n| dc.deliver("support", "INBOX", &numbered(from, n));
    lease_takeover(
        &store,
        &cfg,
        &dir.path().join("intake.log"),
        "pop3:support",
        300,
        deliver,
    )
    .await;
    assert!(eventually(10, || async { dc.count("support", "INBOX") == 0 }).await);
}

both_backends!(
    sigkill_during_a_pop3_import_with_deletion_is_exactly_once,
    the_daemon_polls_and_reports_the_maildrop,
);
