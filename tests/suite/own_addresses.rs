//! Our own addresses in every spelling (issue 10, item 6), concurrent imports
//! on PostgreSQL without deadlocks, and outgoing headers free of control
//! characters (item 11), through the real pipeline on both databases.

use crate::smtp;

use crate::common::{mail, Db, Harness, TestDb};
use crate::http_common::{assert_problem, Server};
use intake::identity::{ContactPoint, EmailAddress, PhoneNumber};
use intake::model::{Contact, Inbound, OutcomeKind, RawMail};
use intake::pipeline::{Pipeline, Settings};
use intake::store::Store;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;
use tracing::instrument::WithSubscriber;

/// Our addresses besides the desk's `support@desk.test`: a mailbox with an
/// IDN address and the notification sender on a domain of its own.
const OURS: &str = r#"
[smtp]
host = "127.0.0.1"
port = 1
tls = "none"
from = "notify@mail.desk-notify.test"

[[mailboxes]]
name = "support"
host = "127.0.0.1"
port = 143
tls = "none"
username = "u"
password = "p"
address = "Hilfe@Bücher.Example"
"#;

/// Our addresses and domains as stored, normalised.
const OUR_ADDRESSES: &[&str] = &[
    "support@desk.test",
    "hilfe@xn--bcher-kva.example",
    "notify@mail.desk-notify.test",
];
const OUR_DOMAINS: &[&str] = &["desk.test", "xn--bcher-kva.example", "desk-notify.test"];

/// Every spelling a customer could pose with, the exact forms first.
const SPELLINGS: &[&str] = &[
    "support@desk.test",
    "hilfe@bücher.example",
    "notify@mail.desk-notify.test",
    "support@desk.test.",
    "hilfe@bücher.example.",
    "notify@mail.desk-notify.test.",
    "support@ｄｅｓｋ.test",
    "support@ＤＥＳＫ．ＴＥＳＴ",
    "ｓｕｐｐｏｒｔ@desk.test",
    "SUPPORT@DESK.TEST",
    "SuPPort@Desk.Test",
    "HILFE@BÜCHER.EXAMPLE",
    "HILFE@XN--BCHER-KVA.EXAMPLE",
    "hilfe@xn--bcher-kva.example.",
    "Notify@Mail.Desk-Notify.Test",
];

