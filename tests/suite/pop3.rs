//! POP3 maildrops against a real Dovecot POP3 server, on SQLite and
//! PostgreSQL: exactly-once by UIDL with mail kept or deleted (deletion
//! only after the commit, an owed deletion done in a later session), STLS
//! and implicit TLS, SASL PLAIN, USER/PASS and XOAUTH2, oversize mail
//! quarantined with its headers, a server without UIDL refused.

use crate::common;
use crate::support;

use common::{config, mail, Db, TestDb};
use intake::pipeline::{Pipeline, Settings};
use intake::sources::imap::{Registry, State};
use support::dovecot::Dovecot;
use support::faults::Introspection;
use support::kinds::{self, WithServer};
use support::pop3_proxy::Pop3Proxy;
use support::{count, numbered};

/// A `[[mailboxes]]` POP3 entry for `support` on `port`.
pub fn pop3_toml(port: u16, extra: &str) -> String {
    let head = format!("name = \"support\"\nprotocol = \"pop3\"\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"support\"");
    kinds::entry(
        &head,
        extra,
        &[
            ("tls", "\"none\""),
            ("password", "\"supportpw\""),
            ("timeout", "5"),
            ("poll_interval", "1"),
        ],
    )
}

type P = WithServer<Dovecot>;

impl WithServer<Dovecot> {
    async fn new(db: Db, dc: Dovecot, port: u16, extra: &str, top: &str) -> P {
        let text = format!("{top}\n{}", pop3_toml(port, extra));
        P::start(db, dc, &text).await
    }
    async fn seen(&self) -> i64 {
        count(&self.db.store, "SELECT COUNT(*) AS n FROM source_seen").await
    }
    fn inbox(&self) -> usize {
        self.server.count("support", "INBOX")
    }
}

fn pop3_dovecot(conf: &str) -> Dovecot {
    Dovecot::start_pop3(&[("support", "supportpw")], conf)
}

/// Mail is imported once by UIDL and left on the server (`keep`): a second
/// session fetches only what arrived since, and the checkpoint is the set
/// of imported UIDLs, not Message-ID dedup (nothing is fetched twice).
async fn kept_mail_is_imported_once_by_uidl(db: Db) {
    let dc = pop3_dovecot("");
    let port = dc.pop3_port;
    let p = P::new(db, dc, port, "fetch_batch = 2", "").await;
    p.server.deliver("support", "INBOX", &numbered(0, 5));
    assert!(p.drain().await, "{:?}", p.registry.snapshot());
    assert_eq!((p.comments().await, p.seen().await, p.inbox()), (5, 5, 5));
    let st = p.status();
    assert_eq!((st.kind.as_str(), st.imported, st.lag), ("pop3", 5, 0));
    p.server.deliver("support", "INBOX", &numbered(5, 3));
    assert!(p.drain().await);
    assert_eq!((p.comments().await, p.distinct().await), (8, 8));
    assert_eq!(
        p.status().imported,
        3,
        "the first five were not fetched again"
    );
    assert!(p.drain().await);
    assert_eq!((p.status().imported, p.inbox()), (0, 8));
}

/// `after_import = "delete"`: mail leaves the server after its commit; mail
/// imported earlier with `keep` and still there (a deletion owed, as after
/// a crash between commit and QUIT) is deleted without being imported again;
/// its remembered UIDL is forgotten once the server no longer lists it.
async fn deleted_mail_leaves_the_server_after_its_commit(db: Db) {
    let dc = pop3_dovecot("");
    let port = dc.pop3_port;
    let keep = P::new(db, dc, port, "", "").await;
    keep.server.deliver("support", "INBOX", &numbered(0, 3));
    assert!(keep.drain().await);
    assert_eq!((keep.comments().await, keep.inbox()), (3, 3));
    let p = keep;
    let delete = pop3_toml(port, "after_import = \"delete\"\nfetch_batch = 2");
    p.server.deliver("support", "INBOX", &numbered(3, 4));
    let (ok, st) = p.drain_with(&delete).await;
    assert!(ok, "{st:?}");
    assert_eq!((p.comments().await, p.distinct().await), (7, 7));
    assert_eq!(p.inbox(), 0, "all seven deleted at QUIT");
    assert_eq!(st.imported, 4, "the three owed were deleted, not fetched");
    assert_eq!(p.seen().await, 7);
    assert!(p.drain_with(&delete).await.0);
    assert_eq!(
        p.seen().await,
        0,
        "UIDLs gone from the server are forgotten"
    );
    assert_eq!(p.comments().await, 7);
}

