//! The SMTP sender against a real SMTP server process on both databases:
//! server down then up, 4xx retries, 5xx failures, the rate limit, and two
//! senders sharing one outbox.

mod common;
#[path = "support/desk.rs"]
mod desk;
#[path = "support/smtp.rs"]
mod smtp;

use common::{mail, Db};
use desk::{desk, notifications, ACK};
use intake::notify::{drain_once, try_send_one, SendOutcome, Sender};
use smtp::{free_port, Captured, SinkOpts, SmtpSink};

async fn sink_down_then_up(db: Db) {
    let port = free_port();
    let h = desk(db, port, ACK).await;
    for i in 0..3 {
        h.mail(&mail(
            &format!("c{i}@cust.test"),
            &format!("S{i}"),
            &format!("s{i}@cust.test"),
            "",
            "x",
        ))
        .await;
    }
    assert_eq!(
        drain_once(h.store(), &h.cfg).await.unwrap(),
        0,
        "nothing can be sent while the server is down"
    );
    let n = notifications(&h.export().await);
    assert!(
        n.iter()
            .all(|x| x["status"] == "pending" && x["attempts"] == 1 && !x["last_error"].is_null()),
        "{n:?}"
    );
    // Up again, answering the first DATA with 451: everything is delivered exactly once.
    let sink = SmtpSink::with(SinkOpts {
        port: Some(port),
        tempfail_first: 1,
        ..Default::default()
    });
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        drain_once(h.store(), &h.cfg).await.unwrap(),
        2,
        "one got a 451"
    );
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 1);
    let got = sink.wait_for(3, 5);
    let mut ids: Vec<String> = got.iter().map(Captured::message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let n = notifications(&h.export().await);
    assert!(n.iter().all(|x| x["status"] == "sent"), "{n:?}");
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 0);
    assert_eq!(sink.messages().len(), 3);
}

async fn permanent_failure(db: Db) {
    let sink = SmtpSink::with(SinkOpts {
        reject_rcpt: Some("^<?bad@".into()),
        ..Default::default()
    });
    let h = desk(db, sink.port, ACK).await;
    h.mail(&mail("bad@cust.test", "S", "b1@cust.test", "", "x"))
        .await;
    let s = Sender::new(h.store().clone(), &h.cfg).unwrap();
    assert!(
        matches!(try_send_one(&s).await.unwrap(), SendOutcome::Failed(_, ref e) if e.contains("550"))
    );
    assert_eq!(
        try_send_one(&s).await.unwrap(),
        SendOutcome::Empty,
        "a 550 is not retried"
    );
    let n = notifications(&h.export().await);
    assert_eq!(
        (n[0]["status"].as_str(), n[0]["attempts"].as_i64()),
        (Some("failed"), Some(1))
    );
    assert!(
        n[0]["last_error"].as_str().unwrap().contains("550"),
        "{n:?}"
    );
    assert!(sink.messages().is_empty());
}

async fn rate_limit(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(
        db,
        sink.port,
        &format!("[notifications]\nper_recipient_limit = 2\n{ACK}"),
    )
    .await;
    // Two in one batch, two more later: the count spans batches.
    h.mails(&[
        &mail("ada@acme.com", "A", "r1@acme.com", "", "x"),
        &mail("ada@acme.com", "B", "r2@acme.com", "", "x"),
    ])
    .await;
    h.mail(&mail("ada@acme.com", "C", "r3@acme.com", "", "x"))
        .await;
    h.mail(&mail("bob@acme.com", "D", "r4@acme.com", "", "x"))
        .await;
    let n = notifications(&h.export().await);
    let st: Vec<(&str, &str)> = n
        .iter()
        .map(|x| {
            (
                x["status"].as_str().unwrap(),
                x["last_error"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(st[..2], [("pending", ""), ("pending", "")]);
    assert_eq!(st[2].0, "suppressed");
    assert!(st[2].1.contains("rate limit"), "{st:?}");
    assert_eq!(st[3], ("pending", ""), "other recipients are not limited");
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 3);
}
async fn senders_deliver_once(db: Db) {
    let sink = SmtpSink::with(SinkOpts {
        delay_ms: 5,
        ..Default::default()
    });
    let h = desk(db, sink.port, ACK).await;
    let raws: Vec<String> = (0..20)
        .map(|i| {
            mail(
                &format!("p{i}@cust.test"),
                "S",
                &format!("pp{i}@cust.test"),
                "",
                "x",
            )
        })
        .collect();
    h.mails(&raws.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let (s1, s2) = (
        Sender::new(h.store().clone(), &h.cfg).unwrap(),
        Sender::new(h.store().clone(), &h.cfg).unwrap(),
    );
    let (a, b) = tokio::join!(intake::notify::drain(&s1), intake::notify::drain(&s2));
    assert_eq!(a.unwrap() + b.unwrap(), 20);
    let got = sink.wait_for(20, 10);
    let mut ids: Vec<String> = got.iter().map(Captured::message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (got.len(), ids.len()),
        (20, 20),
        "each notification delivered exactly once"
    );
}
both_backends!(
    sink_down_then_up,
    permanent_failure,
    rate_limit,
    senders_deliver_once
);

/// Ingestion throughput with and without the acknowledgement trigger (SMTP
/// server slowed to 50 ms per message, sender running meanwhile), and the
/// outbox drain rate. Run: `cargo test --release --test notify_delivery -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_ingest_with_triggers() {
    const N: usize = 2000;
    let sink = SmtpSink::with(SinkOpts {
        delay_ms: 50,
        ..Default::default()
    });
    let mut rates = Vec::new();
    for (label, extra) in [("without triggers", ""), ("with acknowledgement", ACK)] {
        let h = desk(Db::Sqlite, sink.port, extra).await;
        let raws: Vec<String> = (0..N)
            .map(|i| {
                mail(
                    &format!("c{i}@cust{}.test", i % 50),
                    &format!("S{i}"),
                    &format!("b{i}@cust.test"),
                    "",
                    "x",
                )
            })
            .collect();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let sender = tokio::spawn(intake::notify::run_sender(
            h.store().clone(),
            std::sync::Arc::new(h.cfg.clone()),
            rx,
        ));
        let t = std::time::Instant::now();
        for chunk in raws.chunks(200) {
            h.mails(&chunk.iter().map(String::as_str).collect::<Vec<_>>())
                .await;
        }
        let rate = N as f64 / t.elapsed().as_secs_f64();
        stop.send(true).unwrap();
        sender.await.unwrap().unwrap();
        println!("ingest {label}: {rate:.0} msg/s");
        rates.push(rate);
    }
    println!("ratio: {:.2}", rates[1] / rates[0]);
    let h = desk(Db::Sqlite, sink.port, ACK).await;
    for i in 0..40 {
        h.mail(&mail(
            &format!("d{i}@cust.test"),
            "S",
            &format!("d{i}@cust.test"),
            "",
            "x",
        ))
        .await;
    }
    let t = std::time::Instant::now();
    let sent = drain_once(h.store(), &h.cfg).await.unwrap();
    println!(
        "drain: {sent} in {:.2}s = {:.1}/s (one sender, 50 ms server)",
        t.elapsed().as_secs_f64(),
        sent as f64 / t.elapsed().as_secs_f64()
    );
}
