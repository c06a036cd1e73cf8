//! JMAP mailboxes against a real Cyrus IMAP 3.6 JMAP server, on SQLite and
//! PostgreSQL: the first round reads the mailbox by Email/query, later
//! ones by Email/changes from the committed state; imported mail is
//! flagged $seen, moved or destroyed only after its commit; a state the
//! server cannot calculate changes from leads to a full resync that stores
//! nothing twice; the session is found from the base URL too; oversize
//! mail is quarantined with its headers; push through the EventSource.

use crate::common;
use crate::support;

use common::{config, mail, Db, TestDb};
use intake::daemon::Daemon;
use intake::pipeline::{Pipeline, Settings};
use intake::sources::imap::{Registry, State};
use std::time::Duration;
use support::cyrus::Cyrus;
use support::jmap_front::JmapFront;
use support::kinds::{self, KindEnv, WithServer};
use support::{count, eventually, numbered};

/// A `[[mailboxes]]` JMAP entry for `support` at `url`.
pub fn jmap_toml(url: &str, extra: &str) -> String {
    let head =
        format!("name = \"support\"\nprotocol = \"jmap\"\nurl = \"{url}\"\nusername = \"support\"");
    kinds::entry(
        &head,
        extra,
        &[
            ("password", "\"supportpw\""),
            ("timeout", "10"),
            ("poll_interval", "1"),
        ],
    )
}

type J = WithServer<Cyrus>;

impl WithServer<Cyrus> {
    async fn new(db: Db, extra: &str, top: &str) -> J {
        let cy = Cyrus::start(&[("support", "supportpw")]);
        let text = format!("{top}\n{}", jmap_toml(&cy.url(), extra));
        J::start(db, cy, &text).await
    }
    async fn inbox(&self) -> (usize, usize) {
        self.server.count("support", "supportpw", "inbox").await
    }
}

/// First round by query, the next by changes: nothing fetched twice, all
/// flagged $seen after the commit, and the committed state is the server's.
async fn imports_by_query_then_by_changes_and_flags_seen(db: Db) {
    let j = J::new(db, "fetch_batch = 2", "").await;
    j.server.deliver("support", &numbered(0, 5));
    assert!(j.drain().await, "{:?}", j.registry.snapshot());
    let st = j.status();
    assert_eq!((st.kind.as_str(), st.imported), ("jmap", 5));
    assert_eq!((j.comments().await, j.inbox().await), (5, (5, 5)));
    let state =
        j.db.store
            .checkpoint("support", "inbox")
            .await
            .unwrap()
            .unwrap();
    assert!(!state.is_empty());
    j.server.deliver("support", &numbered(5, 3));
    assert!(j.drain().await);
    assert_eq!(j.status().imported, 3, "only the new three fetched");
    assert_eq!((j.comments().await, j.distinct().await), (8, 8));
    assert_eq!(j.inbox().await, (8, 8));
    assert!(j.drain().await);
    assert_eq!((j.status().imported, j.comments().await), (0, 8));
}

/// `move` to a mailbox by name and `delete`: the mail leaves the inbox only
/// after its commit; moved mail's ids are forgotten once it is moved.
async fn moved_and_deleted_after_the_commit(db: Db) {
    let j = J::new(db, "after_import = \"move\"\nmove_to = \"Imported\"", "").await;
    j.server.deliver("support", &numbered(0, 3));
    assert!(j.drain().await, "{:?}", j.registry.snapshot());
    assert_eq!(j.comments().await, 3);
    assert_eq!(j.inbox().await.0, 0);
    assert_eq!(
        j.server.count("support", "supportpw", "Imported").await.0,
        3
    );
    // Moved out, never listed in the inbox again: not remembered (the
    // memory of imported ids does not grow with every message), and
    // nothing is imported twice.
    let seen = count(&j.db.store, "SELECT COUNT(*) AS n FROM source_seen").await;
    assert_eq!(seen, 0);
    assert!(j.drain().await);
    assert_eq!((j.comments().await, j.status().imported), (3, 0));
    let cfg = config(
        &j.db.url,
        &jmap_toml(&j.server.url(), "after_import = \"delete\""),
    );
    j.server.deliver("support", &numbered(3, 2));
    let reg = Registry::default();
    assert!(
        intake::daemon::drain_once(&cfg, &j.pipeline, &reg).await,
        "{:?}",
        reg.snapshot()
    );
    assert_eq!((j.comments().await, j.inbox().await.0), (5, 0));
    assert_eq!(
        j.server.count("support", "supportpw", "Imported").await.0,
        3
    );
    let owed = count(&j.db.store, "SELECT COUNT(*) AS n FROM source_acks_owed").await;
    assert_eq!(owed, 0, "done acknowledgements are forgotten");
}

