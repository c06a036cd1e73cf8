//! Storage faults are transient and recovered in place: a full disk (SQLite
//! on a small tmpfs, filled then freed) and lost connections (PostgreSQL
//! backends terminated at random moments) while the real `intake run`
//! imports from Dovecot and takes webhooks; and the regression of a failed
//! COMMIT poisoning the connection pool.
//!
//! Shared here: the tmpfs, the daemon process and a webhook client that
//! retries as a gateway does (on 503 after Retry-After).

mod daemon_pg;
mod daemon_sqlite;
mod regression;

use crate::http_common::{sign, SECRET};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tmpfs of a few megabytes mounted on a temporary directory (we run as
/// root, locally and in CI); unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size_mb: u32) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mb}m,mode=0777"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status();
        match st {
            Ok(s) if s.success() => {}
            other => panic!(
                "cannot mount a tmpfs on {} ({other:?}): the storage-fault tests need root (mount -t tmpfs)",
                dir.path().display()
            ),
        }
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Fill the file system to the last byte.
    pub fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.filler()).unwrap();
        for size in [1 << 20, 4096, 1] {
            let chunk = vec![0u8; size];
            while f.write_all(&chunk).is_ok() {}
        }
        let _ = f.sync_all();
    }

    /// Give the space back.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `intake run` as ops start it, with one webhook source `voice` and the
/// HTTP server on a free loopback port. Killed on drop.
pub struct Daemon {
    child: Child,
    pub base: String,
    pub log: PathBuf,
    pub http: reqwest::Client,
}

use crate::support::ports::free_port;

impl Daemon {
    pub async fn start(dir: &Path, url: &str, mailboxes: &str) -> Daemon {
        let port = free_port();
        let text = format!(
            "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n[logging]\nlevel = \"warn\"\n\
             [[webhook_sources]]\nname = \"voice\"\nsecret = \"{SECRET}\"\nrate_per_second = 10000\nburst = 10000\n\
             default_channel = \"voice\"\n{mailboxes}"
        );
        let cfg = dir.join("intake.toml");
        std::fs::write(&cfg, text).unwrap();
        let log = dir.join("intake.log");
        let err = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_intake"))
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start intake");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut d = Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            http,
        };
        let t = Instant::now();
        loop {
            assert!(d.alive(), "intake exited at start:\n{}", d.logs());
            let r = d.http.get(format!("{}/healthz", d.base)).send().await;
            if r.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no /healthz within 30 s:\n{}",
                d.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        d
    }

    /// SIGKILL, as a crash: nothing is finished, released or logged out.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Still the first process (never exited, never restarted)?
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Status and body of `GET /readyz`.
    pub async fn readyz(&self) -> (u16, Value) {
        match self.http.get(format!("{}/readyz", self.base)).send().await {
            Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    pub async fn metrics(&self) -> String {
        let r = self.http.get(format!("{}/metrics", self.base)).send().await;
        match r {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// A contact post of `body` to source `voice`, signed now, with
    /// Idempotency-Key `key`.
    pub fn signed(&self, key: &str, body: &str) -> reqwest::RequestBuilder {
        self.contact("voice", body, SECRET, key)
    }

    /// A contact post to `source` signed now with `secret`, with
    /// Idempotency-Key `key`.
    pub fn contact(
        &self,
        source: &str,
        body: &str,
        secret: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        let ts = crate::http_common::now();
        self.http
            .post(format!("{}/v1/contacts/{source}", self.base))
            .header("content-type", "application/json")
            .header("x-intake-timestamp", ts.to_string())
            .header(
                "x-intake-signature",
                format!("v1={}", sign(secret, ts, body.as_bytes())),
            )
            .header("idempotency-key", key)
            .body(body.to_string())
    }

    /// Post contact `i` with Idempotency-Key `key` until it is stored,
    /// retrying after Retry-After on 503. Returns every status seen; a
    /// status other than 200/201/503, or a 503 without Retry-After, ends
    /// the attempts (the caller asserts on them). Gives up after `limit`.
    pub async fn post_until_stored(&self, key: &str, limit: Duration) -> Vec<Answer> {
        let body = json!({"contact": {"phone": phone(key)}, "subject": "Call", "message": format!("call {key}")})
            .to_string();
        let t = Instant::now();
        let mut seen = Vec::new();
        while t.elapsed() < limit {
            let r = self.contact("voice", &body, SECRET, key).send().await;
            let Ok(r) = r else {
                seen.push(Answer {
                    status: 0,
                    retry_after: None,
                    detail: "no answer".into(),
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let detail = r.text().await.unwrap_or_default();
            seen.push(Answer {
                status,
                retry_after,
                detail,
            });
            match (status, retry_after) {
                (200 | 201, _) => break,
                (503, Some(s)) => tokio::time::sleep(Duration::from_secs(s.min(2))).await,
                _ => break,
            }
        }
        seen
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One answer to a webhook request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub detail: String,
}

/// A distinct valid phone number per key.
fn phone(key: &str) -> String {
    let n = u64::from_str_radix(&hex::encode(Sha256::digest(key.as_bytes()))[..8], 16).unwrap();
    format!("+1415555{:04}", n % 10_000)
}

/// The Message-ID a contact posted with `key` is stored under.
pub fn webhook_message_id(key: &str) -> String {
    format!(
        "wh.voice.{}@desk.test",
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

/// Every answer must be a success or a 503 with Retry-After, and the last
/// one a success.
pub fn assert_answers(key: &str, answers: &[Answer]) {
    for a in answers {
        assert!(
            matches!(a.status, 200 | 201 | 0) || (a.status == 503 && a.retry_after.is_some()),
            "webhook {key}: answered {} (Retry-After {:?}) {}: storage faults must answer 503 with Retry-After",
            a.status,
            a.retry_after,
            a.detail
        );
    }
    let last = answers.last().map(|a| a.status);
    assert!(
        matches!(last, Some(200 | 201)),
        "webhook {key} never stored: {answers:?}"
    );
}

/// Message-IDs stored more than once, and the expected ones missing.
pub async fn exactly_once(
    store: &intake::store::Store,
    expected: &[String],
) -> (Vec<String>, Vec<String>) {
    use sqlx::Row;
    let rows = sqlx::query("SELECT message_id, COUNT(*) AS n FROM comments GROUP BY message_id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let mut twice = Vec::new();
    let mut have = std::collections::HashSet::new();
    for r in &rows {
        let mid: String = r.get("message_id");
        if r.get::<i64, _>("n") > 1 {
            twice.push(mid.clone());
        }
        have.insert(mid);
    }
    let missing = expected
        .iter()
        .filter(|m| !have.contains(*m))
        .cloned()
        .collect();
    (twice, missing)
}
