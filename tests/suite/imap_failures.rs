//! Anchor failures 3, 6, 7, 8 and 11 against a real Dovecot, on SQLite and
//! PostgreSQL: a black-holed connection is noticed and recovered, XOAUTH2
//! with a token that expires and is renewed, non-ASCII folder names and
//! tab-folded headers, a 60 MB mail and a 200-attachment mail, the cursor
//! (not the flags) deciding what is new, and `/readyz` losing its database.

use crate::common;
#[allow(unused_imports)]
use crate::common::CursorExt;
use crate::support;

use common::{config, mail, Db, TestDb};
use intake::daemon::Daemon;
use intake::sources::imap::State;
use std::time::{Duration, Instant};
use support::dovecot::Dovecot;
use support::faults::{mute_server, Introspection, Proxy};
use support::{count, eventually, mailbox_toml, numbered, Env};

const HTTP: &str = "[http]\nlisten = \"127.0.0.1:0\"\n";

async fn comments(db: &TestDb) -> i64 {
    count(&db.store, "SELECT COUNT(*) AS n FROM comments").await
}

async fn wait_state(d: &Daemon, want: &[State], secs: u64) -> bool {
    eventually(secs, || async {
        d.registry
            .snapshot()
            .iter()
            .all(|s| want.contains(&s.state))
    })
    .await
}

async fn readyz(d: &Daemon) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .get(format!("http://{}/readyz", d.addr))
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap())
}

// ---- Failure 6: silent stalls -------------------------------------------

async fn black_holed_connection_is_noticed_and_recovered(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let proxy = Proxy::start(dc.port).await;
    let tdb = TestDb::new(db).await;
    let mb = mailbox_toml(
        "support",
        proxy.port,
        "support",
        "supportpw",
        "idle = true\npoll_interval = 600\ntimeout = 2",
    );
    let d = Daemon::start(config(&tdb.url, &format!("{HTTP}{mb}")))
        .await
        .unwrap();
    dc.deliver("support", "INBOX", &numbered(0, 1));
    assert!(eventually(10, || async { comments(&tdb).await == 1 }).await);
    assert!(wait_state(&d, &[State::Idle], 10).await);
    // The network silently stops forwarding: no FIN, no RST, no data.
    proxy.set_blackhole(true);
    let t = Instant::now();
    assert!(
        wait_state(&d, &[State::BackingOff, State::Error, State::Starting], 15).await
            && wait_state(&d, &[State::BackingOff], 15).await,
        "still {:?} after {:?}",
        d.registry.snapshot(),
        t.elapsed()
    );
    eprintln!("black hole noticed after {:?}", t.elapsed());
    let (code, body) = readyz(&d).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["mailboxes"][0]["state"], "backing_off", "{body}");
    let err = body["mailboxes"][0]["last_error"].as_str().unwrap_or("");
    assert!(err.contains("timeout"), "{err}");
    // Healed: the worker reconnects and imports what arrived meanwhile.
    dc.deliver("support", "INBOX", &numbered(1, 2));
    proxy.set_blackhole(false);
    assert!(
        eventually(30, || async { comments(&tdb).await == 3 }).await,
        "{:?}",
        d.registry.snapshot()
    );
    assert!(wait_state(&d, &[State::Idle], 10).await);
    assert!(d.registry.snapshot()[0].reconnects >= 1);
    assert_eq!(readyz(&d).await.0, 200);
    d.shutdown().await;
    assert_eq!(comments(&tdb).await, 3);
}

/// A server that accepts TCP but never greets: a timeout error, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_greeting_is_a_timeout_not_a_hang() {
    let (port, _srv) = mute_server().await;
    let tdb = TestDb::new(Db::Sqlite).await;
    let cfg = config(
        &tdb.url,
        &mailbox_toml("mute", port, "support", "supportpw", "timeout = 1"),
    );
    let p = intake::pipeline::Pipeline::new(
        tdb.store.clone(),
        intake::pipeline::Settings::from_config(&cfg),
    );
    let reg = intake::sources::imap::Registry::default();
    let t = Instant::now();
    let ok = tokio::time::timeout(
        Duration::from_secs(10),
        intake::daemon::drain_once(&cfg, &p, &reg),
    )
    .await
    .expect("drain_once hung on a mute server");
    assert!(!ok);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let st = reg.snapshot().remove(0);
    assert_eq!(st.state, State::Error);
    let err = st.last_error.unwrap_or_default();
    assert!(err.contains("timeout") && err.contains("greeting"), "{err}");
}

