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
    // Three raw mails, and the report's delivery-status part: written with
    // the batch before the report was found to be kept, named by no row.
    assert_eq!(store.blob_list().await.unwrap().len(), 4);
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
    assert_eq!(store.blob_list().await.unwrap().len(), 3);
    assert_eq!(store.review_get(r).await.unwrap().1, None);
    assert_eq!(
        h.mail(HELD).await.outcome,
        intake::model::OutcomeKind::Duplicate
    );
    // A re-delivery wrote the bytes again before finding it a duplicate;
    // nothing names them (nor the report's part), so the sweep (past its
    // grace) removes them; the quarantined mail and the report stay.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let swept = store
        .blobs_gc(std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(store.blob_list().await.unwrap().len(), 2, "{swept:?}");
}

both_backends!(held_mail_lives_in_the_blob_store);

/// A batch finds a blob stored and does not write it again; before its
/// transaction, the only row naming it goes and the sweep removes it. The
/// transaction must not commit rows naming a removed blob: it finds the
/// blob gone, and the batch, run again, writes it again.
async fn a_blob_removed_before_the_commit_is_written_again(db: Db) {
    use crate::blob_store::with_attachment;
    use intake::model::{Inbound, RawMail};
    let h = crate::common::Harness::new(db).await;
    let store = h.store();
    let logo = b"the logo nobody else sends";
    h.mail(&with_attachment(1, logo)).await;
    let second = with_attachment(2, logo);
    let item = intake::pipeline::prepare(
        &intake::pipeline::Settings::from_config(&h.cfg),
        &Inbound::Mail(RawMail {
            raw: second.as_bytes().to_vec(),
            mailbox: None,
            source: "test".into(),
        }),
    );
    let found = store.put_blobs(std::slice::from_ref(&item)).await.unwrap();
    assert_eq!((found.new.len(), found.held.len()), (1, 1), "{found:?}");
    let logo_hash = found.held[0].clone();

    // Meanwhile: the first mail's attachment is dropped and swept.
    sqlx::query("DELETE FROM attachments")
        .execute(store.pool())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .blobs_gc(std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(store.read_blob(&logo_hash).await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    let e = tx.record_blobs(&found).await.unwrap_err();
    assert!(e.is_blob_gone(), "{e}");
    drop(tx);
    // Run again (as the commit step does), the batch writes it again.
    h.mail(&second).await;
    assert_eq!(
        store.read_blob(&logo_hash).await.unwrap().as_deref(),
        Some(&logo[..])
    );
    let check = store.blobs_verify().await.unwrap();
    assert!(check.problems.is_empty(), "{check:?}");
}

both_backends!(a_blob_removed_before_the_commit_is_written_again);