/// STLS on the plain port and implicit TLS on the POP3S port, each
/// verified against the test CA; a server certificate not trusted is refused.
async fn stls_and_implicit_tls(db: Db) {
    let dc = pop3_dovecot("");
    let (plain, tls, ca) = (dc.pop3_port, dc.pop3s_port, dc.ca_file());
    let p = P::new(
        db,
        dc,
        plain,
        &format!("tls = \"starttls\"\nca_file = \"{ca}\""),
        "",
    )
    .await;
    p.server.deliver("support", "INBOX", &numbered(0, 2));
    assert!(p.drain().await, "{:?}", p.registry.snapshot());
    assert_eq!(p.comments().await, 2);
    let cfg = config(
        &p.db.url,
        &pop3_toml(tls, &format!("tls = \"tls\"\nca_file = \"{ca}\"")),
    );
    p.server.deliver("support", "INBOX", &numbered(2, 1));
    let reg = Registry::default();
    assert!(
        intake::daemon::drain_once(&cfg, &p.pipeline, &reg).await,
        "{:?}",
        reg.snapshot()
    );
    assert_eq!(p.comments().await, 3);
    let cfg = config(&p.db.url, &pop3_toml(tls, "tls = \"tls\""));
    let reg = Registry::default();
    assert!(!intake::daemon::drain_once(&cfg, &p.pipeline, &reg).await);
    let err = reg.snapshot().remove(0).last_error.unwrap_or_default();
    assert!(
        err.contains("TLS handshake") && err.contains("certificate"),
        "{err}"
    );
}

/// SASL PLAIN where offered, USER/PASS where not (seen on the wire); a
/// wrong password is an authentication error in the server's words.
async fn sasl_plain_or_user_pass_and_wrong_passwords(db: Db) {
    let dc = pop3_dovecot("");
    let (with_sasl, log) = Pop3Proxy::start(dc.pop3_port, false, None).await.parts();
    let (without, log2) = Pop3Proxy::start(dc.pop3_port, true, None).await.parts();
    let p = P::new(db, dc, with_sasl, "", "").await;
    p.server.deliver("support", "INBOX", &numbered(0, 2));
    assert!(p.drain().await, "SASL PLAIN: {:?}", p.registry.snapshot());
    assert_eq!(p.comments().await, 2);
    let cmds = log.lock().unwrap().clone();
    assert!(
        cmds.iter().any(|c| c.starts_with("AUTH PLAIN ")),
        "{cmds:?}"
    );
    assert!(!cmds.iter().any(|c| c.starts_with("PASS")), "{cmds:?}");
    let cfg = config(&p.db.url, &pop3_toml(without, ""));
    p.server.deliver("support", "INBOX", &numbered(2, 1));
    let reg = Registry::default();
    assert!(
        intake::daemon::drain_once(&cfg, &p.pipeline, &reg).await,
        "USER/PASS: {:?}",
        reg.snapshot()
    );
    assert_eq!(p.comments().await, 3);
    let cmds = log2.lock().unwrap().clone();
    assert!(cmds.contains(&"USER support".to_string()), "{cmds:?}");
    assert!(cmds.iter().any(|c| c == "PASS supportpw"), "{cmds:?}");
    let cfg = config(&p.db.url, &pop3_toml(without, "password = \"wrong\""));
    let reg = Registry::default();
    assert!(!intake::daemon::drain_once(&cfg, &p.pipeline, &reg).await);
    let st = reg.snapshot().remove(0);
    let err = st.last_error.unwrap_or_default();
    assert_eq!(st.state, State::Error);
    assert!(
        err.contains("authentication") && err.contains("login as support refused"),
        "{err}"
    );
}

/// AUTH XOAUTH2 with a token from a file, checked by Dovecot against the
/// introspection endpoint; an inactive token is an authentication error.
async fn xoauth2_logs_in_with_a_bearer_token(db: Db) {
    let intro = Introspection::start("pop-token", "support").await;
    let dc = Dovecot::start_oauth2(&[("support", "supportpw")], &intro.url());
    let port = dc.pop3_port;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "pop-token\n").unwrap();
    let extra = format!(
        "password = \"\"\noauth2_token_file = \"{}\"",
        token.display()
    );
    let p = P::new(db, dc, port, &extra, "").await;
    p.server.deliver("support", "INBOX", &numbered(0, 2));
    assert!(p.drain().await, "{:?}", p.registry.snapshot());
    assert_eq!(p.comments().await, 2);
    assert!(
        intro.count() >= 1,
        "Dovecot asked the introspection endpoint"
    );
    std::fs::write(&token, "expired\n").unwrap();
    assert!(!p.drain().await);
    let err = p.status().last_error.unwrap_or_default();
    assert!(err.contains("authentication"), "{err}");
}

