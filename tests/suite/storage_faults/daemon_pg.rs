//! PostgreSQL: the daemon's connections (only those to this test's
//! database) terminated with `pg_terminate_backend` at random moments while
//! `intake run` imports from Dovecot and takes webhooks: every message is
//! stored exactly once, nothing is quarantined, every mail is acknowledged,
//! no webhook is answered anything but success or 503 with Retry-After,
//! and the daemon carries on by itself. The server is never stopped: other
//! tests use it.

use super::{assert_answers, exactly_once, webhook_message_id, Daemon};
use crate::common::{fresh_url, pg_base, Db};
use crate::support::dovecot::Dovecot;
use crate::support::{count, eventually, mailbox_toml, numbered};
use intake::store::Store;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_are_recovered_in_place_postgres() {
    let work = tempfile::tempdir().unwrap();
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let name = url.rsplit('/').next().unwrap().to_string();
    // The test's own reader is spared (it would fail its assertions' reads).
    let store = Store::open(&format!("{url}?application_name=fault-observer"), 2)
        .await
        .unwrap();
    const MAILS: usize = 800;
    dc.deliver("support", "INBOX", &numbered(0, MAILS / 2));
    let mbox = mailbox_toml(
        "support",
        dc.port,
        "support",
        "supportpw",
        "fetch_batch = 20\nidle = false",
    );
    let mut d = Daemon::start(work.path(), &url, &mbox).await;
    let admin = sqlx::PgPool::connect(&format!("{}/postgres", pg_base()))
        .await
        .unwrap();

    let stop = AtomicBool::new(false);
    let kills = AtomicUsize::new(0);
    let killer = async {
        // Random moments over about 25 s, mid-import and mid-webhook-load.
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(150 + rand::random::<u64>() % 600)).await;
            let n = sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 \
                 AND pid <> pg_backend_pid() AND application_name <> 'fault-observer'",
            )
            .bind(&name)
            .fetch_all(&admin)
            .await
            .map(|r| r.len())
            .unwrap_or(0);
            kills.fetch_add(n, Ordering::Relaxed);
        }
    };
    let load = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        dc.deliver("support", "INBOX", &numbered(MAILS / 2, MAILS / 2));
        let keys: Vec<String> = (0..60).map(|i| format!("pg-{i}")).collect();
        let answers = futures::future::join_all(keys.chunks(15).map(|chunk| {
            let d = &d;
            async move {
                let mut out = Vec::new();
                for k in chunk {
                    out.push((
                        k.clone(),
                        d.post_until_stored(k, Duration::from_secs(120)).await,
                    ));
                    tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 300)).await;
                }
                out
            }
        }))
        .await;
        // Keep terminating while the import goes on, then stop.
        let mut waited = 0;
        while waited < 20
            && count(&store, "SELECT COUNT(*) AS n FROM comments").await < (MAILS as i64) * 3 / 4
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
            waited += 1;
        }
        stop.store(true, Ordering::Relaxed);
        answers.into_iter().flatten().collect::<Vec<_>>()
    };
    let ((), answers) = tokio::join!(killer, load);
    assert!(
        kills.load(Ordering::Relaxed) >= 10,
        "too few connections terminated"
    );

    let mut expected: Vec<String> = (0..MAILS).map(|i| format!("m{i}@cust.test")).collect();
    for (key, a) in &answers {
        assert_answers(key, a);
        expected.push(webhook_message_id(key));
    }
    let done = eventually(180, || async {
        exactly_once(&store, &expected).await.1.is_empty()
    })
    .await;
    let (twice, missing) = exactly_once(&store, &expected).await;
    assert!(
        done,
        "{} messages missing, e.g. {:?}:\n{}",
        missing.len(),
        missing.first(),
        d.logs()
    );
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM comments").await,
        expected.len() as i64
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM quarantine").await,
        0,
        "good mail quarantined"
    );
    let acked = eventually(60, || async {
        dc.flagged("support", "INBOX", 'S') == MAILS
    })
    .await;
    assert!(
        acked,
        "{} of {MAILS} mails flagged \\Seen on the server",
        dc.flagged("support", "INBOX", 'S')
    );
    let ready = eventually(30, || async { d.readyz().await.1["database"] == true }).await;
    assert!(ready, "/readyz: {}", d.readyz().await.1);
    // Every write a terminated connection broke is counted. (Whether a
    // termination lands mid-transaction is up to timing: one that hits an
    // idle pooled connection is replaced unseen and breaks nothing.)
    let metrics = d.metrics().await;
    let broke = d.logs().contains("batch transaction failed");
    assert!(
        !broke || metrics.contains("intake_database_errors_total{kind=\"connection\"}"),
        "lost connections are not counted: {:?}",
        metrics
            .lines()
            .filter(|l| l.starts_with("intake_database_errors_total"))
            .collect::<Vec<_>>()
    );
    assert!(d.alive(), "the daemon exited:\n{}", d.logs());
    store.close().await;
}
