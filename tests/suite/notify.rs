//! Triggers and the outbox against a real SMTP server process
//! (tests/fixtures/smtp_sink.py) on both databases: what is notified, what
//! never is, threading of replies, bounces and desk-to-desk loops.

use crate::common;
use crate::support::desk;
use crate::support::smtp;

use common::{mail, Db};
use desk::{comments_of, desk, notifications, reply_to, ACK};
use intake::identity::ContactPoint;
use intake::model::{Contact, Inbound, OutcomeKind, RawMail};
use intake::notify::drain_once;
use serde_json::Value;
use smtp::{Captured, SmtpSink};

async fn customer_loop(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, ACK).await;
    let o = h
        .mail(&mail(
            "Ada Lovelace <ada@acme.com>",
            "Printer on fire",
            "m1@acme.com",
            "",
            "Help!",
        ))
        .await;
    let t = o.ticket_id.unwrap();
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 1);
    let got = sink.wait_for(1, 5);
    let ack = &got[0];
    assert_eq!(ack.rcpt_tos, vec!["ada@acme.com"]);
    let subject = ack.header("Subject").unwrap();
    assert!(
        subject.contains(&format!("[#{t}]")) && subject.contains("Printer on fire"),
        "{subject}"
    );
    assert_eq!(
        ack.header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        ack.header("X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert_eq!(ack.header("X-Intake-Loop").as_deref(), Some("desk.test"));
    assert_eq!(ack.header("In-Reply-To").as_deref(), Some("<m1@acme.com>"));
    assert_eq!(ack.header("References").as_deref(), Some("<m1@acme.com>"));
    assert_eq!(ack.header("Reply-To").as_deref(), Some("help@desk.test"));
    assert!(
        ack.message_id().ends_with(&format!(".{t}@desk.test")),
        "{}",
        ack.message_id()
    );
    assert!(ack.raw.contains("Hello Ada Lovelace"), "{}", ack.raw);
    // The customer replies to the acknowledgement: same ticket, public, no second acknowledgement.
    let r = h
        .mail(&reply_to(
            ack,
            "ada@acme.com",
            "m2@acme.com",
            "Still burning",
        ))
        .await;
    assert_eq!(
        (r.outcome, r.ticket_id, r.public, r.flag.clone()),
        (OutcomeKind::Appended, Some(t), Some(true), None)
    );
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 0);
    let doc = h.export().await;
    let n = notifications(&doc);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (
            n[0]["status"].as_str(),
            n[0]["to"].as_str().or(n[0]["to_addr"].as_str())
        ),
        (Some("sent"), Some("ada@acme.com")),
        "{n:?}"
    );
    assert_eq!(n[0]["message_id"].as_str().unwrap(), ack.message_id());
    assert_eq!(sink.messages().len(), 1);
}

fn contact(email: &str, public: bool, mid: &str) -> Inbound {
    Inbound::Contact(Contact {
        source: "form".into(),
        channel: "web".into(),
        contacts: vec![ContactPoint::parse_any(email, "US").unwrap()],
        name: Some("Grace".into()),
        conversation_id: None,
        subject: "From the form".into(),
        message: "hello".into(),
        public,
        occurred_at: None,
        attachments: vec![],
        message_id: mid.into(),
    })
}

const COMMENT_ACK: &str = r#"
[[triggers]]
name = "acknowledge"
on = "ticket_created"
actions = [{ type = "notify_requester", template = "got it" }]

[[triggers]]
name = "comment ack"
on = "comment_added"
actions = [{ type = "notify_requester", template = "comment" }, { type = "notify", to = "agent@team.test", template = "new comment on {{ ticket.tag }}" }]
"#;

