//! Prometheus metrics: one global recorder, rendered by `GET /metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide recorder once and return its handle (`None` when
/// another recorder was installed first, e.g. by an embedding program).
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

/// Count the outcome of stored messages per mailbox and class.
pub fn record_outcomes(mailbox: &str, outcomes: &[crate::model::Outcome]) {
    use crate::model::OutcomeKind::*;
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
        };
        metrics::counter!(name, "mailbox" => mailbox.to_string(), "class" => class).increment(1);
    }
}
