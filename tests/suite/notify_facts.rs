//! What triggers see of an event, on both databases: the store tells most of
//! it from the batch in memory and the notifier reads the rest. Debug builds
//! (this suite) check every batch's facts against the database inside the
//! store; these tests drive every path of that through real ingestion.

use crate::common;
use crate::support::desk;

use common::{mail, Db, Harness};
use desk::{desk, notifications, ACK};
use intake::identity::ContactPoint;
use intake::model::{Contact, Inbound, RawMail};
use serde_json::Value;

/// Acknowledge new requests and the requester's comments; tell an agent
/// about comments from Acme's new customers; tag what new customers open.
const TRIGGERS: &str = r#"
[[triggers]]
name = "acknowledge"
on = "ticket_created"
actions = [{ type = "notify_requester", template = "got it" }]

[[triggers]]
name = "comment ack"
on = "comment_added"
actions = [{ type = "notify_requester", template = "comment on {{ ticket.tag }}" }]

[[triggers]]
name = "acme comment"
on = "comment_added"
conditions = { organization = ["Acme"], requester_is_new = true }
actions = [{ type = "notify", to = "agent@team.test", template = "acme" }]

[[triggers]]
name = "newcomer"
on = "ticket_created"
conditions = { requester_is_new = true }
actions = [{ type = "set", tag = "newcomer" }]
"#;

