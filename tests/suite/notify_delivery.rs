//! The SMTP sender against a real SMTP server process on both databases:
//! server down then up, 4xx retries, 5xx failures, the rate limit, and two
//! senders sharing one outbox.

use crate::common;
use crate::support::desk;
use crate::support::smtp;

use common::{mail, Db};
use desk::{desk, notifications, ACK};
use intake::notify::{drain_once, try_send_batch, try_send_one, SendOutcome, Sender};
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

/// The rate limit is applied when the sender takes notifications for
/// delivery: queued as pending, the excess is recorded as suppressed.
async fn rate_limit(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(
        db,
        sink.port,
        &format!("[notifications]\nper_recipient_limit = 2\n{ACK}"),
    )
    .await;
    // Two in one batch, two more later: the count spans batches and sends.
    h.mails(&[
        &mail("ada@acme.com", "A", "r1@acme.com", "", "x"),
        &mail("ada@acme.com", "B", "r2@acme.com", "", "x"),
    ])
    .await;
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 2);
    h.mail(&mail("ada@acme.com", "C", "r3@acme.com", "", "x"))
        .await;
    h.mail(&mail("bob@acme.com", "D", "r4@acme.com", "", "x"))
        .await;
    h.mail(&mail("ada@acme.com", "E", "r5@acme.com", "", "x"))
        .await;
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 1);
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
    assert_eq!(st[..2], [("sent", ""), ("sent", "")]);
    assert_eq!(st[2].0, "suppressed");
    assert!(st[2].1.contains("rate limit: 2 per 3600 s"), "{st:?}");
    assert_eq!(st[3], ("sent", ""), "other recipients are not limited");
    assert_eq!(st[4].0, "suppressed", "{st:?}");
    let to: Vec<String> = sink
        .wait_for(3, 5)
        .iter()
        .map(|m| m.rcpt_tos.join(","))
        .collect();
    assert_eq!(
        to.iter().filter(|t| t.contains("ada@acme.com")).count(),
        2,
        "{to:?}"
    );
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 0);
}

