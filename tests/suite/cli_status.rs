//! `intake status` against a running daemon (a stuck mailbox on a real
//! Dovecot, quarantined messages, webhook requests accepted and refused)
//! and with no daemon, on both databases.

use crate::cli_ops::{intake, text};
use crate::common::{fresh_url, Db};
use crate::http_common::{now, sign, SECRET};
use crate::support::dovecot::Dovecot;
use crate::support::smtp::free_port;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn status_shows_mailboxes_queues_and_quarantine(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let (url, _db_dir) = fresh_url(db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    let port = free_port();
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n[limits]\nmax_message_bytes = 200\n\
             [[webhook_sources]]\nname = \"voice\"\nsecret = \"{SECRET}\"\n{}",
            crate::support::mailbox_toml("support", dc.port, "support", "wrong-password", "")
        ),
    )
    .unwrap();
    // Two mails over `[limits] max_message_bytes`: quarantined with the reason.
    for i in 0..2 {
        let f = dir.path().join(format!("m{i}.eml"));
        std::fs::write(
            &f,
            format!(
                "From: a@acme.example\nSubject: big {i}\n\n{}\n",
                "x".repeat(300)
            ),
        )
        .unwrap();
        let o = intake(&cfg, &["ingest", f.to_str().unwrap()], &[]);
        assert!(
            o.status.success() && text(&o).contains("quarantined"),
            "{}",
            text(&o)
        );
    }

    // No daemon yet: said plainly, the queues still shown.
    let o = intake(&cfg, &["status"], &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        out.starts_with(&format!("daemon at 127.0.0.1:{port}: not reachable (")),
        "{out}"
    );
    assert!(
        out.contains("outbox: 0 pending, 0 failed, 0 suppressed, 0 sent"),
        "{out}"
    );

    let mut daemon = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["--config", cfg.to_str().unwrap(), "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // One signed contact, one forged, once the daemon answers.
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the daemon did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body =
        r#"{"contact":{"phone":"+1 415 555 0100"},"conversation_id":"c-1","message":"call back"}"#;
    let ts = now();
    for (secret, code) in [(SECRET, 201u16), ("forged", 401)] {
        let r = client
            .post(format!("{base}/v1/contacts/voice"))
            .header("content-type", "application/json")
            .header("x-intake-timestamp", ts.to_string())
            .header(
                "x-intake-signature",
                format!("v1={}", sign(secret, ts, body.as_bytes())),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), code);
    }

    let out = loop {
        let o = intake(&cfg, &["status"], &[]);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        if out.contains("last error:") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        out.starts_with(&format!(
            "daemon at 127.0.0.1:{port}: NOT READY; database ok"
        )),
        "{out}"
    );
    let mailbox = out
        .lines()
        .find(|l| l.starts_with("mailbox support / INBOX: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(mailbox.contains("never drained yet"), "{mailbox}");
    assert!(
        mailbox.contains("last error: authentication: login as support refused"),
        "{mailbox}"
    );
    assert!(out.contains("quarantine: 2 awaiting replay"), "{out}");
    assert!(
        out.contains("webhooks voice: 1 accepted, 1 unauthorized"),
        "{out}"
    );
    let entries: Vec<&str> = out.lines().filter(|l| l.starts_with("  #")).collect();
    assert_eq!(entries.len(), 2, "{out}");
    assert!(entries.iter().all(|l| l.contains("from pipe")), "{out}");
}

both_backends!(status_shows_mailboxes_queues_and_quarantine);
