//! Retention by policy, on both databases: `intake retention run --dry-run`
//! says what would go and removes nothing; the daemon then applies the
//! policy at start (its metrics count what went): old raw mails dropped
//! with their comments kept, old quarantine entries removed, closed
//! tickets' content erased with the blobs only they named, finished webhook
//! requests and sent notifications past their age removed; everything
//! younger, in progress or shared stays. A large run interleaves with
//! ingestion.

use crate::blob_store::{count, with_attachment};
use crate::cli_ops::{intake, text};
use crate::common::{mail, Db, Harness};
use crate::support::desk::ACK;
use crate::support::smtp::free_port;
use sqlx::Row;
use std::time::Duration;

const DAY: i64 = 86_400_000;
const POLICY: &str = "[retention]\nraw_after_days = 30\nquarantine_days = 14\n\
    closed_tickets_erase_after_days = 365\nwebhook_requests_hours = 48\noutbox_sent_days = 30\n";

async fn exec(h: &Harness, sql: &str, a: i64) {
    sqlx::query(sql)
        .bind(a)
        .execute(h.store().pool())
        .await
        .unwrap();
}

/// Everything retention looks at, counted.
async fn census(h: &Harness) -> Vec<i64> {
    let mut v = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM comments WHERE raw_sha256 IS NOT NULL",
        "SELECT COUNT(*) FROM quarantine",
        "SELECT COUNT(*) FROM tickets WHERE content_erased_at IS NULL",
        "SELECT COUNT(*) FROM webhook_requests",
        "SELECT COUNT(*) FROM outbox",
        "SELECT COUNT(*) FROM attachments",
    ] {
        v.push(count(h, sql).await);
    }
    v.push(h.store().blob_list().await.unwrap().len() as i64);
    v
}

