//! Prometheus metrics: one global recorder, rendered by `GET /metrics`.
//!
//! Counters whose rate ops alert on are registered at 0 when their source
//! starts (Prometheus' `increase()` ignores a series' first sample, so a
//! series born at 1 would hide its first event). Queue depths live in the
//! database and are counted when Prometheus scrapes ([`QueueGauges`]).

use crate::store::{now_ms, QueueDepths, Store, OUTBOX_STATUSES};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod throughput;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide recorder once and return its handle (`None` when
/// another recorder was installed first, e.g. by an embedding program).
/// Metrics recorded before it is installed are lost: the daemon calls this
/// before it opens the store or starts any source.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("intake_ingest_latency_seconds".into()),
                    &buckets,
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Count the outcome of stored messages per mailbox (or webhook source) and class.
pub fn record_outcomes(mailbox: &str, outcomes: &[crate::model::Outcome]) {
    use crate::model::OutcomeKind::{self, *};
    for o in outcomes {
        let class = o
            .class
            .and_then(|c| serde_json::to_value(c).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "none".into());
        let name = match o.outcome {
            Created | Appended => "intake_messages_stored_total",
            Duplicate => "intake_messages_duplicates_total",
            Quarantined => "intake_messages_quarantined_total",
            Review => "intake_messages_review_total",
            Kept => "intake_bounces_kept_total",
        };
        metrics::counter!(name, "mailbox" => mailbox.to_string(), "class" => class).increment(1);
    }
    let count = |k: OutcomeKind| outcomes.iter().filter(|o| o.outcome == k).count() as u64;
    throughput::record(
        now_ms(),
        count(Created) + count(Appended),
        count(Duplicate),
        count(Quarantined) + count(Review) + count(Kept),
    );
}

// ---------------------------------------------------------------- webhooks

const WEBHOOK_REQUESTS: &str = "intake_webhook_requests_total";

/// The `source` label of a request to an unconfigured source.
pub const UNKNOWN_SOURCE: &str = "unknown";

/// Every result a configured source's request can end with.
pub const WEBHOOK_RESULTS: [&str; 8] = [
    "accepted",
    "replayed",
    "unauthorized",
    "rate_limited",
    "too_large",
    "invalid",
    "conflict",
    "unavailable",
];

/// The result of a request to a configured source, from its answer: 2xx
/// accepted (or replayed, when answered from the idempotency record), 401
/// unauthorized, 429 rate_limited, 413 too_large, 409 conflict, any 5xx
/// unavailable (the gateway retries), any other refusal invalid (400, 408,
/// 415, 422: a malformed, slow or quarantined contact).
pub fn webhook_result(status: u16, replayed: bool) -> &'static str {
    match status {
        200..=299 if replayed => "replayed",
        200..=299 => "accepted",
        401 => "unauthorized",
        429 => "rate_limited",
        413 => "too_large",
        409 => "conflict",
        500..=599 => "unavailable",
        _ => "invalid",
    }
}

/// Count one `POST /v1/contacts/{source}`. `source` must be a configured
/// source's name or [`UNKNOWN_SOURCE`] (the label stays bounded).
pub fn webhook_request(source: &str, result: &'static str) {
    metrics::counter!(WEBHOOK_REQUESTS, "source" => source.to_string(), "result" => result)
        .increment(1);
    count_webhook(source, result, 1);
}

/// Webhook requests by source and result, kept in process beside the
/// Prometheus counter for the status report (the recorder cannot be read
/// back without rendering its whole text).
type WebhookTable = BTreeMap<String, BTreeMap<String, u64>>;

fn webhook_table() -> &'static Mutex<WebhookTable> {
    static T: OnceLock<Mutex<WebhookTable>> = OnceLock::new();
    T.get_or_init(Default::default)
}

fn count_webhook(source: &str, result: &str, n: u64) {
    let mut t = webhook_table().lock().expect("webhook counts");
    *t.entry(source.to_string())
        .or_default()
        .entry(result.to_string())
        .or_default() += n;
}

