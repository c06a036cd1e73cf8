//! Waiting for new mail between rounds: on the server's EventSource
//! (RFC 8620 §7.3) until a `state` event shows an Email state other than
//! the one committed, at most `poll_interval`; polling where the server
//! offers no EventSource or it fails.

use super::session::Jmap;
use crate::sources::poller::PollCtx;
use futures::future::BoxFuture;
use futures::StreamExt;
use std::time::Duration;

/// The wait between rounds.
pub fn wait(ctx: &PollCtx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        let poll = Duration::from_secs(ctx.cfg.poll_interval.max(1));
        let _ = tokio::time::timeout(poll, async {
            if listen(ctx).await.is_err() {
                // No push: the timeout above is the poll.
                std::future::pending::<()>().await
            }
        })
        .await;
    })
}

/// Returns when the server announces an Email state we have not committed.
async fn listen(ctx: &PollCtx) -> Result<(), ()> {
    let j = Jmap::open(&ctx.cfg).await.map_err(|_| ())?;
    let url = j.event_source_url.clone().ok_or(())?;
    let url = url
        .replace("{types}", "Email")
        .replace("{closeafter}", "no")
        .replace("{ping}", "30");
    let r = j.stream(&url).await.map_err(|_| ())?;
    let committed = ctx
        .pipeline
        .store
        .checkpoint(&ctx.cfg.name, &ctx.scope)
        .await
        .map_err(|_| ())?
        .unwrap_or_default();
    let mut body = r.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut event = String::new();
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk.map_err(|_| ())?);
        // An event line longer than this is not a JMAP StateChange.
        if buf.len() > 1 << 20 {
            return Err(());
        }
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                if event == "state" && announces_new(data, &j.account, &committed) {
                    return Ok(());
                }
            } else if line.is_empty() {
                event.clear();
            }
        }
    }
    Err(())
}

/// A StateChange whose Email state for `account` differs from `committed`.
fn announces_new(data: &str, account: &str, committed: &str) -> bool {
    let v: serde_json::Value = match serde_json::from_str(data.trim()) {
        Ok(v) => v,
        Err(_) => return false,
    };
    match v["changed"][account]["Email"].as_str() {
        Some(s) => s != committed,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_new_email_state_wakes() {
        let d = r#"{"@type":"StateChange","changed":{"a1":{"Email":"9","Mailbox":"3"}}}"#;
        assert!(super::announces_new(d, "a1", "8"));
        assert!(!super::announces_new(d, "a1", "9"));
        assert!(!super::announces_new(d, "other", "8"));
        assert!(!super::announces_new("not json", "a1", "8"));
    }
}
