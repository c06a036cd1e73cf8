//! Test support shared by the IMAP and daemon tests.
#![allow(dead_code)]

pub mod browser;
pub mod certs;
pub mod cyrus;
pub mod desk;
pub mod dovecot;
pub mod faults;
pub mod graph_stand_in;
pub mod graph_token;
pub mod imap_proxy;
pub mod jmap_front;
pub mod kinds;
pub mod pop3_proxy;
pub mod ports;
pub mod s3;
pub mod smtp;

use crate::common::{config, mail, Db, TestDb};
use dovecot::Dovecot;
use intake::config::Config;
use intake::pipeline::{Pipeline, Settings};
use intake::sources::imap::Registry;

/// A Dovecot with users `support` and `other`, a fresh database and a
/// configuration whose `support` mailbox points at it.
pub struct Env {
    pub dc: Dovecot,
    pub db: TestDb,
    pub cfg: Config,
    pub pipeline: Pipeline,
    pub registry: Registry,
}

/// The `[[mailboxes]]` entry for `user` on the test server.
pub fn mailbox_toml(name: &str, port: u16, user: &str, pass: &str, extra: &str) -> String {
    let mut t = format!(
        "[[mailboxes]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nusername = \"{user}\"\n\
         password = \"{pass}\"\n{extra}\n"
    );
    for (k, v) in [("poll_interval", "1"), ("timeout", "5")] {
        if !extra.contains(k) {
            t.push_str(&format!("{k} = {v}\n"));
        }
    }
    t
}

impl Env {
    /// `mbox_extra` goes into the mailbox entry, `top` before it (e.g. `[limits]`).
    pub async fn new(db: Db, mbox_extra: &str, top: &str) -> Env {
        let dc = Dovecot::start(&[("support", "supportpw"), ("other", "otherpw")]);
        let db = TestDb::new(db).await;
        let text = format!(
            "{top}\n{}",
            mailbox_toml("support", dc.port, "support", "supportpw", mbox_extra)
        );
        let cfg = config(&db.url, &text);
        let pipeline = Pipeline::new(db.store.clone(), Settings::from_config(&cfg));
        Env {
            dc,
            db,
            cfg,
            pipeline,
            registry: Registry::default(),
        }
    }

    /// `intake run --once`, in process.
    pub async fn drain(&self) -> bool {
        intake::daemon::drain_once(&self.cfg, &self.pipeline, &self.registry).await
    }

    pub async fn comments(&self) -> i64 {
        count(&self.db.store, "SELECT COUNT(*) AS n FROM comments").await
    }

    pub async fn quarantined(&self) -> i64 {
        count(&self.db.store, "SELECT COUNT(*) AS n FROM quarantine").await
    }

    /// Sorted Message-IDs of every stored comment.
    pub async fn message_ids(&self) -> Vec<String> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT message_id FROM comments ORDER BY message_id")
            .fetch_all(self.db.store.pool())
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<String, _>("message_id"))
            .collect()
    }

    /// Deliver `n` plain mails numbered from `from` into the support INBOX.
    pub fn deliver_n(&self, from: usize, n: usize) {
        self.dc.deliver("support", "INBOX", &numbered(from, n));
    }
}

pub async fn count(store: &intake::store::Store, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get::<i64, _>("n")
}

/// Mails `m{i}@cust.test` from distinct customers.
pub fn numbered(from: usize, n: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| {
            mail(
                &format!("Customer {i} <c{i}@cust{}.test>", i % 7),
                &format!("Question {i}"),
                &format!("m{i}@cust.test"),
                "",
                &format!("Body of message {i}"),
            )
            .into_bytes()
        })
        .collect()
}

/// Poll `f` until it is true or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(secs) {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

/// Another IMAP client changing flags on the messages `uids` of INBOX.
pub async fn other_client_store(port: u16, uids: &str, flags: &str) {
    use futures::TryStreamExt;
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
    let _: Vec<_> = s
        .uid_store(uids, flags)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    s.logout().await.unwrap();
}