/// Every webhook source's requests by result since the process started.
pub fn webhook_counts() -> WebhookTable {
    webhook_table().lock().expect("webhook counts").clone()
}

/// Register every result of every configured source at 0, and the
/// requests to unconfigured sources.
pub fn register_webhook_sources<'a>(sources: impl IntoIterator<Item = &'a str>) {
    for source in sources {
        for result in WEBHOOK_RESULTS {
            metrics::counter!(WEBHOOK_REQUESTS, "source" => source.to_string(), "result" => result)
                .increment(0);
            count_webhook(source, result, 0);
        }
    }
    metrics::counter!(WEBHOOK_REQUESTS, "source" => UNKNOWN_SOURCE, "result" => "unknown_source")
        .increment(0);
}

// ---------------------------------------------------------------- notifications

const NOTIFICATIONS: &str = "intake_notifications_total";

/// Every result of a notification the sender took.
pub const NOTIFICATION_RESULTS: [&str; 4] = ["sent", "retry", "failed", "suppressed"];

/// Count one notification the sender took (one of [`NOTIFICATION_RESULTS`]).
pub fn notification(result: &'static str) {
    metrics::counter!(NOTIFICATIONS, "result" => result).increment(1);
}

/// Register every notification result at 0 (a sender starts).
pub fn register_notifications() {
    for result in NOTIFICATION_RESULTS {
        metrics::counter!(NOTIFICATIONS, "result" => result).increment(0);
    }
}

// ---------------------------------------------------------------- queues

/// The database's queue depths as gauges, refreshed when Prometheus scrapes:
/// one refresh at a time, at most every [`QueueGauges::EVERY`] (the outbox
/// count reads the whole table), bounded by [`QueueGauges::TIMEOUT`]. When
/// the database does not answer, the gauges keep their last values and the
/// rest of `/metrics` is served as usual.
#[derive(Default)]
pub struct QueueGauges {
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl QueueGauges {
    pub const EVERY: Duration = Duration::from_secs(5);
    pub const TIMEOUT: Duration = Duration::from_secs(3);

    /// Refresh the gauges from `store` unless another scrape is doing it
    /// or did it less than [`Self::EVERY`] ago.
    pub async fn refresh(&self, store: &Store) {
        metrics::gauge!("intake_database_writable").set(f64::from(u8::from(store.writable())));
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        *last = Some(Instant::now());
        match tokio::time::timeout(Self::TIMEOUT, store.queue_depths(now_ms())).await {
            Ok(Ok(d)) => set_queue_gauges(&d),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot count the queues for /metrics"),
            Err(_) => tracing::warn!(
                timeout_s = Self::TIMEOUT.as_secs(),
                "cannot count the queues for /metrics: timed out"
            ),
        }
    }
}

fn set_queue_gauges(d: &QueueDepths) {
    metrics::gauge!("intake_quarantine_messages").set(d.quarantine as f64);
    metrics::gauge!("intake_review_messages").set(d.review as f64);
    for (status, n) in OUTBOX_STATUSES.iter().zip(d.outbox) {
        metrics::gauge!("intake_outbox_messages", "status" => *status).set(n as f64);
    }
    metrics::gauge!("intake_outbox_oldest_due_seconds").set(d.oldest_due_ms as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_answers_map_to_their_result() {
        let cases = [
            (201, false, "accepted"),
            (200, false, "accepted"),
            (201, true, "replayed"),
            (200, true, "replayed"),
            (401, false, "unauthorized"),
            (429, false, "rate_limited"),
            (413, false, "too_large"),
            (409, false, "conflict"),
            (503, false, "unavailable"),
            (500, false, "unavailable"),
            (400, false, "invalid"),
            (408, false, "invalid"),
            (415, false, "invalid"),
            (422, false, "invalid"),
        ];
        for (status, replayed, want) in cases {
            assert_eq!(
                webhook_result(status, replayed),
                want,
                "{status} {replayed}"
            );
            assert!(WEBHOOK_RESULTS.contains(&want));
        }
    }
}