async fn nothing_for_automatic_private_or_internal(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, COMMENT_ACK).await;
    // A private ticket (webhook public: false).
    let private = h
        .pipeline
        .ingest(vec![contact("grace@navy.test", false, "c1@form")], None)
        .await
        .unwrap()
        .remove(0);
    // Out-of-office and list mail open tickets but never notify; a DSN that
    // returns none of our notifications is kept for ops, no ticket.
    let ooo = h
        .mail(&mail(
            "bob@beta.test",
            "Out of Office: hi",
            "a1@beta.test",
            "Auto-Submitted: auto-replied\n",
            "away",
        ))
        .await;
    let list = h
        .mail(&mail(
            "news@lists.test",
            "Weekly news",
            "l1@lists.test",
            "List-Id: <news.lists.test>\nList-Unsubscribe: <mailto:u@lists.test>\n",
            "news",
        ))
        .await;
    let dsn = h
        .mail(&mail(
            "MAILER-DAEMON@mx.beta.test",
            "Undelivered Mail Returned to Sender",
            "d1@mx.beta.test",
            "",
            "could not deliver",
        ))
        .await;
    for o in [&ooo, &list] {
        assert!(o.ticket_id.is_some(), "{o:?}");
    }
    assert_eq!(
        (dsn.outcome, dsn.ticket_id),
        (OutcomeKind::Kept, None),
        "{dsn:?}"
    );
    assert_eq!(
        h.export().await["notifications"].as_array().unwrap().len(),
        0,
        "automatic mail and private tickets notify nobody"
    );
    // A normal ticket gets its acknowledgement; a stranger's message on it is an internal note: nothing.
    let t = h
        .mail(&mail("ada@acme.com", "Question", "q1@acme.com", "", "?"))
        .await
        .ticket_id
        .unwrap();
    assert_eq!(notifications(&h.export().await).len(), 1);
    let note = h
        .mail(&mail(
            "eve@evil.test",
            "Re: Question",
            "e1@evil.test",
            "In-Reply-To: <q1@acme.com>\n",
            "hi",
        ))
        .await;
    assert_eq!((note.ticket_id, note.public), (Some(t), Some(false)));
    assert_eq!(
        notifications(&h.export().await).len(),
        1,
        "an internal note notifies nobody"
    );
    // The requester's own comment fires both comment actions (enabled here).
    h.mail(&mail(
        "ada@acme.com",
        "Re: Question",
        "q2@acme.com",
        "In-Reply-To: <q1@acme.com>\n",
        "more",
    ))
    .await;
    let n = notifications(&h.export().await);
    assert_eq!(n.len(), 3, "{n:?}");
    // Publishing the private ticket sends the acknowledgement it skipped, once.
    let pt = private.ticket_id.unwrap();
    h.pipeline.set_ticket_public(pt, true).await.unwrap();
    let n = notifications(&h.export().await);
    let for_private: Vec<&Value> = n.iter().filter(|x| x["ticket_id"] == pt).collect();
    assert_eq!(for_private.len(), 1, "{n:?}");
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 4);
    let got = sink.wait_for(4, 5);
    assert!(got.iter().any(|m| m.rcpt_tos == vec!["grace@navy.test"]));
    assert!(
        got.iter()
            .all(|m| m.header("In-Reply-To").is_none() || m.rcpt_tos != vec!["grace@navy.test"]),
        "a web form has no Message-ID to answer"
    );
}
fn dsn(to_desk: &str, returned: &Captured) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.com>\nTo: {to_desk}\nSubject: Undelivered Mail Returned to Sender\n\
Date: Sat, 21 Nov 2026 10:05:00 +0000\nMessage-ID: <dsn1@mx.acme.com>\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\n\
<ada@acme.com>: mailbox does not exist\n\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.acme.com\n\n\
Final-Recipient: rfc822; ada@acme.com\nAction: failed\nStatus: 5.1.1\n\n--B\nContent-Type: text/rfc822-headers\n\n\
From: support@desk.test\nTo: ada@acme.com\nSubject: {}\nMessage-ID: <{}>\n\n--B--\n",
        returned.header("Subject").unwrap(),
        returned.message_id()
    )
}

async fn bounce_marks_undeliverable(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, ACK).await;
    let t = h
        .mail(&mail("ada@acme.com", "Hello", "h1@acme.com", "", "x"))
        .await
        .ticket_id
        .unwrap();
    drain_once(h.store(), &h.cfg).await.unwrap();
    let ack = sink.wait_for(1, 5).remove(0);
    let b = h.mail(&dsn("support@desk.test", &ack)).await;
    assert_eq!(b.class, Some(intake::classify::MailClass::Bounce));
    assert_eq!(
        (b.ticket_id, b.public),
        (Some(t), Some(false)),
        "the bounce is an internal note on the notification's ticket: {b:?}"
    );
    let doc = h.export().await;
    let c = comments_of(&doc, t);
    assert_eq!(c.len(), 2);
    assert!(notifications(&doc)[0]["last_error"]
        .as_str()
        .unwrap_or("")
        .contains("bounced"));
    // The address is undeliverable now: the next acknowledgement is held back
    // when the sender takes it.
    h.mail(&mail("ada@acme.com", "Another", "h2@acme.com", "", "x"))
        .await;
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 0);
    assert_eq!(sink.messages().len(), 1, "nothing more was sent");
    let n = notifications(&h.export().await);
    assert_eq!(n[1]["status"], "suppressed");
    assert!(
        n[1]["last_error"]
            .as_str()
            .unwrap()
            .contains("undeliverable"),
        "{n:?}"
    );
}

