//! `GET /healthz` (alive), `GET /readyz` (database and every mailbox folder)
//! and `GET /metrics` (Prometheus text format).

use super::AppState;
use crate::status::DaemonView;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(super::openapi::openapi_json))
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when the database answers and takes writes (a full disk still
/// answers `SELECT 1`: the store tracks whether its writes succeed) and every
/// folder is connected or idle (or on standby behind another daemon's
/// lease); 503 otherwise, with the database's error. The body is the
/// daemon's half of the status report ([`DaemonView`]): `intake status`
/// reads it from here.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "ready: the daemon's view (folders, webhook requests, last hour)", body = Object),
        (status = 503, description = "not ready: the same view, saying what is not", body = Object),
    ))]
async fn readyz(State(st): State<AppState>) -> Response {
    let view = DaemonView::of(&st.pipeline.store, &st.imap).await;
    let code = if view.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(view)).into_response()
}

/// The recorder's metrics, with the database's queue depths refreshed
/// first (bounded: see [`crate::metrics::QueueGauges`]).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain; version=0.0.4")))]
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
