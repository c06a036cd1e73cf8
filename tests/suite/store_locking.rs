//! Locks between write transactions. On SQLite they take the write lock
//! when they begin: a refused admin action (its transaction dropped, the
//! rollback still on its way) must never make the next one fail with
//! "database is locked". On PostgreSQL concurrent batches take shared rows
//! (conversation keys, blobs) in one order and never deadlock; a deadlock
//! PostgreSQL does break is contention, retried with its detail logged.

use crate::common;

use common::{Db, TestDb};

async fn refused_write_then_write(db: Db) {
    let t = TestDb::new(db).await;
    let s = &t.store;
    let org = s
        .create_organization("Acme", &["acme.com".into()])
        .await
        .unwrap();
    for i in 0..100 {
        // Inserts an organization, then finds its domain taken: refused.
        let e = s
            .create_organization(&format!("Other {i}"), &["acme.com".into()])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("already belongs"), "{e}");
        // Reads, then writes, straight away.
        s.add_domain(org, &format!("acme{i}.test"))
            .await
            .unwrap_or_else(|e| panic!("round {i}: {e}"));
    }
}

both_backends!(refused_write_then_write);

/// `n` daemons' pipelines (a pool each) on the test's database.
async fn daemons(t: &TestDb, n: usize) -> Vec<intake::pipeline::Pipeline> {
    let cfg = common::config(&t.url, "");
    let mut pipelines = Vec::new();
    for _ in 0..n {
        let store = intake::store::Store::open(&t.url, 4).await.unwrap();
        pipelines.push(intake::pipeline::Pipeline::new(
            store,
            intake::pipeline::Settings::from_config(&cfg),
        ));
    }
    pipelines
}

fn call(conv: &str, n: usize, round: usize) -> intake::model::Inbound {
    intake::model::Inbound::Contact(intake::model::Contact {
        source: "voice".into(),
        channel: "voice".into(),
        contacts: vec![intake::identity::ContactPoint::Phone(
            intake::identity::PhoneNumber::parse(&format!("+1 415 555 {:04}", n % 50), "US")
                .unwrap(),
        )],
        name: None,
        conversation_id: Some(conv.into()),
        subject: "Call".into(),
        message: format!("note {n}"),
        public: true,
        occurred_at: None,
        attachments: vec![],
        message_id: format!("wh.voice.{round}.{conv}.{n}@desk.test"),
    })
}

/// Concurrent batches (two daemons' pools on one PostgreSQL) opening
/// tickets for the same new conversations in opposite orders never
/// deadlock: PostgreSQL's own deadlock counter for the database stays 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_opening_the_same_conversations_do_not_deadlock_postgres() {
    let t = TestDb::new(Db::Postgres).await;
    let pipelines = daemons(&t, 2).await;
    for round in 0..8 {
        let keys: Vec<String> = (0..40).map(|i| format!("conv-{round}-{i}")).collect();
        let forward: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| call(k, i, round))
            .collect();
        let backward: Vec<_> = keys
            .iter()
            .enumerate()
            .rev()
            .map(|(i, k)| call(k, i + 100, round))
            .collect();
        let (a, b) = tokio::join!(
            pipelines[0].ingest(forward, None),
            pipelines[1].ingest(backward, None)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        // Each conversation has one ticket, whichever batch opened it.
        for (x, y) in a.iter().zip(b.iter().rev()) {
            assert_eq!(x.ticket_id, y.ticket_id, "round {round}");
        }
    }
    let mut stores: Vec<&intake::store::Store> = pipelines.iter().map(|p| &p.store).collect();
    stores.push(&t.store);
    let deadlocks = common::pg_deadlocks_when_closed(&t.url, &stores).await;
    assert_eq!(deadlocks, 0, "PostgreSQL detected {deadlocks} deadlocks");
}

