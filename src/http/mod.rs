//! HTTP: one axum router for health, metrics, gateway webhooks, the admin API
//! and the status page,
//! served under the `[http]` connection limits of [`server`].
//!
//! Each area owns one file and contributes a `routes()` merged here.

pub mod admin;
pub mod agents;
pub mod batcher;
pub mod conn;
pub mod contact;
mod files;
pub mod health;
pub mod json;
pub mod openapi;
pub mod problem;
pub mod review;
pub mod server;
pub mod signature;
pub mod status;
pub mod webhook;

use crate::config::Config;
use crate::pipeline::Pipeline;
use axum::Router;
use std::sync::Arc;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Pipeline,
    pub config: Arc<Config>,
    /// Webhook sources with their resolved secrets and rate limiters.
    pub webhooks: Arc<webhook::WebhookState>,
    /// SHA-256 of the admin bearer token; `None` disables the admin API.
    pub admin_token: Option<Arc<[u8; 32]>>,
    /// State of every IMAP folder worker (empty outside `intake run`).
    pub imap: crate::sources::imap::Registry,
    /// Prometheus exporter, rendered by `GET /metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The database's queue depths, refreshed by `GET /metrics`.
    pub queue_gauges: Arc<crate::metrics::QueueGauges>,
    /// Logged-in status page sessions.
    pub status_sessions: Arc<status::session::Sessions>,
}

impl AppState {
    /// Build the state once at start: resolves webhook secrets and the admin
    /// token (a configured but unreadable secret is an error), and
    /// registers the webhook request counters.
    pub fn new(pipeline: Pipeline, config: Arc<Config>) -> Result<AppState, String> {
        let metrics = crate::metrics::handle();
        let webhooks = Arc::new(webhook::WebhookState::from_config(&config)?);
        let admin_token = admin::resolve_token(&config)?.map(Arc::new);
        crate::metrics::register_webhook_sources(
            config.webhook_sources.iter().map(|w| w.name.as_str()),
        );
        Ok(AppState {
            pipeline,
            config,
            webhooks,
            admin_token,
            imap: crate::sources::imap::Registry::default(),
            metrics,
            queue_gauges: Arc::default(),
            status_sessions: Arc::default(),
        })
    }
}

/// Every route with its OpenAPI operation: the router and the document
/// ([`openapi::document`]) are split from this one list.
pub fn api_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::routes())
        .merge(webhook::routes())
        .merge(admin::routes())
        .merge(review::routes())
        .merge(files::routes())
        .merge(agents::routes())
        .merge(status::routes())
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    api_router().split_for_parts().0.with_state(state)
}
