//! The core pipeline against a real database, on SQLite and PostgreSQL:
//! users, organizations, threading, hijack, duplicates, quarantine.

use crate::common;

use common::{mail, Db, Harness};
use intake::model::OutcomeKind::*;
use serde_json::Value;

fn ticket(doc: &Value, id: i64) -> &Value {
    doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .expect("ticket")
}

fn user_of(doc: &Value, email: &str) -> Value {
    doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| {
            u["identities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["value"] == email)
        })
        .cloned()
        .unwrap_or(Value::Null)
}

async fn customer_lifecycle(db: Db) {
    let h = Harness::new(db).await;
    let first = h
        .mail(&mail(
            "Ada Lovelace <Ada@Acme.com>",
            "Printer on fire",
            "m1@acme.com",
            "",
            "Help",
        ))
        .await;
    assert_eq!(first.outcome, Created);
    let t = first.ticket_id.unwrap();
    // Reply by In-Reply-To, then by References only.
    let r1 = h
        .mail(&mail(
            "ada@acme.com",
            "Re: Printer on fire",
            "m2@acme.com",
            "In-Reply-To: <m1@acme.com>\n",
            "more",
        ))
        .await;
    let r2 = h
        .mail(&mail(
            "ada@acme.com",
            "Re: Re: Printer",
            "m3@acme.com",
            "References: <m1@acme.com> <m2@acme.com>\n",
            "still",
        ))
        .await;
    assert_eq!(
        (r1.outcome, r1.ticket_id, r1.public),
        (Appended, Some(t), Some(true))
    );
    assert_eq!((r2.outcome, r2.ticket_id), (Appended, Some(t)));
    // A colleague joins the same organization; a gmail user joins none.
    let col = h
        .mail(&mail(
            "Bob <bob@eu.mail.acme.com>",
            "Other issue",
            "m4@acme.com",
            "",
            "x",
        ))
        .await;
    let gm = h
        .mail(&mail(
            "Carl <carl@gmail.com>",
            "Hi",
            "m5@gmail.com",
            "",
            "x",
        ))
        .await;
    assert_eq!(col.outcome, Created);
    assert_ne!(col.ticket_id, first.ticket_id);
    let doc = h.export().await;
    let ada = user_of(&doc, "ada@acme.com");
    let bob = user_of(&doc, "bob@eu.mail.acme.com");
    assert_eq!(ada["name"], "Ada Lovelace");
    assert!(ada["organization_id"].is_i64());
    assert_eq!(ada["organization_id"], bob["organization_id"]);
    assert!(user_of(&doc, "carl@gmail.com")["organization_id"].is_null());
    assert_eq!(gm.outcome, Created);
    let orgs = doc["organizations"].as_array().unwrap();
    assert_eq!(orgs.len(), 1, "{orgs:?}");
    assert_eq!(orgs[0]["domains"][0], "acme.com");
    let tk = ticket(&doc, t);
    assert_eq!(tk["comments"].as_array().unwrap().len(), 3);
    assert_eq!(tk["status"], "new");
    assert_eq!(tk["public"], true);
    assert_eq!(tk["organization_id"], ada["organization_id"]);
}

/// A reply committed in the same batch as the message it answers threads to it.
async fn replies_thread_within_one_batch(db: Db) {
    let h = Harness::new(db).await;
    let out = h
        .mails(&[
            &mail("ada@acme.com", "Q", "b1@acme.com", "", "x"),
            &mail(
                "ada@acme.com",
                "Re: Q",
                "b2@acme.com",
                "In-Reply-To: <b1@acme.com>\n",
                "x",
            ),
            &mail(
                "ada@acme.com",
                "Re: Q",
                "b3@acme.com",
                "References: <b1@acme.com> <b2@acme.com>\n",
                "x",
            ),
        ])
        .await;
    assert_eq!(
        out.iter().map(|o| o.outcome).collect::<Vec<_>>(),
        vec![Created, Appended, Appended]
    );
    assert!(out.iter().all(|o| o.ticket_id == out[0].ticket_id));
}

fn contact(conv: &str, public: bool, n: u32) -> intake::model::Inbound {
    intake::model::Inbound::Contact(intake::model::Contact {
        source: "voice".into(),
        channel: "voice".into(),
        contacts: vec![intake::identity::ContactPoint::Phone(
            intake::identity::PhoneNumber::parse("+1 415 555 0100", "US").unwrap(),
        )],
        name: Some("Ada".into()),
        conversation_id: Some(conv.into()),
        subject: "Call".into(),
        message: format!("call note {n}"),
        public,
        occurred_at: None,
        attachments: vec![],
        message_id: format!("wh.voice.{conv}.{n}@desk.test"),
    })
}

