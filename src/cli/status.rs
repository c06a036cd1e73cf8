//! `intake status`: what ops look at first, in the terminal. The same
//! sources as the daemon's own surfaces: every mailbox folder as the running
//! daemon's `GET /readyz` reports it (its registry lives in that process),
//! and the queues as `GET /metrics` counts them (`Store::queue_depths`), with
//! the latest quarantine entries.
//!
//! Webhook sources are shown with their requests by result, as the daemon's
//! `intake_webhook_requests_total` counts them (`GET /metrics`).
//!
//! The daemon is asked with HTTP/1.0 GETs on its `[http] listen` address
//! (loopback when it listens on every interface): a hand-written request of
//! a dozen lines rather than an HTTP client crate in the daemon's binary.

use crate::config::Config;
use crate::store::{now_ms, Store, StoreError, OUTBOX_STATUSES};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most bytes read from `/readyz`.
const MAX_BODY: u64 = 4 << 20;

/// The status report as lines of text.
pub async fn report(cfg: &Config, store: &Store) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let addr = daemon_addr(&cfg.http.listen);
    match readyz(&addr).await {
        Ok(v) => {
            out.push(format!(
                "daemon at {addr}: {}; database {}",
                if v["ready"] == true { "ready" } else { "NOT READY" },
                match v["database_error"].as_str() {
                    Some(e) => format!("failing: {e}"),
                    None if v["database"] == true => "ok".into(),
                    None => "not answering".into(),
                }
            ));
            let folders = v["mailboxes"].as_array().cloned().unwrap_or_default();
            if folders.is_empty() {
                out.push("mailboxes: none configured".into());
            }
            for f in &folders {
                out.push(folder_line(f, now_ms()));
            }
            if let Ok(text) = get(&addr, "/metrics").await {
                out.extend(webhook_lines(&String::from_utf8_lossy(&text)));
            }
        }
        Err(e) => out.push(format!(
            "daemon at {addr}: not reachable ({e}); mailbox states are known only to a running daemon"
        )),
    }
    let q = store.queue_depths(now_ms()).await?;
    let outbox: Vec<String> = OUTBOX_STATUSES
        .iter()
        .zip(q.outbox)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let mut line = format!("outbox: {}", outbox.join(", "));
    if q.oldest_due_ms > 0 {
        line.push_str(&format!(
            "; oldest due notification waiting {}",
            ago(q.oldest_due_ms)
        ));
    }
    out.push(line);
    let entries = store.quarantine_list().await?;
    let pending: Vec<_> = entries.iter().filter(|e| e.status == "pending").collect();
    out.push(format!("quarantine: {} awaiting replay", pending.len()));
    for e in pending.iter().take(10) {
        out.push(format!(
            "  #{} {} ago from {}{}: {}",
            e.id,
            ago(now_ms() - e.received_at),
            e.source,
            e.mailbox
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            e.reason
        ));
    }
    if pending.len() > 10 {
        out.push(format!(
            "  … and {} more: intake quarantine list",
            pending.len() - 10
        ));
    }
    Ok(out)
}

/// One folder in plain words.
fn folder_line(f: &Value, now: i64) -> String {
    let s = |k: &str| f[k].as_str().unwrap_or("?").to_string();
    let n = |k: &str| f[k].as_u64().unwrap_or(0);
    let mut line = format!("mailbox {} / {}: {}", s("mailbox"), s("folder"), s("state"));
    match f["last_success"].as_i64() {
        Some(t) => line.push_str(&format!(", last success {} ago", ago(now - t))),
        None => line.push_str(", never drained yet"),
    }
    line.push_str(&format!(
        ", backlog {}, imported {}",
        n("lag"),
        n("imported")
    ));
    if n("acks_owed") > 0 {
        line.push_str(&format!(", {} acknowledgements owed", n("acks_owed")));
    }
    if let Some(e) = f["last_error"].as_str() {
        line.push_str(&format!("; last error: {e}"));
    }
    line
}

/// A duration in ms, as a person says it.
fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Where to reach the daemon: its listen address, loopback for a wildcard.
fn daemon_addr(listen: &str) -> String {
    listen
        .replacen("0.0.0.0:", "127.0.0.1:", 1)
        .replacen("[::]:", "[::1]:", 1)
}

/// One line per webhook source: its requests by result, from the
/// Prometheus text of `intake_webhook_requests_total{source,result}`.
fn webhook_lines(metrics: &str) -> Vec<String> {
    let mut by_source: std::collections::BTreeMap<String, Vec<(String, u64)>> = Default::default();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("intake_webhook_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix("=\"")?.strip_suffix('"'))
                .map(str::to_string)
        };
        let (Some(source), Some(result)) = (label("source"), label("result")) else {
            continue;
        };
        let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        by_source.entry(source).or_default().push((result, n));
    }
    by_source
        .into_iter()
        .map(|(source, mut results)| {
            // Accepted first, then every result that happened.
            results.sort_by_key(|(r, _)| (r != "accepted", r.clone()));
            let parts: Vec<String> = results
                .iter()
                .filter(|(r, n)| *n > 0 || r == "accepted")
                .map(|(r, n)| format!("{n} {}", r.replace('_', " ")))
                .collect();
            format!("webhooks {source}: {}", parts.join(", "))
        })
        .collect()
}

/// `GET /readyz` (a 503 still carries the report).
async fn readyz(addr: &str) -> Result<Value, String> {
    let body = get(addr, "/readyz").await?;
    serde_json::from_slice(&body).map_err(|e| format!("/readyz is not JSON: {e}"))
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
    fn durations_and_folders_read_plainly() {
        assert_eq!(ago(59_000), "59 s");
        assert_eq!(ago(600_000), "10 min");
        assert_eq!(ago(3 * 86_400_000), "3 days");
        let f = serde_json::json!({"mailbox": "support", "folder": "INBOX", "state": "error",
            "last_success": null, "lag": 3, "imported": 0, "acks_owed": 0,
            "last_error": "authentication: login as support refused"});
        assert_eq!(
            folder_line(&f, 0),
            "mailbox support / INBOX: error, never drained yet, backlog 3, imported 0; last error: authentication: login as support refused"
        );
        assert_eq!(daemon_addr("0.0.0.0:8080"), "127.0.0.1:8080");
        let m = "# TYPE intake_webhook_requests_total counter\n\
                 intake_webhook_requests_total{result=\"accepted\",source=\"voice\"} 12\n\
                 intake_webhook_requests_total{source=\"voice\",result=\"rate_limited\"} 3\n\
                 intake_webhook_requests_total{result=\"invalid\",source=\"voice\"} 0\n\
                 intake_webhook_requests_total{result=\"unknown_source\",source=\"unknown\"} 1\n";
        assert_eq!(
            webhook_lines(m),
            [
                "webhooks unknown: 1 unknown source",
                "webhooks voice: 12 accepted, 3 rate limited"
            ]
        );
        assert_eq!(daemon_addr("127.0.0.1:9"), "127.0.0.1:9");
    }
}
