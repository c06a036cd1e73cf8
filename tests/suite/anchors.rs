//! ANCHORS.md's classic ingestion failures reproduced at the pipeline layer
//! (2: one mail to several mailboxes; 5: poison messages; 15: loops), the
//! real-world corpora through the whole pipeline, and a never-panics property.

use crate::common;

use common::{mail, Db, Harness};
use intake::model::{Inbound, OutcomeKind::*, RawMail};
use proptest::prelude::*;

fn corpora() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpora");
    assert!(
        p.join("mail-parser/summary.tsv").exists(),
        "corpora missing under {}",
        p.display()
    );
    p
}

fn emls(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(emls(&p));
        } else if p.extension().is_some_and(|x| x == "eml") {
            v.push(p);
        }
    }
    v.sort();
    v
}

fn raw(mailbox: &str, s: &str) -> Inbound {
    Inbound::Mail(RawMail {
        raw: s.as_bytes().to_vec(),
        mailbox: Some(mailbox.into()),
        source: "test".into(),
    })
}

/// Failure 2: one mail reaching two monitored mailboxes via To, Cc, Bcc or a
/// list expansion is one comment, whatever headers each copy carries.
async fn one_mail_many_mailboxes(db: Db) {
    let h = Harness::new(db).await;
    let base = "From: Ada <ada@acme.com>\nSubject: Outage\nDate: Sat, 21 Nov 2026 10:00:00 +0000\nMessage-ID: <multi@acme.com>\n";
    let copies = [
        format!("Delivered-To: support@desk.test\nTo: support@desk.test\nCc: sales@desk.test\n{base}\nbody\n"),
        format!("Delivered-To: sales@desk.test\nTo: support@desk.test\nCc: sales@desk.test\n{base}\nbody\n"),
        format!("Delivered-To: billing@desk.test\nX-Original-To: team-list@acme.com\nTo: team-list@acme.com\n{base}\nbody\n"),
    ];
    let out = h
        .pipeline
        .ingest(
            vec![raw("support", &copies[0]), raw("sales", &copies[1])],
            None,
        )
        .await
        .unwrap();
    assert_eq!((out[0].outcome, out[1].outcome), (Created, Duplicate));
    let later = h
        .pipeline
        .ingest(vec![raw("billing", &copies[2])], None)
        .await
        .unwrap();
    assert_eq!(
        (later[0].outcome, later[0].ticket_id),
        (Duplicate, out[0].ticket_id)
    );
    let doc = h.export().await;
    assert_eq!(doc["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(doc["tickets"][0]["comments"].as_array().unwrap().len(), 1);
}

/// Failure 5: malformed MIME, deep nesting, a 10k-link HTML body, an invalid
/// transfer encoding: each is stored or quarantined, and the next mail goes on.
async fn poison_never_blocks(db: Db) {
    let h = Harness::new(db).await;
    let mut deep = String::from(
        "From: a@acme.com\nSubject: deep\nMessage-ID: <deep@acme.com>\nMIME-Version: 1.0\n",
    );
    for i in 0..300 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        ));
    }
    deep.push_str("Content-Type: text/plain\n\ncore\n");
    let links: String = (0..10_000)
        .map(|i| format!("<a href=\"https://x.example/{i}\">l{i}</a> "))
        .collect();
    let html = format!(
        "From: a@acme.com\nSubject: links\nMessage-ID: <links@acme.com>\nMIME-Version: 1.0\nContent-Type: text/html\n\n<html><body>{links}</body></html>\n"
    );
    let bad_cte = "From: a@acme.com\nSubject: cte\nMessage-ID: <cte@acme.com>\nMIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n";
    let truncated = "From: a@acme.com\nSubject: trunc\nMessage-ID: <trunc@acme.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n--zz\nContent-Type: text/plain\n\nhalf";
    let ok = mail(
        "ada@acme.com",
        "after the poison",
        "after@acme.com",
        "",
        "fine",
    );
    let items = [
        deep.as_str(),
        html.as_str(),
        bad_cte,
        truncated,
        ok.as_str(),
    ]
    .iter()
    .map(|s| raw("support", s))
    .collect();
    let out = h.pipeline.ingest(items, None).await.unwrap();
    assert_eq!(out.len(), 5);
    assert!(
        out.iter()
            .all(|o| matches!(o.outcome, Created | Quarantined)),
        "{out:?}"
    );
    assert_eq!(out[4].outcome, Created);
    let doc = h.export().await;
    let html_ticket = doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"] == "links")
        .expect("html stored");
    assert!(html_ticket["comments"][0]["body"]
        .as_str()
        .unwrap()
        .contains("l9999"));
}

