//! A COMMIT that fails must not leave its connection in the pool inside the
//! failed transaction: before the fix, one SQLITE_FULL at COMMIT made every
//! later write fail with `attempted to call begin_with at non-zero
//! transaction depth` until a restart. PostgreSQL: a COMMIT whose connection
//! was terminated.

use super::Tmpfs;
use crate::common::{config, mail, Db};
use crate::support::{count, eventually};
use intake::model::{Inbound, RawMail};
use intake::pipeline::{Pipeline, Settings};
use intake::store::{Fault, Store};

fn mails(from: usize, n: usize, body_bytes: usize) -> Vec<Inbound> {
    (from..from + n)
        .map(|i| {
            let body = format!("{i} ").repeat(body_bytes / 4 + 1);
            Inbound::Mail(RawMail {
                raw: mail(
                    &format!("c{i}@cust.test"),
                    &format!("Q {i}"),
                    &format!("r{i}@cust.test"),
                    "",
                    &body,
                )
                .into_bytes(),
                mailbox: Some("support".into()),
                source: "test".into(),
            })
        })
        .collect()
}

/// Every later write works, on every connection of the pool.
async fn writes_work_again(p: &Pipeline, from: usize) {
    assert!(
        eventually(20, || async { p.store.writable() }).await,
        "the store never became writable again: {:?}",
        p.store.outage()
    );
    for i in 0..8 {
        let r = p.ingest(mails(from + i, 1, 100), None).await;
        assert!(r.is_ok(), "write {i} after the fault failed: {:?}", r.err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commit_on_a_full_disk_does_not_poison_the_pool_sqlite() {
    let fs = Tmpfs::mount(8);
    let url = format!("sqlite://{}/intake.db", fs.path().display());
    let store = Store::open(&url, 4).await.unwrap();
    let p = Pipeline::new(store.clone(), Settings::from_config(&config(&url, "")));
    p.ingest(mails(0, 5, 100), None).await.unwrap();
    // An empty WAL, then no byte left: the next commit cannot append to it.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    fs.fill();
    let mut faults = Vec::new();
    for round in 0..3 {
        let e = p
            .ingest(mails(100 + round * 20, 20, 20_000), None)
            .await
            .expect_err("a 400 KB batch was stored on a full disk");
        assert!(
            e.is_transient(),
            "a full disk must be a passing fault, got: {e}"
        );
        faults.push((e.fault(), e.to_string()));
    }
    // Before the fix, the second round already failed with "attempted to
    // call begin_with at non-zero transaction depth".
    assert!(
        faults
            .iter()
            .all(|(f, _)| matches!(f, Some(Fault::DiskFull | Fault::Io))),
        "{faults:?}"
    );
    assert!(!store.writable(), "writes fail but the store says writable");
    fs.free();
    writes_work_again(&p, 1000).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM quarantine").await,
        0
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM comments").await,
        13
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commit_on_a_terminated_connection_does_not_poison_the_pool_postgres() {
    let db = crate::common::TestDb::new(Db::Postgres).await;
    let p = Pipeline::new(
        db.store.clone(),
        Settings::from_config(&config(&db.url, "")),
    );
    p.ingest(mails(0, 5, 100), None).await.unwrap();
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let admin = sqlx::PgPool::connect(&format!("{}/postgres", crate::common::pg_base()))
        .await
        .unwrap();
    for round in 0..3 {
        let mut tx = db.store.begin_write().await.unwrap();
        sqlx::query("UPDATE tickets SET updated_at = updated_at + 1")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
            .bind(&name)
            .execute(&admin)
            .await
            .unwrap();
        // The backend exits on the signal; let it, before the COMMIT.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let e = tx
            .commit()
            .await
            .expect_err("COMMIT on a terminated connection succeeded");
        let e = intake::store::StoreError::from(e);
        assert_eq!(e.fault(), Some(Fault::Connection), "round {round}: {e}");
    }
    writes_work_again(&p, 1000).await;
    assert_eq!(
        count(&db.store, "SELECT COUNT(*) AS n FROM comments").await,
        13
    );
}

/// The notification sender alone (no ingest running) finds the disk full:
/// its failing claim marks the store not ready, as an ingest would, and
/// once space returns its next claim marks it ready again and the
/// acknowledgements go out, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_writes_failing_mark_the_store_not_ready_sqlite() {
    use crate::support::desk::{smtp_toml, ACK};
    use crate::support::smtp::SmtpSink;
    let fs = Tmpfs::mount(8);
    let sink = SmtpSink::start();
    let url = format!("sqlite://{}/intake.db", fs.path().display());
    let cfg = config(&url, &smtp_toml(sink.port, ACK));
    let store = Store::open(&url, 4).await.unwrap();
    let app = intake::app::App::with_store(cfg, store.clone());
    app.pipeline.ingest(mails(0, 5, 100), None).await.unwrap();
    let sender = app.sender().unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    fs.fill();
    let e = intake::notify::try_send_batch(&sender, 40)
        .await
        .expect_err("notifications were claimed on a full disk");
    assert!(e.is_transient(), "{e}");
    assert!(
        !store.writable(),
        "the sender's writes fail but the store says writable"
    );
    fs.free();
    let sent = eventually(20, || async {
        let _ = intake::notify::try_send_batch(&sender, 40).await;
        count(
            &store,
            "SELECT COUNT(*) AS n FROM outbox WHERE status = 'sent'",
        )
        .await
            == 5
    })
    .await;
    assert!(sent, "{:?}", store.outage());
    assert!(store.writable(), "{:?}", store.outage());
    assert_eq!(sink.wait_for(5, 10).len(), 5);
    store.close().await;
}
