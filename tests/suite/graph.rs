//! Microsoft Graph mailboxes against a local Graph (support::graph_stand_in,
//! following Microsoft's documented shapes: no Microsoft endpoint is
//! reachable here), on SQLite and PostgreSQL: delta pages imported once and
//! marked read after the commit; moved or deleted; throttling waited out
//! and an expired token refreshed within a session; a revoked secret shown
//! as an authentication error with backoff; a message deleted between the
//! listing and its fetch skipped; an expired delta link resynced without
//! duplicates; oversize mail quarantined with its headers.

use crate::common;
use crate::support;

use common::{config, mail, Db, TestDb};
use intake::daemon::Daemon;

use intake::sources::imap::{Registry, State};
use std::time::{Duration, Instant};
use support::graph_stand_in::GraphStandIn;
use support::kinds::{self, WithServer};
use support::{count, eventually, numbered};

/// A `[[mailboxes]]` Graph entry for the stand-in.
pub fn graph_toml(g: &GraphStandIn, extra: &str) -> String {
    let head = format!("name = \"support\"\nprotocol = \"graph\"\ntenant_id = \"tenant-1\"\nclient_id = \"app-1\"\nmailbox = \"support@desk.test\"\ngraph_url = \"{}\"\ntoken_url = \"{}\"", g.graph_url(), g.token_url());
    kinds::entry(
        &head,
        extra,
        &[
            ("client_secret", "\"s3cret\""),
            ("timeout", "10"),
            ("poll_interval", "1"),
        ],
    )
}

type G = WithServer<GraphStandIn>;

impl WithServer<GraphStandIn> {
    async fn new(db: Db, extra: &str, top: &str) -> G {
        let g = GraphStandIn::start("s3cret").await;
        let text = format!("{top}\n{}", graph_toml(&g, extra));
        G::start(db, g, &text).await
    }
}

/// Three delta pages in batches of four, all marked read after the commit;
/// the next round reads only what changed (our own isRead updates are not
/// imported again), and the committed state is the delta link.
async fn delta_pages_are_imported_once_and_marked_read(db: Db) {
    let t = G::new(db, "fetch_batch = 4", "").await;
    t.server.deliver(&numbered(0, 25));
    assert!(t.drain().await, "{:?}", t.registry.snapshot());
    let st = t.status();
    assert_eq!((st.kind.as_str(), st.imported), ("graph", 25));
    assert_eq!(
        (t.comments().await, t.server.count("inbox")),
        (25, (25, 25))
    );
    let state =
        t.db.store
            .checkpoint("support", "inbox")
            .await
            .unwrap()
            .unwrap();
    assert!(state.contains("$deltatoken="), "{state}");
    t.server.deliver(&numbered(25, 3));
    assert!(t.drain().await);
    assert_eq!(t.status().imported, 3);
    assert_eq!((t.comments().await, t.distinct().await), (28, 28));
    assert!(t.drain().await);
    assert_eq!((t.status().imported, t.comments().await), (0, 28));
}

/// `move` to a folder by display name and `delete`, after the commit.
async fn moved_and_deleted_after_the_commit(db: Db) {
    let t = G::new(db, "after_import = \"move\"\nmove_to = \"Imported\"", "").await;
    t.server.deliver(&numbered(0, 3));
    assert!(t.drain().await, "{:?}", t.registry.snapshot());
    assert_eq!(
        (
            t.comments().await,
            t.server.count("inbox").0,
            t.server.count("imported-id").0
        ),
        (3, 0, 3)
    );
    let cfg = config(
        &t.db.url,
        &graph_toml(&t.server, "after_import = \"delete\""),
    );
    t.server.deliver(&numbered(3, 2));
    let reg = Registry::default();
    assert!(
        intake::daemon::drain_once(&cfg, &t.pipeline, &reg).await,
        "{:?}",
        reg.snapshot()
    );
    assert_eq!(
        (
            t.comments().await,
            t.server.count("inbox").0,
            t.server.count("imported-id").0
        ),
        (5, 0, 3)
    );
    assert_eq!(
        count(&t.db.store, "SELECT COUNT(*) AS n FROM source_acks_owed").await,
        0
    );
}

