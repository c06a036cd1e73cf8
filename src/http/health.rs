//! `GET /healthz`: the process is alive.

use super::AppState;
use axum::{routing::get, Router};

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok\n" }))
}
