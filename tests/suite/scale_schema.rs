//! The schema of migration 0025, which keeps a large SQLite store from
//! writing a page per message in indexes on random keys, on both databases.
//! Blob numbers: comments and attachments name their blob by
//! `blob_locations.id` as well as by hash, so the indexes that find a blob's
//! rows grow at their end; the hash indexes hold only rows without a number;
//! a location a row names cannot be deleted; and the upgrade numbers the rows
//! an older database named by hash alone. Message-IDs: a stored message's id
//! is found in `comments` (no second index in `thread_refs`), and the rows
//! older versions put in `thread_refs` still lead to their tickets.

use crate::blob_store::{count, with_attachment};
use crate::common::{mail, Db, Harness};
use intake::model::{Inbound, RawMail};
use intake::pipeline::{Pipeline, Settings};
use std::time::Duration;

/// Rows whose number does not lead to the location of their own hash.
pub(crate) const MISNUMBERED: [&str; 2] = [
    "SELECT COUNT(*) FROM comments c LEFT JOIN blob_locations b ON b.id = c.raw_blob \
     WHERE c.raw_sha256 IS NOT NULL AND (b.sha256 IS NULL OR b.sha256 <> c.raw_sha256 AND b.sha256 NOT LIKE '@%')",
    "SELECT COUNT(*) FROM attachments a LEFT JOIN blob_locations b ON b.id = a.blob \
     WHERE a.sha256 IS NOT NULL AND (b.sha256 IS NULL OR b.sha256 <> a.sha256)",
];

/// Twelve mails, four attachment bodies shared among them.
async fn twelve_mails(h: &Harness) {
    for n in 0..12 {
        let body = format!("shared body {}", n % 4);
        h.mail(&with_attachment(n, body.as_bytes())).await;
    }
    assert_eq!(count(h, "SELECT COUNT(*) FROM attachments").await, 12);
    assert_eq!(
        count(h, "SELECT COUNT(DISTINCT blob) FROM attachments").await,
        4
    );
}

async fn new_rows_name_their_blob_by_number(db: Db) {
    let h = Harness::new(db).await;
    twelve_mails(&h).await;
    for sql in MISNUMBERED {
        assert_eq!(count(&h, sql).await, 0, "{sql}");
    }
    // What the hash indexes hold: nothing a batch wrote.
    for sql in [
        "SELECT COUNT(*) FROM comments WHERE raw_sha256 IS NOT NULL AND raw_blob IS NULL",
        "SELECT COUNT(*) FROM attachments WHERE sha256 IS NOT NULL AND blob IS NULL",
    ] {
        assert_eq!(count(&h, sql).await, 0, "{sql}");
    }
    // A message's raw mail is located by number alone (its key grows with
    // time); attachment bodies by their hash.
    for (sql, n) in [
        (
            "SELECT COUNT(*) FROM blob_locations WHERE sha256 LIKE '@%'",
            12,
        ),
        (
            "SELECT COUNT(*) FROM comments c JOIN blob_locations b ON b.id = c.raw_blob \
             WHERE b.sha256 LIKE '@%'",
            12,
        ),
        (
            "SELECT COUNT(*) FROM attachments a JOIN blob_locations b ON b.id = a.blob \
             WHERE b.sha256 = a.sha256",
            12,
        ),
    ] {
        assert_eq!(count(&h, sql).await, n, "{sql}");
    }
    // The database refuses to drop a location a row names.
    let named =
        sqlx::query("DELETE FROM blob_locations WHERE id = (SELECT MIN(raw_blob) FROM comments)")
            .execute(h.store().pool())
            .await;
    assert!(named.is_err(), "{named:?}");
    // Found by number: the sweep keeps every blob, an erasure drops the
    // erased mail's own and keeps the bodies other mails share.
    let store = h.store();
    let blobs = store.blob_list().await.unwrap().len();
    assert_eq!(blobs, 12 + 4);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let s = store.blobs_gc(Duration::ZERO, false).await.unwrap();
    assert_eq!((s.orphans, s.removed), (0, 0), "{s:?}");
    sqlx::query("UPDATE comments SET raw_sha256 = NULL, raw_blob = NULL WHERE id = (SELECT MIN(id) FROM comments)")
        .execute(store.pool())
        .await
        .unwrap();
    // A raw mail located by number is written in the transaction that
    // names it: one no comment names goes at once, whatever the grace.
    let s = store
        .blobs_gc(Duration::from_secs(86_400), false)
        .await
        .unwrap();
    assert_eq!((s.orphans, s.removed), (1, 1), "{s:?}");
    assert_eq!(store.blob_list().await.unwrap().len(), blobs - 1);
}

