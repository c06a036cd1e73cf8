//! `intake migrate` on a database made before the blob store, on both
//! databases: the raw mails, attachment bodies and quarantined and kept
//! bounce mails its rows hold move into the store, an interrupted move
//! resumes, and a second run has nothing left to move.

use crate::blob_store::{config_file, count, with_attachment};
use crate::cli_ops::{intake, text};
use crate::common::{Db, Harness};
use sqlx::Row;

/// A delivery report no notification of ours caused: kept, not a ticket.
pub(crate) const REPORT: &str = "From: Mail Delivery System <MAILER-DAEMON@mx.acme.com>\n\
To: support@desk.test\nSubject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn@mx.acme.com>\n\
MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
--B\nContent-Type: text/plain\n\nkept bounce text\n\n--B\nContent-Type: message/delivery-status\n\n\
Reporting-MTA: dns; mx.acme.com\n\nFinal-Recipient: rfc822; zed@acme.com\nAction: failed\nStatus: 5.1.1\n\n--B--\n";

/// A mail without a sender: quarantined.
pub(crate) const NO_SENDER: &str = "Subject: no sender at all\n\nquarantined text\n";

/// Turn a database made now back into one made before the blob store:
/// bytes in the rows, no hashes, migrations 0021 and 0023 not applied, no
/// blobs.
async fn as_before_blobs(h: &Harness) {
    let pool = h.store().pool();
    let store = h.store();
    for (table, hash, bytes) in [
        ("comments", "raw_sha256", "raw"),
        ("attachments", "sha256", "data"),
        ("quarantine", "sha256", "raw"),
        ("bounces", "raw_sha256", "raw"),
    ] {
        let rows = sqlx::query(&format!(
            "SELECT id, {hash} AS h FROM {table} WHERE {hash} IS NOT NULL"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        for r in rows {
            let id: i64 = r.try_get("id").unwrap();
            let h256: String = r.try_get("h").unwrap();
            let body = if table == "comments" {
                store.comment_raw(id).await.unwrap().unwrap()
            } else {
                store.read_blob(&h256).await.unwrap().unwrap()
            };
            sqlx::query(&format!("UPDATE {table} SET {bytes} = $1 WHERE id = $2"))
                .bind(body)
                .bind(id)
                .execute(pool)
                .await
                .unwrap();
        }
    }
    crate::scale_schema::as_before_numbers(h).await;
    for sql in [
        "DROP TABLE blob_locations",
        "DROP INDEX comments_raw_sha256",
        "DROP INDEX attachments_sha256",
        "ALTER TABLE comments DROP COLUMN raw_sha256",
        "ALTER TABLE comments DROP COLUMN raw_size",
        "ALTER TABLE attachments DROP COLUMN sha256",
        "DELETE FROM _sqlx_migrations WHERE version = 21",
        "DROP INDEX bounces_raw_sha256",
        "ALTER TABLE bounces DROP COLUMN raw_sha256",
        "DELETE FROM _sqlx_migrations WHERE version = 23",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    std::fs::remove_dir_all(store.blobs().dir().unwrap()).unwrap();
}

async fn migrate_moves_an_older_databases_bytes_into_the_store(db: Db) {
    let h = Harness::new(db).await;
    let mut raws = Vec::new();
    for n in 0..30 {
        let body = format!("attachment body {}", n % 3);
        let m = with_attachment(n, body.as_bytes());
        h.mail(&m).await;
        raws.push(m);
    }
    let q = h.mail(NO_SENDER).await.quarantine_id.unwrap();
    assert!(h.mail(REPORT).await.bounce_id.is_some());
    as_before_blobs(&h).await;
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM comments WHERE raw IS NOT NULL").await,
        30
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(&h, dir.path());
    // An interrupted move: the schema upgraded and the first rows moved.
    let url = h.db.url.clone();
    let store = intake::store::Store::open(&url, 2).await.unwrap();
    let mut cursor = intake::store::BlobCursor::default();
    let step = store.blobs_move_step(&mut cursor, 7).await.unwrap();
    assert_eq!((step.comments, step.attachments, step.held), (7, 7, 2));
    assert_eq!(store.blobs_backlog().await.unwrap(), 46);
    store.close().await;
    // `intake migrate` finishes it.
    let o = intake(&cfg, &["migrate"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("moved 23 raw mails, 23 attachment bodies and 0 held mails"),
        "{}",
        text(&o)
    );
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM comments WHERE raw IS NOT NULL OR raw_sha256 IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM attachments WHERE data IS NOT NULL OR sha256 IS NULL"
        )
        .await,
        0
    );
    // Moved rows name their blob by number too.
    for sql in crate::scale_schema::MISNUMBERED {
        assert_eq!(count(&h, sql).await, 0, "{sql}");
    }
    for sql in [
        "SELECT COUNT(*) FROM quarantine WHERE raw IS NOT NULL",
        "SELECT COUNT(*) FROM bounces WHERE raw IS NOT NULL OR raw_sha256 IS NULL",
    ] {
        assert_eq!(count(&h, sql).await, 0, "{sql}");
    }
    // 30 raw mails, 3 distinct attachment bodies, the quarantined mail and
    // the kept report.
    let store = intake::store::Store::open(&url, 2).await.unwrap();
    assert_eq!(store.blob_list().await.unwrap().len(), 35);
    let (_, held) = store.quarantine_get(q).await.unwrap();
    assert_eq!(held, NO_SENDER.as_bytes());
    let first = count(&h, "SELECT MIN(id) FROM comments").await;
    for (i, raw) in raws.iter().enumerate() {
        let got = store.comment_raw(first + i as i64).await.unwrap().unwrap();
        assert_eq!(&got, raw.as_bytes());
    }
    let o = intake(&cfg, &["blobs", "verify"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"rows\":62"),
        "{}",
        text(&o)
    );
    // Again: nothing left to move.
    let o = intake(&cfg, &["migrate"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "migrations applied"
    );
    store.close().await;
}

both_backends!(migrate_moves_an_older_databases_bytes_into_the_store);
