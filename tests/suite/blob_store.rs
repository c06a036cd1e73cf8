//! The blob store, on both databases: raw mails and attachment bodies kept
//! once by SHA-256 outside the database; a crash between the blob write and
//! the commit leaves only an orphan that the sweep removes after its grace
//! period (`intake blobs verify` is in `blob_verify.rs`; `intake migrate`,
//! which moves an older database's bytes out, in `blob_migrate.rs`).

use crate::cli_ops::{intake, text};
use crate::common::{mail, Db, Harness};
use base64::Engine;
use sqlx::Row;
use std::time::Duration;

pub(crate) fn with_attachment(n: usize, body: &[u8]) -> String {
    format!(
        "From: Ada <ada@acme.example>\nTo: support@desk.test\nSubject: Logs {n}\nMessage-ID: <blob{n}@acme.example>\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\nAttempt {n}: the same dump.\n\
--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=dump.bin\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
        base64::engine::general_purpose::STANDARD.encode(body)
    )
}

/// Bytes that do not compress: the database cannot hide copies.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The database's size: the SQLite file after a checkpoint, or every
/// PostgreSQL table with its indexes and TOAST.
async fn db_bytes(h: &Harness, db: Db) -> i64 {
    let pool = h.store().pool();
    match db {
        Db::Sqlite => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await
                .unwrap();
            let path = h.db.url.trim_start_matches("sqlite://").to_string();
            std::fs::metadata(path).unwrap().len() as i64
        }
        Db::Postgres => sqlx::query(
            "SELECT CAST(SUM(pg_total_relation_size(c.oid)) AS BIGINT) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'",
        )
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap(),
    }
}

pub(crate) async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(h.store().pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

async fn an_attachment_sent_twenty_times_is_stored_once(db: Db) {
    let h = Harness::new(db).await;
    let dump = noise(2 << 20);
    let before = db_bytes(&h, db).await;
    // Ten mails in one batch, then ten one by one: each carries the same
    // 2 MB attachment.
    let first: Vec<String> = (0..10).map(|n| with_attachment(n, &dump)).collect();
    let refs: Vec<&str> = first.iter().map(String::as_str).collect();
    h.mails(&refs).await;
    for n in 10..20 {
        h.mail(&with_attachment(n, &dump)).await;
    }
    assert_eq!(count(&h, "SELECT COUNT(*) FROM comments").await, 20);
    let grown = db_bytes(&h, db).await - before;
    assert!(grown < 1 << 20, "the database grew by {grown} bytes");
    // No bytes in any row.
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM comments WHERE raw IS NOT NULL").await,
        0
    );
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM attachments WHERE data IS NOT NULL"
        )
        .await,
        0
    );
    // The store: twenty raw mails and one attachment.
    let listed = h.store().blob_list().await.unwrap();
    assert_eq!(listed.len(), 21, "{listed:?}");
    let atts = sqlx::query("SELECT DISTINCT sha256 FROM attachments")
        .fetch_all(h.store().pool())
        .await
        .unwrap();
    assert_eq!(atts.len(), 1);
    // Both come back whole, as streams.
    let a = sqlx::query("SELECT id FROM attachments ORDER BY id DESC")
        .fetch_one(h.store().pool())
        .await
        .unwrap()
        .try_get::<i64, _>("id")
        .unwrap();
    let f = h.store().attachment_file(a).await.unwrap();
    let (size, stream) = h.store().open_body(f.body.as_ref().unwrap()).await.unwrap();
    assert_eq!(size, dump.len() as u64);
    use futures::TryStreamExt;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    assert!(chunks.len() > 1, "read in pieces");
    assert!(chunks.concat() == dump);
    let c: i64 = count(&h, "SELECT MIN(id) FROM comments").await;
    let raw = h.store().comment_raw(c).await.unwrap().unwrap();
    assert_eq!(raw, with_attachment(0, &dump).into_bytes());
    // A duplicate stores nothing new.
    h.mail(&with_attachment(3, &dump)).await;
    assert_eq!(h.store().blob_list().await.unwrap().len(), 21);
    let check = h.store().blobs_verify().await.unwrap();
    assert_eq!((check.rows, check.blobs), (40, 21), "{check:?}");
    assert!(check.problems.is_empty(), "{check:?}");
}

/// Age every pack file by `by`.
fn age(dir: &std::path::Path, by: Duration) {
    for f in std::fs::read_dir(dir.join("packs")).unwrap() {
        let p = f.unwrap().path();
        let m = std::fs::metadata(&p).unwrap().modified().unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        file.set_modified(m - by).unwrap();
    }
}

/// Whether any file under `dir` holds `needle`.
fn on_disk(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let p = e.unwrap().path();
        if p.is_dir() {
            return on_disk(&p, needle);
        }
        let b = std::fs::read(&p).unwrap();
        b.windows(needle.len()).any(|w| w == needle)
    })
}

