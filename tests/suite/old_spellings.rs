//! Addresses stored by earlier versions in another spelling are rewritten
//! in today's normal form once, at `intake migrate` (and every start), so
//! new mail from the same person joins the existing user and new people at
//! an organization's domain join that organization. Where the normal form
//! already belongs to another user or organization, the old row is kept as
//! it is and the conflict recorded (warn log, `normalisation_conflicts`,
//! `intake export`).
//!
//! The database is built as the previous version left it: SQL migrations
//! up to 0009, rows seeded with SQL.

use crate::common::{config, fresh_url, mail, Db};
use intake::model::{Inbound, OutcomeKind, RawMail};
use intake::pipeline::{Pipeline, Settings};
use intake::store::Store;
use sqlx::Row;
use std::path::Path;
use std::process::Command;

/// The schema of the previous version: migrations up to 0009 only.
async fn previous_schema(url: &str, db: Db) -> Store {
    let dir = match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let mut m = sqlx::migrate::Migrator::new(path).await.unwrap();
    let old: Vec<_> = m
        .migrations
        .iter()
        .filter(|x| x.version <= 9)
        .cloned()
        .collect();
    m.migrations = old.into();
    let store = Store::connect(url, 2).await.unwrap();
    m.run(store.pool()).await.unwrap();
    store
}