/// A state the server cannot use (unknown to it: invalidArguments; too old:
/// cannotCalculateChanges): the mailbox is read again, mail already
/// imported is recognised by its id (not fetched, not stored twice), new
/// mail is imported.
async fn a_lost_state_resyncs_without_duplicates(db: Db) {
    let j = J::new(db, "after_import = \"keep\"", "").await;
    j.server.deliver("support", &numbered(0, 4));
    assert!(j.drain().await);
    assert_eq!(j.comments().await, 4);
    let cp = intake::model::Checkpoint {
        source: "support".into(),
        scope: "inbox".into(),
        state: "no-such-state".into(),
        ..Default::default()
    };
    j.db.store.save_checkpoint(&cp).await.unwrap();
    j.server.deliver("support", &numbered(4, 2));
    assert!(j.drain().await, "{:?}", j.registry.snapshot());
    assert_eq!(j.status().imported, 2, "only the two new ones fetched");
    assert_eq!((j.comments().await, j.distinct().await), (6, 6));
    let state =
        j.db.store
            .checkpoint("support", "inbox")
            .await
            .unwrap()
            .unwrap();
    assert_ne!(state, "no-such-state");
}

/// The server's base URL finds the session through /.well-known/jmap; a
/// wrong password is an authentication error.
async fn base_url_discovery_and_wrong_passwords(db: Db) {
    let j = J::new(db, "", "").await;
    let base = format!("http://127.0.0.1:{}/", j.server.http);
    let cfg = config(&j.db.url, &jmap_toml(&base, ""));
    j.server.deliver("support", &numbered(0, 2));
    let reg = Registry::default();
    assert!(
        intake::daemon::drain_once(&cfg, &j.pipeline, &reg).await,
        "{:?}",
        reg.snapshot()
    );
    assert_eq!(j.comments().await, 2);
    let cfg = config(
        &j.db.url,
        &jmap_toml(&j.server.url(), "password = \"wrong\""),
    );
    let reg = Registry::default();
    assert!(!intake::daemon::drain_once(&cfg, &j.pipeline, &reg).await);
    let st = reg.snapshot().remove(0);
    assert_eq!(st.state, State::Error);
    let err = st.last_error.unwrap_or_default();
    assert!(
        err.contains("authentication") && err.contains("401"),
        "{err}"
    );
}

/// Mail over `max_message_bytes` is quarantined with its headers.
async fn oversize_mail_is_quarantined_with_its_headers(db: Db) {
    let j = J::new(db, "", "[limits]\nmax_message_bytes = 20000\n").await;
    let big = mail(
        "Big <big@cust.test>",
        "A very large one",
        "big@cust.test",
        "",
        &"x".repeat(60_000),
    );
    j.server
        .deliver("support", &[big.into_bytes(), numbered(0, 1).remove(0)]);
    assert!(j.drain().await, "{:?}", j.registry.snapshot());
    assert_eq!(j.comments().await, 1);
    let q = j.db.store.quarantine_list().await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    let (_, raw) = j.db.store.quarantine_get(q[0].id).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("Subject: A very large one") && !raw.contains("xxxx"),
        "{raw}"
    );
}