async fn old_data_goes_and_the_rest_stays(db: Db) {
    let port = free_port();
    let h = Harness::with(db, ACK).await;
    let now = intake::store::now_ms();
    // T1: closed 400 days ago, with an attachment T3 shares.
    let t1 = h
        .mail(&with_attachment(1, b"shared logo"))
        .await
        .ticket_id
        .unwrap();
    // T2: open, its first mail 100 days old, a fresh reply.
    let t2 = h
        .mail(&with_attachment(2, b"old only"))
        .await
        .ticket_id
        .unwrap();
    // T3: fresh.
    let t3 = h
        .mail(&with_attachment(3, b"shared logo"))
        .await
        .ticket_id
        .unwrap();
    let reply = mail(
        "Ada <ada@acme.example>",
        "Re: Logs 2",
        "r2@acme.example",
        "In-Reply-To: <blob2@acme.example>\n",
        "A fresh reply.",
    );
    assert_eq!(h.mail(&reply).await.ticket_id, Some(t2));
    let closed = format!("UPDATE tickets SET status = 'closed', updated_at = $1 WHERE id = {t1}");
    exec(&h, &closed, now - 400 * DAY).await;
    exec(
        &h,
        "UPDATE comments SET created_at = $1 WHERE message_id = 'blob2@acme.example'",
        now - 100 * DAY,
    )
    .await;
    // T3's mail as an agent's forward of a customer's mail written 400
    // days ago: dated then, but it arrived now, and its raw mail stays.
    exec(
        &h,
        "UPDATE comments SET created_at = $1, forwarded_by = 'agent@desk.test' \
         WHERE message_id = 'blob3@acme.example'",
        now - 400 * DAY,
    )
    .await;
    // Quarantine: one old, one fresh.
    h.mail("Subject: no sender at all\n\nold").await;
    h.mail("Subject: no sender either\n\nfresh").await;
    exec(
        &h,
        "UPDATE quarantine SET received_at = $1 WHERE id = (SELECT MIN(id) FROM quarantine)",
        now - 20 * DAY,
    )
    .await;
    // Webhook requests: old and finished, old but in progress, fresh.
    for (key, status, age) in [("old", 202, 72), ("working", 0, 72), ("fresh", 202, 1)] {
        sqlx::query(
            "INSERT INTO webhook_requests (source, idem_key, body_sha256, status, response, created_at) \
             VALUES ('voice', $1, 'x', $2, '{}', $3)",
        )
        .bind(key)
        .bind(status)
        .bind(now - age * 3_600_000)
        .execute(h.store().pool())
        .await
        .unwrap();
    }
    // Notifications: T2's acknowledgement sent 40 days ago, T3's today.
    exec(&h, "UPDATE outbox SET status = 'sent', sent_at = $1", now).await;
    exec(
        &h,
        "UPDATE outbox SET sent_at = $1 WHERE ticket_id = 2",
        now - 40 * DAY,
    )
    .await;
    let before = census(&h).await;
    // comments with raw, quarantine, tickets, webhook rows, outbox,
    // attachments, blobs (4 raw mails, 2 attachment bodies, 2 quarantined mails)
    assert_eq!(before, vec![4, 2, 3, 3, 3, 3, 8], "{before:?}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n{POLICY}",
            h.db.url
        ),
    )
    .unwrap();
    let o = intake(&cfg, &["retention", "run", "--dry-run"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        r#"{"dry_run":true,"raw_mails":1,"quarantine":1,"closed_tickets":1,"webhook_requests":1,"outbox_sent":1}"#
    );
    assert_eq!(census(&h).await, before, "a dry run removes nothing");

    // The daemon applies it at start; its metrics count what went.
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["--config", cfg.to_str().unwrap(), "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut metrics = String::new();
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            metrics = r.text().await.unwrap_or_default();
        }
        if metrics.contains("intake_retention_purged_total{kind=\"outbox_sent\"}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    for (kind, n) in [
        ("raw_mail", 1),
        ("quarantine", 1),
        ("closed_ticket", 1),
        ("webhook_request", 1),
        ("outbox_sent", 1),
    ] {
        assert!(
            metrics.contains(&format!(
                "intake_retention_purged_total{{kind=\"{kind}\"}} {n}"
            )),
            "{kind}: {metrics}"
        );
    }
    // T1's raw mail went with its content; T2's first raw mail went, its
    // text and attachment stay; T3 is untouched, and so is the logo it
    // shares with T1; the old quarantine entry's mail went with it.
    let after = census(&h).await;
    assert_eq!(after, vec![2, 1, 2, 2, 1, 2, 5], "{after:?}");
    let t2_first = count(
        &h,
        "SELECT id FROM comments WHERE message_id = 'blob2@acme.example'",
    )
    .await;
    assert_eq!(h.store().comment_raw(t2_first).await.unwrap(), None);
    let view = h.store().ticket_view(t2).await.unwrap();
    assert!(
        view["comments"][0]["body"]
            .as_str()
            .unwrap()
            .contains("Attempt 2"),
        "{view}"
    );
    let closed = h.store().ticket_view(t1).await.unwrap();
    assert_eq!(closed["subject"], "[erased]");
    assert_eq!(closed["comments"][0]["body"], "[erased]");
    assert_eq!(closed["status"], "closed");
    let logo = intake::model::Blob::new(b"shared logo".to_vec());
    assert!(h.store().read_blob(&logo.sha256).await.unwrap().is_some());
    assert!(
        h.store().ticket_view(t3).await.unwrap()["comments"][0]["body"]
            .as_str()
            .unwrap()
            .contains("Attempt 3")
    );
    let keys: Vec<String> = sqlx::query("SELECT idem_key FROM webhook_requests ORDER BY idem_key")
        .fetch_all(h.store().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("idem_key").unwrap())
        .collect();
    assert_eq!(keys, ["fresh", "working"]);
    assert!(h.store().blobs_verify().await.unwrap().problems.is_empty());
    // Run again: nothing more goes.
    let o = intake(&cfg, &["retention", "run"], &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains(r#""raw_mails":0,"quarantine":0,"closed_tickets":0"#),
        "{}",
        text(&o)
    );
}

/// A run over many rows and ingestion at the same time: both finish, each
/// complete.
async fn a_large_run_interleaves_with_ingestion(db: Db) {
    let h = Harness::new(db).await;
    let old: Vec<String> = (0..1000)
        .map(|i| {
            mail(
                &format!("C{i} <c{i}@old.example>"),
                "Old",
                &format!("old{i}@old.example"),
                "",
                "old",
            )
        })
        .collect();
    let refs: Vec<&str> = old.iter().map(String::as_str).collect();
    h.mails(&refs).await;
    exec(
        &h,
        "UPDATE comments SET created_at = $1",
        intake::store::now_ms() - 90 * DAY,
    )
    .await;
    let policy = intake::store::RetentionPolicy {
        raw_after_ms: Some(30 * DAY),
        ..Default::default()
    };
    let store = h.store().clone();
    let run = tokio::spawn(async move {
        store
            .retention_run(&policy, intake::store::now_ms(), false)
            .await
            .unwrap()
    });
    for i in 0..50 {
        let m = mail(
            &format!("N{i} <n{i}@new.example>"),
            "New",
            &format!("new{i}@new.example"),
            "",
            "new",
        );
        assert!(h.mail(&m).await.ticket_id.is_some());
    }
    assert_eq!(run.await.unwrap().raw_mails, 1000);
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM comments WHERE raw_sha256 IS NOT NULL"
        )
        .await,
        50
    );
    assert_eq!(h.store().blob_list().await.unwrap().len(), 50);
}

/// `[retention]` mistakes are named with their line.
#[test]
fn retention_mistakes_are_named() {
    let e = intake::app::config_from_toml(
        "[retention]\nraw_after_days = 0\noutbox_sent_days = 1\n[notifications]\nper_recipient_window_secs = 172800\n",
    )
    .unwrap_err();
    let all = e
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        all.contains("line 2: retention.raw_after_days: must be at least 1"),
        "{all}"
    );
    assert!(all.contains("line 3: retention.outbox_sent_days"), "{all}");
    assert!(all.contains("per_recipient_window_secs"), "{all}");
}

both_backends!(
    old_data_goes_and_the_rest_stays,
    a_large_run_interleaves_with_ingestion
);
