//! `[retention]`: how long data is kept. Unset keys keep it forever.

use crate::store::RetentionPolicy;
use serde::Deserialize;

/// `[retention]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Drop a comment's raw mail this long after it arrived; the parsed
    /// comment and its attachments stay.
    pub raw_after_days: Option<u64>,
    /// Remove quarantine entries this long after they arrived.
    pub quarantine_days: Option<u64>,
    /// Erase the content of tickets closed this long ago.
    pub closed_tickets_erase_after_days: Option<u64>,
    /// Forget finished webhook requests (their idempotency keys) after this.
    pub webhook_requests_hours: Option<u64>,
    /// Remove sent notifications after this.
    pub outbox_sent_days: Option<u64>,
    /// How often the daemon applies the policy.
    pub interval_minutes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            raw_after_days: None,
            quarantine_days: None,
            closed_tickets_erase_after_days: None,
            webhook_requests_hours: None,
            outbox_sent_days: None,
            interval_minutes: 60,
        }
    }
}

const DAY_MS: i64 = 86_400_000;

impl RetentionConfig {
    pub fn policy(&self) -> RetentionPolicy {
        let days = |d: Option<u64>| d.map(|d| d as i64 * DAY_MS);
        RetentionPolicy {
            raw_after_ms: days(self.raw_after_days),
            quarantine_ms: days(self.quarantine_days),
            closed_tickets_ms: days(self.closed_tickets_erase_after_days),
            webhook_requests_ms: self.webhook_requests_hours.map(|h| h as i64 * 3_600_000),
            outbox_sent_ms: days(self.outbox_sent_days),
        }
    }

    /// Whether any key is set.
    pub fn is_set(&self) -> bool {
        [
            self.raw_after_days,
            self.quarantine_days,
            self.closed_tickets_erase_after_days,
            self.webhook_requests_hours,
            self.outbox_sent_days,
        ]
        .iter()
        .any(Option::is_some)
    }

    /// Problems as `(key, message)`; `brake_window_secs` is the loop
    /// brakes' per-recipient window, which counts sent notifications.
    pub(super) fn problems(&self, brake_window_secs: u64) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (key, v) in [
            ("raw_after_days", self.raw_after_days),
            ("quarantine_days", self.quarantine_days),
            (
                "closed_tickets_erase_after_days",
                self.closed_tickets_erase_after_days,
            ),
            ("webhook_requests_hours", self.webhook_requests_hours),
            ("outbox_sent_days", self.outbox_sent_days),
        ] {
            if v == Some(0) {
                p.push((
                    key,
                    "must be at least 1 (leave it unset to keep forever)".to_string(),
                ));
            }
        }
        if let Some(d) = self.outbox_sent_days.filter(|d| *d > 0) {
            if d * 86_400 < brake_window_secs {
                p.push((
                    "outbox_sent_days",
                    format!(
                        "{d} day(s) is shorter than [notifications] per_recipient_window_secs \
                         ({brake_window_secs} s): the loop brakes count sent notifications"
                    ),
                ));
            }
        }
        if self.interval_minutes == 0 {
            p.push(("interval_minutes", "must be at least 1".into()));
        }
        p
    }
}