/// A deadlock PostgreSQL breaks is contention (retried in place) and keeps
/// PostgreSQL's detail of who waited for what, for the retry's log line.
#[tokio::test]
async fn a_deadlock_is_contention_with_its_detail_postgres() {
    use intake::store::{Fault, StoreError};
    let t = TestDb::new(Db::Postgres).await;
    let pool = t.store.pool();
    sqlx::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES ('a', 'x', 0), ('b', 'x', 0)",
    )
    .execute(pool)
    .await
    .unwrap();
    let lock = |first: &'static str, second: &'static str| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let set = "UPDATE leases SET holder = 'y' WHERE name = $1";
            sqlx::query(set).bind(first).execute(&mut *tx).await?;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            sqlx::query(set).bind(second).execute(&mut *tx).await?;
            tx.commit().await
        }
    };
    let (x, y) = tokio::join!(lock("a", "b"), lock("b", "a"));
    let e: StoreError = match (x, y) {
        (Err(e), Ok(())) | (Ok(()), Err(e)) => e.into(),
        other => panic!("one of the two must be chosen as the victim: {other:?}"),
    };
    assert_eq!(e.fault(), Some(Fault::Contention), "{e}");
    let detail = e.detail().unwrap_or_default();
    assert!(
        detail.contains("waits for") && detail.contains("blocked by process"),
        "{detail:?}"
    );
}

/// A mail with two attachments, `first` then `second` (base64 bodies).
fn with_attachments(n: usize, round: usize, first: &str, second: &str) -> intake::model::Inbound {
    let part = |name: &str| {
        format!(
            "--b\r\nContent-Type: application/octet-stream; name=\"{name}.bin\"\r\n\
             Content-Disposition: attachment; filename=\"{name}.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64_of(&format!("the shared body of {name} in round {round}"))
        )
    };
    let raw = format!(
        "From: C{n} <c{n}@shared.test>\r\nTo: support@desk.test\r\nSubject: Logs {n}\r\n\
         Message-ID: <att.{round}.{n}@shared.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n{}{}--b--\r\n",
        part(first),
        part(second)
    );
    intake::model::Inbound::Mail(intake::model::RawMail {
        raw: raw.into_bytes(),
        mailbox: Some("support".into()),
        source: "test".into(),
    })
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Two daemons' batches carry the same new attachment bodies (one file
/// sent to several addresses) in opposite orders, at once: they take the
/// blobs' rows in one order and wait for one another, and PostgreSQL never
/// has a deadlock to break. Each body is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_sharing_new_attachments_do_not_deadlock_postgres() {
    let t = TestDb::new(Db::Postgres).await;
    let pipelines = daemons(&t, 2).await;
    const ROUNDS: usize = 24;
    let names: Vec<String> = (0..30).map(|i| format!("file{i}")).collect();
    for round in 0..ROUNDS {
        // Batch A names file0..file29 in that order, batch B backwards.
        let a: Vec<_> = (0..15)
            .map(|i| with_attachments(i, round, &names[2 * i], &names[2 * i + 1]))
            .collect();
        let b: Vec<_> = (0..15)
            .map(|i| with_attachments(100 + i, round, &names[29 - 2 * i], &names[28 - 2 * i]))
            .collect();
        let (x, y) = tokio::join!(pipelines[0].ingest(a, None), pipelines[1].ingest(b, None));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.len() + y.len(), 30, "round {round}");
    }
    let n = |sql: &'static str| {
        let pool = t.store.pool().clone();
        async move {
            use sqlx::Row;
            sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>(0)
        }
    };
    // Every round: 30 raw mails and 30 distinct bodies, each once.
    assert_eq!(
        n("SELECT COUNT(*) FROM blob_locations").await,
        (ROUNDS * 60) as i64
    );
    assert_eq!(
        n("SELECT COUNT(*) FROM attachments").await,
        (ROUNDS * 60) as i64
    );
    let mut stores: Vec<&intake::store::Store> = pipelines.iter().map(|p| &p.store).collect();
    stores.push(&t.store);
    let deadlocks = common::pg_deadlocks_when_closed(&t.url, &stores).await;
    assert_eq!(deadlocks, 0, "PostgreSQL detected {deadlocks} deadlocks");
}
