//! Upgrading a database whose outbox predates migration 0008 (rate limit
//! counted at send time, no unique index on Message-IDs), on both databases:
//! queued rows keep their Message-IDs and still send, a customer's reply to
//! a notification sent before the upgrade still threads by References, and
//! what was sent before the upgrade still counts against the rate limit.

use crate::common;
use crate::support::desk;
use crate::support::smtp;

use common::{config, fresh_url, mail, Db};
use desk::{notifications, smtp_toml, ACK};
use intake::model::{Inbound, OutcomeKind, RawMail};
use intake::notify::drain_once;
use intake::pipeline::{Pipeline, Settings};
use intake::store::Store;
use smtp::SmtpSink;

/// Apply the project's migrations up to `last` only.
async fn migrate_to(store: &Store, db: Db, last: i64) {
    let dir = match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let mut m = sqlx::migrate::Migrator::new(path).await.unwrap();
    m.migrations = m
        .migrations
        .iter()
        .filter(|x| x.version <= last)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    m.run(store.pool()).await.unwrap();
}

async fn ingest(p: &Pipeline, raw: &str) -> intake::model::Outcome {
    p.ingest(
        vec![Inbound::Mail(RawMail {
            raw: raw.as_bytes().to_vec(),
            mailbox: Some("support".into()),
            source: "test".into(),
        })],
        None,
    )
    .await
    .unwrap()
    .remove(0)
}

async fn outbox_from_0007(db: Db) {
    let sink = SmtpSink::start();
    let (url, _dir) = fresh_url(db).await;
    let extra = format!("[notifications]\nper_recipient_limit = 1\n{ACK}");
    let cfg = config(&url, &smtp_toml(sink.port, &extra));
    // The database as the previous version left it: one acknowledgement
    // sent a minute ago, one still pending, both to the same customer.
    let old = Store::connect(&url, 4).await.unwrap();
    migrate_to(&old, db, 7).await;
    // Today's ingest writes comments.role, comments.forwarded_by and
    // comments.visible_body and attachments' content_id, inline and omitted
    // (migrations 0014, 0015, 0018, 0019) and reads the review table (0013) and
    // thread_names (0016) and bounces (0017): they are
    // lent to the old schema for these two mails and taken back before the
    // upgrade, which adds them again.
    let lend = |sql: &'static str| {
        let pool = old.pool().clone();
        async move { sqlx::query(sql).execute(&pool).await.unwrap() }
    };
    lend("ALTER TABLE comments ADD COLUMN role TEXT NOT NULL DEFAULT 'end_user'").await;
    lend("ALTER TABLE comments ADD COLUMN forwarded_by TEXT").await;
    lend("ALTER TABLE comments ADD COLUMN visible_body TEXT").await;
    lend("ALTER TABLE attachments ADD COLUMN content_id TEXT").await;
    lend("ALTER TABLE attachments ADD COLUMN inline INTEGER NOT NULL DEFAULT 0").await;
    lend("ALTER TABLE attachments ADD COLUMN omitted TEXT").await;
    lend("ALTER TABLE comments ADD COLUMN raw_sha256 TEXT").await;
    lend("ALTER TABLE comments ADD COLUMN raw_size BIGINT").await;
    lend("ALTER TABLE attachments ADD COLUMN sha256 TEXT").await;
    lend("CREATE TABLE blob_locations (sha256 TEXT PRIMARY KEY, pack TEXT NOT NULL, pos BIGINT NOT NULL, size BIGINT NOT NULL, used_at BIGINT NOT NULL)").await;
    lend("CREATE TABLE review (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL, status TEXT NOT NULL)").await;
    lend("CREATE TABLE thread_names (message_id TEXT NOT NULL, ticket_id BIGINT NOT NULL, PRIMARY KEY (message_id, ticket_id))").await;
    lend("CREATE TABLE bounces (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL)").await;
    let p = Pipeline::new(old.clone(), Settings::from_config(&cfg));
    let t = ingest(&p, &mail("ada@acme.com", "First", "u1@acme.com", "", "x"))
        .await
        .ticket_id
        .unwrap();
    ingest(&p, &mail("ada@acme.com", "Second", "u2@acme.com", "", "y")).await;
    let now = intake::store::now_ms();
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = 1 WHERE ticket_id = $2",
    )
    .bind(now - 60_000)
    .bind(t)
    .execute(old.pool())
    .await
    .unwrap();
    // Read as the export shows them (today's export reads tables this old
    // schema does not have yet).
    let before: Vec<serde_json::Value> = {
        use sqlx::Row;
        sqlx::query("SELECT id, ticket_id, trigger_name, to_addr, status, attempts, message_id, last_error FROM outbox ORDER BY id")
            .fetch_all(old.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::json!({"id": r.get::<i64, _>("id"), "ticket_id": r.get::<i64, _>("ticket_id"),
                "trigger": r.get::<String, _>("trigger_name"), "to": r.get::<String, _>("to_addr"),
                "status": r.get::<String, _>("status"), "attempts": r.get::<i64, _>("attempts"),
                "message_id": r.get::<String, _>("message_id"), "last_error": r.get::<Option<String>, _>("last_error")}))
            .collect()
    };
    lend("ALTER TABLE comments DROP COLUMN role").await;
    lend("ALTER TABLE comments DROP COLUMN forwarded_by").await;
    lend("ALTER TABLE comments DROP COLUMN visible_body").await;
    lend("ALTER TABLE attachments DROP COLUMN content_id").await;
    lend("ALTER TABLE attachments DROP COLUMN inline").await;
    lend("ALTER TABLE attachments DROP COLUMN omitted").await;
    lend("ALTER TABLE comments DROP COLUMN raw_sha256").await;
    lend("ALTER TABLE comments DROP COLUMN raw_size").await;
    lend("ALTER TABLE attachments DROP COLUMN sha256").await;
    lend("DROP TABLE blob_locations").await;
    lend("DROP TABLE review").await;
    lend("DROP TABLE thread_names").await;
    lend("DROP TABLE bounces").await;
    old.close().await;

    let store = Store::open(&url, 4).await.unwrap();
    let doc = store.export().await.unwrap();
    assert_eq!(
        notifications(&doc),
        before,
        "rows survive the upgrade as they were"
    );
    let first = before[0]["message_id"].as_str().unwrap().to_string();
    // The sent one still counts: the pending one to the same address is held back.
    assert_eq!(drain_once(&store, &cfg).await.unwrap(), 0);
    let n = notifications(&store.export().await.unwrap());
    assert_eq!(n[1]["status"], "suppressed", "{n:?}");
    assert!(n[1]["last_error"].as_str().unwrap().contains("rate limit"));
    assert!(sink.messages().is_empty());
    // A reply to the acknowledgement sent before the upgrade, found by References only.
    let p = Pipeline::new(store.clone(), Settings::from_config(&cfg));
    let r = ingest(
        &p,
        &mail(
            "ada@acme.com",
            "Any news?",
            "u3@acme.com",
            &format!("References: <{first}>\n"),
            "z",
        ),
    )
    .await;
    assert_eq!((r.outcome, r.ticket_id), (OutcomeKind::Appended, Some(t)));
    // New notifications after the upgrade go out (another recipient).
    ingest(&p, &mail("bob@acme.com", "Third", "u4@acme.com", "", "w")).await;
    assert_eq!(drain_once(&store, &cfg).await.unwrap(), 1);
    assert_eq!(sink.wait_for(1, 5)[0].rcpt_tos, vec!["bob@acme.com"]);
}

both_backends!(outbox_from_0007);