async fn exec(store: &Store, sql: &str) {
    sqlx::query(sql)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Rows as an earlier version could have stored them.
async fn seed(s: &Store) {
    for (id, name) in [
        (1, "Grace"),
        (2, "Alan (old)"),
        (3, "Alan (new)"),
        (4, "Bob"),
    ] {
        exec(
            s,
            &format!("INSERT INTO users (id, name, created_at) VALUES ({id}, '{name}', 1)"),
        )
        .await;
    }
    for (id, name) in [(1, "Bücher GmbH"), (2, "Acme"), (3, "Acme (old)")] {
        exec(
            s,
            &format!("INSERT INTO organizations (id, name, created_at) VALUES ({id}, '{name}', 1)"),
        )
        .await;
    }
    exec(s, "UPDATE users SET organization_id = 1 WHERE id = 1").await;
    for (id, user, value, domain) in [
        // Fullwidth local part, upper-case Unicode domain, trailing dot.
        (1, 1, "Ｇrace.Hopper@BÜCHER.Example.", "BÜCHER.Example."),
        (2, 1, "+14155550100", ""),
        // Its normal form belongs to user 3 (who wrote after the upgrade).
        (3, 2, "Alan@Example.ORG.", "example.org"),
        (4, 3, "alan@example.org", "example.org"),
        // Two spellings of one address of one user.
        (5, 4, "\"bob\"@Example.net", "example.net"),
        (6, 4, "bob@example.net", "example.net"),
    ] {
        let kind = if value.starts_with('+') {
            "phone"
        } else {
            "email"
        };
        let domain = if domain.is_empty() {
            "NULL".into()
        } else {
            format!("'{domain}'")
        };
        exec(
            s,
            &format!(
                "INSERT INTO identities (id, user_id, kind, value, domain, created_at) \
                          VALUES ({id}, {user}, '{kind}', '{}', {domain}, 1)",
                value.replace('\'', "''")
            ),
        )
        .await;
    }
    for (domain, org) in [("BÜCHER.example.", 1), ("acme.test", 2), ("ACME.test", 3)] {
        exec(s, &format!("INSERT INTO organization_domains (domain, organization_id) VALUES ('{domain}', {org})")).await;
    }
    exec(s, "INSERT INTO tickets (id, subject, status, channel, public, requester_id, organization_id, created_at, updated_at) \
             VALUES (1, 'Invoice', 'open', 'email', 1, 1, 1, 1, 1)").await;
    exec(
        s,
        "INSERT INTO ticket_participants (ticket_id, address) VALUES (1, 'Carol@Example.COM.')",
    )
    .await;
    exec(s, "INSERT INTO undeliverable (address, until_at, reason) VALUES ('Dave@Example.COM.', 9999999999999, 'bounce')").await;
    exec(s, "INSERT INTO outbox (ticket_id, trigger_name, to_addr, subject, body_text, message_id, status, \
             next_attempt_at, created_at) VALUES (1, 'ack', 'Dave@Example.COM.', 's', 'b', 'n1@desk.test', 'sent', 1, 1)").await;
    if s.backend() == intake::store::Backend::Postgres {
        for t in ["users", "organizations", "identities", "tickets"] {
            exec(
                s,
                &format!("SELECT setval(pg_get_serial_sequence('{t}', 'id'), 100)"),
            )
            .await;
        }
    }
}

/// `intake migrate`, as ops run it after an upgrade: its log.
fn migrate(dir: &Path, url: &str) -> String {
    let cfg = dir.join("intake.toml");
    std::fs::write(&cfg, format!("[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["migrate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "intake migrate failed:\n{log}");
    log
}

async fn strings(s: &Store, sql: &str) -> Vec<String> {
    let rows = sqlx::query(sql).fetch_all(s.pool()).await.unwrap();
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

async fn old_spellings_are_found_again(db: Db) {
    let (url, _keep) = fresh_url(db).await;
    let work = tempfile::tempdir().unwrap();
    let old = previous_schema(&url, db).await;
    seed(&old).await;
    old.close().await;
    let log = migrate(work.path(), &url);

    let store = Store::open(&url, 4).await.unwrap();
    let p = Pipeline::new(store.clone(), Settings::from_config(&config(&url, "")));
    let ingest = |from: &str, subject: &str, mid: &str| {
        let raw = mail(from, subject, mid, "", "hello").into_bytes();
        let item = Inbound::Mail(RawMail {
            raw,
            mailbox: Some("support".into()),
            source: "test".into(),
        });
        let p = p.clone();
        async move { p.ingest(vec![item], None).await.unwrap().remove(0) }
    };
    // The same person, in today's normal form: the existing user.
    let o = ingest(
        "Grace Hopper <grace.hopper@xn--bcher-kva.example>",
        "New printer",
        "g1@b.example",
    )
    .await;
    assert_eq!(
        (o.outcome, o.user_id),
        (OutcomeKind::Created, Some(1)),
        "{o:?}"
    );
    let o = ingest("grace.hopper@bücher.example", "Toner", "g2@b.example").await;
    assert_eq!(o.user_id, Some(1), "{o:?}");
    // Someone new at the organization's domain joins the organization.
    let o = ingest("newcomer@xn--bcher-kva.example", "Hello", "n1@b.example").await;
    let org: Option<i64> = sqlx::query("SELECT organization_id FROM users WHERE id = $1")
        .bind(o.user_id.unwrap())
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(org, Some(1), "{o:?}");
    // A participant in an old spelling is still one.
    let o = ingest("carol@example.com", "Re: [#1] Invoice", "c1@example.com").await;
    assert_eq!(
        (o.outcome, o.ticket_id),
        (OutcomeKind::Appended, Some(1)),
        "{o:?}"
    );
    let flag = strings(
        &store,
        "SELECT COALESCE(flag, '') FROM comments WHERE message_id = 'c1@example.com'",
    )
    .await;
    assert_eq!(flag, vec![String::new()]);
    // Contested normal forms: both rows kept, the conflict recorded.
    let o = ingest("alan@example.org", "Hi", "a1@example.org").await;
    assert_eq!(o.user_id, Some(3), "{o:?}");
    let users: i64 = sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 6, "only newcomer and carol are new");

    let q = "SELECT value FROM identities WHERE kind = 'email' ORDER BY user_id, value";
    assert_eq!(
        strings(&store, q).await,
        [
            "grace.hopper@xn--bcher-kva.example",
            "Alan@Example.ORG.",
            "alan@example.org",
            "bob@example.net",
            "newcomer@xn--bcher-kva.example",
            "carol@example.com"
        ]
    );
    let q = "SELECT domain FROM identities WHERE user_id = 1 AND kind = 'email'";
    assert_eq!(strings(&store, q).await, ["xn--bcher-kva.example"]);
    // (example.com: carol's, created by her mail.)
    let mut domains = strings(&store, "SELECT domain FROM organization_domains").await;
    domains.sort();
    assert_eq!(
        domains,
        [
            "ACME.test",
            "acme.test",
            "example.com",
            "xn--bcher-kva.example"
        ]
    );
    assert_eq!(
        strings(&store, "SELECT address FROM ticket_participants").await,
        ["carol@example.com"]
    );
    assert_eq!(
        strings(&store, "SELECT address FROM undeliverable").await,
        ["dave@example.com"]
    );
    assert_eq!(
        strings(&store, "SELECT to_addr FROM outbox").await,
        ["dave@example.com"]
    );
    let doc = store.export().await.unwrap();
    let c = &doc["normalisation_conflicts"];
    assert_eq!(c.as_array().map(Vec::len), Some(2), "{c}");
    assert_eq!(
        (
            &c[0]["table"],
            &c[0]["old_value"],
            &c[0]["normal_value"],
            &c[0]["owner_id"],
            &c[0]["holder_id"]
        ),
        (
            &"identities".into(),
            &"Alan@Example.ORG.".into(),
            &"alan@example.org".into(),
            &2.into(),
            &3.into()
        )
    );
    assert_eq!(
        (&c[1]["table"], &c[1]["owner_id"], &c[1]["holder_id"]),
        (&"organization_domains".into(), &3.into(), &2.into())
    );
    assert!(
        log.contains("Alan@Example.ORG.") && log.contains("WARN"),
        "no warning:\n{log}"
    );

    // Once: later starts and migrations change nothing.
    store.close().await;
    migrate(work.path(), &url);
    let store = Store::open(&url, 2).await.unwrap();
    let runs = strings(&store, "SELECT summary FROM data_migrations").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].contains("identities rewritten: 1"), "{runs:?}");
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM normalisation_conflicts")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    store.close().await;
}

both_backends!(old_spellings_are_found_again);
