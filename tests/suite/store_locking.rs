//! Write transactions on SQLite take the write lock when they begin: a
//! refused admin action (its transaction dropped, the rollback still on its
//! way) must never make the next one fail with "database is locked".

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
/// deadlock: PostgreSQL's own deadlock counter for the database stays put.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_opening_the_same_conversations_do_not_deadlock_postgres() {
    let t = TestDb::new(Db::Postgres).await;
    let cfg = common::config(&t.url, "");
    let deadlocks = || async {
        // Statistics reach the shared counters within a second.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        n
    };
    let before = deadlocks().await;
    let mut pipelines = Vec::new();
    for _ in 0..2 {
        let store = intake::store::Store::open(&t.url, 4).await.unwrap();
        pipelines.push(intake::pipeline::Pipeline::new(
            store,
            intake::pipeline::Settings::from_config(&cfg),
        ));
    }
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
    assert_eq!(deadlocks().await, before, "PostgreSQL detected deadlocks");
}
