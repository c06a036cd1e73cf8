//! The S3 blob backend against a real S3-compatible server (s3s-fs, which
//! checks SigV4 signatures), on both databases, and `[blobs]` mistakes
//! named with their line.

use crate::blob_store::with_attachment;
use crate::cli_ops::{intake, text};
use crate::common::Db;
use sqlx::Row;
use std::time::Duration;

/// The S3 backend against a real S3-compatible server (s3s-fs, SigV4),
/// configured as ops would, secrets from the environment: mail stored
/// through it, blobs shared, downloads and `intake blobs verify` through
/// the CLI, orphans swept; a wrong secret is a passing fault that stores
/// nothing and quarantines nothing.
async fn the_s3_backend_keeps_blobs_in_a_bucket(db: Db) {
    use crate::support::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
    let s3 = S3Server::start("desk-blobs");
    let dbh = crate::common::TestDb::new(db).await;
    // `secret` is the secret's line: a literal here, a variable for the CLI.
    let blobs = |secret: &str| {
        format!(
            "[blobs]\nbackend = \"s3\"\nbucket = \"desk-blobs\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
             access_key_id = \"{ACCESS_KEY}\"\n{secret}\nprefix = \"intake/\"\n",
            s3.endpoint()
        )
    };
    let cfg = crate::common::config(
        &dbh.url,
        &blobs(&format!("secret_access_key = \"{SECRET_KEY}\"")),
    );
    let app = intake::app::App::build(cfg.clone()).await.unwrap();
    assert!(app.store().blobs().describe().contains("desk-blobs"));
    let p = &app.pipeline;
    let ingest = |raw: String| async move {
        let item = intake::model::Inbound::Mail(intake::model::RawMail {
            raw: raw.into_bytes(),
            mailbox: None,
            source: "test".into(),
        });
        p.ingest(vec![item], None).await
    };
    for n in 0..3 {
        let o = ingest(with_attachment(n, b"one shared attachment body"))
            .await
            .unwrap();
        assert!(o[0].ticket_id.is_some());
    }
    // Three raw mails and one attachment, as objects under the prefix.
    let objects: Vec<_> = std::fs::read_dir(s3.root.path().join("desk-blobs/intake"))
        .unwrap()
        .collect();
    assert_eq!(objects.len(), 4, "{objects:?}");
    assert_eq!(app.store().blob_list().await.unwrap().len(), 4);
    let c = count_in(app.store(), "SELECT MIN(id) FROM comments").await;
    assert_eq!(
        app.store().comment_raw(c).await.unwrap().unwrap(),
        with_attachment(0, b"one shared attachment body").into_bytes()
    );
    // The CLI reads the same bucket through the same configuration.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intake.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{}\"\n[desk]\ndomain = \"desk.test\"\n{}",
            dbh.url,
            blobs("secret_access_key_env = \"INTAKE_TEST_S3_SECRET\"")
        ),
    )
    .unwrap();
    let env = [("INTAKE_TEST_S3_SECRET", SECRET_KEY)];
    let o = intake(&path, &["comments", "raw", &c.to_string()], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        o.stdout,
        with_attachment(0, b"one shared attachment body").into_bytes()
    );
    let o = intake(&path, &["blobs", "verify"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"rows\":6,\"blobs\":4"),
        "{}",
        text(&o)
    );
    // An orphan (a batch that died before its commit) is swept; what rows
    // name stays.
    let orphan = intake::model::Blob::new(b"orphan".to_vec());
    app.store()
        .blobs()
        .write(vec![(orphan.sha256.clone(), orphan.bytes.clone())])
        .await
        .unwrap();
    let s = app.store().blobs_gc(Duration::ZERO, false).await.unwrap();
    assert_eq!((s.stored, s.removed), (4, 1), "{s:?}");
    assert_eq!(app.store().blob_list().await.unwrap().len(), 4);
    // A wrong secret: SigV4 refused, a passing fault; nothing stored.
    let bad = crate::common::config(&dbh.url, &blobs("secret_access_key = \"not-the-secret\""));
    let bad = intake::app::App::build(bad).await.unwrap();
    let item = intake::model::Inbound::Mail(intake::model::RawMail {
        raw: with_attachment(9, b"refused").into_bytes(),
        mailbox: None,
        source: "test".into(),
    });
    let e = bad.pipeline.ingest(vec![item], None).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("blob store"), "{e}");
    assert_eq!(
        count_in(app.store(), "SELECT COUNT(*) FROM comments").await,
        3
    );
    assert_eq!(
        count_in(app.store(), "SELECT COUNT(*) FROM quarantine").await,
        0
    );
}

async fn count_in(store: &intake::store::Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

/// `[blobs]` mistakes are named with their line.
#[test]
fn blob_config_mistakes_are_named() {
    let problems = intake::app::config_from_toml(
        "[desk]\ndomain = \"desk.test\"\n[blobs]\nbackend = \"s3\"\ndir = \"/x\"\norphan_grace_hours = 0\n",
    )
    .unwrap_err();
    let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let all = all.join("\n");
    for want in [
        "blobs.bucket",
        "needs a bucket",
        "blobs.dir",
        "only for backend = \"filesystem\"",
        "blobs.access_key_id",
        "blobs.orphan_grace_hours",
    ] {
        assert!(all.contains(want), "{want} not in:\n{all}");
    }
    assert!(all.contains("line 6"), "{all}");
    let e = intake::app::config_from_toml("[blobs]\nbackend = \"tape\"\n").unwrap_err();
    assert!(e[0].to_string().contains("tape"), "{e:?}");
}

both_backends!(the_s3_backend_keeps_blobs_in_a_bucket);
