//! `intake status`: the status page's content in the terminal. The report
//! is [`crate::status::Report`], shown by [`crate::status::text`]: what only
//! the running daemon knows (mailbox folders, webhook requests, the last
//! hour's throughput) is read from its `GET /readyz`, the queues and
//! quarantine from the store.
//!
//! The daemon is asked with an HTTP/1.0 GET on its `[http] listen` address
//! (loopback when it listens on every interface): a hand-written request of
//! a dozen lines rather than an HTTP client crate in the daemon's binary.

use crate::config::Config;
use crate::status::{text, DaemonView, Report};
use crate::store::{Store, StoreError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most bytes read from `/readyz`.
const MAX_BODY: u64 = 4 << 20;

/// The status report as lines of text.
pub async fn report(cfg: &Config, store: &Store) -> Result<Vec<String>, StoreError> {
    let addr = daemon_addr(&cfg.http.listen);
    let daemon = readyz(&addr).await;
    let r = Report::gather(store, daemon).await?;
    Ok(text::lines(&r, &addr))
}

/// Where to reach the daemon: its listen address, loopback for a wildcard.
fn daemon_addr(listen: &str) -> String {
    listen
        .replacen("0.0.0.0:", "127.0.0.1:", 1)
        .replacen("[::]:", "[::1]:", 1)
}

/// `GET /readyz` (a 503 still carries the report).
async fn readyz(addr: &str) -> Result<DaemonView, String> {
    let body = get(addr, "/readyz").await?;
    serde_json::from_slice(&body).map_err(|e| format!("/readyz is not a status report: {e}"))
}

/// The body of `GET path`, whatever the status.
async fn get(addr: &str, path: &str) -> Result<Vec<u8>, String> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.take(MAX_BODY)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        let at = memchr::memmem::find(&buf, b"\r\n\r\n").ok_or("no HTTP response")?;
        Ok(buf.split_off(at + 4))
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_asked_on_loopback() {
        assert_eq!(daemon_addr("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(daemon_addr("[::]:8080"), "[::1]:8080");
        assert_eq!(daemon_addr("127.0.0.1:9"), "127.0.0.1:9");
    }
}