// ---- Failure 7: XOAUTH2 ---------------------------------------------------

async fn xoauth2_token_expires_backs_off_and_recovers(db: Db) {
    let intro = Introspection::start("good-token-1", "support").await;
    let dc = Dovecot::start_oauth2(&[("support", "supportpw")], &intro.url());
    let tdb = TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "good-token-1\n").unwrap();
    let mb = format!(
        "[[mailboxes]]\nname = \"m365\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         username = \"support\"\noauth2_token_file = \"{}\"\nidle = true\npoll_interval = 600\ntimeout = 5\n",
        dc.port,
        token.display()
    );
    let cfg = config(&tdb.url, &format!("{HTTP}{mb}"));
    dc.deliver("support", "INBOX", &numbered(0, 2));
    let p = intake::pipeline::Pipeline::new(
        tdb.store.clone(),
        intake::pipeline::Settings::from_config(&cfg),
    );
    let reg = intake::sources::imap::Registry::default();
    assert!(
        intake::daemon::drain_once(&cfg, &p, &reg).await,
        "{:?}",
        reg.snapshot()
    );
    assert_eq!(comments(&tdb).await, 2);
    assert!(
        intro.count() >= 1,
        "Dovecot really asked the introspection endpoint"
    );
    // The access token expires (the endpoint now calls it inactive).
    std::fs::write(&token, "expired-token\n").unwrap();
    dc.deliver("support", "INBOX", &numbered(2, 1));
    let d = Daemon::start(cfg.clone()).await.unwrap();
    let auth_failed = || async {
        let st = d.registry.snapshot().remove(0);
        st.last_error.unwrap_or_default().contains("authentication")
            && matches!(st.state, State::BackingOff | State::Starting)
    };
    assert!(
        eventually(10, auth_failed).await,
        "{:?}",
        d.registry.snapshot()
    );
    // No tight retry loop (this Dovecot answers failures at once: no
    // auth_failure_delay, no anvil penalty): a few attempts in 5 s at most.
    let before = intro.count();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let attempts = intro.count() - before;
    eprintln!(
        "logins while the token is bad: {attempts} in 5 s; {:?}",
        d.registry.snapshot()
    );
    assert!(attempts <= 3, "{attempts} logins in 5 s");
    assert_eq!(comments(&tdb).await, 2);
    let (code, body) = readyz(&d).await;
    assert_eq!(code, 503);
    assert!(body.to_string().contains("authentication"), "{body}");
    assert!(wait_state(&d, &[State::BackingOff], 10).await);
    // A renewed token in the file is read on the next connect.
    std::fs::write(&token, "good-token-1\n").unwrap();
    assert!(
        eventually(25, || async { comments(&tdb).await == 3 }).await,
        "{:?}",
        d.registry.snapshot()
    );
    assert!(wait_state(&d, &[State::Idle], 10).await);
    d.shutdown().await;
}

// ---- Failure 8: provider quirks -------------------------------------------