/// A message larger than `max_message_bytes` by its LIST size is
/// quarantined with the headers TOP returns; the others are imported.
async fn oversize_mail_is_quarantined_with_its_headers(db: Db) {
    let dc = pop3_dovecot("");
    let port = dc.pop3_port;
    let p = P::new(db, dc, port, "", "[limits]\nmax_message_bytes = 20000\n").await;
    let big = mail(
        "Big <big@cust.test>",
        "A very large one",
        "big@cust.test",
        "",
        &"x".repeat(60_000),
    );
    let mut mails = numbered(0, 2);
    mails.insert(1, big.into_bytes());
    p.server.deliver("support", "INBOX", &mails);
    assert!(p.drain().await, "{:?}", p.registry.snapshot());
    assert_eq!(p.comments().await, 2);
    let q = p.db.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].truncated && q[0].reason.contains("exceeds limits.max_message_bytes"),
        "{:?}",
        q[0]
    );
    let (_, raw) = p.db.store.quarantine_get(q[0].id).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("Subject: A very large one") && !raw.contains("xxxx"),
        "{raw}"
    );
    assert!(p.drain().await);
    assert_eq!(p.db.store.quarantine_list().await.unwrap().len(), 1);
}

/// A scripted POP3 server (Dovecot always lists UIDL well): USER, PASS
/// and QUIT succeed, UIDL answers `uidl` (None: -ERR), the rest -ERR.
async fn scripted_server(uidl: Option<&'static str>) -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"+OK old server ready\r\n").await.unwrap();
        let mut line = String::new();
        while r.read_line(&mut line).await.unwrap_or(0) > 0 {
            let cmd = line.split_whitespace().next().unwrap_or("").to_uppercase();
            let answer = match (cmd.as_str(), uidl) {
                ("USER" | "PASS" | "QUIT", _) => "+OK\r\n".to_string(),
                ("UIDL", Some(list)) => format!("+OK\r\n{list}.\r\n"),
                _ => "-ERR unknown command\r\n".to_string(),
            };
            w.write_all(answer.as_bytes()).await.unwrap();
            line.clear();
        }
    });
    port
}

/// A server that cannot say UIDL is refused with the reason, not imported
/// by position; one that lists a number or a unique id twice is refused
/// too (it could not be imported exactly once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_without_usable_uidl_are_refused() {
    for (uidl, want) in [
        (None, "does not support UIDL"),
        (Some("1 aaa\r\n1 bbb\r\n"), "twice"),
        (Some("1 aaa\r\n2 aaa\r\n"), "twice"),
    ] {
        let port = scripted_server(uidl).await;
        let db = TestDb::new(Db::Sqlite).await;
        let cfg = config(&db.url, &pop3_toml(port, ""));
        let p = Pipeline::new(db.store.clone(), Settings::from_config(&cfg));
        let reg = Registry::default();
        assert!(!intake::daemon::drain_once(&cfg, &p, &reg).await);
        let err = reg.snapshot().remove(0).last_error.unwrap_or_default();
        assert!(err.contains(want), "{uidl:?}: {err}");
    }
}

/// A message the server will not hand over (RETR answered -ERR) does not
/// hold the others back: they are imported; it is tried again in the next
/// sessions and after the third refusal quarantined with the reason and
/// not tried again. (`keep`, so that message numbers stay put for the
/// proxy that refuses "RETR 2".)
async fn a_message_the_server_refuses_is_quarantined_after_three_sessions(db: Db) {
    let dc = pop3_dovecot("");
    let proxy = Pop3Proxy::start(dc.pop3_port, false, Some("RETR 2")).await;
    let port = proxy.port;
    let p = P::new(db, dc, port, "after_import = \"keep\"", "").await;
    p.server.deliver("support", "INBOX", &numbered(0, 3));
    for session in 1..=2 {
        assert!(
            p.drain().await,
            "session {session}: {:?}",
            p.registry.snapshot()
        );
        assert_eq!((p.comments().await, p.quarantined().await), (2, 0));
        assert_eq!(proxy.refusals(), session);
    }
    assert!(p.drain().await, "{:?}", p.registry.snapshot());
    assert_eq!(p.comments().await, 2);
    let (reason, _) = p.quarantined_one().await;
    assert!(
        reason.contains("refused to hand over") && reason.contains("left on the server"),
        "{reason}"
    );
    assert!(p.drain().await);
    assert_eq!(
        (p.comments().await, p.quarantined().await, p.inbox()),
        (2, 1, 3)
    );
    assert_eq!(proxy.refusals(), 3, "not tried again once quarantined");
}

both_backends!(
    a_message_the_server_refuses_is_quarantined_after_three_sessions,
    kept_mail_is_imported_once_by_uidl,
    deleted_mail_leaves_the_server_after_its_commit,
    stls_and_implicit_tls,
    sasl_plain_or_user_pass_and_wrong_passwords,
    xoauth2_logs_in_with_a_bearer_token,
    oversize_mail_is_quarantined_with_its_headers,
);
