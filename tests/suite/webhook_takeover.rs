//! Webhook idempotency claims of a daemon that died are taken over within
//! seconds, by another daemon or by the next one on the same database, and
//! the contact is still stored exactly once.
//!
//! * PostgreSQL, two `intake run` daemons on one database: daemon A takes a
//!   request's claim and then blocks in its ingest transaction (the test
//!   holds an ACCESS EXCLUSIVE lock on `comments`); the gateway's retry
//!   goes to daemon B. While A lives (longer than a claim lasts without
//!   renewal) B leaves the claim alone; A is SIGKILLed, the lock let go,
//!   and B answers the retry within a few seconds of the kill.
//! * Both databases, the state a crash leaves for the next daemon: a claim
//!   taken exactly as a daemon's request takes it, by a store that is then
//!   closed without answering or releasing it (nobody renews it). SQLite
//!   has one daemon per file, so this is how its claims lose their holder:
//!   the daemon restarted after a crash answers the retry within seconds,
//!   not after the minute earlier versions waited.

use crate::common::{fresh_url, Db};
use crate::storage_faults::{webhook_message_id, Daemon};
use intake::store::Store;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};
use std::time::{Duration, Instant};

/// The answer must come within this long after the holder died.
const PROMPT: Duration = Duration::from_secs(10);
/// Longer than a claim lasts without renewal (`intake::store::CLAIM_TTL`,
/// 5 s); with that TTL after it, still within the 15 s a retry waits.
const BEYOND_TTL: Duration = Duration::from_millis(6500);

fn body() -> String {
    json!({"contact": {"phone": "+14155550142", "name": "Ada"}, "subject": "Call",
           "message": "caller asked about invoice 42"})
    .to_string()
}

/// One signed post of [`body`] with `key`: (status, replayed, JSON body).
async fn post(d: &Daemon, key: &str) -> (u16, bool, serde_json::Value) {
    answer(d.signed(key, &body())).await.expect("an answer")
}

async fn answer(req: reqwest::RequestBuilder) -> reqwest::Result<(u16, bool, serde_json::Value)> {
    let r = req.send().await?;
    let status = r.status().as_u16();
    let replayed = r.headers().contains_key("idempotent-replayed");
    Ok((status, replayed, r.json().await.unwrap_or_default()))
}

/// Comments stored under the key's Message-ID, and comments in all.
async fn stored(store: &Store, key: &str) -> (i64, i64) {
    let n = |sql: &'static str| async move {
        let q = sqlx::query(sql).bind(webhook_message_id(key));
        q.fetch_one(store.pool()).await.unwrap().get::<i64, _>(0)
    };
    (
        n("SELECT COUNT(*) FROM comments WHERE message_id = $1").await,
        n("SELECT COUNT(*) FROM comments WHERE message_id <> $1").await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_daemons_claim_is_taken_over_by_another_postgres() {
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let (wa, wb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Daemon::start(wa.path(), &url, "").await;
    let b = Daemon::start(wb.path(), &url, "").await;
    let store = Store::open(&url, 2).await.unwrap();
    let key = "call-7f3a";
    let claim = || async {
        let r = sqlx::query("SELECT status, created_at FROM webhook_requests WHERE idem_key = $1")
            .bind(key)
            .fetch_optional(store.pool())
            .await
            .unwrap();
        r.map(|r| (r.get::<i64, _>("status"), r.get::<i64, _>("created_at")))
    };

    // Any ingest transaction now waits on the test's lock.
    let mut lock = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = lock.begin().await.unwrap();
    sqlx::query("LOCK TABLE comments IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let first = tokio::spawn(answer(a.signed(key, &body())));
    let t = Instant::now();
    let taken = loop {
        if let Some((0, at)) = claim().await {
            break at;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "daemon A never claimed the key:\n{}",
            a.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The gateway gives up on A and retries on B while A still works on it.
    let retry = tokio::spawn(answer(b.signed(key, &body())));
    tokio::time::sleep(BEYOND_TTL).await;
    assert_eq!(
        claim().await,
        Some((0, taken)),
        "B took over the claim of a live daemon (A renews it)"
    );
    assert!(!retry.is_finished(), "B answered while A held the claim");

    a.kill();
    let killed = Instant::now();
    tx.rollback().await.unwrap();
    // A's answer died with it.
    assert!(first.await.unwrap().is_err());
    let (status, replayed, v) = retry.await.unwrap().expect("an answer from B");
    let waited = killed.elapsed();
    eprintln!("B answered the retry {waited:?} after A was killed");
    assert_eq!(status, 201, "retry on B: {v}\nB:\n{}", b.logs());
    assert!(!replayed, "{v}");
    assert!(
        waited < PROMPT,
        "B answered {waited:?} after A died (claims must lapse within seconds)"
    );
    // Once answered, the retry is replayed, and stored once.
    let again = post(&b, key).await;
    assert_eq!((again.0, again.1, &again.2), (201, true, &v));
    assert_eq!(stored(&store, key).await, (1, 0));
    store.close().await;
}

/// A claim left by a holder that is gone: taken over once it lapses.
async fn claim_of_a_gone_holder_is_taken_over(db: Db) {
    let (url, _keep) = fresh_url(db).await;
    let key = "call-crashed";
    let sha = hex::encode(Sha256::digest(body().as_bytes()));
    {
        // A request's claim, as the batcher takes it; then the process is
        // gone: no answer, no release, no renewal.
        let gone = Store::open(&url, 2).await.unwrap();
        let owned = gone
            .webhook_record(&[], &[("voice", key, &sha)])
            .await
            .unwrap();
        assert_eq!(owned, vec![true]);
        gone.close().await;
    }
    let claimed = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let d = Daemon::start(work.path(), &url, "").await;
    let (status, replayed, v) = post(&d, key).await;
    let waited = claimed.elapsed();
    eprintln!("the retry was answered {waited:?} after the claim");
    assert_eq!(status, 201, "{v}\n{}", d.logs());
    assert!(!replayed, "{v}");
    assert!(waited < PROMPT, "answered {waited:?} after the holder died");
    let again = post(&d, key).await;
    assert_eq!((again.0, again.1, &again.2), (201, true, &v));
    let store = Store::open(&url, 2).await.unwrap();
    assert_eq!(stored(&store, key).await, (1, 0));
    store.close().await;
}

both_backends!(claim_of_a_gone_holder_is_taken_over);