/// The daemon keeps importing: Debian's Cyrus is built without push (its
/// EventSource answers 204 No Content), so the worker polls every
/// `poll_interval`.
async fn the_daemon_polls_a_server_without_push(db: Db) {
    let cy = Cyrus::start(&[("support", "supportpw")]);
    let tdb = TestDb::new(db).await;
    let cfg = config(
        &tdb.url,
        &format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n{}",
            jmap_toml(&cy.url(), "poll_interval = 2")
        ),
    );
    let comments = || async { count(&tdb.store, "SELECT COUNT(*) AS n FROM comments").await };
    cy.deliver("support", &numbered(0, 2));
    let d = Daemon::start(cfg).await.unwrap();
    assert!(eventually(20, || async { comments().await == 2 }).await);
    assert!(
        eventually(10, || async {
            d.registry.snapshot()[0].state == State::Idle
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    cy.deliver("support", &numbered(2, 1));
    assert!(
        eventually(20, || async { comments().await == 3 }).await,
        "not woken: {:?}",
        d.registry.snapshot()
    );
    let r = reqwest::get(format!("http://{}/readyz", d.addr))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("\"jmap\""));
    d.shutdown().await;
}

/// Bearer tokens, and push: with a poll interval of ten minutes, new mail
/// is imported at once because the worker listens on the EventSource
/// (served by a front on Cyrus, see `support::jmap_front`); a wrong token
/// is an authentication error.
async fn bearer_tokens_and_push_through_the_event_source(db: Db) {
    let cy = Cyrus::start(&[("support", "supportpw")]);
    let front = JmapFront::start(cy.http, "tok-1", "support", "supportpw").await;
    let tdb = TestDb::new(db).await;
    let mb = jmap_toml(
        &front.url(),
        "bearer_token = \"tok-1\"\npoll_interval = 600",
    );
    let cfg = config(&tdb.url, &format!("[http]\nlisten = \"127.0.0.1:0\"\n{mb}"));
    let comments = || async { count(&tdb.store, "SELECT COUNT(*) AS n FROM comments").await };
    cy.deliver("support", &numbered(0, 2));
    let d = Daemon::start(cfg.clone()).await.unwrap();
    assert!(
        eventually(20, || async { comments().await == 2 }).await,
        "{:?}",
        d.registry.snapshot()
    );
    assert!(
        eventually(10, || async { front.streams() >= 1 }).await,
        "the worker listens"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    cy.deliver("support", &numbered(2, 1));
    assert!(
        eventually(15, || async { comments().await == 3 }).await,
        "not woken by the event source: {:?}",
        d.registry.snapshot()
    );
    d.shutdown().await;
    let bad = config(
        &tdb.url,
        &jmap_toml(&front.url(), "bearer_token = \"tok-2\""),
    );
    let p = Pipeline::new(tdb.store.clone(), Settings::from_config(&bad));
    let reg = Registry::default();
    assert!(!intake::daemon::drain_once(&bad, &p, &reg).await);
    let err = reg.snapshot().remove(0).last_error.unwrap_or_default();
    assert!(
        err.contains("authentication") && err.contains("401"),
        "{err}"
    );
}

/// A message whose blob the server never hands over (its download answers
/// 500) does not hold the others back; after its third refused round it is
/// quarantined and left unflagged on the server.
async fn a_message_the_server_cannot_serve_is_quarantined_after_three_rounds(db: Db) {
    let cy = Cyrus::start(&[("support", "supportpw")]);
    let front = JmapFront::start(cy.http, "tok-1", "support", "supportpw").await;
    *front.refuse_download.lock().unwrap() = Some(b"Body of message 1".to_vec());
    let mb = jmap_toml(&front.url(), "bearer_token = \"tok-1\"");
    let env = KindEnv::new(TestDb::new(db).await, &mb).await;
    cy.deliver("support", &numbered(0, 3));
    for round in 1..=2 {
        assert!(
            env.drain().await,
            "round {round}: {:?}",
            env.registry.snapshot()
        );
        assert_eq!((env.comments().await, env.quarantined().await), (2, 0));
    }
    assert!(env.drain().await, "{:?}", env.registry.snapshot());
    let (reason, _) = env.quarantined_one().await;
    assert!(
        reason.contains("refused to hand over") && reason.contains("500"),
        "{reason}"
    );
    cy.deliver("support", &numbered(3, 1));
    assert!(env.drain().await);
    assert_eq!((env.comments().await, env.quarantined().await), (3, 1));
    assert_eq!(
        cy.count("support", "supportpw", "inbox").await,
        (4, 3),
        "all but the refused one flagged $seen"
    );
}

both_backends!(
    a_message_the_server_cannot_serve_is_quarantined_after_three_rounds,
    bearer_tokens_and_push_through_the_event_source,
    imports_by_query_then_by_changes_and_flags_seen,
    moved_and_deleted_after_the_commit,
    a_lost_state_resyncs_without_duplicates,
    base_url_discovery_and_wrong_passwords,
    oversize_mail_is_quarantined_with_its_headers,
    the_daemon_polls_a_server_without_push,
);
