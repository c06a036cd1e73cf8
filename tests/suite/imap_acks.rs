//! Every committed message is acknowledged, eventually (issue 10, item 10),
//! against a real Dovecot on SQLite and PostgreSQL. A proxy between the
//! daemon and Dovecot watches the commands: the built binary is SIGKILLed
//! the moment its first acknowledgement (UID STORE / UID MOVE / UID
//! EXPUNGE), right after the first batch's commit, is about to leave; after
//! a restart the folder ends as `after_import` promises, nothing is stored
//! twice and `/readyz` and `/metrics` show no acknowledgement owed. The
//! same without a restart when the proxy cuts the connection instead, or
//! answers NO once.

use crate::common::{config, fresh_url, Db, TestDb};
use crate::support::dovecot::Dovecot;
use crate::support::imap_proxy::{Act, CommandProxy};
use crate::support::{count, eventually, mailbox_toml, numbered};
use intake::daemon::Daemon;
use intake::sources::imap::FolderStatus;
use intake::store::Store;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MAILS: usize = 150;
const BATCH: usize = 50;

use crate::support::ports::free_port;

fn mode_toml(mode: &str) -> String {
    let mut t = format!("after_import = \"{mode}\"\nfetch_batch = {BATCH}\nidle = true\n");
    if mode == "move" {
        t.push_str("move_to = \"Archive\"\n");
    }
    t
}

/// The command that acknowledges in `mode` (for delete: the EXPUNGE, after
/// the \Deleted flag was set).
fn ack_command(mode: &str) -> &'static str {
    match mode {
        "seen" => " UID STORE ",
        "move" => " UID MOVE ",
        _ => " UID EXPUNGE ",
    }
}

fn spawn(cfg: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_intake"))
        .arg("run")
        .arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start intake")
}

async fn stored(store: &Store) -> (i64, i64) {
    (
        count(store, "SELECT COUNT(*) AS n FROM comments").await,
        count(
            store,
            "SELECT COUNT(DISTINCT message_id) AS n FROM comments",
        )
        .await,
    )
}

async fn owed_rows(store: &Store) -> (i64, i64) {
    (
        count(store, "SELECT COUNT(*) AS n FROM source_acks_owed").await,
        count(
            store,
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM source_acks_owed",
        )
        .await,
    )
}

/// The folder is as `mode` promises for `n` imported messages.
fn as_promised(dc: &Dovecot, mode: &str, n: usize) -> bool {
    match mode {
        "seen" => dc.flagged("support", "INBOX", 'S') == n,
        "move" => dc.count("support", "INBOX") == 0 && dc.count("support", "Archive") == n,
        _ => dc.count("support", "INBOX") == 0,
    }
}

async fn get(url: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    r.text().await.ok()
}

/// `/readyz` shows nothing owed and no error, and `/metrics` the owed gauge at 0.
async fn nothing_owed_over_http(http: u16) -> bool {
    let Some(body) = get(&format!("http://127.0.0.1:{http}/readyz")).await else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return false;
    };
    let mb = &v["mailboxes"][0];
    let Some(m) = get(&format!("http://127.0.0.1:{http}/metrics")).await else {
        return false;
    };
    let gauge = m
        .lines()
        .find(|l| l.starts_with("intake_mailbox_acks_owed{"))
        .unwrap_or("");
    mb["acks_owed"] == 0 && mb["last_error"].is_null() && gauge.ends_with(" 0")
}

async fn killed_right_after_a_commit(db: Db, mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("intake.log");
    let dc = Dovecot::start(&[("support", "supportpw")]);
    dc.ensure_folder("support", "Archive");
    dc.deliver("support", "INBOX", &numbered(0, MAILS));
    let proxy = CommandProxy::start(dc.port).await;
    let (url, _keep) = fresh_url(db).await;
    let store = Store::open(&url, 2).await.unwrap();
    let http = free_port();
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n[logging]\nlevel = \"info\"\n{}",
        mailbox_toml("support", proxy.port, "support", "supportpw", &mode_toml(mode))
    );
    let cfg = dir.path().join("intake.toml");
    std::fs::write(&cfg, text).unwrap();
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();

    let mut child = spawn(&cfg, &log);
    proxy.on(ack_command(mode), Act::Kill(child.id()), 1);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the daemon never acknowledged\n{}", logs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status}\n{}", logs());
    // The first batch is committed, its acknowledgement owed, not done.
    assert_eq!(stored(&store).await, (BATCH as i64, BATCH as i64));
    assert_eq!(owed_rows(&store).await, (1, BATCH as i64), "{}", logs());
    assert_eq!(dc.count("support", "INBOX"), MAILS);
    assert_eq!(dc.flagged("support", "INBOX", 'S'), 0);

    let mut child = spawn(&cfg, &log);
    let done = eventually(120, || async {
        stored(&store).await.0 == MAILS as i64 && as_promised(&dc, mode, MAILS)
    })
    .await;
    let http_ok = done && eventually(30, || nothing_owed_over_http(http)).await;
    // Done on the server; forgotten in the database at the end of the drain.
    eventually(30, || async { owed_rows(&store).await == (0, 0) }).await;
    let rows = owed_rows(&store).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        done,
        "{mode}: {:?} stored; INBOX {} ({} \\Seen), Archive {}\n{}",
        stored(&store).await,
        dc.count("support", "INBOX"),
        dc.flagged("support", "INBOX", 'S'),
        dc.count("support", "Archive"),
        logs()
    );
    assert!(
        http_ok,
        "/readyz or /metrics still show owed acknowledgements"
    );
    assert_eq!(rows, (0, 0), "owed rows left in the database");
    assert_eq!(stored(&store).await, (MAILS as i64, MAILS as i64));
    assert_eq!(proxy.hits(), 1);
}

