//! IMAP import against a real Dovecot, on SQLite and PostgreSQL: exactly
//! once across restarts, readers, UIDVALIDITY changes and refused
//! acknowledgements; oversize and poison mail quarantined.

use crate::common;
#[allow(unused_imports)]
use crate::common::CursorExt;
use crate::support;

use common::{mail, Db};
use support::{numbered, Env};

async fn imports_each_message_once(db: Db) {
    let e = Env::new(db, "fetch_batch = 7", "").await;
    e.deliver_n(0, 30);
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 30);
    assert_eq!(
        e.dc.flagged("support", "INBOX", 'S'),
        30,
        "after_import = seen flags every message"
    );
    let ids = e.message_ids().await;
    let mut want: Vec<String> = (0..30).map(|i| format!("m{i}@cust.test")).collect();
    want.sort();
    assert_eq!(ids, want);
    // A restart (second drain) finds nothing new; new mail is picked up.
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 30);
    e.deliver_n(30, 5);
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 35);
    assert_eq!(
        e.db.store
            .cursor("support", "INBOX")
            .await
            .unwrap()
            .unwrap()
            .1,
        35
    );
}

async fn mail_read_elsewhere_is_imported_and_keep_never_reimports(db: Db) {
    let e = Env::new(db, "after_import = \"keep\"", "").await;
    e.deliver_n(0, 3);
    // Another client reads (flags \Seen) the second message first.
    support::other_client_store(e.dc.port, "2", "+FLAGS (\\Seen)").await;
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 3);
    assert_eq!(
        e.dc.flagged("support", "INBOX", 'S'),
        1,
        "keep leaves flags alone"
    );
    assert!(e.drain().await);
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 3);
    assert_eq!(e.dc.count("support", "INBOX"), 3);
}

async fn uidvalidity_change_causes_no_duplicates(db: Db) {
    let mut e = Env::new(db, "", "").await;
    e.deliver_n(0, 5);
    assert!(e.drain().await);
    let (uv1, last1) =
        e.db.store
            .cursor("support", "INBOX")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(last1, 5);
    // The mailbox is recreated: same mail plus two new ones, new UIDVALIDITY.
    e.dc.stop();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    e.dc.clear("support");
    e.deliver_n(0, 7);
    e.dc.restart();
    assert!(e.drain().await);
    let (uv2, last2) =
        e.db.store
            .cursor("support", "INBOX")
            .await
            .unwrap()
            .unwrap();
    assert_ne!(uv1, uv2, "the test must really change UIDVALIDITY");
    assert_eq!(last2, 7);
    assert_eq!(e.comments().await, 7);
    assert_eq!(e.message_ids().await.len(), 7);
}

async fn refused_move_leaves_mail_and_never_duplicates(db: Db) {
    let e = Env::new(db, "after_import = \"move\"\nmove_to = \"Archive\"", "").await;
    e.deliver_n(0, 4);
    assert!(
        e.drain().await,
        "a refused acknowledgement is not an import failure"
    );
    assert_eq!(e.comments().await, 4);
    assert_eq!(e.dc.count("support", "INBOX"), 4, "mail left in place");
    let st = &e.registry.snapshot()[0];
    let err = st.last_error.clone().unwrap_or_default();
    assert!(err.contains("Archive") && err.contains("refused"), "{err}");
    assert_eq!(st.ack_failures, 1);
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 4, "no duplicates on the next run");
    assert_eq!(st.acks_owed, 4, "the move is owed");
    // Once the folder exists, the owed move is done and new mail moves too.
    e.dc.ensure_folder("support", "Archive");
    e.deliver_n(4, 2);
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 6);
    assert_eq!(e.dc.count("support", "INBOX"), 0);
    assert_eq!(e.dc.count("support", "Archive"), 6);
    let st = &e.registry.snapshot()[0];
    assert_eq!((st.acks_owed, st.last_error.as_deref()), (0, None));
}

async fn delete_mode_expunges_after_commit(db: Db) {
    let e = Env::new(db, "after_import = \"delete\"", "").await;
    e.deliver_n(0, 6);
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 6);
    assert_eq!(e.dc.count("support", "INBOX"), 0);
}

