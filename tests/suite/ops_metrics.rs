//! What `GET /metrics` of a running `intake run` shows after real work:
//! webhook requests by source and result, messages by outcome per webhook
//! source, the quarantine and outbox depths counted in the database, the
//! oldest due notification, notifications by result (each result present
//! from the sender's start), and per folder the last complete drain and
//! whether its XOAUTH2 token logs in. Each daemon is its own process, so
//! its metrics are only its own.

use crate::common::{fresh_url, mail, Db};
use crate::http_common::{now, SECRET};
use crate::storage_faults::Daemon;
use crate::support::desk::ACK;
use crate::support::dovecot::Dovecot;
use crate::support::faults::Introspection;
use crate::support::numbered;
use crate::support::smtp::SmtpSink;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One scrape: every series (name and labels) with its value.
struct Scrape {
    series: Vec<(String, BTreeMap<String, String>, f64)>,
    text: String,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut series = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((s, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (name, labels) = s.split_once('{').unwrap_or((s, "}"));
            let mut map = BTreeMap::new();
            let mut rest = labels.strip_suffix('}').unwrap_or(labels);
            while let Some((k, v)) = rest.split_once("=\"") {
                let end = v.find('"').expect("a closed label value");
                map.insert(k.to_string(), v[..end].to_string());
                rest = v[end + 1..].trim_start_matches(',');
            }
            series.push((name.to_string(), map, value.parse().unwrap_or(f64::NAN)));
        }
        Scrape { series, text }
    }

    /// The series `name` with exactly `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.series
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.2)
    }

    /// [`Scrape::get`] that must exist.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{}", self.text))
    }

    /// The sum over the series `name` that carry `labels` (and maybe others).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.series
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.2)
            .sum()
    }
}