/// A delivery report that returns no Message-ID of ours (its original cut
/// off by the remote mail system) still names the failed recipients: a
/// permanent failure for an address we notified marks it undeliverable; an
/// address we never wrote to, or a mere delay, silences nobody.
async fn report_without_our_message_id_marks_notified_recipients(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, ACK).await;
    h.mail(&mail("ada@acme.com", "Hello", "h1@acme.com", "", "x"))
        .await;
    h.mail(&mail("carl@acme.com", "Hello", "h3@acme.com", "", "x"))
        .await;
    drain_once(h.store(), &h.cfg).await.unwrap();
    sink.wait_for(2, 5);
    let report = "From: Mail Delivery System <MAILER-DAEMON@mx.acme.com>\nTo: support@desk.test\n\
Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn2@mx.acme.com>\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\n\
gone\n\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.acme.com\n\n\
Final-Recipient: rfc822; ADA@acme.com\nAction: failed\nStatus: 5.1.1\n\n\
Final-Recipient: rfc822; bob@acme.com\nAction: failed\nStatus: 5.1.1\n\n\
Final-Recipient: rfc822; carl@acme.com\nAction: delayed\nStatus: 4.4.7\n\n--B--\n";
    let b = h.mail(report).await;
    assert_eq!(b.class, Some(intake::classify::MailClass::Bounce));
    for (who, mid) in [("ada", "h2"), ("bob", "b1"), ("carl", "h4")] {
        h.mail(&mail(
            &format!("{who}@acme.com"),
            "Again",
            &format!("{mid}@acme.com"),
            "",
            "x",
        ))
        .await;
    }
    drain_once(h.store(), &h.cfg).await.unwrap();
    let n = notifications(&h.export().await);
    let status = |to: &str| -> Vec<String> {
        n.iter()
            .filter(|x| x["to"] == to)
            .map(|x| x["status"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(status("ada@acme.com"), ["sent", "suppressed"], "{n:?}");
    assert_eq!(
        status("bob@acme.com"),
        ["sent"],
        "never notified before: {n:?}"
    );
    assert_eq!(status("carl@acme.com"), ["sent", "sent"], "a delay: {n:?}");
}

fn desk_config(url: &str, domain: &str, port: u16) -> intake::config::Config {
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"{domain}\"\naddresses = [\"support@{domain}\"]\n\
[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"support@{domain}\"\n{ACK}"
    );
    intake::app::config_from_toml(&text).unwrap()
}

async fn two_desks_stop(db: Db) {
    use intake::pipeline::{Pipeline, Settings};
    let (sa, sb) = (SmtpSink::start(), SmtpSink::start());
    let (da, db2) = (common::TestDb::new(db).await, common::TestDb::new(db).await);
    let (ca, cb) = (
        desk_config(&da.url, "desk-a.test", sa.port),
        desk_config(&db2.url, "desk-b.test", sb.port),
    );
    let (pa, pb) = (
        Pipeline::new(da.store.clone(), Settings::from_config(&ca)),
        Pipeline::new(db2.store.clone(), Settings::from_config(&cb)),
    );
    let feed = |p: &Pipeline, raw: String| {
        let p = p.clone();
        async move {
            p.ingest(
                vec![Inbound::Mail(RawMail {
                    raw: raw.into_bytes(),
                    mailbox: None,
                    source: "test".into(),
                })],
                None,
            )
            .await
            .unwrap()
            .remove(0)
        }
    };
    // Desk B writes to desk A (a person at B, from B's support address).
    feed(
        &pa,
        mail(
            "support@desk-b.test",
            "Question from B",
            "start@desk-b.test",
            "",
            "hi",
        ),
    )
    .await;
    let (mut seen_a, mut seen_b) = (0, 0);
    for _round in 0..5 {
        drain_once(&da.store, &ca).await.unwrap();
        drain_once(&db2.store, &cb).await.unwrap();
        let (ma, mb) = (sa.messages(), sb.messages());
        for m in &ma[seen_a..] {
            feed(&pb, m.raw.clone()).await; // A's acknowledgement reaches B
        }
        for m in &mb[seen_b..] {
            feed(&pa, m.raw.clone()).await;
        }
        (seen_a, seen_b) = (ma.len(), mb.len());
    }
    assert_eq!(
        (seen_a, seen_b),
        (1, 0),
        "A acknowledges once; B never answers an auto-reply"
    );
    // The acknowledgement fed back to A itself is recognised as A's own loop.
    let back = feed(&pa, sa.messages()[0].raw.clone()).await;
    assert_eq!(back.outcome, OutcomeKind::Quarantined);
}
const ROUTE: &str = r#"
[[triggers]]
name = "route acme"
on = "ticket_created"
conditions = { organization = ["Acme"] }
actions = [{ type = "set", assignee = "alice", group = "acme-team", tag = "vip" }, { type = "notify", to = "alice@team.test", template = "New from {{ organization.name }}: {{ ticket.tag }}" }]
"#;

async fn routing_by_organization(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, ROUTE).await;
    h.store()
        .create_organization("Acme", &["acme.com".into()])
        .await
        .unwrap();
    let t = h
        .mail(&mail("ada@acme.com", "Routed", "ro1@acme.com", "", "x"))
        .await
        .ticket_id
        .unwrap();
    let other = h
        .mail(&mail(
            "bob@beta.test",
            "Not routed",
            "ro2@beta.test",
            "",
            "x",
        ))
        .await
        .ticket_id
        .unwrap();
    let doc = h.export().await;
    let tk = |id: i64| {
        doc["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (tk(t)["assignee"].as_str(), tk(t)["group"].as_str()),
        (Some("alice"), Some("acme-team")),
        "{}",
        tk(t)
    );
    assert_eq!(tk(t)["tags"], serde_json::json!(["vip"]));
    assert!(tk(other)["assignee"].is_null());
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 1);
    let got = sink.wait_for(1, 5);
    assert_eq!(got[0].rcpt_tos, vec!["alice@team.test"]);
    assert!(
        got[0].raw.contains(&format!("New from Acme: [#{t}]")),
        "{}",
        got[0].raw
    );
}

