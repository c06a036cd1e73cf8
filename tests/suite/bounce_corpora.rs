//! Every bounce recognised, on public bounce corpora nobody here wrote:
//! flufl.bounce's 116 real bounces and delay warnings from GNU Mailman
//! (`tests/corpora/flufl-bounce/`, Apache-2.0) and its one ordinary mail
//! that "confused" a detector. (Sisimai's corpus is scored in
//! `corpora_classify.rs`.) Each bounce must be classified as a bounce or an
//! automatic reply, never as an ordinary request or list mail; the ordinary
//! mail stays ordinary. The failed recipients the DSN fields and
//! `X-Failed-Recipients` name are compared with flufl.bounce's own
//! expectations and the share found is printed.
//! `cargo test --test suite bounce_corpora -- --nocapture` prints the table.

use intake::classify::{classify, MailClass, OwnAddresses};
use std::collections::BTreeSet;

struct Row {
    file: String,
    bounce: bool,
    recipients: BTreeSet<String>,
}

fn rows() -> Vec<Row> {
    std::fs::read_to_string("tests/corpora/flufl-bounce/expectations.tsv")
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[0].to_string(),
                bounce: c[1] == "bounce",
                recipients: c[2]
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_lowercase)
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn every_flufl_bounce_is_automatic_and_the_ordinary_mail_is_not() {
    let own = OwnAddresses::new(["support@desk.example".to_string()], "desk.example");
    let rows = rows();
    assert_eq!(rows.len(), 117);
    let (mut wrong, mut expected, mut found) = (Vec::new(), 0usize, 0usize);
    let mut classes = std::collections::BTreeMap::new();
    for r in &rows {
        let raw = std::fs::read(format!("tests/corpora/flufl-bounce/{}", r.file)).unwrap();
        let mail = intake::parse::parse(&raw, 64 << 20);
        let class = match &mail {
            Ok(m) => classify(m, &own),
            // Only mail-system mail may lack a sender; anything else is
            // quarantined, which answers nobody but is no recognition.
            Err(e) => {
                wrong.push(format!("{}: {e}", r.file));
                continue;
            }
        };
        *classes.entry(class.as_str()).or_insert(0) += 1;
        let automatic = matches!(class, MailClass::Bounce | MailClass::AutoReply);
        if automatic != r.bounce {
            wrong.push(format!("{}: {class:?}", r.file));
        }
        if let Ok(m) = &mail {
            let got: BTreeSet<String> = m
                .failed_recipients
                .iter()
                .map(|f| f.address.to_lowercase())
                .collect();
            expected += r.recipients.len();
            found += r.recipients.intersection(&got).count();
        }
    }
    println!("flufl.bounce corpus: {classes:?}; wrong: {}", wrong.len());
    println!(
        "failed recipients found from DSN fields and X-Failed-Recipients: {found} of {expected}"
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The whole flufl.bounce corpus through the pipeline, on both databases:
/// no delivery report becomes a customer. Each is kept for ops (listed under
/// `bounces` with its failed recipients), creates no user, organization or
/// ticket, and comes back as a duplicate when delivered again. Only the
/// ordinary mail and the automatic replies open tickets.
async fn no_bounce_becomes_a_customer(db: crate::common::Db) {
    use intake::model::{Inbound, OutcomeKind, RawMail};
    let h = crate::common::Harness::new(db).await;
    let items = |rows: &[Row]| -> Vec<Inbound> {
        rows.iter()
            .map(|r| {
                Inbound::Mail(RawMail {
                    raw: std::fs::read(format!("tests/corpora/flufl-bounce/{}", r.file)).unwrap(),
                    mailbox: Some("support".into()),
                    source: "test".into(),
                })
            })
            .collect()
    };
    let rows = rows();
    let outcomes = h.pipeline.ingest(items(&rows), None).await.unwrap();
    let kept = outcomes
        .iter()
        .filter(|o| o.outcome == OutcomeKind::Kept)
        .count();
    let bounces = outcomes
        .iter()
        .filter(|o| o.class == Some(MailClass::Bounce))
        .count();
    let others = outcomes
        .iter()
        .filter(|o| matches!(o.outcome, OutcomeKind::Created | OutcomeKind::Appended))
        .count();
    println!(
        "flufl.bounce through the pipeline: {kept} kept, {others} stored as tickets or comments"
    );
    // Distinct Message-IDs: a few reports in the corpus are copies.
    assert!(kept > 100 && kept <= bounces, "{kept} of {bounces}");
    for o in &outcomes {
        if o.class == Some(MailClass::Bounce) {
            assert!(
                matches!(o.outcome, OutcomeKind::Kept | OutcomeKind::Duplicate),
                "{o:?}"
            );
            assert_eq!((o.user_id, o.ticket_id), (None, None), "{o:?}");
        }
    }
    let doc = h.export().await;
    let listed = doc["bounces"].as_array().unwrap();
    assert_eq!(listed.len(), kept);
    assert!(listed
        .iter()
        .all(|b| b["reason"].as_str().unwrap().contains("not linked")));
    assert!(
        listed
            .iter()
            .any(|b| b["recipients"] == serde_json::json!(["userx@example.com"])),
        "failed recipients listed"
    );
    let tickets = doc["tickets"].as_array().unwrap().len();
    assert_eq!(
        tickets, others,
        "only the ordinary mail and automatic replies open tickets"
    );
    assert!(doc["users"].as_array().unwrap().len() <= others);
    assert!(doc["organizations"].as_array().unwrap().len() <= others);
    // A kept report's row names its raw mail by hash: located by hash (a
    // stored message's raw mail is located by number alone).
    let pool = h.store().pool();
    let n = |sql: &'static str| async move {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap()
    };
    let by_hash = "SELECT COUNT(*) FROM bounces o JOIN blob_locations b ON b.sha256 = o.raw_sha256";
    assert_eq!(n(by_hash).await as usize, kept);
    let raws = "SELECT COUNT(*) FROM comments c JOIN blob_locations b ON b.id = c.raw_blob \
                WHERE b.sha256 LIKE '@%'";
    let by_number = n(raws).await;
    assert_eq!(by_number, n("SELECT COUNT(*) FROM comments").await);
    let located = h.store().blob_list().await.unwrap().len();
    // Delivered again: duplicates, nothing new, not even a raw mail's copy.
    let again = h.pipeline.ingest(items(&rows), None).await.unwrap();
    assert!(
        again.iter().all(|o| o.outcome == OutcomeKind::Duplicate),
        "{again:?}"
    );
    assert_eq!(h.export().await["bounces"].as_array().unwrap().len(), kept);
    assert_eq!(h.store().blob_list().await.unwrap().len(), located);
    let check = h.store().blobs_verify().await.unwrap();
    assert!(check.problems.is_empty(), "{check:?}");
    let s = h
        .store()
        .blobs_gc(std::time::Duration::ZERO, true)
        .await
        .unwrap();
    assert_eq!(s.orphans, 0, "{s:?}");
}

crate::both_backends!(no_bounce_becomes_a_customer);
