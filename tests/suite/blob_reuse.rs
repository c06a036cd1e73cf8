//! Reuse against removal, on both blob stores (a directory of packs and an
//! S3 bucket) and both databases: a batch that finds a blob stored and
//! names it while an erasure or the sweep removes the last row naming it
//! never commits a row whose blob is gone. Each side first, step by step,
//! then at random moments; and an S3 bucket's objects from before objects
//! had their own names are read, kept while rows need them, and erased.

use crate::common::{config, Db, TestDb};
use crate::support::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use intake::model::{Inbound, Outcome, RawMail};
use rand::Rng;
use sqlx::Row;
use std::time::Duration;

const LOGO: &[u8] = b"the logo in every signature of this test";

#[derive(Clone, Copy, Debug)]
enum Kind {
    Packs,
    Bucket,
}

struct Env {
    app: intake::app::App,
    s3: Option<S3Server>,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn env(db: Db, kind: Kind) -> Env {
    let dbh = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let (extra, s3) = match kind {
        Kind::Packs => (
            format!("[blobs]\ndir = \"{}\"\n", dir.path().display()),
            None,
        ),
        Kind::Bucket => {
            let s3 = S3Server::start("reuse");
            let extra = format!(
                "[blobs]\nbackend = \"s3\"\nbucket = \"reuse\"\nendpoint = \"{}\"\n\
                 region = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\n\
                 secret_access_key = \"{SECRET_KEY}\"\nprefix = \"desk/\"\n",
                s3.endpoint()
            );
            (extra, Some(s3))
        }
    };
    let app = intake::app::App::build(config(&dbh.url, &extra))
        .await
        .unwrap();
    Env {
        app,
        s3,
        _db: dbh,
        _dir: dir,
    }
}

/// Customer `n`'s mail, signed with the shared logo.
fn signed(n: usize) -> String {
    use base64::Engine;
    format!(
        "From: C{n} <c{n}@acme.example>\nTo: support@desk.test\nSubject: Question {n}\n\
         Message-ID: <reuse{n}@acme.example>\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
         Question {n}.\n--b\nContent-Type: image/png\nContent-Disposition: attachment; \
         filename=logo.png\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
        base64::engine::general_purpose::STANDARD.encode(LOGO)
    )
}

fn inbound(raw: &str) -> Inbound {
    Inbound::Mail(RawMail {
        raw: raw.as_bytes().to_vec(),
        mailbox: None,
        source: "test".into(),
    })
}

impl Env {
    fn store(&self) -> &intake::store::Store {
        self.app.store()
    }

    async fn mail(&self, n: usize) -> Outcome {
        let o = self
            .app
            .pipeline
            .ingest(vec![inbound(&signed(n))], None)
            .await;
        o.unwrap().remove(0)
    }

    fn logo_hash(&self) -> String {
        intake::model::Blob::new(LOGO.to_vec()).sha256
    }

    /// The logo's bytes as customer `n`'s attachment serves them.
    async fn logo_of(&self, comment: i64) -> Vec<u8> {
        let id: i64 = sqlx::query("SELECT id FROM attachments WHERE comment_id = $1")
            .bind(comment)
            .fetch_one(self.store().pool())
            .await
            .unwrap()
            .get(0);
        let f = self.store().attachment_file(id).await.unwrap();
        let (_, s) = self.store().open_body(&f.body.unwrap()).await.unwrap();
        use futures::TryStreamExt;
        let parts: Vec<bytes::Bytes> = s.try_collect().await.unwrap();
        parts.concat()
    }

