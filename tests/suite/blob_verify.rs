//! `intake blobs verify`, on both databases: it finds rows whose blob is
//! missing or damaged in its pack, and rows whose blob number names
//! another blob than their hash; a row named by hash only reads whole.

use crate::blob_store::{config_file, count, with_attachment};
use crate::cli_ops::{intake, text};
use crate::common::{Db, Harness};
use sqlx::Row;

async fn verify_names_missing_and_damaged_blobs(db: Db) {
    let h = Harness::new(db).await;
    h.mail(&with_attachment(1, b"first attachment")).await;
    h.mail(&with_attachment(2, b"second attachment")).await;
    h.mail(&with_attachment(3, b"third attachment")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(&h, dir.path());
    let o = intake(&cfg, &["blobs", "verify"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let blobs = h.store().blobs().dir().unwrap();
    let pool = h.store().pool();
    let hash_of = |sql: &'static str| async move {
        sqlx::query(sql)
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get::<String, _>(0)
            .unwrap()
    };
    let raw1 = hash_of("SELECT raw_sha256 FROM comments ORDER BY id LIMIT 1").await;
    let att2 = hash_of("SELECT sha256 FROM attachments ORDER BY id LIMIT 1 OFFSET 1").await;
    let raw3 = hash_of("SELECT raw_sha256 FROM comments ORDER BY id DESC LIMIT 1").await;
    // The third mail's row names the second's attachment by number: its
    // number and its hash disagree, though both blobs are whole.
    sqlx::query(
        "UPDATE comments SET raw_blob = (SELECT id FROM blob_locations WHERE sha256 = $1) \
         WHERE raw_sha256 = $2",
    )
    .bind(&att2)
    .bind(&raw3)
    .execute(pool)
    .await
    .unwrap();
    // The first mail's blob lost (its location gone: a row without a blob
    // number, as rows from before numbers are; a location a number names
    // cannot go), the second's attachment altered in its pack.
    let n1 = count(&h, "SELECT raw_blob FROM comments ORDER BY id LIMIT 1").await;
    sqlx::query("UPDATE comments SET raw_blob = NULL WHERE raw_sha256 = $1")
        .bind(&raw1)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM blob_locations WHERE id = $1")
        .bind(n1)
        .execute(pool)
        .await
        .unwrap();
    let at = sqlx::query("SELECT pack, pos FROM blob_locations WHERE sha256 = $1")
        .bind(&att2)
        .fetch_one(pool)
        .await
        .unwrap();
    let pack = blobs
        .join("packs")
        .join(at.try_get::<String, _>("pack").unwrap());
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[at.try_get::<i64, _>("pos").unwrap() as usize] ^= 0x20;
    std::fs::write(&pack, bytes).unwrap();
    let o = intake(&cfg, &["blobs", "verify"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("\"sha256\":\"{raw1}\",\"problem\":\"missing\"")),
        "{out}"
    );
    assert!(
        out.contains(&format!("\"sha256\":\"{att2}\",\"problem\":\"hash\"")),
        "{out}"
    );
    assert!(
        out.contains(&format!("\"sha256\":\"{raw3}\",\"problem\":\"number\"")),
        "{out}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("3 row(s) name a missing or damaged blob"),
        "{}",
        text(&o)
    );
    // A row named by hash only (as rows from before blob numbers are) whose
    // blob is located reads whole and is no problem.
    assert!(!out.contains("\"row\":\"comment\",\"id\":2,"), "{out}");
    // Its location keyed by the hash, as every location was before raw
    // mails were located by number alone.
    for sql in [
        "UPDATE blob_locations SET sha256 = (SELECT raw_sha256 FROM comments WHERE id = 2) \
         WHERE id = (SELECT raw_blob FROM comments WHERE id = 2)",
        "UPDATE comments SET raw_blob = NULL WHERE id = 2",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    let raw = h.store().comment_raw(2).await.unwrap().unwrap();
    assert!(
        raw.trim_ascii_end()
            == with_attachment(2, b"second attachment")
                .as_bytes()
                .trim_ascii_end(),
        "the mail named by hash only is read whole"
    );
    let check = h.store().blobs_verify().await.unwrap();
    assert_eq!(check.problems.len(), 3, "{check:?}");
    assert!(
        check
            .problems
            .iter()
            .all(|p| p.row != "comment" || p.id != 2),
        "{check:?}"
    );
    // A download of the missing one says so.
    let c = count(&h, "SELECT MIN(id) FROM comments").await;
    let e = h.store().comment_raw(c).await.unwrap_err().to_string();
    assert!(e.contains(&raw1) && e.contains("missing"), "{e}");
}

both_backends!(verify_names_missing_and_damaged_blobs);