async fn rows(store: &Store, sql: &str) -> Vec<String> {
    sqlx::query(sql)
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

/// No user holds one of our addresses, no organization one of our domains,
/// no ticket lists one of our addresses as a participant.
async fn assert_nothing_of_ours_stored(h: &Harness) {
    let store = h.store();
    let identities = rows(store, "SELECT value FROM identities").await;
    let participants = rows(store, "SELECT address FROM ticket_participants").await;
    for a in OUR_ADDRESSES {
        assert!(
            !identities.iter().any(|v| v == a),
            "a user holds {a}: {identities:?}"
        );
        assert!(
            !participants.iter().any(|v| v == a),
            "{a} is a participant: {participants:?}"
        );
    }
    let domains = rows(store, "SELECT domain FROM organization_domains").await;
    for d in OUR_DOMAINS {
        assert!(
            !domains.iter().any(|v| v == d),
            "an organization owns {d}: {domains:?}"
        );
    }
}

/// Mail from any spelling of our addresses, or naming them in loop headers,
/// is quarantined as a loop, exactly as mail from the exact form.
async fn every_spelling_is_ours(db: Db) {
    let h = Harness::with(db, OURS).await;
    for (i, from) in SPELLINGS.iter().enumerate() {
        let raw = mail(
            &format!("Desk <{from}>"),
            "Re: hello",
            &format!("sp{i}@x.test"),
            "",
            "x",
        );
        let o = h.mail(&raw).await;
        assert_eq!(o.outcome, OutcomeKind::Quarantined, "{from}: {o:?}");
        let reason = o.reason.clone().unwrap_or_default();
        assert!(reason.starts_with("loop:"), "{from}: {reason}");
    }
    for (i, header) in [
        "X-Loop: SUPPORT@DESK.TEST.",
        "X-Loop: <hilfe@XN--BCHER-KVA.example>",
        "X-Loop: ＤＥＳＫ.test",
        "X-Intake-Loop: DESK.TEST.",
    ]
    .iter()
    .enumerate()
    {
        let raw = mail(
            "Ann <ann@acme.test>",
            "Hi",
            &format!("xl{i}@acme.test"),
            &format!("{header}\n"),
            "x",
        );
        let o = h.mail(&raw).await;
        assert_eq!(o.outcome, OutcomeKind::Quarantined, "{header}: {o:?}");
    }
    assert_nothing_of_ours_stored(&h).await;
    let users = rows(h.store(), "SELECT name FROM users").await;
    assert!(users.is_empty(), "no customer user: {users:?}");
}

/// A colleague writing from our domain is stored without an organization;
/// our addresses copied in any spelling never become participants; a
/// gateway contact naming our address does not attach it to anybody.
async fn our_domains_and_copies(db: Db) {
    let h = Harness::with(db, OURS).await;
    for (i, from) in [
        "ann@desk.test",
        "Bob <bob@BÜCHER.example.>",
        "cy@news.desk-notify.test",
    ]
    .iter()
    .enumerate()
    {
        let o = h
            .mail(&mail(from, "Internal", &format!("c{i}@desk.test"), "", "x"))
            .await;
        assert_eq!(o.outcome, OutcomeKind::Created, "{from}: {o:?}");
    }
    let cc = "Cc: SUPPORT@DESK.TEST., hilfe@ＢÜＣＨＥＲ.example, Notify@mail.desk-notify.test, carol@acme.test\n";
    let o = h
        .mail(&mail("dave@acme.test", "Order", "o1@acme.test", cc, "x"))
        .await;
    assert_eq!(o.outcome, OutcomeKind::Created, "{o:?}");
    let participants = rows(h.store(), "SELECT address FROM ticket_participants").await;
    assert_eq!(participants, vec!["carol@acme.test".to_string()]);
    let orgs = rows(h.store(), "SELECT domain FROM organization_domains").await;
    assert_eq!(
        orgs,
        vec!["acme.test".to_string()],
        "only the customer's domain"
    );

    let contact = |id: &str, contacts: Vec<ContactPoint>| {
        Inbound::Contact(Contact {
            source: "voice".into(),
            channel: "voice".into(),
            contacts,
            name: Some("Caller".into()),
            conversation_id: None,
            subject: "Call".into(),
            message: "hello".into(),
            public: true,
            occurred_at: None,
            attachments: vec![],
            message_id: format!("{id}@desk.test"),
        })
    };
    let ours = |a: &str| ContactPoint::Email(EmailAddress::parse(a).unwrap());
    let phone = ContactPoint::Phone(PhoneNumber::parse("+1 415 555 0100", "US").unwrap());
    let out = h
        .pipeline
        .ingest(
            vec![
                contact("w1", vec![ours("SUPPORT@ｄｅｓｋ.test.")]),
                contact("w2", vec![ours("hilfe@bücher.example"), phone]),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(out[0].outcome, OutcomeKind::Quarantined, "{:?}", out[0]);
    assert!(out[0]
        .reason
        .as_deref()
        .unwrap_or_default()
        .starts_with("loop:"));
    assert_eq!(out[1].outcome, OutcomeKind::Created, "{:?}", out[1]);
    let held = rows(
        h.store(),
        &format!(
            "SELECT value FROM identities WHERE user_id = {}",
            out[1].user_id.unwrap()
        ),
    )
    .await;
    assert_eq!(held, vec!["+14155550100".to_string()]);
    assert_nothing_of_ours_stored(&h).await;
}

/// The admin API and `intake orgs` refuse our domains with a clear error.
async fn own_domains_refused(db: Db) {
    let s = Server::with(db, &format!("{}{OURS}", crate::http_common::extra())).await;
    let post = |path: &str, body: serde_json::Value| {
        let r = s.admin(reqwest::Method::POST, path).json(&body).send();
        async move { r.await.unwrap() }
    };
    let r = post(
        "/v1/organizations",
        serde_json::json!({"name": "Acme", "domains": ["acme.test"]}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    for d in [
        "DESK.TEST.",
        "ｄｅｓｋ.test",
        "mail.desk-notify.test",
        "XN--BCHER-KVA.example",
    ] {
        let r = post(
            "/v1/organizations",
            serde_json::json!({"name": "Us", "domains": [d]}),
        )
        .await;
        assert_problem(r, 422, "the desk's own domain").await;
        let r = post(
            "/v1/organizations/1/domains",
            serde_json::json!({"domain": d}),
        )
        .await;
        assert_problem(r, 422, "the desk's own domain").await;
    }
    // The command line goes through the same check.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("intake.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n{OURS}",
            s.h.db.url
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_intake"))
        .arg("--config")
        .arg(&config)
        .args(["orgs", "add-domain", "1", "Desk.Test."])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("the desk's own domain"),
        "{err}"
    );
    let domains = rows(s.h.store(), "SELECT domain FROM organization_domains").await;
    assert_eq!(domains, vec!["acme.test".to_string()]);
}

/// A gateway contact whose only contact point is one of our addresses is
/// kept in quarantine as a loop and answered 422 (never 500); a retry with
/// the same Idempotency-Key adds no second row, and nobody holds our address.
async fn webhook_contact_from_our_address(db: Db) {
    let s = Server::start(db).await;
    for key in ["k-ours", "k-ours"] {
        let body = serde_json::json!({"contact": {"email": "SUPPORT@desk.test."}, "message": "hi"});
        let r = s.post("voice", &body.to_string(), Some(key)).await;
        assert_problem(r, 422, "contact quarantined").await;
    }
    let held = rows(s.h.store(), "SELECT value FROM identities").await;
    assert!(held.is_empty(), "identities stored: {held:?}");
    let q = rows(s.h.store(), "SELECT reason FROM quarantine").await;
    assert_eq!(
        q.len(),
        1,
        "one quarantine row for the retried request: {q:?}"
    );
    assert!(q[0].starts_with("loop"), "{q:?}");
}

crate::both_backends!(
    every_spelling_is_ours,
    our_domains_and_copies,
    own_domains_refused,
    webhook_contact_from_our_address
);

/// A customer's subject full of control characters reaches the real SMTP
/// server as one clean line.
async fn outgoing_headers_are_clean(db: Db) {
    let sink = smtp::SmtpSink::start();
    let extra = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"support@desk.test\"\ntimeout = 10\n\
         [[triggers]]\nname = \"ack\"\non = \"ticket_created\"\n\
         actions = [{{ type = \"notify_requester\", subject = \"Got it: {{{{ ticket.subject }}}}\", template = \"ok\" }}]\n",
        sink.port
    );
    let h = Harness::with(db, &extra).await;
    let hostile = "Printer\u{0b}broken\u{0c}again\r\nnow\u{2028}please\u{0}ok\u{202E}\u{7f}!";
    let encoded = format!("=?utf-8?b?{}?=", base64_encode(hostile.as_bytes()));
    let raw = format!(
        "From: Ann <ann@acme.test>\nTo: support@desk.test\nSubject: {encoded}\nMessage-ID: <h1@acme.test>\n\
         Date: Sat, 21 Nov 2026 10:00:00 +0000\n\nhello\n"
    );
    let o = h.mail(&raw).await;
    assert_eq!(o.outcome, OutcomeKind::Created, "{o:?}");
    let sent = tokio::time::timeout(
        Duration::from_secs(60),
        intake::notify::drain_once(h.store(), &h.cfg),
    )
    .await
    .expect("sender hangs")
    .unwrap();
    assert_eq!(sent, 1);
    let got = tokio::task::spawn_blocking(move || sink.wait_for(1, 30).remove(0))
        .await
        .unwrap();
    let head = got.raw.split("\r\n\r\n").next().unwrap().to_string();
    assert!(
        !head
            .chars()
            .any(|c| c.is_control() && c != '\r' && c != '\n' && c != '\t'),
        "control character in the header block: {head:?}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(got.raw.as_bytes())
        .expect("the sent mail parses");
    let subject = parsed.subject().unwrap_or_default().to_string();
    assert_eq!(subject, "[#1] Got it: Printer broken again now pleaseok!");
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

crate::both_backends!(outgoing_headers_are_clean);

/// The order each simulated daemon sees the same senders in.
fn order(daemon: usize, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    match daemon % 4 {
        0 => {}
        1 => v.reverse(),
        2 => v.rotate_left(n / 2),
        _ => v.sort_by_key(|j| (j % 2 == 0, std::cmp::Reverse(*j))),
    }
    v
}

/// Several daemons (one pool each) import overlapping batches at once: the
/// same new senders and domains, each in its own order. PostgreSQL's own
/// count of detected deadlocks for the database stays 0, and every sender
/// ends as one user with one organization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_do_not_deadlock() {
    const DAEMONS: usize = 4;
    const ROUNDS: usize = 6;
    const SENDERS: usize = 40;
    let db = TestDb::new(Db::Postgres).await;
    let cfg = crate::common::config(&db.url, "");
    let mut daemons = Vec::new();
    for _ in 0..DAEMONS {
        let store = Store::open(&db.url, 4).await.unwrap();
        daemons.push(Pipeline::new(store, Settings::from_config(&cfg)));
    }
    let logs = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::WARN)
            .finish(),
    );
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(DAEMONS));
        let mut tasks = Vec::new();
        for (d, p) in daemons.iter().enumerate() {
            // Even rounds: a new organization per sender; odd rounds: free-mail
            // senders (contact points only).
            let items: Vec<Inbound> = order(d + round, SENDERS)
                .into_iter()
                .map(|j| {
                    let from = if round % 2 == 0 {
                        format!("C{j} <c{j}@r{round}-org{j}.test>")
                    } else {
                        format!("C{j} <r{round}.c{j}@gmail.com>")
                    };
                    let raw = mail(
                        &from,
                        "Question",
                        &format!("r{round}.d{d}.m{j}@x.test"),
                        "",
                        "x",
                    );
                    Inbound::Mail(RawMail {
                        raw: raw.into_bytes(),
                        mailbox: Some(format!("daemon{d}")),
                        source: "test".into(),
                    })
                })
                .collect();
            let (p, barrier) = (p.clone(), barrier.clone());
            let task = async move {
                barrier.wait().await;
                tokio::time::timeout(Duration::from_secs(120), p.ingest(items, None)).await
            };
            // A retried transaction's warning (with PostgreSQL's detail of a
            // deadlock) shows in the output of a failing run.
            tasks.push(tokio::spawn(task.with_subscriber(logs.clone())));
        }
        for t in tasks {
            let out = t.await.unwrap().expect("ingest hangs").expect("ingest");
            assert!(
                out.iter().all(|o| o.outcome == OutcomeKind::Created),
                "{out:?}"
            );
        }
    }
    let store = &db.store;
    let n = |sql: &'static str| async move {
        sqlx::query(sql)
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get::<i64, _>(0)
    };
    let senders = (ROUNDS * SENDERS) as i64;
    assert_eq!(n("SELECT COUNT(*) FROM identities").await, senders);
    assert_eq!(
        n("SELECT COUNT(*) FROM users").await,
        senders,
        "one user per sender"
    );
    assert_eq!(n("SELECT COUNT(*) FROM organizations").await, senders / 2);
    assert_eq!(
        n("SELECT COUNT(*) FROM users u JOIN identities i ON i.user_id = u.id WHERE i.value LIKE '%-org%' AND u.organization_id IS NULL").await,
        0
    );
    assert_eq!(
        n("SELECT COUNT(*) FROM comments").await,
        senders * DAEMONS as i64
    );
    let mut stores: Vec<&Store> = daemons.iter().map(|p| &p.store).collect();
    stores.push(&db.store);
    let deadlocks = crate::common::pg_deadlocks_when_closed(&db.url, &stores).await;
    assert_eq!(deadlocks, 0, "PostgreSQL detected {deadlocks} deadlocks");
}