/// Undo migration 0025: locations without numbers, rows naming blobs by
/// hash alone, the hash indexes holding every row (and every location found
/// by hash, as before raw mails were located by number alone).
pub(crate) async fn as_before_numbers(h: &Harness) {
    let mut steps = vec![
        "UPDATE blob_locations SET sha256 = \
         (SELECT MIN(c.raw_sha256) FROM comments c WHERE c.raw_blob = blob_locations.id) \
         WHERE sha256 LIKE '@%'",
        "DROP INDEX comments_raw_blob",
        "DROP INDEX attachments_blob",
        "DROP INDEX comments_raw_sha256",
        "DROP INDEX attachments_sha256",
        "ALTER TABLE comments DROP COLUMN raw_blob",
        "ALTER TABLE attachments DROP COLUMN blob",
    ];
    steps.extend(if h.db.url.starts_with("sqlite") {
        vec![
            "CREATE TABLE old_locations (sha256 TEXT PRIMARY KEY, pack TEXT NOT NULL, pos BIGINT NOT NULL, size BIGINT NOT NULL, used_at BIGINT NOT NULL)",
            "INSERT INTO old_locations SELECT sha256, pack, pos, size, used_at FROM blob_locations ORDER BY id DESC",
            "DROP TABLE blob_locations",
            "ALTER TABLE old_locations RENAME TO blob_locations",
            "CREATE INDEX blob_locations_pack ON blob_locations (pack)",
        ]
    } else {
        vec!["ALTER TABLE blob_locations DROP COLUMN id"]
    });
    steps.extend([
        "CREATE INDEX comments_raw_sha256 ON comments (raw_sha256) WHERE raw_sha256 IS NOT NULL",
        "CREATE INDEX attachments_sha256 ON attachments (sha256) WHERE sha256 IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS comments_author ON comments (author_id)",
        "CREATE INDEX IF NOT EXISTS tickets_requester ON tickets (requester_id)",
        "DELETE FROM _sqlx_migrations WHERE version = 25",
    ]);
    // One connection: another would check a rename against the tables it
    // knew before the drop.
    let mut conn = h.store().pool().acquire().await.unwrap();
    for sql in steps {
        sqlx::query(sql).execute(&mut *conn).await.unwrap();
    }
}

async fn the_upgrade_numbers_rows_named_by_hash(db: Db) {
    let h = Harness::new(db).await;
    twelve_mails(&h).await;
    let before = h.store().blob_list().await.unwrap().len();
    as_before_numbers(&h).await;
    // What an older version also left: every received mail's id in
    // `thread_refs`, and one row naming a blob the store has no location
    // for (the raw mail of the first comment).
    for sql in [
        "INSERT INTO thread_refs (message_id, ticket_id, outbound) \
         SELECT message_id, ticket_id, 0 FROM comments WHERE message_id IS NOT NULL",
        "DELETE FROM blob_locations WHERE sha256 = \
         (SELECT raw_sha256 FROM comments WHERE id = (SELECT MIN(id) FROM comments))",
    ] {
        sqlx::query(sql).execute(h.store().pool()).await.unwrap();
    }
    let unlocated = count(&h, "SELECT MIN(id) FROM comments").await;
    let store = intake::store::Store::open(&h.db.url, 2).await.unwrap();
    // Every row whose blob has a location is numbered; the one without
    // keeps its hash alone and is the one problem the check reports.
    let numbered = format!("{} AND c.id <> {unlocated}", MISNUMBERED[0]);
    assert_eq!(count(&h, &numbered).await, 0, "{numbered}");
    assert_eq!(count(&h, MISNUMBERED[1]).await, 0);
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM comments WHERE raw_blob IS NULL").await,
        1
    );
    assert_eq!(
        count(&h, &format!("SELECT COUNT(*) FROM comments WHERE id = {unlocated} AND raw_blob IS NULL AND raw_sha256 IS NOT NULL")).await,
        1
    );
    assert_eq!(store.blob_list().await.unwrap().len(), before - 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let s = store.blobs_gc(Duration::ZERO, false).await.unwrap();
    assert_eq!((s.orphans, s.removed), (0, 0), "{s:?}");
    let check = store.blobs_verify().await.unwrap();
    let found: Vec<(&str, i64, &str)> = check
        .problems
        .iter()
        .map(|p| (p.row, p.id, p.problem))
        .collect();
    assert_eq!(found, [("comment", unlocated, "missing")], "{check:?}");
    // The next mail gets a number after those the upgrade gave.
    let top = count(&h, "SELECT MAX(id) FROM blob_locations").await;
    h.mail(&with_attachment(99, b"a new body")).await;
    let new = count(&h, "SELECT MAX(blob) FROM attachments").await;
    assert!(new > top, "{new} after {top}");
    // The mails received before the upgrade keep their threads: a reply
    // to one joins its ticket, and its second delivery is not stored again.
    let ticket = count(
        &h,
        "SELECT ticket_id FROM comments WHERE message_id = 'blob5@acme.example'",
    )
    .await;
    let reply = h
        .mail(&mail(
            "ada@acme.example",
            "Re: Logs 5",
            "reply5@acme.example",
            "In-Reply-To: <blob5@acme.example>\n",
            "Here is more.",
        ))
        .await;
    assert_eq!(reply.ticket_id, Some(ticket));
    let comments = count(&h, "SELECT COUNT(*) FROM comments").await;
    h.mail(&with_attachment(5, b"shared body 1")).await;
    assert_eq!(count(&h, "SELECT COUNT(*) FROM comments").await, comments);
    store.close().await;
}

