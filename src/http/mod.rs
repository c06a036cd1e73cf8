//! HTTP: one axum router for health, metrics, gateway webhooks and the admin API.
//!
//! Each area owns one file and contributes a `routes()` merged here.

pub mod health;

use crate::config::Config;
use crate::pipeline::Pipeline;
use axum::Router;
use std::sync::Arc;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Pipeline,
    pub config: Arc<Config>,
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new().merge(health::routes()).with_state(state)
}
