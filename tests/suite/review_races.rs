//! The review queue against everything else that may happen to the same
//! mail, on both databases: a message is in review, stored or rejected,
//! once. A copy that fails DMARC of a message already stored is a
//! duplicate; a copy that passes of a message in review stays in review (or
//! rejected); release and reject of one entry, or two releases, racing,
//! store the mail at most once; a release that did not finish can be done
//! again; the retention rejects what nobody decided.

use crate::common::{Db, Harness};
use crate::support::desk::{desk, ACK};
use intake::model::OutcomeKind;

const TRUST: &str = "[trust]\nauthserv_ids = [\"mx.desk.test\"]\n";
const PASS: &str = "Authentication-Results: mx.desk.test; dmarc=pass header.from=acme.example\n";
const FAIL: &str = "Authentication-Results: mx.desk.test; dmarc=fail header.from=acme.example\n";

fn mail(auth: &str, from: &str, mid: &str, hop: &str) -> String {
    format!("Received: from {hop} by mx.desk.test\n{auth}From: {from}\nTo: support@desk.test\nSubject: Refund\nMessage-ID: <{mid}>\n\nplease send the refund to my new bank account\n")
}

async fn comments(h: &Harness) -> usize {
    h.export().await["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["comments"].as_array().unwrap().len())
        .sum()
}

async fn users(h: &Harness) -> usize {
    h.export().await["users"].as_array().unwrap().len()
}

async fn copies_of_one_message_are_one_message(db: Db) {
    let h = desk(db, 1, &format!("{TRUST}{ACK}")).await;
    // Stored first (a passing copy), then a copy that fails: a duplicate of
    // the stored mail, not a review entry.
    let s = h
        .mail(&mail(PASS, "alice@acme.example", "m1@acme", "a"))
        .await;
    assert_eq!(s.outcome, OutcomeKind::Created);
    let d = h
        .mail(&mail(FAIL, "alice@acme.example", "m1@acme", "b"))
        .await;
    assert_eq!(
        (d.outcome, d.ticket_id, d.review_id),
        (OutcomeKind::Duplicate, s.ticket_id, None)
    );
    assert!(h.store().review_list().await.unwrap().is_empty());

    // Held first, then a copy that passes: still held, no user made.
    let (n_users, n_comments) = (users(&h).await, comments(&h).await);
    let held = h
        .mail(&mail(FAIL, "bob@acme.example", "m2@evil", "a"))
        .await;
    assert_eq!(held.outcome, OutcomeKind::Review);
    let copy = h
        .mail(&mail(PASS, "bob@acme.example", "m2@evil", "b"))
        .await;
    assert_eq!(
        (copy.outcome, copy.review_id),
        (OutcomeKind::Review, held.review_id)
    );
    // Both copies in one batch, in either order: one entry.
    let both = h
        .mails(&[
            &mail(FAIL, "carl@acme.example", "m3@evil", "a"),
            &mail(PASS, "carl@acme.example", "m3@evil", "b"),
        ])
        .await;
    assert_eq!(
        both.iter().map(|o| o.outcome).collect::<Vec<_>>(),
        [OutcomeKind::Review, OutcomeKind::Review]
    );
    assert_eq!(
        (users(&h).await, comments(&h).await),
        (n_users, n_comments),
        "nothing acts as a held sender"
    );

    // Rejected, then a copy that passes: dropped as a duplicate.
    let id = held.review_id.unwrap();
    h.store().review_reject(id, "test").await.unwrap();
    let late = h
        .mail(&mail(PASS, "bob@acme.example", "m2@evil", "c"))
        .await;
    assert_eq!(
        (late.outcome, late.review_id),
        (OutcomeKind::Duplicate, Some(id))
    );
    assert_eq!(comments(&h).await, n_comments);
}

both_backends!(copies_of_one_message_are_one_message);

async fn release_and_reject_race_to_one_decision(db: Db) {
    let h = desk(db, 1, &format!("{TRUST}{ACK}")).await;
    for round in 0..6 {
        let mid = format!("race{round}@evil");
        let held = h.mail(&mail(FAIL, "dan@acme.example", &mid, "a")).await;
        let id = held.review_id.unwrap();
        let before = comments(&h).await;
        // Two releases and a reject at once, in a different order each round.
        let (a, b, c) = tokio::join!(
            async {
                for _ in 0..round % 3 {
                    tokio::task::yield_now().await;
                }
                h.pipeline.release(id, "first").await
            },
            h.pipeline.release(id, "second"),
            async {
                for _ in 0..round / 2 {
                    tokio::task::yield_now().await;
                }
                h.store().review_reject(id, "rejecter").await
            },
        );
        let stored = [&a, &b]
            .iter()
            .filter(|r| matches!(r, Ok(o) if o.outcome == OutcomeKind::Created))
            .count();
        let (e, raw) = h.store().review_get(id).await.unwrap();
        assert!(
            raw.is_none(),
            "round {round}: the bytes are gone once decided"
        );
        match e.status.as_str() {
            "rejected" => {
                assert!(c.is_ok(), "round {round}");
                assert_eq!(stored, 0, "round {round}: rejected and stored");
            }
            "released" => {
                assert!(c.is_err(), "round {round}: released and rejected");
                assert_eq!(stored, 1, "round {round}: {a:?} {b:?}");
            }
            s => panic!("round {round}: entry left {s}"),
        }
        assert_eq!(comments(&h).await, before + stored, "round {round}");
    }
}

both_backends!(release_and_reject_race_to_one_decision);

async fn an_unfinished_release_is_done_again_once(db: Db) {
    let h = desk(db, 1, &format!("{TRUST}{ACK}")).await;
    let held = h
        .mail(&mail(FAIL, "erin@acme.example", "u1@evil", "a"))
        .await;
    let id = held.review_id.unwrap();
    // A release that claimed the entry and died before its commit.
    h.store().review_claim(id, "crashed").await.unwrap();
    let e = h.store().review_reject(id, "test").await.unwrap_err();
    assert!(e.to_string().contains("already releasing"), "{e}");
    let r = h.pipeline.release(id, "again").await.unwrap();
    assert_eq!(r.outcome, OutcomeKind::Created);
    let (e, _) = h.store().review_get(id).await.unwrap();
    assert_eq!(
        (e.status.as_str(), e.decided_by.as_deref()),
        ("released", Some("again"))
    );
    assert!(e.outcome.unwrap().contains("created"));
    let view = h.store().ticket_view(r.ticket_id.unwrap()).await.unwrap();
    assert!(
        view.to_string()
            .contains(&format!("review entry {id} released by again")),
        "{view}"
    );
    let e = h.pipeline.release(id, "third").await.unwrap_err();
    assert!(e.to_string().contains("already released by again"), "{e}");
    assert_eq!(comments(&h).await, 1);
}

both_backends!(an_unfinished_release_is_done_again_once);

async fn retention_rejects_what_nobody_decided(db: Db) {
    let h = desk(db, 1, TRUST).await;
    let held = h
        .mail(&mail(FAIL, "fay@acme.example", "p1@evil", "a"))
        .await;
    let released = h
        .mail(&mail(FAIL, "fay@acme.example", "p2@evil", "a"))
        .await;
    h.pipeline
        .release(released.review_id.unwrap(), "test")
        .await
        .unwrap();
    let n = h
        .store()
        .review_purge(intake::store::now_ms() + 1)
        .await
        .unwrap();
    assert_eq!(n, 2, "one pending rejected, one released forgotten");
    let list = h.store().review_list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].id,
            list[0].status.as_str(),
            list[0].decided_by.as_deref()
        ),
        (held.review_id.unwrap(), "rejected", Some("retention"))
    );
    // Its re-delivery stays dropped; the released mail stays stored once.
    for mid in ["p1@evil", "p2@evil"] {
        let o = h.mail(&mail(FAIL, "fay@acme.example", mid, "b")).await;
        assert_eq!(o.outcome, OutcomeKind::Duplicate, "{mid}");
    }
    assert_eq!(comments(&h).await, 1);
}

both_backends!(retention_rejects_what_nobody_decided);