/// 429 and 503 with Retry-After are waited out, and a token that expires
/// within the session is replaced: the round completes.
async fn throttling_and_an_expired_token_within_a_session(db: Db) {
    let t = G::new(db, "fetch_batch = 5", "").await;
    t.server.deliver(&numbered(0, 12));
    t.server.with(|s| {
        s.throttle = 2;
        s.token_life = Duration::from_millis(1500);
    });
    let started = Instant::now();
    assert!(t.drain().await, "{:?}", t.registry.snapshot());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(t.comments().await, 12);
    let (throttled, tokens) = t.server.with(|s| (s.throttled, s.token_requests));
    assert_eq!(throttled, 2);
    assert!(
        tokens >= 2,
        "the expired token was refreshed ({tokens} token requests)"
    );
}

/// A revoked client secret: an authentication error in the service's words,
/// shown by /readyz, retried with backoff (not in a loop), recovered once
/// the secret works again.
async fn a_revoked_secret_is_an_authentication_error_with_backoff(db: Db) {
    let g = GraphStandIn::start("s3cret").await;
    let tdb = TestDb::new(db).await;
    let cfg = config(
        &tdb.url,
        &format!("[http]\nlisten = \"127.0.0.1:0\"\n{}", graph_toml(&g, "")),
    );
    g.deliver(&numbered(0, 2));
    g.with(|s| s.secret = "rotated".into());
    let d = Daemon::start(cfg).await.unwrap();
    let failing = || async {
        let st = d.registry.snapshot().remove(0);
        st.state == State::BackingOff && st.last_error.unwrap_or_default().contains("AADSTS7000215")
    };
    assert!(eventually(10, failing).await, "{:?}", d.registry.snapshot());
    let before = g.with(|s| s.token_requests);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let attempts = g.with(|s| s.token_requests) - before;
    assert!(attempts <= 3, "{attempts} token requests in 4 s");
    let r = reqwest::get(format!("http://{}/readyz", d.addr))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().await.unwrap().contains("authentication"));
    g.with(|s| s.secret = "s3cret".into());
    let stored = || async { count(&tdb.store, "SELECT COUNT(*) AS n FROM comments").await == 2 };
    assert!(eventually(40, stored).await, "{:?}", d.registry.snapshot());
    d.shutdown().await;
}

/// A message deleted between the delta listing and its `$value` is skipped;
/// an expired delta link (410) reads the folder again without duplicates.
async fn vanished_messages_and_expired_delta_links(db: Db) {
    let t = G::new(db, "", "").await;
    t.server.deliver(&numbered(0, 4));
    t.server
        .with(|s| s.vanish_on_fetch = Some(s.messages[1].id.clone()));
    assert!(t.drain().await, "{:?}", t.registry.snapshot());
    assert_eq!(t.comments().await, 3);
    t.server.with(|s| s.oldest_delta = u64::MAX);
    t.server.deliver(&numbered(4, 2));
    assert!(t.drain().await, "{:?}", t.registry.snapshot());
    assert_eq!(t.status().imported, 2, "only the two new ones fetched");
    assert_eq!((t.comments().await, t.distinct().await), (5, 5));
}

/// Mail over `max_message_bytes` is quarantined with its headers.
async fn oversize_mail_is_quarantined_with_its_headers(db: Db) {
    let t = G::new(db, "", "[limits]\nmax_message_bytes = 20000\n").await;
    let big = mail(
        "Big <big@cust.test>",
        "A very large one",
        "big@cust.test",
        "",
        &"x".repeat(60_000),
    );
    t.server
        .deliver(&[big.into_bytes(), numbered(0, 1).remove(0)]);
    assert!(t.drain().await, "{:?}", t.registry.snapshot());
    assert_eq!(t.comments().await, 1);
    let q = t.db.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    let (_, raw) = t.db.store.quarantine_get(q[0].id).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("Subject: A very large one") && !raw.contains("xxxx"),
        "{raw}"
    );
}