/// Scrape until `ok` holds (queue depths are counted at most every few
/// seconds); the last scrape either way.
async fn scrape_until(d: &Daemon, secs: u64, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    let t = Instant::now();
    loop {
        let m = Scrape::parse(d.metrics().await);
        if ok(&m) || t.elapsed() > Duration::from_secs(secs) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// POST a contact signed with `secret`: its status and whether it was replayed.
async fn post(d: &Daemon, source: &str, body: &str, secret: &str, key: &str) -> (u16, bool) {
    let r = d.contact(source, body, secret, key).send().await.unwrap();
    let replayed = r.headers().contains_key("idempotent-replayed");
    (r.status().as_u16(), replayed)
}

/// `intake ingest` (the MTA pipe) with the daemon's configuration.
fn pipe(dir: &Path, raw: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_intake"))
        .arg("--config")
        .arg(dir.join("intake.toml"))
        .args(["ingest", "--mailbox", "support"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SENT: &[(&str, &str)] = &[("status", "sent")];
const PENDING: &[(&str, &str)] = &[("status", "pending")];

async fn webhooks_queues_and_notifications(db: Db) {
    let (url, _keep) = fresh_url(db).await;
    let dir = tempfile::tempdir().unwrap();
    // No [smtp]: the acknowledgement stays pending.
    let d = Daemon::start(dir.path(), &url, ACK).await;
    let body = r#"{"contact": {"email": "caller@example.com"}, "message": "please call back"}"#;
    let queued = Instant::now();
    assert_eq!(
        post(&d, "voice", body, SECRET, "call-1").await,
        (201, false)
    );
    assert_eq!(post(&d, "voice", body, "forged", "call-2").await.0, 401);
    assert_eq!(post(&d, "nosuch", body, SECRET, "call-3").await.0, 404);
    let own = mail(
        "support@desk.test",
        "Loop",
        "loop-1@desk.test",
        "",
        "our own",
    );
    let out = pipe(dir.path(), &own);
    assert!(out.contains("quarantined"), "{out}");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let m = scrape_until(&d, 15, |m| {
        m.get("intake_quarantine_messages", &[]) == Some(1.0)
    })
    .await;
    let requests = |source, result| {
        m.value(
            "intake_webhook_requests_total",
            &[("source", source), ("result", result)],
        )
    };
    assert_eq!(requests("voice", "accepted"), 1.0);
    assert_eq!(requests("voice", "unauthorized"), 1.0);
    assert_eq!(requests("voice", "rate_limited"), 0.0, "registered at 0");
    assert_eq!(requests("unknown", "unknown_source"), 1.0);
    assert_eq!(
        m.get(
            "intake_webhook_requests_total",
            &[("source", "nosuch"), ("result", "unknown_source")]
        ),
        None
    );
    let stored = m.sum("intake_messages_stored_total", &[("mailbox", "voice")]);
    assert_eq!(stored, 1.0, "{}", m.text);
    assert_eq!(m.value("intake_quarantine_messages", &[]), 1.0);
    assert_eq!(m.value("intake_outbox_messages", PENDING), 1.0);
    for status in ["failed", "suppressed", "sent"] {
        assert_eq!(
            m.value("intake_outbox_messages", &[("status", status)]),
            0.0
        );
    }
    let due = m.value("intake_outbox_oldest_due_seconds", &[]);
    let waited = queued.elapsed().as_secs_f64();
    assert!(
        due >= 1.0 && due <= waited + 1.0,
        "due {due}, queued {waited} s ago"
    );
    assert_eq!(m.value("intake_database_writable", &[]), 1.0);
    drop(d);

    // The same database under a daemon that sends: counted from the
    // database again (the quarantine too), the notification by its result.
    let sink = SmtpSink::start();
    let smtp = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"support@desk.test\"\ntimeout = 5\n{ACK}",
        sink.port
    );
    let d = Daemon::start(dir.path(), &url, &smtp).await;
    let mails = sink.wait_for(1, 20);
    assert_eq!(mails[0].rcpt_tos, ["caller@example.com"]);
    assert_eq!(post(&d, "voice", body, SECRET, "call-1").await, (201, true));
    let m = scrape_until(&d, 15, |m| {
        m.get("intake_outbox_messages", SENT) == Some(1.0)
            && m.get("intake_notifications_total", &[("result", "sent")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        m.value("intake_notifications_total", &[("result", "sent")]),
        1.0
    );
    for result in ["retry", "failed", "suppressed"] {
        let n = m.value("intake_notifications_total", &[("result", result)]);
        assert_eq!(n, 0.0, "{result} registered at 0");
    }
    assert_eq!(m.value("intake_outbox_messages", SENT), 1.0, "{}", m.text);
    assert_eq!(m.value("intake_outbox_messages", PENDING), 0.0);
    assert_eq!(m.value("intake_outbox_oldest_due_seconds", &[]), 0.0);
    assert_eq!(m.value("intake_quarantine_messages", &[]), 1.0);
    let replayed = [("source", "voice"), ("result", "replayed")];
    assert_eq!(m.value("intake_webhook_requests_total", &replayed), 1.0);
    let accepted = [("source", "voice"), ("result", "accepted")];
    assert_eq!(m.value("intake_webhook_requests_total", &accepted), 0.0);
}

both_backends!(webhooks_queues_and_notifications);

/// Two XOAUTH2 mailboxes on one Dovecot: `m365` logs in and drains, its
/// drain time moves with each drain; `expired` is refused and never
/// drains, so its last success stays the daemon's start and ages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_drains_and_oauth_logins() {
    let intro = Introspection::start("good-token", "support").await;
    let dc = Dovecot::start_oauth2(
        &[("support", "supportpw"), ("other", "otherpw")],
        &intro.url(),
    );
    dc.deliver("support", "INBOX", &numbered(0, 1));
    let (url, _keep) = fresh_url(Db::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mailbox = |name: &str, user: &str, token: &str| {
        let file = dir.path().join(format!("{name}.token"));
        std::fs::write(&file, token).unwrap();
        format!(
            "[[mailboxes]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             username = \"{user}\"\noauth2_token_file = \"{}\"\nidle = true\npoll_interval = 600\ntimeout = 5\n",
            dc.port,
            file.display()
        )
    };
    let text = mailbox("m365", "support", "good-token\n") + &mailbox("expired", "other", "old\n");
    let before = now() as f64;
    let d = Daemon::start(dir.path(), &url, &text).await;
    let started = now() as f64 + 1.0;

    let m365 = [("mailbox", "m365"), ("folder", "INBOX")];
    let expired = [("mailbox", "expired"), ("folder", "INBOX")];
    const LAST: &str = "intake_mailbox_last_success_timestamp_seconds";
    let m = scrape_until(&d, 20, |m| {
        m.sum("intake_messages_stored_total", &[("mailbox", "m365")]) == 1.0
            && m.get("intake_oauth_token_valid", &[("mailbox", "expired")]) == Some(0.0)
            && m.get(LAST, &m365).is_some_and(|t| t >= before)
    })
    .await;
    assert_eq!(
        m.value("intake_oauth_token_valid", &[("mailbox", "m365")]),
        1.0
    );
    assert_eq!(
        m.value("intake_oauth_token_valid", &[("mailbox", "expired")]),
        0.0
    );
    let first = m.value(LAST, &m365);
    assert!(first >= before && first <= now() as f64 + 1.0, "{first}");
    let never = m.value(LAST, &expired);
    assert!(never >= before && never <= started, "registered at {never}");

    // A later drain moves the time; the refused folder's stays.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dc.deliver("support", "INBOX", &numbered(1, 1));
    let m = scrape_until(&d, 20, |m| {
        m.sum("intake_messages_stored_total", &[("mailbox", "m365")]) == 2.0
            && m.get(LAST, &m365).is_some_and(|t| t >= first + 1.0)
    })
    .await;
    let second = m.value(LAST, &m365);
    assert!(second >= first + 1.0, "{first} then {second}:\n{}", m.text);
    assert_eq!(m.value(LAST, &expired), never);
    assert_eq!(
        m.value("intake_oauth_token_valid", &[("mailbox", "expired")]),
        0.0
    );
}

/// PostgreSQL refusing every connection: `/metrics` still answers at once
/// with the daemon's other metrics, without queue depths it could not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_while_the_database_is_unreachable() {
    use sqlx::Connection;
    let (url, _keep) = fresh_url(Db::Postgres).await;
    let name = url.rsplit('/').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &url, "").await;
    let admin = format!("{}/postgres", crate::common::pg_base());
    let mut pg = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
    ))
    .execute(&mut pg)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut pg)
        .await
        .unwrap();
    let t = Instant::now();
    let m = Scrape::parse(d.metrics().await);
    let took = t.elapsed();
    sqlx::query(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
    ))
    .execute(&mut pg)
    .await
    .unwrap();
    assert!(took < Duration::from_secs(5), "/metrics took {took:?}");
    let registered = [("source", "voice"), ("result", "accepted")];
    assert_eq!(m.value("intake_webhook_requests_total", &registered), 0.0);
    assert_eq!(m.get("intake_quarantine_messages", &[]), None, "{}", m.text);
    assert!(d.logs().contains("cannot count the queues"), "{}", d.logs());
}