    async fn clean(&self) {
        let check = self.store().blobs_verify().await.unwrap();
        assert!(check.problems.is_empty(), "{check:?}");
    }
}

/// The batch side: a batch finds the logo stored and does not write it
/// again; before its transaction the only row naming it goes and the sweep
/// removes it. Its transaction finds the blob gone, and the batch, run
/// again, writes it again.
async fn removal_first(db: Db, kind: Kind) {
    let e = env(db, kind).await;
    let store = e.store();
    e.mail(1).await;
    let item = intake::pipeline::prepare(&e.app.pipeline.settings, &inbound(&signed(2)));
    let found = store.put_blobs(std::slice::from_ref(&item)).await.unwrap();
    assert_eq!(found.held, vec![e.logo_hash()], "{kind:?}");
    sqlx::query("DELETE FROM attachments")
        .execute(store.pool())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.blobs_gc(Duration::ZERO, false).await.unwrap();
    assert_eq!(store.read_blob(&e.logo_hash()).await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    let err = tx.record_blobs(&found).await.unwrap_err();
    assert!(err.is_blob_gone(), "{kind:?}: {err}");
    drop(tx);
    let o = e.mail(2).await;
    assert_eq!(e.logo_of(o.comment_id.unwrap()).await, LOGO);
    e.clean().await;
}

/// The removal side: the only row naming the logo goes (as an erasure's
/// transaction removes it), a batch that found the logo stored commits a
/// row naming it, and then the removal looks: the logo stays.
async fn reuse_first(db: Db, kind: Kind) {
    let e = env(db, kind).await;
    let store = e.store();
    let first = e.mail(1).await;
    sqlx::query("DELETE FROM attachments")
        .execute(store.pool())
        .await
        .unwrap();
    let o = e.mail(2).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let s = store.blobs_gc(Duration::ZERO, false).await.unwrap();
    assert_eq!(s.removed, 0, "{kind:?}: {s:?}");
    assert_eq!(e.logo_of(o.comment_id.unwrap()).await, LOGO);
    // Erasing the first customer (their raw mail) leaves the logo too.
    store.erase_user(first.user_id.unwrap()).await.unwrap();
    assert_eq!(e.logo_of(o.comment_id.unwrap()).await, LOGO);
    e.clean().await;
}

/// At random moments: each round erases the one customer whose mail names
/// the logo while the next customer's mail, carrying it, is stored. Every
/// stored row's blob is there afterwards.
async fn erasure_races_reuse(db: Db, kind: Kind) {
    let e = std::sync::Arc::new(env(db, kind).await);
    let mut last = e.mail(0).await;
    let mut rng = rand::thread_rng();
    for n in 1..=24 {
        let (a, b) = (rng.gen_range(0..2500u64), rng.gen_range(0..2500u64));
        let user = last.user_id.unwrap();
        let eraser = {
            let e = e.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(a)).await;
                e.store().erase_user(user).await.unwrap();
            })
        };
        tokio::time::sleep(Duration::from_micros(b)).await;
        last = e.mail(n).await;
        eraser.await.unwrap();
        assert_eq!(
            e.logo_of(last.comment_id.unwrap()).await,
            LOGO,
            "{kind:?}, round {n}"
        );
    }
    e.clean().await;
}

/// An S3 bucket written before objects had their own names: rows name
/// `<prefix><sha256>` objects and no location. They are read and checked;
/// the sweep keeps them while rows need them; a new mail with the same
/// attachment gets its own object; erasing the last row naming one deletes
/// it.
async fn bucket_objects_named_by_hash(db: Db) {
    let e = env(db, Kind::Bucket).await;
    let store = e.store();
    let first = e.mail(1).await;
    // Back to the old layout: objects named by their hash, no locations.
    let dir = e.s3.as_ref().unwrap().root.path().join("reuse/desk");
    for f in std::fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let (sha, tag) = name.split_once('.').expect("an object of its own name");
        assert_eq!(tag.len(), 16, "{name}");
        std::fs::rename(&p, dir.join(sha)).unwrap();
    }
    // Rows of that time have no blob numbers (migration 0025 gives numbers
    // to rows whose blob has a location).
    for sql in [
        "UPDATE comments SET raw_blob = NULL",
        "UPDATE attachments SET blob = NULL",
        "DELETE FROM blob_locations",
    ] {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    }
    let c = first.comment_id.unwrap();
    assert_eq!(e.logo_of(c).await, LOGO);
    assert_eq!(
        store.comment_raw(c).await.unwrap().unwrap(),
        signed(1).into_bytes()
    );
    e.clean().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let s = store.blobs_gc(Duration::ZERO, false).await.unwrap();
    assert_eq!(s.removed, 0, "{s:?}");
    let second = e.mail(2).await;
    assert!(dir.join(e.logo_hash()).exists());
    // The old object is now a copy nothing reads: swept.
    store.erase_user(first.user_id.unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.blobs_gc(Duration::ZERO, false).await.unwrap();
    assert!(!dir.join(e.logo_hash()).exists());
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "the second mail and the logo: {names:?}");
    assert!(names.iter().all(|n| n.contains('.')), "{names:?}");
    assert_eq!(e.logo_of(second.comment_id.unwrap()).await, LOGO);
    e.clean().await;
}

macro_rules! every_store {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::{Db, Kind};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn packs_sqlite() { super::$name(Db::Sqlite, Kind::Packs).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn packs_postgres() { super::$name(Db::Postgres, Kind::Packs).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bucket_sqlite() { super::$name(Db::Sqlite, Kind::Bucket).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bucket_postgres() { super::$name(Db::Postgres, Kind::Bucket).await }
        }
    )*};
}

every_store!(removal_first, reuse_first, erasure_races_reuse);
both_backends!(bucket_objects_named_by_hash);