fn rows_for(doc: &Value, ticket: i64) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = notifications(doc)
        .iter()
        .filter(|n| n["ticket_id"] == ticket)
        .map(|n| {
            (
                n["trigger"].as_str().unwrap_or_default().to_string(),
                n["to"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pair(trigger: &str, to: &str) -> (String, String) {
    (trigger.to_string(), to.to_string())
}

async fn requester_addresses(db: Db) {
    let h = desk(db, 9, TRIGGERS).await;
    h.store()
        .create_organization("Acme", &["acme.com".into()])
        .await
        .unwrap();
    // Ada's first request, copying her colleague Bob (a participant).
    let first = h
        .mail(&mail(
            "Ada <ada@acme.com>",
            "Printer",
            "p1@acme.com",
            "Cc: bob@acme.com\n",
            "on fire",
        ))
        .await;
    let t1 = first.ticket_id.unwrap();
    // Ada's profile is older than anything opened from here on (timestamps
    // are milliseconds).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // A second profile for Ada, merged into the first: she now has two addresses.
    let other = h
        .mail(&mail(
            "Ada <ada.l@acme.com>",
            "Badge",
            "b1@acme.com",
            "",
            "lost",
        ))
        .await;
    h.store()
        .merge_users(other.user_id.unwrap(), first.user_id.unwrap())
        .await
        .unwrap();
    // She writes from her second address: that is where the answer goes.
    let t3 = h
        .mail(&mail(
            "Ada <ada.l@acme.com>",
            "Laptop",
            "l1@acme.com",
            "",
            "slow",
        ))
        .await
        .ticket_id
        .unwrap();
    // Bob comments on her first ticket: Ada is told at her first address;
    // she was new when that ticket was opened, so the Acme agent hears too.
    let bob = h
        .mail(&mail(
            "bob@acme.com",
            "Re: Printer",
            "p2@acme.com",
            "In-Reply-To: <p1@acme.com>\n",
            "still burning",
        ))
        .await;
    assert_eq!((bob.ticket_id, bob.public), (Some(t1), Some(true)));
    // Ada answers on the badge ticket from her first address.
    let t2 = other.ticket_id.unwrap();
    h.mail(&mail(
        "ada@acme.com",
        "Re: Badge",
        "b2@acme.com",
        "In-Reply-To: <b1@acme.com>\n",
        "found it",
    ))
    .await;
    let doc = h.export().await;
    assert_eq!(
        rows_for(&doc, t1),
        vec![
            pair("acknowledge", "ada@acme.com"),
            pair("acme comment", "agent@team.test"),
            pair("comment ack", "ada@acme.com"),
        ]
    );
    assert_eq!(
        rows_for(&doc, t3),
        vec![pair("acknowledge", "ada.l@acme.com")]
    );
    // The badge ticket's requester is Ada's older profile now: not new.
    assert_eq!(
        rows_for(&doc, t2),
        vec![
            pair("acknowledge", "ada.l@acme.com"),
            pair("comment ack", "ada@acme.com"),
        ]
    );
    let tags = |t: i64| {
        doc["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == t)
            .unwrap()["tags"]
            .clone()
    };
    assert_eq!(tags(t1), serde_json::json!(["newcomer"]));
    assert_eq!(tags(t3), serde_json::json!([]), "Ada was known by then");
}

/// A caller known only by phone has no address: nothing is queued for
/// them, until a later contact in the same batch gives their profile one.
async fn caller_without_email(db: Db) {
    let h = desk(db, 9, TRIGGERS).await;
    let call = |mid: &str, contacts: Vec<ContactPoint>| {
        Inbound::Contact(Contact {
            source: "voice".into(),
            channel: "voice".into(),
            contacts,
            name: Some("Caller".into()),
            conversation_id: None,
            subject: "Call".into(),
            message: "called".into(),
            public: true,
            occurred_at: None,
            attachments: vec![],
            message_id: mid.into(),
        })
    };
    let phone = || ContactPoint::parse_any("+44 20 7946 0001", "GB").unwrap();
    let email = ContactPoint::parse_any("caller@example.org", "GB").unwrap();
    let out = h
        .pipeline
        .ingest(
            vec![
                call("v1@voice", vec![phone()]),
                call("v2@voice", vec![phone(), email]),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(out[0].user_id, out[1].user_id);
    let doc = h.export().await;
    // The first call's ticket sees the address the batch gave its new
    // requester; the second call's ticket was written from it.
    for o in &out {
        assert_eq!(
            rows_for(&doc, o.ticket_id.unwrap()),
            vec![pair("acknowledge", "caller@example.org")]
        );
    }
    // A new caller with a phone only: nobody to write to.
    let lone = h
        .pipeline
        .ingest(
            vec![call(
                "v3@voice",
                vec![ContactPoint::parse_any("+44 20 7946 0002", "GB").unwrap()],
            )],
            None,
        )
        .await
        .unwrap()
        .remove(0);
    assert!(rows_for(&h.export().await, lone.ticket_id.unwrap()).is_empty());
}

/// The support-mail corpus (bench/gen_corpus.py: 300 senders over 50
/// domains, replies, colleagues, auto-replies, broken mail) through the
/// pipeline in batches, once with triggers the batch's memory answers alone
/// and once with conditions that need the database; the store's debug check
/// compares every event's facts with the database.
async fn memory_matches_database_on_a_corpus(db: Db) {
    if !cfg!(debug_assertions) {
        eprintln!("release build: the store's memory-versus-database check is compiled out");
    }
    let dir = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("python3")
        .args(["bench/gen_corpus.py", dir.path().to_str().unwrap()])
        .args(["--count", "1200", "--seed", "7"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3");
    assert!(st.success());
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    for triggers in [ACK, TRIGGERS] {
        let h = Harness::with(db, &desk::smtp_toml(9, triggers)).await;
        for chunk in files.chunks(150) {
            let items = chunk
                .iter()
                .map(|p| {
                    Inbound::Mail(RawMail {
                        raw: std::fs::read(p).unwrap(),
                        mailbox: Some("support".into()),
                        source: "test".into(),
                    })
                })
                .collect();
            h.pipeline.ingest(items, None).await.unwrap();
        }
        let doc = h.export().await;
        let n = notifications(&doc);
        let count = |trigger: &str| n.iter().filter(|x| x["trigger"] == trigger).count();
        let tickets = doc["tickets"].as_array().unwrap().len();
        // Every new ticket from a customer with an address is acknowledged
        // (pending, or suppressed by the rate limit), automatic mail aside.
        assert!(
            count("acknowledge new request") + count("acknowledge") > tickets / 2,
            "{tickets} tickets, {} notifications",
            n.len()
        );
        if triggers == TRIGGERS {
            assert!(count("comment ack") > 100, "{}", count("comment ack"));
        }
    }
}

both_backends!(
    requester_addresses,
    caller_without_email,
    memory_matches_database_on_a_corpus,
);