/// Failure 15 at this layer: our own notification coming back, auto-replies
/// of every flavour, DSNs: classified and never a new public conversation
/// partner; mail from our own address never creates a ticket.
async fn loops_are_recognised(db: Db) {
    let h = Harness::new(db).await;
    let own_header = mail(
        "ada@acme.com",
        "Re: [#1] x",
        "l1@acme.com",
        "X-Intake-Loop: desk.test\nAuto-Submitted: auto-replied\n",
        "our own mail",
    );
    let from_us = mail(
        "support@desk.test",
        "Ticket received",
        "l2@desk.test",
        "",
        "x",
    );
    let zimbra = mail(
        "ada@acme.com",
        "Out of office",
        "l3@acme.com",
        "X-Autoreply: yes\n",
        "away",
    );
    let exchange = mail(
        "ada@acme.com",
        "Automatic reply: hi",
        "l4@acme.com",
        "X-Auto-Response-Suppress: All\nAuto-Submitted: auto-generated\n",
        "away",
    );
    let list = mail(
        "news@lists.example",
        "Weekly",
        "l5@lists.example",
        "List-Id: <weekly.lists.example>\nList-Unsubscribe: <mailto:u@lists.example>\n",
        "x",
    );
    let out = h
        .pipeline
        .ingest(
            [&own_header, &from_us, &zimbra, &exchange, &list]
                .iter()
                .map(|s| raw("support", s))
                .collect(),
            None,
        )
        .await
        .unwrap();
    assert_eq!((out[0].outcome, out[1].outcome), (Quarantined, Quarantined));
    assert!(out[0].reason.as_deref().unwrap().contains("loop"));
    let classes: Vec<_> = out[2..].iter().map(|o| o.class.unwrap().as_str()).collect();
    assert_eq!(classes, ["auto_reply", "auto_reply", "list"]);
    // Sisimai's bounces through the whole pipeline: stored as bounces or auto-replies.
    let dir = corpora().join("sisimai/eml");
    let items: Vec<Inbound> = emls(&dir)
        .iter()
        .map(|p| {
            Inbound::Mail(RawMail {
                raw: std::fs::read(p).unwrap(),
                mailbox: None,
                source: "test".into(),
            })
        })
        .collect();
    let n = items.len();
    assert!(n >= 250, "only {n} sisimai messages");
    for o in h.pipeline.ingest(items, None).await.unwrap() {
        if let Some(c) = o.class {
            assert!(matches!(c.as_str(), "bounce" | "auto_reply"), "{o:?}");
        }
    }
}

/// mail-parser's 107 messages, malformed ones included, end stored,
/// duplicate or quarantined, with the sender of summary.tsv.
async fn mail_parser_corpus_through_the_store(db: Db) {
    let h = Harness::new(db).await;
    let dir = corpora().join("mail-parser/eml");
    let files = emls(&dir);
    assert_eq!(files.len(), 107);
    let items = files
        .iter()
        .map(|p| {
            Inbound::Mail(RawMail {
                raw: std::fs::read(p).unwrap(),
                mailbox: None,
                source: "test".into(),
            })
        })
        .collect();
    let out = h.pipeline.ingest(items, None).await.unwrap();
    assert_eq!(out.len(), 107);
    let stored = out
        .iter()
        .filter(|o| matches!(o.outcome, Created | Appended))
        .count();
    // Every message whose From has an address (per mail-parser's own summary)
    // is stored; the 33 without one are quarantined with that reason.
    let summary = std::fs::read_to_string(corpora().join("mail-parser/summary.tsv")).unwrap();
    let with_sender = summary
        .lines()
        .skip(1)
        .filter(|l| l.split('\t').nth(1).is_some_and(|a| a.contains('@')))
        .count();
    assert_eq!(with_sender, 74);
    assert!(
        stored >= with_sender,
        "only {stored} of 107 stored: {:?}",
        out.iter()
            .filter(|o| o.outcome == Quarantined)
            .map(|o| &o.reason)
            .collect::<Vec<_>>()
    );
    let doc = h.export().await;
    let quarantined: Vec<_> = out.iter().filter(|o| o.outcome == Quarantined).collect();
    let ids: std::collections::HashSet<_> = quarantined
        .iter()
        .map(|o| o.quarantine_id.unwrap())
        .collect();
    // Identical bytes share one quarantine entry.
    assert_eq!(doc["quarantine"].as_array().unwrap().len(), ids.len());
    let dups = out.iter().filter(|o| o.outcome == Duplicate).count();
    assert_eq!(
        stored + quarantined.len() + dups,
        107,
        "every message accounted for"
    );
}

both_backends!(
    one_mail_many_mailboxes,
    poison_never_blocks,
    loops_are_recognised,
    mail_parser_corpus_through_the_store
);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Arbitrary bytes, and mutations of a real mail, through the whole
    /// pipeline into SQLite end stored, duplicate or quarantined.
    #[test]
    fn arbitrary_bytes_never_panic(
        junk in proptest::collection::vec(any::<u8>(), 0..2000),
        cut in 0usize..400,
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let h = Harness::new(Db::Sqlite).await;
            let mut mutated = mail("Ada <ada@acme.com>", "Re: [#1] x", "p@acme.com", "References: <a@b>\n", "body").into_bytes();
            mutated.truncate(cut.max(1).min(mutated.len()));
            for (i, b) in &flips {
                if *i < mutated.len() { mutated[*i] = *b; }
            }
            let items = vec![
                Inbound::Mail(RawMail { raw: junk.clone(), mailbox: None, source: "fuzz".into() }),
                Inbound::Mail(RawMail { raw: mutated.clone(), mailbox: None, source: "fuzz".into() }),
                Inbound::Mail(RawMail { raw: mutated, mailbox: None, source: "fuzz".into() }),
            ];
            let out = h.pipeline.ingest(items, None).await.expect("the pipeline never fails on input");
            prop_assert_eq!(out.len(), 3);
            Ok(())
        })?;
    }
}
