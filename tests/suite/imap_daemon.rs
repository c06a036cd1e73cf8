//! The running daemon against a real Dovecot, on SQLite and PostgreSQL:
//! IDLE push latency, reconnecting after a server restart, one bad mailbox
//! not stopping another, `/readyz` and `/metrics`.

use crate::common;
use crate::support;

use common::{config, Db, TestDb};
use intake::daemon::Daemon;
use intake::sources::imap::State;
use std::time::{Duration, Instant};
use support::dovecot::Dovecot;
use support::{count, eventually, mailbox_toml, numbered};

fn daemon_cfg(url: &str, mailboxes: &str) -> intake::config::Config {
    config(
        url,
        &format!("[http]\nlisten = \"127.0.0.1:0\"\n{mailboxes}"),
    )
}

async fn comments(db: &TestDb) -> i64 {
    count(&db.store, "SELECT COUNT(*) AS n FROM comments").await
}

async fn wait_state(d: &Daemon, name: &str, want: State, secs: u64) -> bool {
    eventually(secs, || async {
        d.registry
            .snapshot()
            .iter()
            .any(|s| s.mailbox == name && s.state == want)
    })
    .await
}

async fn idle_push_stores_new_mail_within_two_seconds(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let tdb = TestDb::new(db).await;
    // A long poll interval: only IDLE can deliver within 2 s.
    let mb = mailbox_toml(
        "support",
        dc.port,
        "support",
        "supportpw",
        "idle = true\npoll_interval = 600",
    );
    let d = Daemon::start(daemon_cfg(&tdb.url, &mb)).await.unwrap();
    assert!(
        wait_state(&d, "support", State::Idle, 10).await,
        "{:?}",
        d.registry.snapshot()
    );
    for i in 0..3 {
        let t = Instant::now();
        dc.deliver("support", "INBOX", &numbered(i, 1));
        assert!(
            eventually(2, || async { comments(&tdb).await == i as i64 + 1 }).await,
            "message {i} not stored within 2 s"
        );
        eprintln!("IDLE latency {i}: {:?}", t.elapsed());
        assert!(wait_state(&d, "support", State::Idle, 5).await);
    }
    // readyz is 200 with every mailbox idle; metrics count the stored mail.
    let url = format!("http://{}", d.addr);
    let r = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["mailboxes"][0]["state"], "idle", "{body}");
    let m = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("intake_messages_stored_total{mailbox=\"support\",class=\"normal\"}"),
        "{m}"
    );
    assert!(m.contains("intake_ingest_latency_seconds_bucket"), "{m}");
    assert!(m.contains("intake_mailbox_lag_messages"), "{m}");
    let t = Instant::now();
    d.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        t.elapsed()
    );
}

async fn reconnects_after_the_server_restarts(db: Db) {
    let mut dc = Dovecot::start(&[("support", "supportpw")]);
    let tdb = TestDb::new(db).await;
    let mb = mailbox_toml("support", dc.port, "support", "supportpw", "idle = true");
    let d = Daemon::start(daemon_cfg(&tdb.url, &mb)).await.unwrap();
    dc.deliver("support", "INBOX", &numbered(0, 2));
    assert!(eventually(10, || async { comments(&tdb).await == 2 }).await);
    dc.stop();
    assert!(
        wait_state(&d, "support", State::BackingOff, 10).await,
        "{:?}",
        d.registry.snapshot()
    );
    let r = reqwest::get(format!("http://{}/readyz", d.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    dc.deliver("support", "INBOX", &numbered(2, 3));
    dc.restart();
    assert!(
        eventually(20, || async { comments(&tdb).await == 5 }).await,
        "{:?}",
        d.registry.snapshot()
    );
    let st = d.registry.snapshot().remove(0);
    assert!(st.reconnects >= 1, "{st:?}");
    // Recovered: the error of the outage is cleared.
    let cleared = || async { d.registry.snapshot()[0].last_error.is_none() };
    assert!(eventually(10, cleared).await, "{:?}", d.registry.snapshot());
    let m = reqwest::get(format!("http://{}/metrics", d.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("intake_mailbox_reconnects_total{mailbox=\"support\"}"),
        "{m}"
    );
    d.shutdown().await;
    assert_eq!(comments(&tdb).await, 5);
}

async fn wrong_password_on_one_mailbox_does_not_stop_another(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw"), ("other", "otherpw")]);
    let tdb = TestDb::new(db).await;
    let mbs = format!(
        "{}{}",
        mailbox_toml("good", dc.port, "support", "supportpw", "idle = true"),
        mailbox_toml(
            "bad",
            dc.port,
            "other",
            "WRONG",
            "idle = true\ntimeout = 20"
        )
    );
    dc.deliver("support", "INBOX", &numbered(0, 3));
    dc.deliver("other", "INBOX", &numbered(100, 2));
    let d = Daemon::start(daemon_cfg(&tdb.url, &mbs)).await.unwrap();
    assert!(eventually(10, || async { comments(&tdb).await == 3 }).await);
    assert!(wait_state(&d, "bad", State::BackingOff, 10).await);
    let bad = d
        .registry
        .snapshot()
        .into_iter()
        .find(|s| s.mailbox == "bad")
        .unwrap();
    assert!(
        bad.last_error
            .as_deref()
            .unwrap_or("")
            .contains("authentication"),
        "{bad:?}"
    );
    dc.deliver("support", "INBOX", &numbered(3, 1));
    assert!(eventually(5, || async { comments(&tdb).await == 4 }).await);
    let r = reqwest::get(format!("http://{}/readyz", d.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    // Between attempts the bad mailbox is backing off; during one it is
    // (re)connecting: either way not ready, and its error is shown.
    let bad = body["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mailbox"] == "bad")
        .unwrap()
        .clone();
    assert!(
        !matches!(bad["state"].as_str(), Some("idle" | "connected")),
        "{body}"
    );
    assert!(
        bad["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("authentication"),
        "{body}"
    );
    d.shutdown().await;
    // --once semantics: the drain fails (exit 1) but the good mailbox is imported.
    dc.deliver("support", "INBOX", &numbered(4, 1));
    let cfg = daemon_cfg(&tdb.url, &mbs);
    let p = intake::pipeline::Pipeline::new(
        tdb.store.clone(),
        intake::pipeline::Settings::from_config(&cfg),
    );
    assert!(!intake::daemon::drain_once(&cfg, &p, &Default::default()).await);
    assert_eq!(comments(&tdb).await, 5);
}

both_backends!(
    idle_push_stores_new_mail_within_two_seconds,
    reconnects_after_the_server_restarts,
    wrong_password_on_one_mailbox_does_not_stop_another,
);