async fn non_ascii_folders_and_tab_folded_headers(db: Db) {
    let e = Env::new(
        db,
        "folders = [\"INBOX\", \"Réclamations\", \"Anfragen-Ü\"]\nafter_import = \"move\"\nmove_to = \"Geprüft\"",
        "",
    )
    .await;
    // On the wire (and in Dovecot's Maildir++) names are modified UTF-7.
    let (recl, anfr, gepr) = ("R&AOk-clamations", "Anfragen-&ANw-", "Gepr&APw-ft");
    e.dc.ensure_folder("support", gepr);
    // Microsoft 365 folds long headers with a tab.
    let folded = "From: \"Mueller, Hans (Einkauf)\"\r\n\t<hans.mueller@kunde.test>\r\n\
                  To: support@desk.test\r\nSubject: Ihre Bestellung\r\n\tNr. 4711 ist\r\n\tangekommen\r\n\
                  Message-ID:\r\n\t<folded-1@kunde.test>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\
                  MIME-Version: 1.0\r\nContent-Type: text/plain;\r\n\tcharset=\"utf-8\"\r\n\r\nHallo!\r\n";
    e.dc.deliver("support", "INBOX", &[folded.as_bytes().to_vec()]);
    e.dc.deliver("support", recl, &numbered(0, 2));
    e.dc.deliver("support", anfr, &numbered(2, 1));
    assert!(e.drain().await, "{:?}", e.registry.snapshot());
    assert_eq!(e.comments().await, 4);
    for (human, wire, n) in [("Réclamations", recl, 2), ("Anfragen-Ü", anfr, 1)] {
        assert_eq!(e.dc.count("support", wire), 0, "{human} moved out");
        let c = e.db.store.cursor("support", human).await.unwrap();
        assert_eq!(c.map(|c| c.1), Some(n), "cursor of {human}");
    }
    assert_eq!(e.dc.count("support", gepr), 4, "moved to Geprüft");
    use sqlx::Row;
    let row = sqlx::query("SELECT subject FROM comments WHERE message_id = 'folded-1@kunde.test'")
        .fetch_one(e.db.store.pool())
        .await
        .unwrap();
    let subject: String = row.get("subject");
    assert!(
        subject.contains("Bestellung")
            && subject.contains("4711")
            && subject.contains("angekommen"),
        "{subject:?}"
    );
    assert!(
        !subject.contains('\r') && !subject.contains('\n'),
        "{subject:?}"
    );
    let n = count(
        &e.db.store,
        "SELECT COUNT(*) AS n FROM identities WHERE value = 'hans.mueller@kunde.test'",
    )
    .await;
    assert_eq!(n, 1, "the tab-folded From is the sender");
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 4);
}

// ---- Failure 11: huge mail and many attachments ---------------------------

async fn sixty_megabytes_and_two_hundred_attachments(db: Db) {
    // Default limits.max_message_bytes (25 MiB).
    let e = Env::new(db, "", "").await;
    let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n";
    let mut big = mail("huge@cust.test", "Scans (60 MB)", "huge@cust.test", "", "see attached")
        .replace("Content-Type: text/plain; charset=utf-8\n\nsee attached\n", "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n");
    big.reserve(61_000_000);
    while big.len() < 60_000_000 {
        big.push_str(line);
    }
    big.push_str("--b--\n");
    let mut parts = String::new();
    for i in 0..200 {
        parts.push_str(&format!(
            "--b\nContent-Type: text/plain; name=\"note-{i:03}.txt\"\nContent-Disposition: attachment; filename=\"note-{i:03}.txt\"\n\nattachment number {i}\n"
        ));
    }
    let many = format!(
        "From: many@cust.test\nTo: support@desk.test\nSubject: 200 files\nMessage-ID: <many@cust.test>\n\
         Date: Sat, 21 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n\
         --b\nContent-Type: text/plain\n\nTwo hundred files attached.\n{parts}--b--\n"
    );
    let mut mails = numbered(0, 1);
    mails.push(big.into_bytes());
    mails.push(many.into_bytes());
    mails.extend(numbered(1, 1));
    e.dc.deliver("support", "INBOX", &mails);
    let t = Instant::now();
    assert!(e.drain().await, "{:?}", e.registry.snapshot());
    eprintln!("drained 60 MB + 200 attachments in {:?}", t.elapsed());
    assert_eq!(
        e.comments().await,
        3,
        "the mails around the huge one are imported"
    );
    let q = e.db.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].truncated);
    assert!(q[0].size >= 60_000_000, "real size recorded: {}", q[0].size);
    let (_, raw) = e.db.store.quarantine_get(q[0].id).await.unwrap();
    assert!(
        raw.len() < 16 * 1024,
        "only headers stored: {} bytes",
        raw.len()
    );
    assert!(String::from_utf8_lossy(&raw).contains("Subject: Scans (60 MB)"));
    let n = count(
        &e.db.store,
        "SELECT COUNT(*) AS n FROM attachments a JOIN comments c ON c.id = a.comment_id \
         WHERE c.message_id = 'many@cust.test'",
    )
    .await;
    assert_eq!(n, 200);
    let names = count(
        &e.db.store,
        "SELECT COUNT(DISTINCT filename) AS n FROM attachments",
    )
    .await;
    assert_eq!(names, 200);
    assert_eq!(e.dc.flagged("support", "INBOX", 'S'), 4);
    assert!(e.drain().await);
    assert_eq!((e.comments().await, e.quarantined().await), (3, 1));
}

