//! SQLite on a tmpfs filled then freed while `intake run` imports from
//! Dovecot and takes webhooks: work arrives before, during and after the
//! fault; during it webhooks answer 503 with Retry-After and `/readyz` says
//! the database is not ready; afterwards every message is stored exactly
//! once, nothing is quarantined, every mail is acknowledged (`\Seen`), the
//! database is intact, and the daemon was never restarted.

use super::{assert_answers, exactly_once, webhook_message_id, Daemon, Tmpfs};
use crate::support::dovecot::Dovecot;
use crate::support::{count, eventually, mailbox_toml, numbered};
use intake::store::Store;
use std::time::Duration;

/// Mails with bodies of about 20 KB, so that a batch needs fresh space.
fn big(from: usize, n: usize) -> Vec<Vec<u8>> {
    numbered(from, n)
        .into_iter()
        .map(|m| {
            let mut m = m;
            m.extend(format!("{}\n", "padding ".repeat(2500)).into_bytes());
            m
        })
        .collect()
}

fn mids(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("m{i}@cust.test"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_then_freed_is_recovered_in_place_sqlite() {
    let fs = Tmpfs::mount(24);
    let work = tempfile::tempdir().unwrap();
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let url = format!("sqlite://{}/intake.db", fs.path().display());
    let mbox = mailbox_toml(
        "support",
        dc.port,
        "support",
        "supportpw",
        "fetch_batch = 25\nidle = false",
    );
    let mut d = Daemon::start(work.path(), &url, &mbox).await;
    let store = Store::connect(&url, 1).await.unwrap();
    let mut expected = Vec::new();

    // Before: mail and webhooks are stored.
    dc.deliver("support", "INBOX", &numbered(0, 50));
    expected.extend(mids(0, 50));
    for i in 0..10 {
        let key = format!("before-{i}");
        assert_answers(
            &key,
            &d.post_until_stored(&key, Duration::from_secs(30)).await,
        );
        expected.push(webhook_message_id(&key));
    }
    let n = expected.len() as i64;
    let stored = eventually(60, || async {
        count(&store, "SELECT COUNT(*) AS n FROM comments").await >= n
    })
    .await;
    assert!(
        stored,
        "the import before the fault did not finish:\n{}",
        d.logs()
    );

    // The fault: an empty WAL and not one free byte.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    fs.fill();
    dc.deliver("support", "INBOX", &big(1000, 60));
    expected.extend(mids(1000, 60));
    let during: Vec<String> = (0..12).map(|i| format!("during-{i}")).collect();
    let posts = {
        let d = &d;
        futures::future::join_all(during.iter().map(|k| async move {
            (
                k.clone(),
                d.post_until_stored(k, Duration::from_secs(120)).await,
            )
        }))
    };
    let watch = async {
        let mut not_ready = None;
        for _ in 0..80 {
            let (code, body) = d.readyz().await;
            if code == 503 && body["database"] == false {
                not_ready = Some(body);
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Keep the disk full a while longer, then give the space back.
        tokio::time::sleep(Duration::from_secs(6)).await;
        fs.free();
        not_ready
    };
    let (answers, not_ready) = tokio::join!(posts, watch);
    let not_ready = not_ready.unwrap_or_else(|| {
        panic!(
            "/readyz never said the database was not ready:\n{}",
            d.logs()
        )
    });
    assert!(
        not_ready["database_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{not_ready}"
    );
    let mut saw_503 = false;
    for (key, a) in &answers {
        assert_answers(key, a);
        saw_503 |= a.iter().any(|a| a.status == 503);
        expected.push(webhook_message_id(key));
    }
    assert!(
        saw_503,
        "no webhook was answered 503 while the disk was full: {answers:?}"
    );

    // After: more work, and everything arrives exactly once, by itself.
    dc.deliver("support", "INBOX", &numbered(2000, 30));
    expected.extend(mids(2000, 30));
    for i in 0..10 {
        let key = format!("after-{i}");
        assert_answers(
            &key,
            &d.post_until_stored(&key, Duration::from_secs(60)).await,
        );
        expected.push(webhook_message_id(&key));
    }
    let store = Store::connect(&url, 1).await.unwrap();
    let done = eventually(120, || async {
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
    let acked = eventually(60, || async { dc.flagged("support", "INBOX", 'S') == 140 }).await;
    assert!(
        acked,
        "{} of 140 mails flagged \\Seen on the server",
        dc.flagged("support", "INBOX", 'S')
    );
    let (code, body) = d.readyz().await;
    assert!(code == 200 && body["database"] == true, "{code} {body}");
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let metrics = d.metrics().await;
    assert!(
        metrics.contains("intake_database_errors_total{kind=\"disk_full\"}")
            || metrics.contains("intake_database_errors_total{kind=\"io\"}"),
        "the fault is not counted:\n{metrics}"
    );
    assert!(d.alive(), "the daemon exited:\n{}", d.logs());
    store.close().await;
}