/// Two senders on one database taking one recipient's notifications at
/// once: the rate limit holds across them (in-flight rows count).
async fn rate_limit_across_senders(db: Db) {
    let sink = SmtpSink::with(SinkOpts {
        delay_ms: 100,
        ..Default::default()
    });
    let h = desk(
        db,
        sink.port,
        &format!("[notifications]\nper_recipient_limit = 3\n{ACK}"),
    )
    .await;
    let mails: Vec<String> = (0..12)
        .map(|i| {
            mail(
                "ada@acme.com",
                &format!("S{i}"),
                &format!("s{i}@acme.com"),
                "",
                "x",
            )
        })
        .collect();
    h.mails(&mails.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let a = Sender::new(h.store().clone(), &h.cfg).unwrap();
    let b = Sender::new(h.store().clone(), &h.cfg).unwrap();
    let (ra, rb) = tokio::join!(try_send_batch(&a, 4), try_send_batch(&b, 4));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let sent = |r: &[SendOutcome]| {
        r.iter()
            .filter(|o| matches!(o, SendOutcome::Sent(_)))
            .count()
    };
    assert_eq!(sent(&ra) + sent(&rb), 3, "{ra:?} {rb:?}");
    drain_once(h.store(), &h.cfg).await.unwrap();
    let n = notifications(&h.export().await);
    let count = |s: &str| n.iter().filter(|x| x["status"] == s).count();
    assert_eq!(
        (count("sent"), count("suppressed"), count("pending")),
        (3, 9, 0),
        "{n:?}"
    );
    assert_eq!(sink.wait_for(3, 5).len(), 3);
}

async fn senders_deliver_once(db: Db) {
    const N: usize = 40;
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, ACK).await;
    let raws: Vec<String> = (0..N)
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
    // Four senders, each with its own connection pool as separate daemons
    // would have, claiming one row at a time.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = intake::store::Store::open(&h.db.url, 4).await.unwrap();
        let s = Sender::new(store, &h.cfg).unwrap();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            while let SendOutcome::Sent(_) = try_send_one(&s).await.unwrap() {
                sent += 1;
            }
            sent
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, N);
    let got = sink.wait_for(N, 10);
    let mut ids: Vec<String> = got.iter().map(Captured::message_id).collect();
    ids.sort();
    ids.dedup();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        (sink.messages().len(), ids.len()),
        (N, N),
        "each notification delivered exactly once"
    );
}
/// Templates render at send time: one that fails then (it passed the
/// configuration check's sample) marks its row `failed` with the reason, and
/// the others are delivered.
async fn render_failure_at_send_time(db: Db) {
    let sink = SmtpSink::start();
    let tpl = r#"
[[triggers]]
name = "fragile"
on = "ticket_created"
actions = [{ type = "notify_requester", template = "{% if ticket.id > 1 %}{{ ticket.nosuch.deeper }}{% endif %}ok {{ comment.body }}" }]
"#;
    let h = desk(db, sink.port, tpl).await;
    h.mail(&mail("a@cust.test", "One", "f1@cust.test", "", "first"))
        .await;
    h.mail(&mail("b@cust.test", "Two", "f2@cust.test", "", "second"))
        .await;
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 1);
    let n = notifications(&h.export().await);
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(
        (n[0]["status"].as_str(), n[0]["to"].as_str()),
        (Some("sent"), Some("a@cust.test")),
        "{n:?}"
    );
    assert_eq!(
        (n[1]["status"].as_str(), n[1]["attempts"].as_i64()),
        (Some("failed"), Some(1)),
        "{n:?}"
    );
    assert!(
        n[1]["last_error"].as_str().unwrap().contains("template"),
        "{n:?}"
    );
    let got = sink.wait_for(1, 5);
    assert!(got[0].raw.contains("ok first"), "{}", got[0].raw);
    assert_eq!(
        drain_once(h.store(), &h.cfg).await.unwrap(),
        0,
        "a failed row is not retried"
    );
}

/// A row queued before migration 0005 carries its rendered text (no template
/// reference): the sender sends that text as it is.
async fn prerendered_rows_still_send(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, ACK).await;
    h.mail(&mail("old@cust.test", "Old", "o1@cust.test", "", "x"))
        .await;
    sqlx::query("UPDATE outbox SET action_index = NULL, subject = '[#1] Queued before', body_text = 'Rendered at queue time.'")
        .execute(h.store().pool())
        .await
        .unwrap();
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 1);
    let got = sink.wait_for(1, 5);
    assert_eq!(
        got[0].header("Subject").as_deref(),
        Some("[#1] Queued before")
    );
    assert!(
        got[0].raw.contains("Rendered at queue time."),
        "{}",
        got[0].raw
    );
}

/// A ticket made private while its acknowledgement waits (SMTP down) never
/// sends it: the queued row is suppressed, and the sender checks again.
async fn made_private_before_sending(db: Db) {
    let port = free_port();
    let h = desk(db, port, ACK).await;
    let t = h
        .mail(&mail("ada@cust.test", "Secret", "p1@cust.test", "", "x"))
        .await
        .ticket_id
        .unwrap();
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 0);
    h.store().set_ticket_public(t, false).await.unwrap();
    let n = notifications(&h.export().await);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["status"], "suppressed", "{n:?}");
    assert!(n[0]["last_error"].as_str().unwrap().contains("private"));
    let sink = SmtpSink::with(SinkOpts {
        port: Some(port),
        ..Default::default()
    });
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 0);
    assert!(sink.messages().is_empty());
}

both_backends!(
    made_private_before_sending,
    rate_limit_across_senders,
    prerendered_rows_still_send,
    render_failure_at_send_time,
    sink_down_then_up,
    permanent_failure,
    rate_limit,
    senders_deliver_once
);
