//! Erasure on request, tested as a regulator would, on both databases: a
//! customer who wrote by mail (with an attachment), called through a
//! gateway, had a mail quarantined and was acknowledged is erased; then a
//! byte scan of the SQLite file, its WAL and everything beside it (on
//! PostgreSQL, every row of every table, as text and as hex) finds neither
//! their email address, their phone number nor a sentence only they wrote.
//! Their tickets and other people's comments stay, the requester shown as
//! an erased user, and a later mail from the same address makes a new,
//! unrelated user.

use crate::common::{mail, Db, Harness};
use crate::support::desk::ACK;
use intake::identity::ContactPoint;
use intake::model::{Contact, Inbound};
use sqlx::Row;

const ADDRESS: &str = "greta.lind@unique-corp.example";
const PHONE: &str = "+14155550199";
const SENTENCE: &str = "The zebra quartz wobbles at midnight 7731";
const ATTACHED: &str = "Quokka ledger 5512 belongs to Greta";

fn greta_with_attachment() -> String {
    format!(
        "From: Greta Lind <{ADDRESS}>\nTo: support@desk.test\nSubject: Zebra quartz problem\nMessage-ID: <g1@unique-corp.example>\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\n{SENTENCE}.\n--b\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: attachment; filename=notes.txt\n\n{ATTACHED}\n--b--\n"
    )
}

/// Every needle in its plain and its hex spelling (PostgreSQL shows bytea
/// as hex).
fn needles() -> Vec<String> {
    [ADDRESS, PHONE, SENTENCE, ATTACHED]
        .iter()
        .flat_map(|n| [n.to_string(), hex::encode(n.as_bytes())])
        .collect()
}

/// Every file under `dir` that holds a needle.
fn scan_files(dir: &std::path::Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            scan_files(&p, found);
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        for n in [ADDRESS, PHONE, SENTENCE, ATTACHED] {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                found.push(format!("{n:?} in {}", p.display()));
            }
        }
    }
}

async fn scan(h: &Harness, db: Db) -> Vec<String> {
    let mut found = Vec::new();
    // The blob store, on both databases (on SQLite it sits beside the file
    // and the walk below covers it too).
    let blobs = h.store().blobs().dir().expect("a filesystem blob store");
    scan_files(&blobs, &mut found);
    match db {
        Db::Sqlite => {
            let url = &h.db.url;
            let path = std::path::PathBuf::from(url.trim_start_matches("sqlite://"));
            scan_files(path.parent().unwrap(), &mut found);
        }
        Db::Postgres => {
            let pool = h.store().pool();
            let tables: Vec<String> = sqlx::query(
                "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("t").unwrap())
            .collect();
            for t in tables {
                let rows = sqlx::query(&format!("SELECT x::text AS row FROM \"{t}\" x"))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                for r in rows {
                    let text: String = r.try_get("row").unwrap();
                    for n in needles() {
                        if text.contains(&n) {
                            found.push(format!("{n:?} in table {t}"));
                        }
                    }
                }
            }
        }
    }
    found
}

async fn an_erased_customer_leaves_no_trace(db: Db) {
    let h = Harness::with(db, &format!("[limits]\nmax_message_bytes = 4000\n{ACK}")).await;
    let first = h.mail(&greta_with_attachment()).await;
    let t = first.ticket_id.unwrap();
    // Bob, copied, answers on Greta's ticket; he stays.
    let bob = mail(
        "Bob Other <bob@other.example>",
        "Re: Zebra quartz problem",
        "b1@other.example",
        "In-Reply-To: <g1@unique-corp.example>\nReferences: <g1@unique-corp.example>\n",
        "Bob's own words stay here.",
    );
    assert_eq!(h.mail(&bob).await.ticket_id, Some(t));
    // A call through a gateway naming her address and phone: the same user.
    let call = Inbound::Contact(Contact {
        source: "voice".into(),
        channel: "voice".into(),
        contacts: vec![
            ContactPoint::parse_any(ADDRESS, "US").unwrap(),
            ContactPoint::parse_any(PHONE, "US").unwrap(),
        ],
        name: Some("Greta Lind".into()),
        conversation_id: None,
        subject: "Missed call".into(),
        message: format!("Caller said: {SENTENCE}"),
        public: true,
        occurred_at: None,
        attachments: vec![],
        message_id: "call-1".into(),
    });
    h.pipeline.ingest(vec![call], None).await.unwrap();
    // A mail of hers too large to process: quarantined raw.
    let big = mail(
        &format!("Greta <{ADDRESS}>"),
        "Big",
        "g2@unique-corp.example",
        "",
        &format!("{SENTENCE} {}", "z".repeat(5000)),
    );
    h.mail(&big).await;
    let greta = h
        .store()
        .user_by_contact(&ContactPoint::parse_any(ADDRESS, "US").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !scan(&h, db).await.is_empty(),
        "the scan finds her before erasure"
    );

    let e = h.store().erase_user(greta.id).await.unwrap();
    assert_eq!(e.contact_points, 2);
    assert!(
        e.comments >= 2 && e.attachments == 1 && e.quarantine == 1,
        "{e:?}"
    );
    let found = scan(&h, db).await;
    assert!(found.is_empty(), "after erasure: {found:?}");

    // The ticket stays, with Bob's comment; the requester is an erased user.
    let doc = h.export().await;
    let ticket = doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == t)
        .unwrap();
    let comments = ticket["comments"].as_array().unwrap();
    assert!(comments
        .iter()
        .any(|c| c["body"].as_str().unwrap().contains("Bob's own words")));
    let user = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == greta.id)
        .unwrap();
    assert_eq!(user["name"], "[erased]");
    // A later mail from the same address: a new, unrelated user and ticket.
    let again = mail(
        &format!("Greta <{ADDRESS}>"),
        "Hello again",
        "g3@unique-corp.example",
        "",
        "New question.",
    );
    let o = h.mail(&again).await;
    assert_ne!(o.ticket_id, Some(t));
    let now = h
        .store()
        .user_by_contact(&ContactPoint::parse_any(ADDRESS, "US").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(now.id, greta.id);
    // Erasing again is refused clearly; an agent or unknown user too.
    assert!(h
        .store()
        .erase_user(999_999)
        .await
        .unwrap_err()
        .to_string()
        .contains("user 999999"));
}

both_backends!(an_erased_customer_leaves_no_trace);
