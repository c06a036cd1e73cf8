//! Agents in the admin API: `GET /v1/agents` (configured and added),
//! `POST /v1/agents` `{"address": …}`, `DELETE /v1/agents/{address}`.

use super::admin::{object, ok, Admin, Answer};
use super::openapi::{AgentBody, ProblemDoc};
use super::problem::{Fields, Problem};
use super::AppState;
use crate::identity::EmailAddress;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The fields `POST /v1/agents` accepts.
pub const AGENT_FIELDS: &[&str] = &["address"];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
}

fn address(raw: &str) -> Result<EmailAddress, Problem> {
    EmailAddress::parse(raw).map_err(|e| Problem::unprocessable(format!("address: {e}")))
}

#[utoipa::path(get, path = "/v1/agents", operation_id = "agents_list", tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, description = "`configured` (`[agents]` addresses and domains) and `added` (users marked as agents)", body = Object),
        (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list(_: Admin, State(st): State<AppState>) -> Answer {
    let c = &st.config.agents;
    ok(json!({
        "configured": {"addresses": c.addresses, "domains": c.domains},
        "added": st.pipeline.store.agents().await?,
    }))
}

#[utoipa::path(post, path = "/v1/agents", operation_id = "agents_add", tag = "admin", security(("admin_token" = [])),
    request_body = AgentBody,
    responses(
        (status = 201, description = "the address's user, now an agent in no organization", body = Object),
        (status = 422, description = "not an email address", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn add(_: Admin, State(st): State<AppState>, headers: HeaderMap, body: Body) -> Answer {
    let b = object(&st, &headers, body).await?;
    let a = address(Fields::new(&b, "", AGENT_FIELDS)?.str("address")?)?;
    let user = st.pipeline.store.agent_set(&a, true).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user_id": user, "address": a.as_str()})),
    )
        .into_response())
}

#[utoipa::path(delete, path = "/v1/agents/{address}", operation_id = "agents_remove", tag = "admin", security(("admin_token" = [])),
    params(("address" = String, Path, description = "an agent's email address")),
    responses(
        (status = 200, description = "the user is an end user again", body = Object),
        (status = 404, description = "the address is not an added agent", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "not an email address", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn remove(_: Admin, State(st): State<AppState>, Path(raw): Path<String>) -> Answer {
    let a = address(&raw)?;
    let user = st.pipeline.store.agent_set(&a, false).await?;
    ok(json!({"user_id": user, "address": a.as_str()}))
}