/// A reply that kept only our Message-ID in its References (no tag in the
/// subject) threads to the acknowledgement's ticket; a Message-ID of our
/// shape naming that ticket but not one we sent threads nowhere.
async fn reply_threads_by_our_message_id(db: Db) {
    let sink = SmtpSink::start();
    let h = desk(db, sink.port, ACK).await;
    let t = h
        .mail(&mail("ada@acme.com", "Printer", "q1@acme.com", "", "x"))
        .await
        .ticket_id
        .unwrap();
    drain_once(h.store(), &h.cfg).await.unwrap();
    let ack = sink.wait_for(1, 5).remove(0);
    let refs = |mid: &str| format!("References: <{mid}>\n");
    let r = h
        .mail(&mail(
            "ada@acme.com",
            "About my printer",
            "q2@acme.com",
            &refs(&ack.message_id()),
            "y",
        ))
        .await;
    assert_eq!((r.outcome, r.ticket_id), (OutcomeKind::Appended, Some(t)));
    // Same shape, same ticket, another random part: not ours.
    let mut forged = ack.message_id();
    let flip = if forged.starts_with('0') { "1" } else { "0" };
    forged.replace_range(0..1, flip);
    let f = h
        .mail(&mail(
            "ada@acme.com",
            "Something else",
            "q3@acme.com",
            &refs(&forged),
            "z",
        ))
        .await;
    assert_eq!(f.outcome, OutcomeKind::Created, "{f:?}");
    assert_ne!(f.ticket_id, Some(t));
}

/// A trigger that would write to one of our own addresses (a loop with
/// ourselves) is recorded as suppressed when queued and never sent.
async fn never_our_own_address(db: Db) {
    let sink = SmtpSink::start();
    let own = r#"
[[triggers]]
name = "tell support"
on = "ticket_created"
actions = [{ type = "notify", to = "Support@Desk.test", template = "new ticket {{ ticket.tag }}" }]
"#;
    let h = desk(db, sink.port, own).await;
    h.mail(&mail("ada@acme.com", "Hello", "own1@acme.com", "", "x"))
        .await;
    let n = notifications(&h.export().await);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["status"], "suppressed", "{n:?}");
    assert_eq!(n[0]["last_error"], "our own address");
    assert_eq!(drain_once(h.store(), &h.cfg).await.unwrap(), 0);
    assert!(sink.messages().is_empty());
}

both_backends!(
    customer_loop,
    never_our_own_address,
    reply_threads_by_our_message_id,
    nothing_for_automatic_private_or_internal,
    bounce_marks_undeliverable,
    report_without_our_message_id_marks_notified_recipients,
    two_desks_stop,
    routing_by_organization,
);

#[test]
fn check_config_reports_trigger_problems_with_lines() {
    let text = "[desk]\ndomain = \"d.test\"\n\n[[triggers]]\nname = \"ok\"\non = \"ticket_created\"\nactions = [{ type = \"notify_requester\", template = \"hi\" }]\n\n\
[[triggers]]\nname = \"bad\"\non = \"ticket_closed\"\nconditions = { colour = \"red\" }\nactions = [{ type = \"notify_requester\", template = \"{{ ticket.id \" }]\n";
    let err = intake::app::config_from_toml(text).unwrap_err();
    let msg: Vec<String> = err.iter().map(ToString::to_string).collect();
    assert!(
        err.iter()
            .any(|p| p.line == Some(11) && p.message.contains("ticket_closed")),
        "{msg:?}"
    );
    assert!(
        err.iter()
            .any(|p| p.line == Some(12) && p.message.contains("colour")),
        "{msg:?}"
    );
    assert!(
        err.iter()
            .any(|p| p.line == Some(13) && p.message.contains("template")),
        "{msg:?}"
    );
    assert_eq!(err.len(), 3, "{msg:?}");
}
