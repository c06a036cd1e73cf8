//! The report as lines for the terminal (`intake status`).

use super::{ago, state_words, DaemonView, Report};
use crate::sources::imap::FolderStatus;

/// Most quarantine entries listed in the terminal.
const ENTRIES_SHOWN: usize = 10;

/// The report as lines of text; `addr` is where the daemon was asked.
pub fn lines(r: &Report, addr: &str) -> Vec<String> {
    let mut out = Vec::new();
    match &r.daemon {
        Ok(v) => daemon_lines(v, addr, r.at, &mut out),
        Err(e) => out.push(format!(
            "daemon at {addr}: not reachable ({e}); mailbox states are known only to a running daemon"
        )),
    }
    let outbox: Vec<String> = r.outbox().iter().map(|(s, n)| format!("{n} {s}")).collect();
    let mut line = format!("outbox: {}", outbox.join(", "));
    if r.queues.oldest_due_ms > 0 {
        line.push_str(&format!(
            "; oldest due notification waiting {}",
            ago(r.queues.oldest_due_ms)
        ));
    }
    out.push(line);
    out.push(format!(
        "quarantine: {} awaiting replay",
        r.queues.quarantine
    ));
    for e in r.quarantine.iter().take(ENTRIES_SHOWN) {
        out.push(format!(
            "  #{} {} ago from {}{}: {}",
            e.id,
            ago(r.at - e.received_at),
            e.source,
            e.mailbox
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            e.reason
        ));
    }
    let listed = r.quarantine.len().min(ENTRIES_SHOWN) as i64;
    if r.queues.quarantine > listed {
        out.push(format!(
            "  … and {} more: intake quarantine list",
            r.queues.quarantine - listed
        ));
    }
    out.push(format!("review: {} awaiting a decision", r.queues.review));
    for e in r.review.iter().take(ENTRIES_SHOWN) {
        out.push(format!(
            "  #{} {} ago, claims {}: {}",
            e.id,
            ago(r.at - e.received_at),
            e.sender,
            e.reason
        ));
    }
    let listed = r.review.len().min(ENTRIES_SHOWN) as i64;
    if r.queues.review > listed {
        out.push(format!(
            "  … and {} more: intake review list",
            r.queues.review - listed
        ));
    }
    out
}

fn daemon_lines(v: &DaemonView, addr: &str, now: i64, out: &mut Vec<String>) {
    out.push(format!(
        "daemon at {addr}: {}; database {}",
        if v.ready { "ready" } else { "NOT READY" },
        match &v.database_error {
            Some(e) => format!("failing: {e}"),
            None if v.database => "ok".into(),
            None => "not answering".into(),
        }
    ));
    if v.mailboxes.is_empty() {
        out.push("mailboxes: none configured".into());
    }
    for f in &v.mailboxes {
        out.push(folder_line(f, now));
    }
    for w in &v.webhooks {
        let mut parts = vec![format!("{} accepted", w.accepted())];
        parts.extend(w.refused().into_iter().map(|(r, n)| format!("{n} {r}")));
        out.push(format!("webhooks {}: {}", w.source, parts.join(", ")));
    }
    let h = v.throughput.sum();
    out.push(format!(
        "last hour: {} stored, {} duplicates, {} quarantined",
        h.stored, h.duplicate, h.quarantined
    ));
}

/// One folder in plain words.
fn folder_line(f: &FolderStatus, now: i64) -> String {
    let mut line = format!(
        "mailbox {} / {}: {} ({})",
        f.mailbox,
        f.folder,
        state_words(f.state),
        f.kind
    );
    match f.last_success {
        Some(t) => line.push_str(&format!(", last success {} ago", ago(now - t))),
        None => line.push_str(", never drained yet"),
    }
    line.push_str(&format!(", backlog {}, imported {}", f.lag, f.imported));
    if f.acks_owed > 0 {
        line.push_str(&format!(", {} acknowledgements owed", f.acks_owed));
    }
    if let Some(e) = &f.last_error {
        line.push_str(&format!("; last error: {e}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::WebhookCounts;

    #[test]
    fn folders_and_webhooks_read_plainly() {
        assert_eq!(ago(59_000), "59 s");
        assert_eq!(ago(600_000), "10 min");
        assert_eq!(ago(3 * 86_400_000), "3 days");
        let f: FolderStatus = serde_json::from_value(serde_json::json!({"mailbox": "support",
            "folder": "INBOX", "state": "error", "last_success": null, "lag": 3, "imported": 0,
            "reconnects": 2, "ack_failures": 0, "acks_owed": 0,
            "last_error": "authentication: login as support refused"}))
        .unwrap();
        assert_eq!(
            folder_line(&f, 0),
            "mailbox support / INBOX: failing (imap), never drained yet, backlog 3, imported 0; last error: authentication: login as support refused"
        );
        let w = WebhookCounts {
            source: "voice".into(),
            results: [
                ("accepted", 12),
                ("rate_limited", 3),
                ("invalid", 0),
                ("unauthorized", 5),
            ]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        };
        assert_eq!(
            w.refused(),
            [
                ("unauthorized".to_string(), 5),
                ("rate limited".to_string(), 3)
            ]
        );
    }
}
