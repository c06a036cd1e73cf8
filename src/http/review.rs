//! The review queue in the admin API: `GET /v1/review`,
//! `POST /v1/review/{id}/release`, `POST /v1/review/{id}/reject`.

use super::admin::{id, ok, Admin, Answer};
use super::openapi::ProblemDoc;
use super::AppState;
use axum::extract::{Path, State};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(release))
        .routes(routes!(reject))
}

/// Who decided, as the entry records it.
const BY: &str = "admin API";

#[utoipa::path(get, path = "/v1/review", operation_id = "review_list", tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, description = "review entries, newest first, without their bytes (decided ones until purged)", body = Vec<Object>),
        (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "admin API disabled or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list(_: Admin, State(st): State<AppState>) -> Answer {
    ok(st.pipeline.store.review_list().await?)
}

#[utoipa::path(post, path = "/v1/review/{id}/release", operation_id = "review_release", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the review entry")),
    responses(
        (status = 200, description = "the outcome of running the mail as its From address", body = Object),
        (status = 404, description = "no such entry", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the entry was already released or rejected", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "admin API disabled or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn release(_: Admin, State(st): State<AppState>, Path(r): Path<String>) -> Answer {
    let r = id("review entry", &r)?;
    ok(st.pipeline.release(r, BY).await?)
}

#[utoipa::path(post, path = "/v1/review/{id}/reject", operation_id = "review_reject", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the review entry")),
    responses(
        (status = 200, description = "the entry, rejected: its bytes deleted, a re-delivery dropped", body = Object),
        (status = 404, description = "no such entry", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the entry was already released or rejected", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "admin API disabled or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn reject(_: Admin, State(st): State<AppState>, Path(r): Path<String>) -> Answer {
    let r = id("review entry", &r)?;
    ok(st.pipeline.store.review_reject(r, BY).await?)
}