/// A gateway conversation threads by its id; once its ticket is closed the
/// next contact opens a linked follow-up that then holds the conversation; a
/// private note on a public conversation stays internal.
async fn conversations_follow_up_and_private_notes(db: Db) {
    let h = Harness::new(db).await;
    let first = h
        .pipeline
        .ingest(vec![contact("c-1", true, 1)], None)
        .await
        .unwrap()
        .remove(0);
    let t = first.ticket_id.unwrap();
    let note = h
        .pipeline
        .ingest(vec![contact("c-1", false, 2)], None)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (note.outcome, note.ticket_id, note.public),
        (Appended, Some(t), Some(false))
    );
    h.store().set_ticket_status(t, "closed").await.unwrap();
    let fu = h
        .pipeline
        .ingest(vec![contact("c-1", true, 3)], None)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((fu.outcome, fu.follow_up_of), (Created, Some(t)));
    let next = h
        .pipeline
        .ingest(vec![contact("c-1", true, 4)], None)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((next.outcome, next.ticket_id), (Appended, fu.ticket_id));
    assert_eq!(
        ticket(&h.export().await, t)["comments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

async fn tag_threads_and_subject_alone_does_not(db: Db) {
    let h = Harness::new(db).await;
    let t = h
        .mail(&mail(
            "ada@acme.com",
            "Invoice question",
            "a1@acme.com",
            "",
            "x",
        ))
        .await
        .ticket_id
        .unwrap();
    // Hand-typed tag, no references (freescout#2921).
    let tagged = h
        .mail(&mail(
            "ada@acme.com",
            &format!("About [#{t}] again"),
            "a2@acme.com",
            "",
            "x",
        ))
        .await;
    assert_eq!((tagged.outcome, tagged.ticket_id), (Appended, Some(t)));
    // Same subject, no references, no tag: a new ticket (failure 13).
    let same = h
        .mail(&mail(
            "ada@acme.com",
            "Invoice question",
            "a3@acme.com",
            "",
            "x",
        ))
        .await;
    assert_eq!(same.outcome, Created);
    // In-Reply-To to a message sent outside the help desk, References to ours (failure 12).
    let chain = h
        .mail(&mail("ada@acme.com", "Re: x", "a4@acme.com", "In-Reply-To: <outlook-123@acme.com>\nReferences: <a1@acme.com> <outlook-123@acme.com>\n", "x"))
        .await;
    assert_eq!(chain.ticket_id, Some(t));
    // A tag naming a ticket that does not exist is ignored.
    let ghost = h
        .mail(&mail(
            "ada@acme.com",
            "Re: [#999999] x",
            "a5@acme.com",
            "",
            "x",
        ))
        .await;
    assert_eq!(ghost.outcome, Created);
}

async fn strangers_cannot_hijack(db: Db) {
    let h = Harness::new(db).await;
    let t = h
        .mail(&mail(
            "ada@acme.com",
            "Secret contract",
            "h1@acme.com",
            "Cc: Dan <dan@partner.org>\n",
            "x",
        ))
        .await
        .ticket_id
        .unwrap();
    // Stranger quoting the tag, then the references (zammad#2444, #5064).
    let by_tag = h
        .mail(&mail(
            "eve@evil.example",
            &format!("Re: [#{t}] Secret contract"),
            "h2@evil.example",
            "",
            "x",
        ))
        .await;
    let by_ref = h
        .mail(&mail(
            "eve@evil.example",
            "Re: Secret",
            "h3@evil.example",
            "References: <h1@acme.com>\n",
            "x",
        ))
        .await;
    for o in [&by_tag, &by_ref] {
        assert_eq!(
            (o.outcome, o.ticket_id, o.public),
            (Appended, Some(t), Some(false)),
            "{o:?}"
        );
        assert!(o.flag.as_deref().unwrap().contains("not a participant"));
    }
    // Someone copied on the ticket is a participant.
    let cc = h
        .mail(&mail(
            "dan@partner.org",
            "Re: Secret",
            "h4@partner.org",
            "In-Reply-To: <h1@acme.com>\n",
            "x",
        ))
        .await;
    assert_eq!(
        (cc.ticket_id, cc.public, cc.flag.clone()),
        (Some(t), Some(true), None)
    );
    // The stranger's note stays internal and does not reopen anything.
    let doc = h.export().await;
    let comments = ticket(&doc, t)["comments"].as_array().unwrap().clone();
    assert_eq!(comments.iter().filter(|c| c["public"] == false).count(), 2);
}

async fn closed_ticket_gets_follow_up(db: Db) {
    let h = Harness::new(db).await;
    let t = h
        .mail(&mail("ada@acme.com", "Old", "c1@acme.com", "", "x"))
        .await
        .ticket_id
        .unwrap();
    h.store().set_ticket_status(t, "solved").await.unwrap();
    let reopen = h
        .mail(&mail(
            "ada@acme.com",
            "Re: Old",
            "c2@acme.com",
            "In-Reply-To: <c1@acme.com>\n",
            "x",
        ))
        .await;
    assert_eq!(reopen.ticket_id, Some(t));
    assert_eq!(ticket(&h.export().await, t)["status"], "open");
    h.store().set_ticket_status(t, "closed").await.unwrap();
    let fu = h
        .mail(&mail(
            "ada@acme.com",
            "Re: Old",
            "c3@acme.com",
            "In-Reply-To: <c1@acme.com>\n",
            "x",
        ))
        .await;
    assert_eq!((fu.outcome, fu.follow_up_of), (Created, Some(t)));
    assert_eq!(ticket(&h.export().await, t)["status"], "closed");
    let stranger = h
        .mail(&mail(
            "eve@evil.example",
            "Re: Old",
            "c4@x.example",
            "In-Reply-To: <c1@acme.com>\n",
            "x",
        ))
        .await;
    assert_eq!((stranger.outcome, stranger.follow_up_of), (Created, None));
}

async fn auto_replies_never_reopen(db: Db) {
    let h = Harness::new(db).await;
    let t = h
        .mail(&mail("ada@acme.com", "Q", "o1@acme.com", "", "x"))
        .await
        .ticket_id
        .unwrap();
    h.store().set_ticket_status(t, "solved").await.unwrap();
    let ooo = h
        .mail(&mail(
            "ada@acme.com",
            "Automatic reply: Q",
            "o2@acme.com",
            "In-Reply-To: <o1@acme.com>\nAuto-Submitted: auto-replied\n",
            "away",
        ))
        .await;
    assert_eq!(
        (ooo.ticket_id, ooo.class.map(|c| c.as_str())),
        (Some(t), Some("auto_reply"))
    );
    assert_eq!(ticket(&h.export().await, t)["status"], "solved");
}

async fn duplicates_are_stored_once(db: Db) {
    let h = Harness::new(db).await;
    let m = mail("ada@acme.com", "Dup", "d1@acme.com", "", "x");
    // The same mail via two support addresses (failure 2), in one batch and across batches.
    let out = h.mails(&[&m, &m]).await;
    assert_eq!((out[0].outcome, out[1].outcome), (Created, Duplicate));
    assert_eq!(h.mail(&m).await.outcome, Duplicate);
    // Without a Message-ID, re-delivered with different trace headers (failure 1).
    let bare = mail("ada@acme.com", "No id", "", "", "body");
    let a = h
        .mail(&format!(
            "Received: from a by b; Sat, 21 Nov 2026 10:00:01 +0000\n{bare}"
        ))
        .await;
    let b = h.mail(&format!("Received: from c by d; Sat, 21 Nov 2026 10:05:00 +0000\nDelivered-To: other@desk.test\n{bare}")).await;
    assert_eq!((a.outcome, b.outcome), (Created, Duplicate));
    let doc = h.export().await;
    let n: usize = doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["comments"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, 2);
}

async fn poison_is_quarantined_and_batch_continues(db: Db) {
    let h = Harness::with(db, "[limits]\nmax_message_bytes = 2000\n").await;
    let big = mail("ada@acme.com", "Big", "q2@acme.com", "", &"x".repeat(5000));
    let out = h
        .mails(&[
            "\u{0}\u{1}garbage without headers",
            &big,
            &mail("ada@acme.com", "Fine", "q3@acme.com", "", "ok"),
            &mail(
                "Support <SUPPORT@desk.test>",
                "loop",
                "q4@desk.test",
                "",
                "x",
            ),
        ])
        .await;
    assert_eq!(
        out.iter().map(|o| o.outcome).collect::<Vec<_>>(),
        vec![Quarantined, Quarantined, Created, Quarantined]
    );
    assert!(
        out[1].reason.as_deref().unwrap().contains("limit"),
        "{:?}",
        out[1]
    );
    assert!(
        out[3].reason.as_deref().unwrap().contains("loop"),
        "{:?}",
        out[3]
    );
    let q = h.store().quarantine_list().await.unwrap();
    assert_eq!(q.len(), 3);
    // Quarantining the same bytes again keeps one entry.
    assert_eq!(h.mail(&big).await.quarantine_id, out[1].quarantine_id);
    assert_eq!(h.store().quarantine_list().await.unwrap().len(), 3);
    let (_, raw) = h
        .store()
        .quarantine_get(out[1].quarantine_id.unwrap())
        .await
        .unwrap();
    assert_eq!(raw, big.as_bytes());
}

async fn replay_after_fixing_the_limit(db: Db) {
    let h = Harness::with(db, "[limits]\nmax_message_bytes = 2000\n").await;
    let big = mail("ada@acme.com", "Big", "r1@acme.com", "", &"y".repeat(5000));
    let id = h.mail(&big).await.quarantine_id.unwrap();
    assert_eq!(h.pipeline.replay(id).await.unwrap().outcome, Quarantined);
    let cfg = common::config(&h.db.url, "");
    let p = intake::pipeline::Pipeline::new(
        h.store().clone(),
        intake::pipeline::Settings::from_config(&cfg),
    );
    assert_eq!(p.replay(id).await.unwrap().outcome, Created);
    let e = h.store().quarantine_list().await.unwrap().remove(0);
    assert_eq!(e.status, "replayed");
    assert_eq!(p.replay(id).await.unwrap().outcome, Duplicate);
}

async fn merge_moves_everything(db: Db) {
    let h = Harness::new(db).await;
    let a = h
        .mail(&mail("ada@acme.com", "A", "u1@acme.com", "", "x"))
        .await;
    let b = h
        .mail(&mail("ada.l@gmail.com", "B", "u2@gmail.com", "", "x"))
        .await;
    let (loser, winner) = (b.user_id.unwrap(), a.user_id.unwrap());
    assert_ne!(loser, winner);
    let w = h.store().merge_users(loser, winner).await.unwrap();
    assert_eq!(w.identities.len(), 2);
    let later = h
        .mail(&mail("ada.l@gmail.com", "C", "u3@gmail.com", "", "x"))
        .await;
    assert_eq!(later.user_id, Some(winner));
    let doc = h.export().await;
    assert_eq!(ticket(&doc, b.ticket_id.unwrap())["requester_id"], winner);
    let l = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == loser)
        .unwrap()
        .clone();
    assert_eq!(l["merged_into"], winner);
    // Reply on the loser's old ticket from the winner's other address is a participant's.
    let r = h
        .mail(&mail(
            "ada@acme.com",
            "Re: B",
            "u4@acme.com",
            "In-Reply-To: <u2@gmail.com>\n",
            "x",
        ))
        .await;
    assert_eq!((r.ticket_id, r.public), (b.ticket_id, Some(true)));
    assert!(h.store().merge_users(loser, winner).await.is_err());
    assert!(h.store().merge_users(winner, winner).await.is_err());
}

async fn domains_and_auto_create(db: Db) {
    let h = Harness::with(
        db,
        "[organizations]\nauto_create = false\nfree_mail_domains = [\"corp-free.example\"]\n",
    )
    .await;
    h.mail(&mail("x@newco.example", "A", "o1@newco.example", "", "x"))
        .await;
    h.mail(&mail(
        "y@mail.newco.example",
        "B",
        "o2@newco.example",
        "",
        "x",
    ))
    .await;
    let doc = h.export().await;
    assert!(doc["organizations"].as_array().unwrap().is_empty());
    assert!(user_of(&doc, "x@newco.example")["organization_id"].is_null());
    let org = h
        .store()
        .create_organization("NewCo", &["other.example".into()])
        .await
        .unwrap();
    assert_eq!(h.store().add_domain(org, "newco.example").await.unwrap(), 2);
    let doc = h.export().await;
    assert_eq!(
        user_of(&doc, "y@mail.newco.example")["organization_id"],
        org
    );
    // A new customer of that domain joins it directly.
    let z = h
        .mail(&mail("z@newco.example", "C", "o3@newco.example", "", "x"))
        .await;
    assert_eq!(
        user_of(&h.export().await, "z@newco.example")["id"],
        z.user_id.unwrap()
    );
    assert_eq!(
        user_of(&h.export().await, "z@newco.example")["organization_id"],
        org
    );
    // A domain belongs to one organization.
    let other = h.store().create_organization("Other", &[]).await.unwrap();
    assert!(h.store().add_domain(other, "newco.example").await.is_err());
}

/// With automatic organizations on, a domain can still be given to an
/// operator's organization: it moves from the one created for it, with its
/// users; free-mail domains are refused.
async fn domain_moves_from_auto_created_org(db: Db) {
    let h = Harness::new(db).await;
    let ada = h
        .mail(&mail("ada@acme.com", "A", "m1@acme.com", "", "x"))
        .await;
    let auto_org = user_of(&h.export().await, "ada@acme.com")["organization_id"]
        .as_i64()
        .unwrap();
    let corp = h
        .pipeline
        .create_organization("ACME Corporation", &["acme.com".into()])
        .await
        .unwrap();
    assert_ne!(corp, auto_org);
    let doc = h.export().await;
    assert_eq!(user_of(&doc, "ada@acme.com")["organization_id"], corp);
    let later = h
        .mail(&mail("bob@acme.com", "B", "m2@acme.com", "", "x"))
        .await;
    assert_eq!(
        user_of(&h.export().await, "bob@acme.com")["organization_id"],
        corp
    );
    assert_ne!(later.user_id, ada.user_id);
    // An operator's organization keeps its domain.
    let other = h.pipeline.create_organization("Other", &[]).await.unwrap();
    assert!(matches!(
        h.pipeline.add_domain(other, "acme.com").await,
        Err(intake::store::StoreError::Domain(
            intake::model::DomainError::Conflict(_)
        ))
    ));
    assert!(matches!(
        h.pipeline.add_domain(other, "gmail.com").await,
        Err(intake::store::StoreError::Domain(
            intake::model::DomainError::Invalid(_)
        ))
    ));
    assert!(h
        .pipeline
        .create_organization("Yahoo", &["yahoo.co.uk".into()])
        .await
        .is_err());
}

async fn private_and_public(db: Db) {
    let h = Harness::new(db).await;
    let t = h
        .mail(&mail("ada@acme.com", "P", "p1@acme.com", "", "x"))
        .await
        .ticket_id
        .unwrap();
    h.store().set_ticket_public(t, false).await.unwrap();
    let r = h
        .mail(&mail(
            "ada@acme.com",
            "Re: P",
            "p2@acme.com",
            "In-Reply-To: <p1@acme.com>\n",
            "x",
        ))
        .await;
    assert_eq!(
        r.public,
        Some(false),
        "comments on a private ticket are internal"
    );
    h.store().set_ticket_public(t, true).await.unwrap();
    let doc = h.export().await;
    let kinds: Vec<&str> = ticket(&doc, t)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"ticket_made_private") && kinds.contains(&"ticket_published"),
        "{kinds:?}"
    );
    // Two public comments now: it can no longer become private.
    assert!(matches!(
        h.store().set_ticket_public(t, false).await,
        Err(intake::store::StoreError::Domain(
            intake::model::DomainError::Conflict(_)
        ))
    ));
}

