//! Tickets an agent opens through the admin API, with the acknowledgement
//! trigger on, against a real SMTP server process, on both databases: a
//! private one notifies nobody until it is published, then exactly once.

use crate::common;
use crate::http_common;
use crate::support::desk;
use crate::support::smtp;

use common::Db;
use desk::{notifications, ACK};
use http_common::*;
use intake::notify::drain_once;
use reqwest::Method;
use serde_json::json;
use smtp::SmtpSink;

async fn admin_private_ticket_notifies_once_published(db: Db) {
    let sink = SmtpSink::start();
    let s = Server::with(
        db,
        &format!("{}{}", extra(), desk::smtp_toml(sink.port, ACK)),
    )
    .await;
    let open = |public: bool| {
        json!({"requester": {"email": "ada@acme.test", "name": "Ada"}, "agent": "grace@desk.test",
               "subject": "Logged call", "comment": "Discussed invoice 42", "public": public})
    };
    let (st, _, private) = parts(
        s.admin(Method::POST, "/v1/tickets")
            .json(&open(false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 201, "{private}");
    let (st, _, public) = parts(
        s.admin(Method::POST, "/v1/tickets")
            .json(&open(true))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 201, "{public}");
    // The public one is acknowledged; the private one is not, whatever the trigger says.
    let n = notifications(&s.h.export().await);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (&n[0]["ticket_id"], n[0]["to"].as_str()),
        (&public["id"], Some("ada@acme.test"))
    );
    assert_eq!(drain_once(s.h.store(), &s.h.cfg).await.unwrap(), 1);
    // Publishing fires the acknowledgement the private ticket skipped, once.
    let path = format!("/v1/tickets/{}", private["id"]);
    let (st, _, t) = parts(
        s.admin(Method::PATCH, &path)
            .json(&json!({"public": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, &t["public"]), (200, &json!(true)), "{t}");
    assert_eq!(drain_once(s.h.store(), &s.h.cfg).await.unwrap(), 1);
    let got = sink.wait_for(2, 5);
    assert!(got.iter().all(|m| m.rcpt_tos == vec!["ada@acme.test"]));
    let subjects: Vec<String> = got.iter().filter_map(|m| m.header("Subject")).collect();
    for id in [&private["id"], &public["id"]] {
        assert!(
            subjects.iter().any(|x| x.contains(&format!("[#{id}]"))),
            "{subjects:?}"
        );
    }
    assert_eq!(drain_once(s.h.store(), &s.h.cfg).await.unwrap(), 0);
    assert_eq!(notifications(&s.h.export().await).len(), 2);
}

both_backends!(admin_private_ticket_notifies_once_published);
