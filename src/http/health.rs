//! `GET /healthz` (alive), `GET /readyz` (database and every mailbox folder)
//! and `GET /metrics` (Prometheus text format).

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{routing::get, Json, Router};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// 200 when the database answers and takes writes (a full disk still
/// answers `SELECT 1`: the store tracks whether its writes succeed) and every
/// folder is connected or idle (or on standby behind another daemon's
/// lease); 503 otherwise, with the database's error.
async fn readyz(State(st): State<AppState>) -> Response {
    let store = &st.pipeline.store;
    let outage = store.outage();
    let db = outage.is_none() && store.ping().await;
    let mailboxes = st.imap.snapshot();
    let ready = db && st.imap.all_ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let error = outage.map(|o| format!("{}: {}", o.fault.as_str(), o.error));
    let body = serde_json::json!({ "ready": ready, "database": db, "database_error": error, "mailboxes": mailboxes });
    (code, Json(body)).into_response()
}

/// The recorder's metrics, with the database's queue depths refreshed
/// first (bounded: see [`crate::metrics::QueueGauges`]).
async fn metrics(State(st): State<AppState>) -> Response {
    match &st.metrics {
        Some(h) => {
            st.queue_gauges.refresh(&st.pipeline.store).await;
            h.run_upkeep();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                h.render(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed\n").into_response(),
    }
}