async fn concurrent_creation_makes_one_row(db: Db) {
    let h = Harness::new(db).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        // Separate stores: separate connections (and, on SQLite, separate write locks).
        let store = intake::store::Store::open(&h.db.url, 2).await.unwrap();
        let p =
            intake::pipeline::Pipeline::new(store, intake::pipeline::Settings::from_config(&h.cfg));
        let m = mail(
            "Race <race@racing.example>",
            "go",
            &format!("race{i}@racing.example"),
            "",
            "x",
        );
        tasks.push(tokio::spawn(async move {
            p.ingest(
                vec![intake::model::Inbound::Mail(intake::model::RawMail {
                    raw: m.into_bytes(),
                    mailbox: None,
                    source: "t".into(),
                })],
                None,
            )
            .await
            .unwrap()
        }));
    }
    let mut users = std::collections::HashSet::new();
    for t in tasks {
        users.insert(t.await.unwrap()[0].user_id.unwrap());
    }
    assert_eq!(users.len(), 1, "one contact point, one user");
    let doc = h.export().await;
    assert_eq!(doc["organizations"].as_array().unwrap().len(), 1);
    assert_eq!(doc["users"].as_array().unwrap().len(), 1);
}

both_backends!(
    domain_moves_from_auto_created_org,
    conversations_follow_up_and_private_notes,
    replies_thread_within_one_batch,
    customer_lifecycle,
    tag_threads_and_subject_alone_does_not,
    strangers_cannot_hijack,
    closed_ticket_gets_follow_up,
    auto_replies_never_reopen,
    duplicates_are_stored_once,
    poison_is_quarantined_and_batch_continues,
    replay_after_fixing_the_limit,
    merge_moves_everything,
    domains_and_auto_create,
    private_and_public,
    concurrent_creation_makes_one_row,
);
