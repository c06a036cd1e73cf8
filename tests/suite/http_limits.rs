//! HTTP limits of `intake run` (the built binary, started with a descriptor
//! limit of 256 like a small production box) against slow clients on
//! loopback: 600 connections trickling their headers against
//! `max_connections = 64` leave `/healthz`, `/readyz` and a gateway prompt
//! and the process far from its descriptor limit; slow heads, slow bodies
//! and idle keep-alive connections are cut at their timeouts.

use crate::common::{fresh_url, Db};
use crate::http_common::{sign, SECRET};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: u64 = 2;
const BODY_TIMEOUT: u64 = 3;
const KEEPALIVE: u64 = 5;
const NOFILE: u64 = 256;

/// `intake run` in its own process, killed on drop.
struct Daemon {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
    _db_dir: Option<tempfile::TempDir>,
}

impl Daemon {
    async fn start(db: Db) -> Daemon {
        let (url, db_dir) = fresh_url(db).await;
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let conf = dir.path().join("intake.toml");
        std::fs::write(
            &conf,
            format!(
                "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n\
                 [logging]\nlevel = \"warn\"\n\
                 [http]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = {MAX_CONNECTIONS}\n\
                 header_read_timeout = {HEADER_TIMEOUT}\nbody_read_timeout = {BODY_TIMEOUT}\nkeepalive_timeout = {KEEPALIVE}\n\
                 [[webhook_sources]]\nname = \"voice\"\nsecret = \"{SECRET}\"\nrate_per_second = 10000\nburst = 10000\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("intake.log")).unwrap();
        let child = Command::new("prlimit")
            .arg(format!("--nofile={NOFILE}:{NOFILE}"))
            .arg(env!("CARGO_BIN_EXE_intake"))
            .args(["run", "--config"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prlimit (util-linux) and the intake binary");
        let d = Daemon {
            child,
            addr: format!("127.0.0.1:{port}"),
            dir,
            _db_dir: db_dir,
        };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if d.get("/healthz", Duration::from_secs(1)).await.is_some() {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("intake run did not answer /healthz in 30 s:\n{}", d.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("intake.log")).unwrap_or_default()
    }

    /// Descriptors the daemon holds open.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// `GET path` on a fresh connection: the status, or `None` after `limit`.
    async fn get(&self, path: &str, limit: Duration) -> Option<u16> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let answer = self.exchange(req.as_bytes(), limit).await?;
        status_of(&answer)
    }

    /// Send `raw` on a fresh connection and read the whole answer.
    async fn exchange(&self, raw: &[u8], limit: Duration) -> Option<String> {
        tokio::time::timeout(limit, async {
            let mut c = TcpStream::connect(&self.addr).await.ok()?;
            c.write_all(raw).await.ok()?;
            let mut out = Vec::new();
            c.read_to_end(&mut out).await.ok()?;
            Some(String::from_utf8_lossy(&out).to_string())
        })
        .await
        .ok()
        .flatten()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_of(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Our own descriptor limit must hold the slow clients: raise the soft
/// limit to the hard one when it is low (as CI's default 1024 may be).
fn room_for_clients() {
    let _ = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg("--nofile=8192:")
        .stderr(Stdio::null())
        .status();
}

/// A client that sends a request head one header line every 500 ms and
/// records when the server closed its connection.
async fn trickle(addr: String, closed: Arc<Mutex<Vec<Duration>>>, start: Instant) -> bool {
    let Ok(mut c) = TcpStream::connect(&addr).await else {
        return false;
    };
    if c.write_all(b"POST /v1/contacts/voice HTTP/1.1\r\nHost: t\r\n")
        .await
        .is_err()
    {
        closed.lock().unwrap().push(start.elapsed());
        return true;
    }
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            r = c.read(&mut buf) => {
                if matches!(r, Ok(0) | Err(_)) {
                    closed.lock().unwrap().push(start.elapsed());
                    return true;
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if c.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    closed.lock().unwrap().push(start.elapsed());
                    return true;
                }
            }
        }
    }
}

fn contact_request() -> String {
    let body = r#"{"contact": {"phone": "+14155550100"}, "message": "called during a flood"}"#;
    let ts = crate::http_common::now();
    format!(
        "POST /v1/contacts/voice HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n\
         X-Intake-Timestamp: {ts}\r\nX-Intake-Signature: v1={}\r\nContent-Length: {}\r\n\r\n{body}",
        sign(SECRET, ts, body.as_bytes()),
        body.len()
    )
}

async fn slow_clients_cannot_lock_out_health_or_gateways(db: Db) {
    room_for_clients();
    let d = Daemon::start(db).await;
    let closed = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let clients: Vec<_> = (0..600)
        .map(|_| tokio::spawn(trickle(d.addr.clone(), closed.clone(), start)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Health and readiness answer promptly, again and again.
    for path in ["/healthz", "/readyz", "/healthz", "/readyz", "/healthz"] {
        let t = Instant::now();
        let status = d.get(path, Duration::from_secs(10)).await;
        assert_eq!(status, Some(200), "{path} during the flood:\n{}", d.log());
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{path} took {:?} during the flood",
            t.elapsed()
        );
        let fds = d.fds();
        assert!(
            fds < MAX_CONNECTIONS + 48,
            "the daemon holds {fds} descriptors with max_connections = {MAX_CONNECTIONS}"
        );
    }
    // A gateway's valid contact is stored promptly.
    let t = Instant::now();
    let answer = d
        .exchange(contact_request().as_bytes(), Duration::from_secs(15))
        .await
        .unwrap_or_default();
    assert_eq!(status_of(&answer), Some(201), "{answer}\n{}", d.log());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    // Every slow client is dropped: evicted for room, or at its header timeout.
    let deadline = Duration::from_secs(HEADER_TIMEOUT + 10);
    let mut connected = 0;
    for c in clients {
        let ok = tokio::time::timeout(
            deadline.saturating_sub(start.elapsed()) + Duration::from_secs(1),
            c,
        )
        .await
        .expect("a slow client was never dropped")
        .unwrap();
        connected += ok as usize;
    }
    assert!(connected >= 500, "only {connected} slow clients connected");
    let closed = closed.lock().unwrap().clone();
    assert_eq!(closed.len(), connected);
    assert!(
        closed.iter().all(|t| *t <= deadline),
        "{:?}",
        closed.iter().max()
    );
    let log = d.log();
    assert!(!log.contains("Too many open files"), "{log}");
}

async fn slow_heads_bodies_and_idle_connections_are_cut_at_their_timeouts(db: Db) {
    let d = Daemon::start(db).await;
    // A head trickled for longer than header_read_timeout is cut at it.
    let closed = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let heads: Vec<_> = (0..5)
        .map(|_| tokio::spawn(trickle(d.addr.clone(), closed.clone(), start)))
        .collect();
    // An idle keep-alive connection outlives the header timeout and is
    // closed at keepalive_timeout.
    let mut idle = TcpStream::connect(&d.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), Some(200));
    let idle_since = Instant::now();
    // A body sent more slowly than body_read_timeout allows: 408.
    let slow_body = tokio::spawn({
        let addr = d.addr.clone();
        async move {
            let mut c = TcpStream::connect(&addr).await.unwrap();
            let head = "POST /v1/contacts/voice HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                        X-Intake-Timestamp: 1\r\nX-Intake-Signature: v1=00\r\nContent-Length: 1000\r\n\r\n";
            c.write_all(head.as_bytes()).await.unwrap();
            let t = Instant::now();
            let mut out = Vec::new();
            loop {
                tokio::select! {
                    r = c.read_buf(&mut out) => if matches!(r, Ok(0) | Err(_)) { break },
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {
                        let _ = c.write_all(b"          ").await;
                    }
                }
                if t.elapsed() > Duration::from_secs(30) {
                    break;
                }
            }
            (t.elapsed(), String::from_utf8_lossy(&out).to_string())
        }
    });
    for h in heads {
        assert!(tokio::time::timeout(Duration::from_secs(30), h)
            .await
            .expect("a slow head was never cut")
            .unwrap());
    }
    let closed = closed.lock().unwrap().clone();
    let (lo, hi) = (
        Duration::from_millis(HEADER_TIMEOUT * 1000 - 300),
        Duration::from_secs(HEADER_TIMEOUT + 4),
    );
    assert!(
        closed.iter().all(|t| *t >= lo && *t <= hi),
        "slow heads closed at {closed:?}, expected within {lo:?}..{hi:?}"
    );
    let (took, answer) = tokio::time::timeout(Duration::from_secs(40), slow_body)
        .await
        .expect("the slow body was never answered")
        .unwrap();
    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(answer.contains("body_read_timeout"), "{answer}");
    assert!(
        took >= Duration::from_millis(BODY_TIMEOUT * 1000 - 300)
            && took <= Duration::from_secs(BODY_TIMEOUT + 4),
        "408 after {took:?}"
    );
    let closed_idle = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buf)).await;
    assert!(
        matches!(closed_idle, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection was not closed"
    );
    let idle_for = idle_since.elapsed();
    assert!(
        idle_for >= Duration::from_millis(KEEPALIVE * 1000 - 300)
            && idle_for <= Duration::from_secs(KEEPALIVE + 4),
        "idle keep-alive connection closed after {idle_for:?}, expected about {KEEPALIVE} s"
    );
}

crate::both_backends!(slow_clients_cannot_lock_out_health_or_gateways);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_bodies_and_idle_connections_are_cut_at_their_timeouts_sqlite() {
    slow_heads_bodies_and_idle_connections_are_cut_at_their_timeouts(Db::Sqlite).await
}
