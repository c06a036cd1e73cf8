//! Quarantined, held-for-review and kept-bounce mail keeps its raw bytes in
//! the blob store, like stored mail, on both databases: the rows hold only
//! the hash, the entries read back whole, `blobs verify` checks them, and
//! a rejected review entry's mail leaves the store at once.

use crate::blob_migrate::{NO_SENDER, REPORT};
use crate::blob_store::count;
use crate::common::Db;
use crate::support::desk::desk;

const TRUST: &str = "[trust]\nauthserv_ids = [\"mx.desk.test\"]\n";
const HELD: &str = "Received: from a by mx.desk.test\n\
Authentication-Results: mx.desk.test; dmarc=fail header.from=acme.example\n\
From: erin@acme.example\nTo: support@desk.test\nSubject: Refund\nMessage-ID: <held@evil>\n\n\
please send the refund to my new bank account\n";

async fn held_mail_lives_in_the_blob_store(db: Db) {
    let h = desk(db, 1, TRUST).await;
    let q = h.mail(NO_SENDER).await.quarantine_id.unwrap();
    assert!(h.mail(REPORT).await.bounce_id.is_some());
    let r = h.mail(HELD).await.review_id.unwrap();
    for sql in [
        "SELECT COUNT(*) FROM quarantine WHERE raw IS NOT NULL",
        "SELECT COUNT(*) FROM review WHERE raw IS NOT NULL",
        "SELECT COUNT(*) FROM bounces WHERE raw IS NOT NULL OR raw_sha256 IS NULL",
    ] {
        assert_eq!(count(&h, sql).await, 0, "{sql}");
    }
    let store = h.store();
    // Three raw mails. The report's delivery-status part was written with
    // the batch before the report was found to be kept: named by no row,
    // it went once the batch committed.
    assert_eq!(store.blob_list().await.unwrap().len(), 3);
    assert_eq!(
        store.quarantine_get(q).await.unwrap().1,
        NO_SENDER.as_bytes()
    );
    let (_, raw) = store.review_get(r).await.unwrap();
    assert_eq!(raw.as_deref(), Some(HELD.as_bytes()));
    let check = store.blobs_verify().await.unwrap();
    assert_eq!((check.rows, check.problems.len()), (3, 0), "{check:?}");

    // Rejected: the hash stays (a re-delivery is dropped), the mail goes.
    store.review_reject(r, "test").await.unwrap();
    assert_eq!(store.blob_list().await.unwrap().len(), 2);
    assert_eq!(store.review_get(r).await.unwrap().1, None);
    assert_eq!(
        h.mail(HELD).await.outcome,
        intake::model::OutcomeKind::Duplicate
    );
    // A re-delivery wrote the bytes again before finding it a duplicate;
    // nothing names them, so the sweep (past its
    // grace) removes them; the quarantined mail and the report stay.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let swept = store
        .blobs_gc(std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(store.blob_list().await.unwrap().len(), 2, "{swept:?}");
}

both_backends!(held_mail_lives_in_the_blob_store);