// ---- Failure 3: the cursor decides, not the flags -------------------------

async fn cursor_decides_not_flags(db: Db) {
    for mode in ["seen", "keep"] {
        let e = Env::new(
            db,
            &format!("after_import = \"{mode}\"\nidle = true\npoll_interval = 600"),
            HTTP,
        )
        .await;
        e.deliver_n(0, 3);
        let d = Daemon::start(e.cfg.clone()).await.unwrap();
        assert!(eventually(10, || async { e.comments().await == 3 }).await);
        assert!(wait_state(&d, &[State::Idle], 10).await);
        if mode == "keep" {
            support::other_client_store(e.dc.port, "1:*", "+FLAGS (\\Seen)").await;
        }
        // A human marks everything unread again while the daemon idles.
        support::other_client_store(e.dc.port, "1:*", "-FLAGS (\\Seen)").await;
        assert_eq!(e.dc.flagged("support", "INBOX", 'S'), 0);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(wait_state(&d, &[State::Idle], 10).await);
        assert_eq!(e.comments().await, 3, "{mode}: unseen mail re-imported");
        d.shutdown().await;
        // A restart: still nothing re-imported, and new mail still comes in.
        let d = Daemon::start(e.cfg.clone()).await.unwrap();
        assert!(wait_state(&d, &[State::Idle], 10).await);
        e.deliver_n(3, 1);
        assert!(eventually(10, || async { e.comments().await == 4 }).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
        d.shutdown().await;
        assert!(e.drain().await);
        assert_eq!(e.comments().await, 4, "{mode}");
        let ids = e.message_ids().await;
        assert_eq!(ids.len(), 4);
        let want = if mode == "seen" { 1 } else { 0 };
        assert_eq!(e.dc.flagged("support", "INBOX", 'S'), want, "{mode}");
    }
}

// ---- /readyz without a database -------------------------------------------

async fn readyz_is_503_when_the_database_is_gone(db: Db) {
    let tdb = TestDb::new(db).await;
    let d = Daemon::start(config(&tdb.url, HTTP)).await.unwrap();
    let (code, body) = readyz(&d).await;
    assert_eq!(code, 200, "{body}");
    match db {
        Db::Postgres => {
            use sqlx::Connection;
            let name = tdb.url.rsplit('/').next().unwrap().to_string();
            let mut c = sqlx::PgConnection::connect(&format!("{}/postgres", common::pg_base()))
                .await
                .unwrap();
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut c)
                .await
                .unwrap();
        }
        Db::Sqlite => {
            // Root ignores file modes: the file is moved away instead (the
            // open connections would go on writing into a file nobody reads).
            let path = tdb.url.trim_start_matches("sqlite://").to_string();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::rename(format!("{path}{suffix}"), format!("{path}{suffix}.moved"));
            }
        }
    }
    let t = Instant::now();
    let (code, body) = readyz(&d).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["database"], false, "{body}");
    assert!(t.elapsed() < Duration::from_secs(35), "{:?}", t.elapsed());
    d.shutdown().await;
}

both_backends!(
    black_holed_connection_is_noticed_and_recovered,
    xoauth2_token_expires_backs_off_and_recovers,
    non_ascii_folders_and_tab_folded_headers,
    sixty_megabytes_and_two_hundred_attachments,
    cursor_decides_not_flags,
);

mod readyz_is_503_when_the_database_is_gone {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::readyz_is_503_when_the_database_is_gone(crate::common::Db::Postgres).await
    }
    /// Open SQLite connections keep working on a moved file: `Store::ping`
    /// checks the path as well.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::readyz_is_503_when_the_database_is_gone(crate::common::Db::Sqlite).await
    }
}
