//! Gateway contacts under concurrency, over real HTTP on SQLite and
//! PostgreSQL: 100 concurrent posts for one new caller, 100 copies of one
//! idempotent request, and the per-source rate limit.

use crate::common;
use crate::http_common;

use common::Db;
use http_common::*;
use serde_json::json;

fn call(phone: &str, conv: Option<&str>) -> String {
    let mut v = json!({"contact": {"phone": phone, "name": "Ada Lovelace"}, "subject": "Missed call",
                       "message": "Caller asked about invoice 42"});
    if let Some(c) = conv {
        v["conversation_id"] = json!(c);
    }
    v.to_string()
}

async fn concurrent_posts_one_user_one_ticket(db: Db) {
    let s = std::sync::Arc::new(Server::start(db).await);
    // 100 distinct requests (own keys) in one conversation.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let r = s
                .post(
                    "voice",
                    &call("+1 415 555 0177", Some("conv-1")),
                    Some(&format!("k{i}")),
                )
                .await;
            parts(r).await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (st, _, v) = t.await.unwrap();
        assert!(st == 200 || st == 201, "{st} {v}");
        created += (st == 201) as usize;
    }
    assert_eq!(created, 1);
    let doc = s.h.export().await;
    assert_eq!(s.counts().await, (1, 1));
    assert_eq!(doc["tickets"][0]["comments"].as_array().unwrap().len(), 100);
    // 100 copies of one request (same key): stored once, one answer for all.
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            parts(
                s.post("voice", &call("+1 415 555 0188", None), Some("same"))
                    .await,
            )
            .await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(
        answers.iter().all(|a| a.0 == 201 && a.2 == answers[0].2),
        "{:?}",
        answers.iter().find(|a| a.2 != answers[0].2)
    );
    assert_eq!(s.counts().await, (2, 2));
}

async fn rate_limit_then_recovery(db: Db) {
    let s = Server::start(db).await;
    for i in 0..2 {
        assert_eq!(
            s.post("slow", &call("+14155550100", None), None)
                .await
                .status(),
            201,
            "request {i}"
        );
    }
    let r = s
        .post("slow", &call("+14155550100", None), Some("k-limited"))
        .await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_problem(r, 429, "rate limit").await;
    assert_eq!(s.counts().await.1, 2, "429 must store nothing");
    // Other sources have their own budget.
    assert_eq!(
        s.post("voice", &call("+14155550100", None), None)
            .await
            .status(),
        201
    );
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    assert_eq!(
        s.post("slow", &call("+14155550100", None), Some("k-limited"))
            .await
            .status(),
        201
    );
    assert_eq!(s.counts().await.1, 4);
}

both_backends!(
    concurrent_posts_one_user_one_ticket,
    rate_limit_then_recovery
);
