//! No lost wake-ups (issue 10, item 8), against a real Dovecot on SQLite and
//! PostgreSQL with the daemon in-process: mail delivered in a loop while a
//! backlog of thousands is imported is all stored soon after the backlog is
//! done, with no later mail to wake the worker up, and mail delivered after
//! it within the push latency; `/readyz` never shows the folder idle with
//! lag 0 while delivered mail waits; IDLE is re-issued on time although the
//! server's keepalives arrive every second, and mail delivered the moment
//! a re-issue begins is not lost.

use crate::common::{config, mail, Db, TestDb};
use crate::support::dovecot::Dovecot;
use crate::support::imap_proxy::CommandProxy;
use crate::support::{count, eventually, mailbox_toml, numbered};
use intake::daemon::Daemon;
use intake::sources::imap::State;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The push latency the issue asks for (2 s), plus margin for a loaded
/// 2-core CI machine. Before the fix, such mail waited for 3 × `timeout`
/// (90 s here) or indefinitely.
const BOUND: Duration = Duration::from_secs(5);
/// Mail delivered during the import is a small backlog of its own when the
/// big one is done: stored within this much (before the fix: never, as
/// long as no other mail arrived).
const AFTER_BACKLOG: Duration = Duration::from_secs(15);
const BACKLOG: usize = 3000;

fn late(i: usize) -> Vec<u8> {
    mail(
        &format!("Late {i} <late{i}@cust{}.test>", i % 5),
        &format!("Late question {i}"),
        &format!("late{i}@cust.test"),
        "",
        "Delivered while the mailbox was busy",
    )
    .into_bytes()
}

async fn start(tdb: &TestDb, port: u16, extra: &str) -> Daemon {
    let mb = mailbox_toml("support", port, "support", "supportpw", extra);
    let cfg = config(&tdb.url, &format!("[http]\nlisten = \"127.0.0.1:0\"\n{mb}"));
    Daemon::start(cfg).await.unwrap()
}

/// Late mail stored so far (Message-ID `late{i}@cust.test`), by number.
async fn late_stored(tdb: &TestDb) -> Vec<usize> {
    use sqlx::Row;
    sqlx::query("SELECT message_id FROM comments WHERE message_id LIKE 'late%'")
        .fetch_all(tdb.store.pool())
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            let id: String = r.get("message_id");
            id.strip_prefix("late")?.split('@').next()?.parse().ok()
        })
        .collect()
}