async fn an_uncommitted_batch_leaves_an_orphan_the_sweep_removes(db: Db) {
    let h = Harness::new(db).await;
    let kept = h
        .mail(&mail(
            "Ada <ada@acme.example>",
            "Kept",
            "kept@acme.example",
            "",
            "Stored.",
        ))
        .await;
    assert!(kept.ticket_id.is_some());
    // A daemon that packed a batch's blob and died before its commit: its
    // bytes are in its pack, no row locates them.
    const LOST: &[u8] = b"From: x@y.example\n\nnever committed 8812\n";
    let lost = intake::model::Blob::new(LOST.to_vec());
    let dead = intake::store::Store::open(&h.db.url, 2).await.unwrap();
    dead.blobs()
        .write(vec![(lost.sha256.clone(), lost.bytes.clone())])
        .await
        .unwrap();
    let dir = h.store().blobs().dir().unwrap();
    assert!(on_disk(&dir, LOST));
    let grace = Duration::from_secs(3600);
    // Young: maybe a batch in flight, kept.
    let s = h.store().blobs_gc(grace, false).await.unwrap();
    assert_eq!((s.stored, s.packs_removed, s.removed), (1, 0, 0), "{s:?}");
    assert!(on_disk(&dir, LOST));
    // Old, but its writer still runs (it holds the pack's lock): kept.
    age(&dir, Duration::from_secs(7200));
    let s = h.store().blobs_gc(grace, false).await.unwrap();
    assert_eq!(s.packs_removed, 0, "{s:?}");
    assert!(on_disk(&dir, LOST));
    // The writer dies.
    dead.close().await;
    drop(dead);
    // Older than the grace period: a dry run counts the dead pack, the
    // sweep deletes it; the committed mail's pack is this process's own.
    age(&dir, Duration::from_secs(7200));
    let s = h.store().blobs_gc(grace, true).await.unwrap();
    assert_eq!(
        (s.packs_removed, s.pack_bytes_freed),
        (1, LOST.len() as u64),
        "{s:?}"
    );
    assert!(on_disk(&dir, LOST));
    let s = h.store().blobs_gc(grace, false).await.unwrap();
    assert_eq!(s.packs_removed, 1, "{s:?}");
    assert!(!on_disk(&dir, LOST));
    assert_eq!(h.store().blob_list().await.unwrap().len(), 1);
    assert!(h.store().blobs_verify().await.unwrap().problems.is_empty());

    // A raw mail no row names (its comment lost it) goes once older than
    // the grace period. A second delivery of the mail meanwhile (a
    // duplicate) writes its raw mail again and removes that copy, bytes and
    // all, once it commits: a raw mail is its message's own.
    let c = count(&h, "SELECT MIN(id) FROM comments").await;
    let sql = format!("UPDATE comments SET raw_sha256 = NULL, raw_blob = NULL WHERE id = {c}");
    sqlx::query(&sql).execute(h.store().pool()).await.unwrap();
    let old = intake::store::now_ms() - 7_200_000;
    sqlx::query("UPDATE blob_locations SET used_at = $1")
        .bind(old)
        .execute(h.store().pool())
        .await
        .unwrap();
    let again = h
        .mail(&mail(
            "Ada <ada@acme.example>",
            "Kept",
            "kept@acme.example",
            "",
            "Stored.",
        ))
        .await;
    assert_eq!(again.outcome, intake::model::OutcomeKind::Duplicate);
    assert_eq!(h.store().blob_list().await.unwrap().len(), 1);
    let s = h.store().blobs_gc(grace, false).await.unwrap();
    assert_eq!((s.orphans, s.removed), (1, 1), "{s:?}");
    assert!(!on_disk(&dir, b"Stored."));
    assert_eq!(h.store().blob_list().await.unwrap().len(), 0);
}

pub(crate) fn config_file(h: &Harness, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("intake.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n",
            h.db.url
        ),
    )
    .unwrap();
    path
}

/// A pack mostly dead once the sweep's grace period has passed is
/// rewritten: what is still named moves to a new pack, the old file goes.
async fn a_mostly_dead_pack_is_rewritten(db: Db) {
    let h = Harness::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(&h, dir.path());
    // Six mails through one `intake import` process: one pack, not locked
    // once that process is gone.
    let mbox = dir.path().join("six.mbox");
    let six: String = (0..6)
        .map(|n| {
            format!(
                "From ada@acme.example Thu Dec  3 10:00:00 2026\n{}\n",
                with_attachment(n, &noise(20_000 + n))
            )
        })
        .collect();
    std::fs::write(&mbox, six).unwrap();
    let o = intake(&cfg, &["import", "--mbox", mbox.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let store = h.store();
    let blob_dir = store.blobs().dir().unwrap();
    let packs = || std::fs::read_dir(blob_dir.join("packs")).unwrap().count();
    assert_eq!(packs(), 1);
    // Five of the six leave: their rows stop naming their blobs.
    for sql in [
        "DELETE FROM attachments WHERE comment_id > (SELECT MIN(id) FROM comments)",
        "UPDATE comments SET raw_sha256 = NULL, raw_blob = NULL WHERE id > (SELECT MIN(id) FROM comments)",
    ] {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    // The first sweep zeroes the ten dead blobs, which touches the pack;
    // once it has been left alone for the grace period, the next rewrites it.
    let swept = store.blobs_gc(Duration::ZERO, false).await.unwrap();
    assert_eq!((swept.removed, swept.packs_rewritten), (10, 0), "{swept:?}");
    age(&blob_dir, Duration::from_secs(3600));
    let swept = store
        .blobs_gc(Duration::from_secs(60), false)
        .await
        .unwrap();
    assert_eq!(
        (swept.removed, swept.packs_rewritten, swept.packs_removed),
        (0, 1, 0),
        "{swept:?}"
    );
    assert_eq!(packs(), 1, "the old pack replaced by the new one");
    let first = count(&h, "SELECT MIN(id) FROM comments").await;
    let raw = store.comment_raw(first).await.unwrap().unwrap();
    let sent = with_attachment(0, &noise(20_000));
    assert!(
        raw.trim_ascii_end() == sent.as_bytes().trim_ascii_end(),
        "the live mail moved to the new pack whole"
    );
    let check = store.blobs_verify().await.unwrap();
    assert_eq!(
        (check.rows, check.blobs, check.problems.len()),
        (2, 2, 0),
        "{check:?}"
    );
}

both_backends!(
    a_mostly_dead_pack_is_rewritten,
    an_attachment_sent_twenty_times_is_stored_once,
    an_uncommitted_batch_leaves_an_orphan_the_sweep_removes
);