/// A notification id an older version recorded in `thread_refs` (and not
/// in `comments`) still leads to its ticket; a stored message's own id is
/// found in `comments`; new messages add no `thread_refs` rows.
async fn old_thread_refs_still_lead_to_their_ticket(db: Db) {
    let h = Harness::new(db).await;
    let first = "ada@acme.example";
    let t = h
        .mail(&mail(first, "Printer", "p1@acme.example", "", "It jams."))
        .await
        .ticket_id
        .unwrap();
    assert_eq!(count(&h, "SELECT COUNT(*) FROM thread_refs").await, 0);
    sqlx::query("INSERT INTO thread_refs (message_id, ticket_id, outbound) VALUES ('old-notice@desk.test', $1, 1)")
        .bind(t)
        .execute(h.store().pool())
        .await
        .unwrap();
    for (n, parent) in ["old-notice@desk.test", "p1@acme.example"]
        .iter()
        .enumerate()
    {
        let extra = format!("In-Reply-To: <{parent}>\n");
        let id = format!("r{n}@acme.example");
        let reply = h
            .mail(&mail(first, "Another thing", &id, &extra, "Still."))
            .await;
        assert_eq!(reply.ticket_id, Some(t), "a reply to {parent}");
    }
    // Without the parent, the same mail opens a ticket of its own.
    let other = h
        .mail(&mail(
            first,
            "Another thing",
            "r9@acme.example",
            "",
            "Still.",
        ))
        .await;
    assert_ne!(other.ticket_id, Some(t));
    assert_eq!(count(&h, "SELECT COUNT(*) FROM thread_refs").await, 1);
}

/// A batch whose commit went through unseen (the reply lost) and that is
/// run again records its raw mail's location again: the same location, no
/// error.
async fn a_retry_after_an_unseen_commit_records_the_same_raw_location(db: Db) {
    let h = Harness::new(db).await;
    let item = intake::pipeline::prepare(
        &h.pipeline.settings,
        &Inbound::Mail(RawMail {
            raw: with_attachment(1, b"a body").into_bytes(),
            mailbox: Some("support".into()),
            source: "test".into(),
        }),
    );
    let blobs = h
        .store()
        .put_blobs(std::slice::from_ref(&item))
        .await
        .unwrap();
    assert_eq!(blobs.raw.len(), 1, "{blobs:?}");
    for _ in 0..2 {
        let mut tx = h.store().begin().await.unwrap();
        tx.record_blobs(&blobs).await.unwrap();
        tx.commit().await.unwrap();
    }
    let sql = "SELECT COUNT(*) FROM blob_locations WHERE sha256 LIKE '@%'";
    assert_eq!(count(&h, sql).await, 1);
}

both_backends!(
    a_retry_after_an_unseen_commit_records_the_same_raw_location,
    new_rows_name_their_blob_by_number,
    the_upgrade_numbers_rows_named_by_hash,
    old_thread_refs_still_lead_to_their_ticket
);

/// SQLite only (PostgreSQL's pages are fixed at build time): a new store
/// gets 2 KiB pages; a store made with SQLite's default 4 KiB keeps them,
/// opens and takes mail.
#[tokio::test]
async fn a_new_sqlite_store_has_small_pages_and_an_old_one_keeps_its_own() {
    use sqlx::Row;
    async fn page_size(url: &str) -> i64 {
        let store = intake::store::Store::open(url, 1).await.unwrap();
        let r = sqlx::query("PRAGMA page_size")
            .fetch_one(store.pool())
            .await
            .unwrap();
        r.get::<i64, _>(0)
    }
    let dir = tempfile::tempdir().unwrap();
    let new = format!("sqlite://{}/new.db", dir.path().display());
    assert_eq!(page_size(&new).await, 2048);

    let old_path = dir.path().join("old.db");
    let old = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&old_path)
        .create_if_missing(true)
        .page_size(4096)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let mut conn = sqlx::ConnectOptions::connect(&old).await.unwrap();
    sqlx::query("CREATE TABLE before_intake (x INTEGER)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    let url = format!("sqlite://{}", old_path.display());
    assert_eq!(page_size(&url).await, 4096);
    let store = intake::store::Store::open(&url, 1).await.unwrap();
    let cfg = crate::common::config(&url, "");
    let p = Pipeline::new(store, Settings::from_config(&cfg));
    let raw = mail(
        "Ann <ann@acme.example>",
        "Old pages",
        "p1@acme.example",
        "",
        "Still fine.",
    );
    let item = Inbound::Mail(RawMail {
        raw: raw.into_bytes(),
        mailbox: Some("support".into()),
        source: "test".into(),
    });
    let got = p.ingest(vec![item], None).await.unwrap().remove(0);
    assert!(got.ticket_id.is_some(), "{got:?}");
    assert_eq!(page_size(&url).await, 4096);
}