async fn mail_delivered_during_a_backlog_import_is_stored_promptly(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let tdb = TestDb::new(db).await;
    dc.deliver("support", "INBOX", &numbered(0, BACKLOG));
    // IDLE re-issued only every 90 s: only acting on the new-mail notices
    // (and looking again after the pass) can store late mail within BOUND.
    let d = start(
        &tdb,
        dc.port,
        "idle = true\ntimeout = 30\npoll_interval = 600\nfetch_batch = 100",
    )
    .await;
    let started = Instant::now();
    let mut delivered: HashMap<usize, Instant> = HashMap::new();
    let mut stored: HashMap<usize, Instant> = HashMap::new();
    let mut during_import = 0;
    let mut backlog_done: Option<Instant> = None;
    let mut untruthful = Vec::new();
    let mut next = 0;
    let mut last_delivery = Instant::now();
    let after = 5; // delivered one by one once the backlog is done
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "hang guard: {} of {BACKLOG} backlog stored, late {stored:?} of {delivered:?}; {:?}",
            count(&tdb.store, "SELECT COUNT(*) AS n FROM comments").await,
            d.registry.snapshot()
        );
        let backlog = count(
            &tdb.store,
            "SELECT COUNT(*) AS n FROM comments WHERE message_id LIKE 'm%'",
        )
        .await as usize;
        let now = Instant::now();
        for i in late_stored(&tdb).await {
            stored.entry(i).or_insert(now);
        }
        if backlog_done.is_none() && backlog == BACKLOG {
            backlog_done = Some(now);
            eprintln!("backlog of {BACKLOG} stored in {:?}", started.elapsed());
        }
        // Delivered mail waiting past BOUND while the folder says idle, lag 0.
        let st = d.registry.snapshot().remove(0);
        if st.state == State::Idle && st.lag == 0 {
            let waiting: Vec<usize> = delivered
                .iter()
                .filter(|(i, t)| !stored.contains_key(i) && now.duration_since(**t) > BOUND)
                .map(|(i, _)| *i)
                .collect();
            if !waiting.is_empty() {
                untruthful.push(waiting);
            }
        }
        match backlog_done {
            // During the import: one mail every 50 ms (the import of the
            // backlog has taken as little as 1.2 s).
            None => {
                if backlog > 0 && now.duration_since(last_delivery) >= Duration::from_millis(50) {
                    dc.deliver("support", "INBOX", &[late(next)]);
                    delivered.insert(next, Instant::now());
                    last_delivery = Instant::now();
                    next += 1;
                    during_import += 1;
                }
            }
            // Afterwards, once those are stored or past AFTER_BACKLOG (so
            // that new mail cannot wake up what was stuck): a few more,
            // 700 ms apart.
            Some(done) => {
                let phase = (0..during_import).all(|i| stored.contains_key(&i))
                    || now.duration_since(done) > AFTER_BACKLOG + Duration::from_secs(1);
                if phase
                    && next < during_import + after
                    && now.duration_since(last_delivery) >= Duration::from_millis(700)
                {
                    dc.deliver("support", "INBOX", &[late(next)]);
                    delivered.insert(next, Instant::now());
                    last_delivery = Instant::now();
                    next += 1;
                }
                if next == during_import + after && stored.len() == next {
                    break;
                }
                // Mail stuck after the backlog: give up well past BOUND.
                if now.duration_since(done) > Duration::from_secs(60) {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let done = backlog_done.unwrap();
    eprintln!(
        "{during_import} mails delivered during the import, {after} after; worst latency {:?}",
        stored
            .iter()
            .map(|(i, t)| t.duration_since(delivered[i]))
            .max()
    );
    assert!(
        during_import >= 3,
        "only {during_import} mails delivered during the import"
    );
    for i in 0..next {
        let Some(at) = stored.get(&i) else {
            panic!("late mail {i} never stored; {:?}", d.registry.snapshot());
        };
        let due = if i < during_import {
            delivered[&i].max(done) + AFTER_BACKLOG
        } else {
            delivered[&i] + BOUND
        };
        assert!(
            *at <= due,
            "late mail {i} stored {:?} after its delivery ({:?} after the backlog was done)",
            at.duration_since(delivered[&i]),
            at.saturating_duration_since(done)
        );
    }
    assert!(
        untruthful.is_empty(),
        "idle with lag 0 while delivered mail waited: {untruthful:?}"
    );
    assert_eq!(
        count(&tdb.store, "SELECT COUNT(*) AS n FROM comments").await,
        (BACKLOG + next) as i64
    );
    assert_eq!(
        count(
            &tdb.store,
            "SELECT COUNT(DISTINCT message_id) AS n FROM comments"
        )
        .await,
        (BACKLOG + next) as i64
    );
    d.shutdown().await;
}

async fn idle_is_reissued_on_time_although_keepalives_arrive_often(db: Db) {
    let dc = Dovecot::start_conf(
        &[("support", "supportpw")],
        "imap_idle_notify_interval = 1 secs\n",
    );
    let proxy = CommandProxy::start(dc.port).await;
    let tdb = TestDb::new(db).await;
    // timeout 2 s: IDLE lasts 6 s (3 × timeout) from its start.
    let d = start(
        &tdb,
        proxy.port,
        "idle = true\ntimeout = 2\npoll_interval = 600",
    )
    .await;
    let idle = || async { d.registry.snapshot()[0].state == State::Idle };
    assert!(eventually(20, idle).await, "{:?}", d.registry.snapshot());
    let quiet = Instant::now();
    tokio::time::sleep(Duration::from_secs(14)).await;
    let keepalives = proxy
        .responses("Still here")
        .iter()
        .filter(|(t, _)| *t >= quiet)
        .count();
    let reissued = proxy
        .commands(" IDLE")
        .iter()
        .filter(|(t, _)| *t >= quiet)
        .count();
    eprintln!("in 14 s: {keepalives} keepalives, {reissued} IDLE commands");
    assert!(
        keepalives >= 6,
        "the server sent {keepalives} keepalives: the premise does not hold"
    );
    assert!(
        reissued >= 2,
        "IDLE issued {reissued} times in 14 s; each should last 6 s"
    );
    // Mail delivered the moment a re-issue begins (DONE just sent) is
    // stored all the same.
    for i in 0..3 {
        let since = Instant::now();
        let done_sent = || async { proxy.commands("DONE").iter().any(|(t, _)| *t >= since) };
        assert!(eventually(15, done_sent).await, "no re-issue within 15 s");
        let t = Instant::now();
        dc.deliver("support", "INBOX", &[late(i)]);
        let stored = || async { late_stored(&tdb).await.contains(&i) };
        assert!(
            eventually(BOUND.as_secs(), stored).await,
            "mail delivered during a re-issue not stored within {BOUND:?}; {:?}",
            d.registry.snapshot()
        );
        eprintln!("re-issue delivery {i}: stored after {:?}", t.elapsed());
    }
    assert_eq!(d.registry.snapshot()[0].reconnects, 0);
    d.shutdown().await;
}

both_backends!(
    mail_delivered_during_a_backlog_import_is_stored_promptly,
    idle_is_reissued_on_time_although_keepalives_arrive_often,
);