async fn killed_before_flagging_seen(db: Db) {
    killed_right_after_a_commit(db, "seen").await
}

async fn killed_before_moving(db: Db) {
    killed_right_after_a_commit(db, "move").await
}

async fn killed_before_expunging(db: Db) {
    killed_right_after_a_commit(db, "delete").await
}

/// The daemon in-process on `proxy`, with `mode`.
async fn daemon(tdb: &TestDb, proxy: &CommandProxy, mode: &str, extra: &str) -> Daemon {
    let mb = mailbox_toml(
        "support",
        proxy.port,
        "support",
        "supportpw",
        &format!("{}{extra}", mode_toml(mode)),
    );
    let cfg = config(&tdb.url, &format!("[http]\nlisten = \"127.0.0.1:0\"\n{mb}"));
    Daemon::start(cfg).await.unwrap()
}

fn status(d: &Daemon) -> FolderStatus {
    d.registry.snapshot().remove(0)
}

async fn dropped_connection_is_acknowledged_after_reconnecting(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    dc.ensure_folder("support", "Archive");
    dc.deliver("support", "INBOX", &numbered(0, MAILS));
    let proxy = CommandProxy::start(dc.port).await;
    proxy.on(ack_command("move"), Act::Cut, 1);
    let tdb = TestDb::new(db).await;
    let d = daemon(&tdb, &proxy, "move", "").await;
    let done = eventually(90, || async {
        stored(&tdb.store).await.0 == MAILS as i64 && as_promised(&dc, "move", MAILS)
    })
    .await;
    assert!(
        done,
        "{:?} stored, INBOX {}, Archive {}; {:?}",
        stored(&tdb.store).await,
        dc.count("support", "INBOX"),
        dc.count("support", "Archive"),
        status(&d)
    );
    assert_eq!(proxy.hits(), 1, "the connection was cut once");
    let recovered = || async {
        let st = status(&d);
        st.acks_owed == 0 && st.last_error.is_none()
    };
    assert!(eventually(30, recovered).await, "{:?}", status(&d));
    assert!(status(&d).reconnects >= 1, "{:?}", status(&d));
    assert!(
        eventually(30, || async { owed_rows(&tdb.store).await == (0, 0) }).await,
        "{:?}",
        owed_rows(&tdb.store).await
    );
    assert_eq!(stored(&tdb.store).await, (MAILS as i64, MAILS as i64));
    d.shutdown().await;
}

async fn refused_acknowledgement_is_retried_later(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    dc.deliver("support", "INBOX", &numbered(0, 30));
    let proxy = CommandProxy::start(dc.port).await;
    proxy.on(ack_command("delete"), Act::Refuse, 1);
    let tdb = TestDb::new(db).await;
    // timeout 2 s: a refused acknowledgement is retried after 6 s.
    let d = daemon(&tdb, &proxy, "delete", "timeout = 2\n").await;
    let refused = || async { proxy.hits() == 1 && status(&d).ack_failures == 1 };
    assert!(eventually(30, refused).await, "{:?}", status(&d));
    let st = status(&d);
    assert_eq!(stored(&tdb.store).await, (30, 30));
    assert_eq!(st.acks_owed, 30, "{st:?}");
    let err = st.last_error.unwrap_or_default();
    assert!(err.contains("refused"), "{err}");
    assert_eq!(dc.count("support", "INBOX"), 30, "nothing expunged yet");
    let t = Instant::now();
    let recovered = || async {
        let st = status(&d);
        dc.count("support", "INBOX") == 0 && st.acks_owed == 0 && st.last_error.is_none()
    };
    assert!(eventually(40, recovered).await, "{:?}", status(&d));
    eprintln!("refused acknowledgement retried after {:?}", t.elapsed());
    let st = status(&d);
    assert_eq!((st.reconnects, st.ack_failures), (0, 1), "{st:?}");
    assert!(
        eventually(30, || async { owed_rows(&tdb.store).await == (0, 0) }).await,
        "{:?}",
        owed_rows(&tdb.store).await
    );
    assert_eq!(stored(&tdb.store).await, (30, 30));
    d.shutdown().await;
}

both_backends!(
    killed_before_flagging_seen,
    killed_before_moving,
    killed_before_expunging,
    dropped_connection_is_acknowledged_after_reconnecting,
    refused_acknowledgement_is_retried_later,
);
