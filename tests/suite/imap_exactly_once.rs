//! Exactly-once against a real Dovecot, on SQLite and PostgreSQL, when the
//! server misbehaves: a FETCH response left out or unparseable (through a
//! rewriting proxy), a server without UIDPLUS whose EXPUNGE would take mail
//! another client deleted, a STORE answered NO, and 5,000 waiting messages.

use crate::common;
#[allow(unused_imports)]
use crate::common::CursorExt;
use crate::support;

use common::{config, Db, TestDb};
use intake::pipeline::{Pipeline, Settings};
use std::time::Duration;
use support::dovecot::Dovecot;
use support::faults::{FetchMangler, Mangle};
use support::{mailbox_toml, Env};

/// An [`Env`] whose `support` mailbox connects to `port` (a proxy) on `dc`.
async fn env_on(db: Db, dc: Dovecot, port: u16, extra: &str) -> Env {
    let db = TestDb::new(db).await;
    let cfg = config(
        &db.url,
        &mailbox_toml("support", port, "support", "supportpw", extra),
    );
    let pipeline = Pipeline::new(db.store.clone(), Settings::from_config(&cfg));
    Env {
        dc,
        db,
        cfg,
        pipeline,
        registry: Default::default(),
    }
}

async fn drain(e: &Env) -> bool {
    tokio::time::timeout(Duration::from_secs(60), e.drain())
        .await
        .expect("drain_once loops")
}

async fn cursor(e: &Env) -> u32 {
    e.db.store
        .cursor("support", "INBOX")
        .await
        .unwrap()
        .map(|c| c.1)
        .unwrap_or(0)
}

/// The server lists UID 3 but leaves it out of the body FETCH, twice: the
/// cursor must not pass it, and it is imported once the server returns it.
async fn unreturned_message_holds_the_cursor(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let proxy = FetchMangler::start(dc.port, 3, Mangle::Drop, 2).await;
    let e = env_on(db, dc, proxy.port, "fetch_batch = 10").await;
    e.deliver_n(0, 5);
    assert!(drain(&e).await, "{:?}", e.registry.snapshot());
    assert_eq!(proxy.hits(), 2, "the proxy really withheld UID 3 twice");
    assert_eq!(e.comments().await, 5, "{:?}", e.message_ids().await);
    assert_eq!(cursor(&e).await, 5);
    assert!(drain(&e).await);
    assert_eq!(e.comments().await, 5);
    assert_eq!(e.message_ids().await.len(), 5);
    assert_eq!(e.quarantined().await, 0);
}

/// Every body FETCH response for UID 3 is garbage: the others are
/// imported, UID 3 is quarantined with its headers, the mailbox moves on.
async fn unparseable_fetch_response_is_quarantined_and_the_rest_imported(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let proxy = FetchMangler::start(dc.port, 3, Mangle::Garble, usize::MAX).await;
    let e = env_on(db, dc, proxy.port, "fetch_batch = 10").await;
    e.deliver_n(0, 5);
    assert!(drain(&e).await, "{:?}", e.registry.snapshot());
    assert!(proxy.hits() >= 3, "garbled {} times", proxy.hits());
    assert_eq!(e.comments().await, 4);
    let q = e.db.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].truncated);
    assert!(
        q[0].reason.contains("UID 3") && q[0].reason.contains("could not be parsed"),
        "{}",
        q[0].reason
    );
    assert!(
        q[0].reason.len() < 1000,
        "reason kept short: {}",
        q[0].reason
    );
    let (_, raw) = e.db.store.quarantine_get(q[0].id).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("Subject: Question 2"), "headers kept: {raw}");
    assert!(!raw.contains("Body of message 2"), "{raw}");
    assert_eq!(cursor(&e).await, 5);
    assert_eq!(
        e.dc.flagged("support", "INBOX", 'S'),
        4,
        "the others acknowledged; the unreadable one left untouched on the server"
    );
    let hits = proxy.hits();
    assert!(drain(&e).await);
    assert_eq!(proxy.hits(), hits, "UID 3 is not fetched again");
    e.deliver_n(5, 2);
    assert!(drain(&e).await);
    assert_eq!((e.comments().await, e.quarantined().await), (6, 1));
}