/// Certificate credentials: a client assertion signed with the app's RSA
/// key and naming its certificate gets the token (the stand-in verifies the
/// signature, thumbprint, audience, issuer and expiry); another key does not.
async fn a_certificate_gets_the_token(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let o = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-subj",
        "/CN=intake test app",
    ]);
    openssl(&[
        "rsa",
        "-in",
        "key.pem",
        "-RSAPublicKey_out",
        "-outform",
        "DER",
        "-out",
        "pub.der",
    ]);
    openssl(&[
        "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "other.pem",
    ]);
    use base64::Engine;
    let thumb = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &std::fs::read(d.join("cert.der")).unwrap(),
    );
    let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(thumb.as_ref());
    let t = G::new(db, "", "").await;
    t.server
        .with(|s| s.certificate = Some((std::fs::read(d.join("pub.der")).unwrap(), x5t)));
    let files = |key: &str| {
        format!(
            "client_certificate_file = \"{}\"\nclient_key_file = \"{}\"\nclient_secret = \"not-this\"",
            d.join("cert.pem").display(),
            d.join(key).display()
        )
    };
    let cfg = config(&t.db.url, &graph_toml(&t.server, &files("key.pem")));
    t.server.deliver(&numbered(0, 2));
    let reg = Registry::default();
    assert!(
        intake::daemon::drain_once(&cfg, &t.pipeline, &reg).await,
        "{:?}",
        reg.snapshot()
    );
    assert_eq!(t.comments().await, 2);
    let cfg = config(&t.db.url, &graph_toml(&t.server, &files("other.pem")));
    let reg = Registry::default();
    assert!(!intake::daemon::drain_once(&cfg, &t.pipeline, &reg).await);
    let err = reg.snapshot().remove(0).last_error.unwrap_or_default();
    assert!(
        err.contains("authentication") && err.contains("AADSTS700027"),
        "{err}"
    );
}

/// A folder by path (`Inbox/Support`: a child folder by display name):
/// only its mail is imported.
async fn a_folder_by_path(db: Db) {
    let t = G::new(db, "folder = \"Inbox/Support\"", "").await;
    t.server.deliver(&numbered(0, 2));
    t.server.deliver_to("support-id", &numbered(2, 3));
    assert!(t.drain().await, "{:?}", t.registry.snapshot());
    assert_eq!(
        (
            t.comments().await,
            t.server.count("support-id"),
            t.server.count("inbox")
        ),
        (3, (3, 3), (2, 0))
    );
}

/// A message whose MIME Graph never serves (500) does not hold the others
/// back; after its third refused round it is quarantined and left there.
async fn a_message_graph_cannot_serve_is_quarantined_after_three_rounds(db: Db) {
    let t = G::new(db, "", "").await;
    t.server.deliver(&numbered(0, 3));
    t.server.with(|s| s.broken = Some(s.messages[1].id.clone()));
    for round in 1..=2 {
        assert!(
            t.drain().await,
            "round {round}: {:?}",
            t.registry.snapshot()
        );
        assert_eq!((t.comments().await, t.quarantined().await), (2, 0));
    }
    assert!(t.drain().await);
    let (reason, _) = t.quarantined_one().await;
    assert!(
        reason.contains("refused to hand over") && reason.contains("500"),
        "{reason}"
    );
    t.server.deliver(&numbered(3, 1));
    assert!(t.drain().await);
    assert_eq!((t.comments().await, t.quarantined().await), (3, 1));
    assert_eq!(
        t.server.count("inbox"),
        (4, 3),
        "all but the broken one marked read"
    );
}

both_backends!(
    a_message_graph_cannot_serve_is_quarantined_after_three_rounds,
    a_folder_by_path,
    a_certificate_gets_the_token,
    delta_pages_are_imported_once_and_marked_read,
    moved_and_deleted_after_the_commit,
    throttling_and_an_expired_token_within_a_session,
    a_revoked_secret_is_an_authentication_error_with_backoff,
    vanished_messages_and_expired_delta_links,
    oversize_mail_is_quarantined_with_its_headers,
);