async fn oversize_mail_is_quarantined_with_headers_only(db: Db) {
    let e = Env::new(db, "", "[limits]\nmax_message_bytes = 4096").await;
    let big_body = "x".repeat(20_000) + "\nBIG-BODY-MARKER";
    let big = mail(
        "big@cust.test",
        "Huge attachment",
        "big@cust.test",
        "",
        &big_body,
    )
    .into_bytes();
    let mut mails = numbered(0, 1);
    mails.push(big.clone());
    mails.extend(numbered(1, 1));
    e.dc.deliver("support", "INBOX", &mails);
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 2);
    let q = e.db.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].truncated);
    assert!(
        q[0].size >= big.len() as i64,
        "real size recorded: {}",
        q[0].size
    );
    assert!(q[0].reason.contains("max_message_bytes"), "{}", q[0].reason);
    let (_, raw) = e.db.store.quarantine_get(q[0].id).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("Subject: Huge attachment") && !raw.contains("BIG-BODY-MARKER"),
        "{raw}"
    );
    assert_eq!(e.dc.flagged("support", "INBOX", 'S'), 3);
    assert!(e.drain().await);
    assert_eq!((e.comments().await, e.quarantined().await), (2, 1));
}

async fn poison_message_is_quarantined_and_the_rest_imported(db: Db) {
    let e = Env::new(db, "", "").await;
    let mut mails = numbered(0, 2);
    mails.push(
        b"Subject: no sender at all\nMessage-ID: <poison@x.test>\n\nwho sent this?\n".to_vec(),
    );
    mails.push(b"\x00\x01garbage without any header\n".to_vec());
    mails.extend(numbered(2, 2));
    e.dc.deliver("support", "INBOX", &mails);
    assert!(e.drain().await);
    assert_eq!(e.comments().await, 4);
    assert_eq!(e.quarantined().await, 2);
    assert_eq!(
        e.dc.flagged("support", "INBOX", 'S'),
        6,
        "the mailbox moved on"
    );
    assert!(e.drain().await);
    assert_eq!((e.comments().await, e.quarantined().await), (4, 2));
}

async fn implicit_tls_and_starttls_verify_the_server(db: Db) {
    use support::dovecot::Dovecot;
    let dc = Dovecot::start(&[("support", "supportpw"), ("other", "otherpw")]);
    let tdb = common::TestDb::new(db).await;
    let mb = |name: &str, host: &str, port: u16, tls: &str, user: &str, ca: bool| {
        let ca = if ca {
            format!("ca_file = \"{}\"\n", dc.ca_file())
        } else {
            String::new()
        };
        format!("[[mailboxes]]\nname = \"{name}\"\nhost = \"{host}\"\nport = {port}\ntls = \"{tls}\"\nusername = \"{user}\"\npassword = \"{user}pw\"\ntimeout = 5\n{ca}")
    };
    dc.deliver("support", "INBOX", &numbered(0, 3));
    dc.deliver("other", "INBOX", &numbered(10, 2));
    let text = mb("implicit", "127.0.0.1", dc.tls_port, "tls", "support", true)
        + &mb("starttls", "localhost", dc.port, "starttls", "other", true);
    let cfg = common::config(&tdb.url, &text);
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
    assert_eq!(
        support::count(&tdb.store, "SELECT COUNT(*) AS n FROM comments").await,
        5
    );
    // Without the private CA the certificate is refused and nothing is read.
    dc.deliver("support", "INBOX", &numbered(20, 1));
    let cfg = common::config(
        &tdb.url,
        &mb(
            "implicit",
            "127.0.0.1",
            dc.tls_port,
            "tls",
            "support",
            false,
        ),
    );
    let reg = intake::sources::imap::Registry::default();
    assert!(!intake::daemon::drain_once(&cfg, &p, &reg).await);
    let err = reg.snapshot()[0].last_error.clone().unwrap_or_default();
    assert!(
        err.contains("TLS") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(
        support::count(&tdb.store, "SELECT COUNT(*) AS n FROM comments").await,
        5
    );
}

both_backends!(
    implicit_tls_and_starttls_verify_the_server,
    imports_each_message_once,
    mail_read_elsewhere_is_imported_and_keep_never_reimports,
    uidvalidity_change_causes_no_duplicates,
    refused_move_leaves_mail_and_never_duplicates,
    delete_mode_expunges_after_commit,
    oversize_mail_is_quarantined_with_headers_only,
    poison_message_is_quarantined_and_the_rest_imported,
);