/// A server without UIDPLUS (and MOVE): plain EXPUNGE would also remove
/// mail another client flagged \Deleted before we imported it.
async fn delete_without_uidplus_spares_unimported_mail(db: Db) {
    let dc = Dovecot::start_conf(
        &[("support", "supportpw")],
        "imap_capability = IMAP4rev1 LITERAL+ SASL-IR IDLE NAMESPACE UNSELECT\n",
    );
    let port = dc.port;
    let e = env_on(db, dc, port, "after_import = \"delete\"\nfetch_batch = 2").await;
    e.deliver_n(0, 3);
    // Someone flags UID 3 \Deleted in another client (no expunge yet).
    let caps = support_session(port, |s| {
        Box::pin(async move {
            use futures::TryStreamExt;
            let caps = s.capabilities().await.unwrap();
            let _: Vec<_> = s
                .uid_store("3", "+FLAGS (\\Deleted)")
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            caps.has_str("UIDPLUS")
        })
    })
    .await;
    assert!(!caps, "the test server must not offer UIDPLUS");
    assert!(drain(&e).await, "{:?}", e.registry.snapshot());
    assert_eq!(e.comments().await, 3, "{:?}", e.message_ids().await);
    let err = e.registry.snapshot()[0]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(
        err.contains("EXPUNGE skipped") && err.contains("UID 3"),
        "{err}"
    );
    // Once UID 3 was imported too, everything was expunged.
    assert_eq!(e.dc.count("support", "INBOX"), 0);
    assert!(drain(&e).await);
    assert_eq!(e.comments().await, 3);
}

/// Log in as `support`, select INBOX, run `f`, log out.
async fn support_session<T>(
    port: u16,
    f: impl for<'a> FnOnce(
        &'a mut async_imap::Session<tokio::net::TcpStream>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>,
) -> T {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut c = async_imap::Client::new(tcp);
    c.read_response().await.unwrap();
    let mut s = c
        .login("support", "supportpw")
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    s.select("INBOX").await.unwrap();
    let out = f(&mut s).await;
    s.logout().await.unwrap();
    out
}

/// The server answers NO to STORE (Dovecot itself accepts STORE on a
/// read-only Maildir or without ACL rights and drops the flags silently,
/// so the refusal comes from the proxy in front of it).
async fn refused_store_leaves_mail_and_never_duplicates(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let proxy = FetchMangler::refusing(dc.port, " UID STORE ").await;
    let e = env_on(db, dc, proxy.port, "fetch_batch = 3").await;
    e.deliver_n(0, 4);
    assert!(drain(&e).await, "{:?}", e.registry.snapshot());
    assert_eq!(proxy.hits(), 2, "both batches' STORE refused");
    assert_eq!(e.comments().await, 4);
    let st = e.registry.snapshot().remove(0);
    let err = st.last_error.clone().unwrap_or_default();
    assert!(err.contains("seen") && err.contains("refused"), "{err}");
    assert_eq!(st.ack_failures, 2, "{st:?}");
    assert_eq!(e.dc.count("support", "INBOX"), 4, "mail stays");
    assert_eq!(e.dc.flagged("support", "INBOX", 'S'), 0);
    assert!(drain(&e).await);
    assert_eq!(e.comments().await, 4, "no duplicates on the next run");
    e.deliver_n(4, 1);
    assert!(drain(&e).await);
    assert_eq!(e.comments().await, 5);
    assert_eq!(e.message_ids().await.len(), 5);
    assert_eq!(e.quarantined().await, 0);
}

/// 5,000 messages waiting after downtime: one drain stores each once.
async fn five_thousand_waiting_messages(db: Db) {
    let e = Env::new(db, "timeout = 30", "").await;
    e.deliver_n(0, 5000);
    let t = std::time::Instant::now();
    assert!(drain(&e).await, "{:?}", e.registry.snapshot());
    eprintln!("5,000 messages drained in {:?}", t.elapsed());
    assert_eq!(e.comments().await, 5000);
    let ids = e.message_ids().await;
    let mut want: Vec<String> = (0..5000).map(|i| format!("m{i}@cust.test")).collect();
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(cursor(&e).await, 5000);
    assert!(drain(&e).await);
    assert_eq!(e.comments().await, 5000, "a second drain stores nothing");
    assert_eq!(e.quarantined().await, 0);
}

both_backends!(
    unreturned_message_holds_the_cursor,
    unparseable_fetch_response_is_quarantined_and_the_rest_imported,
    delete_without_uidplus_spares_unimported_mail,
    refused_store_leaves_mail_and_never_duplicates,
    five_thousand_waiting_messages,
);
