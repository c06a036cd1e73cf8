//! The admin API under `/v1`: users, organizations, tickets and quarantine,
//! behind a bearer token (`[http] admin_token`, `_env` or `_file`) compared
//! in constant time. Without a configured token every call answers 503.

use super::contact::contact_points;
#[allow(unused_imports)] // named by the OpenAPI annotations
use super::openapi::{
    DomainBody, MergeBody, OrganizationBody, ProblemDoc, TicketBody, TicketPatch,
};
use super::problem::{parse_object, require_json, Fields, Problem};
use super::AppState;
use crate::config::Config;
use crate::identity::{ContactPoint, EmailAddress};
use crate::model::{Contact, Inbound, OutcomeKind};
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use utoipa_axum::{router::OpenApiRouter, routes};

/// SHA-256 of the configured admin token, if any.
pub fn resolve_token(cfg: &Config) -> Result<Option<[u8; 32]>, String> {
    let s = &cfg.http.admin_token;
    if s.is_unset() {
        return Ok(None);
    }
    let t = s.resolve().map_err(|e| format!("http.admin_token: {e}"))?;
    if t.trim().is_empty() {
        return Err("http.admin_token: the token is empty".into());
    }
    Ok(Some(Sha256::digest(t.trim().as_bytes()).into()))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(find_user))
        .routes(routes!(merge_user))
        .routes(routes!(erase_user))
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(add_domain))
        .routes(routes!(create_ticket))
        .routes(routes!(get_ticket, patch_ticket))
        .routes(routes!(list_quarantine))
        .routes(routes!(replay))
}

/// Proof that the request carried the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Problem> {
        let Some(expected) = &st.admin_token else {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "admin API disabled: set http.admin_token_env (or http.admin_token_file)",
            ));
        };
        let challenge = |d: &str| {
            Problem::unauthorized(d)
                .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"intake\"")
        };
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let token = match auth.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => {
                return Err(challenge(
                    "missing bearer token: send Authorization: Bearer <admin token>",
                ))
            }
        };
        let got: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if bool::from(got.ct_eq(expected.as_ref())) {
            Ok(Admin)
        } else {
            Err(challenge("wrong admin token"))
        }
    }
}

pub(super) type Answer = Result<Response, Problem>;

/// The fields each body accepts (the OpenAPI schemas are checked against them).
pub const MERGE_FIELDS: &[&str] = &["into"];
pub const ORGANIZATION_FIELDS: &[&str] = &["name", "domains"];
pub const DOMAIN_FIELDS: &[&str] = &["domain"];
pub const TICKET_FIELDS: &[&str] = &["requester", "agent", "subject", "comment", "public"];
pub const TICKET_PATCH_FIELDS: &[&str] = &["public", "status"];

pub(super) fn ok(v: impl serde::Serialize) -> Answer {
    Ok(Json(v).into_response())
}

fn created(v: impl serde::Serialize) -> Answer {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub(super) fn id(what: &str, s: &str) -> Result<i64, Problem> {
    s.parse()
        .map_err(|_| Problem::not_found(format!("{what} {s:?} not found: ids are integers")))
}

pub(super) async fn object(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Map<String, Value>, Problem> {
    require_json(headers)?;
    let raw = super::webhook::read_limited(body, headers, st.config.http.max_body_bytes).await?;
    parse_object(&raw)
}

#[utoipa::path(get, path = "/v1/users", tag = "admin", security(("admin_token" = [])),
    params(("contact" = String, Query, description = "an email, an E.164 phone number or network:id")),
    responses((status = 200, description = "the user with its identities and organization", body = Object), (status = 404, description = "no such id", body = ProblemDoc, content_type = "application/problem+json"), (status = 422, description = "a field is missing or invalid: `detail` names it", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn find_user(
    _: Admin,
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let raw = q.get("contact").ok_or_else(|| {
        Problem::unprocessable(
            "missing query parameter contact (an email, an E.164 phone number or network:id)",
        )
    })?;
    let c = ContactPoint::parse_any(raw, &st.config.identities.default_phone_region)
        .map_err(|e| Problem::unprocessable(format!("contact: {e}")))?;
    let store = &st.pipeline.store;
    let user = store.user_by_contact(&c).await?.ok_or_else(|| {
        Problem::not_found(format!(
            "no user holds the {} {}",
            c.kind().as_str(),
            c.value()
        ))
    })?;
    let org = match user.organization_id {
        Some(o) => Some(store.organization(o).await?),
        None => None,
    };
    let mut v = serde_json::to_value(&user).unwrap_or_default();
    v["organization"] = serde_json::to_value(org).unwrap_or_default();
    ok(v)
}

#[utoipa::path(delete, path = "/v1/users/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the user whose personal data is erased")),
    responses((status = 200, description = "what was erased, by count; tickets and other people's comments stay", body = Object), (status = 404, description = "no such id", body = ProblemDoc, content_type = "application/problem+json"), (status = 409, description = "the user was merged into another, or is an agent: `detail` says which", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn erase_user(_: Admin, State(st): State<AppState>, Path(u): Path<String>) -> Answer {
    let u = id("user", &u)?;
    ok(st.pipeline.store.erase_user(u).await?)
}

#[utoipa::path(post, path = "/v1/users/{id}/merge", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the user merged away")), request_body = MergeBody,
    responses((status = 200, description = "the surviving user", body = Object), (status = 404, description = "no such id", body = ProblemDoc, content_type = "application/problem+json"), (status = 409, description = "refused by the desk's rules: `detail` says why", body = ProblemDoc, content_type = "application/problem+json"), (status = 422, description = "a field is missing or invalid: `detail` names it", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn merge_user(
    _: Admin,
    State(st): State<AppState>,
    Path(loser): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let loser = id("user", &loser)?;
    let b = object(&st, &headers, body).await?;
    let into = Fields::new(&b, "", MERGE_FIELDS)?
        .opt_i64("into")?
        .ok_or_else(|| {
            Problem::unprocessable("missing field into: the id of the surviving user")
        })?;
    ok(st.pipeline.store.merge_users(loser, into).await?)
}

#[utoipa::path(get, path = "/v1/organizations", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "every organization with its domains", body = Vec<Object>), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn list_orgs(_: Admin, State(st): State<AppState>) -> Answer {
    ok(st.pipeline.store.organizations().await?)
}

#[utoipa::path(post, path = "/v1/organizations", tag = "admin", security(("admin_token" = [])),
    request_body = OrganizationBody,
    responses((status = 201, description = "the organization", body = Object), (status = 409, description = "refused by the desk's rules: `detail` says why", body = ProblemDoc, content_type = "application/problem+json"), (status = 422, description = "a field is missing or invalid: `detail` names it", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn create_org(
    _: Admin,
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let b = object(&st, &headers, body).await?;
    let f = Fields::new(&b, "", ORGANIZATION_FIELDS)?;
    let name = f.line("name")?.trim();
    if name.is_empty() {
        return Err(Problem::unprocessable("name must not be empty"));
    }
    let mut domains = Vec::new();
    for (i, d) in f.opt_array("domains")?.into_iter().flatten().enumerate() {
        let d = d
            .as_str()
            .ok_or_else(|| Problem::unprocessable(format!("domains[{i}] must be a string")))?;
        domains.push(d.to_string());
    }
    let store = &st.pipeline.store;
    let id = st.pipeline.create_organization(name, &domains).await?;
    created(store.organization(id).await?)
}

#[utoipa::path(post, path = "/v1/organizations/{id}/domains", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the organization")), request_body = DomainBody,
    responses((status = 200, description = "the organization and how many users moved into it", body = Object), (status = 404, description = "no such id", body = ProblemDoc, content_type = "application/problem+json"), (status = 409, description = "refused by the desk's rules: `detail` says why", body = ProblemDoc, content_type = "application/problem+json"), (status = 422, description = "a field is missing or invalid: `detail` names it", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn add_domain(
    _: Admin,
    State(st): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let org = id("organization", &org)?;
    let b = object(&st, &headers, body).await?;
    let domain = Fields::new(&b, "", DOMAIN_FIELDS)?
        .str("domain")?
        .to_string();
    let store = &st.pipeline.store;
    let moved = st.pipeline.add_domain(org, &domain).await?;
    let o = store.organization(org).await?;
    ok(json!({"id": o.id, "name": o.name, "domains": o.domains, "users_moved": moved}))
}

/// An agent opens a ticket on an end user's behalf (public or private).
#[utoipa::path(post, path = "/v1/tickets", tag = "admin", security(("admin_token" = [])),
    request_body = TicketBody,
    responses((status = 201, description = "the ticket, with `Location`", body = Object), (status = 422, description = "a field is missing or invalid: `detail` names it", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn create_ticket(
    _: Admin,
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let b = object(&st, &headers, body).await?;
    let f = Fields::new(&b, "", TICKET_FIELDS)?;
    let region = &st.config.identities.default_phone_region;
    let (mut contacts, name) = contact_points(f.opt_object("requester")?, "requester", region)?;
    let agent = match f.opt_line("agent")? {
        Some(a) => Some(
            EmailAddress::parse(a).map_err(|e| Problem::unprocessable(format!("agent: {e}")))?,
        ),
        None => None,
    };
    if contacts.is_empty() {
        let a = agent.ok_or_else(|| {
            Problem::unprocessable("requester: give requester.email, requester.phone or requester.handle, or agent (an email) to make the agent the requester")
        })?;
        contacts.push(ContactPoint::Email(a));
    }
    let subject = f.line("subject")?.trim().to_string();
    if subject.is_empty() {
        return Err(Problem::unprocessable("subject must not be empty"));
    }
    let contact = Contact {
        source: "agent".into(),
        channel: "agent".into(),
        contacts,
        name,
        conversation_id: None,
        subject,
        message: f.str("comment")?.to_string(),
        public: f.opt_bool("public")?.unwrap_or(true),
        occurred_at: None,
        attachments: vec![],
        message_id: format!(
            "agent.{:032x}@{}",
            rand::random::<u128>(),
            st.config.desk.domain
        ),
    };
    let out = st
        .pipeline
        .ingest(vec![Inbound::Contact(contact)], None)
        .await?
        .into_iter()
        .next();
    let out = out
        .filter(|o| o.outcome == OutcomeKind::Created)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the ticket was not created",
            )
        })?;
    let ticket = out.ticket_id.unwrap_or_default();
    let mut r = created(st.pipeline.store.ticket_view(ticket).await?)?;
    if let Ok(v) = format!("/v1/tickets/{ticket}").parse() {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the ticket")),
    responses((status = 200, description = "the ticket with its comments and events", body = Object), (status = 404, description = "no such id", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn get_ticket(_: Admin, State(st): State<AppState>, Path(t): Path<String>) -> Answer {
    let t = id("ticket", &t)?;
    ok(st.pipeline.store.ticket_view(t).await?)
}

/// `{"public": bool}` and/or `{"status": "..."}`.
#[utoipa::path(patch, path = "/v1/tickets/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the ticket")), request_body = TicketPatch,
    responses((status = 200, description = "the ticket as changed", body = Object), (status = 404, description = "no such id", body = ProblemDoc, content_type = "application/problem+json"), (status = 422, description = "a field is missing or invalid: `detail` names it", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn patch_ticket(
    _: Admin,
    State(st): State<AppState>,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let t = id("ticket", &t)?;
    let b = object(&st, &headers, body).await?;
    let f = Fields::new(&b, "", TICKET_PATCH_FIELDS)?;
    let public = f.opt_bool("public")?;
    let status = f.opt_line("status")?;
    if public.is_none() && status.is_none() {
        return Err(Problem::unprocessable(
            "nothing to change: give public (true or false) and/or status",
        ));
    }
    let store = &st.pipeline.store;
    if let Some(p) = public {
        // Publishing fires the events the ticket skipped while private.
        st.pipeline.set_ticket_public(t, p).await?;
    }
    if let Some(s) = status {
        store.set_ticket_status(t, s).await?;
    }
    ok(store.ticket_view(t).await?)
}

#[utoipa::path(get, path = "/v1/quarantine", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "quarantined messages, newest first, without their bytes", body = Vec<Object>), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn list_quarantine(_: Admin, State(st): State<AppState>) -> Answer {
    ok(st.pipeline.store.quarantine_list().await?)
}

#[utoipa::path(post, path = "/v1/quarantine/{id}/replay", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "the quarantine entry")),
    responses((status = 200, description = "the outcome of running the message again", body = Object), (status = 404, description = "no such id", body = ProblemDoc, content_type = "application/problem+json"), (status = 409, description = "refused by the desk's rules: `detail` says why", body = ProblemDoc, content_type = "application/problem+json"), (status = 401, description = "no or a wrong bearer token", body = ProblemDoc, content_type = "application/problem+json"), (status = 503, description = "admin API disabled (no token configured) or the database is unavailable", body = ProblemDoc, content_type = "application/problem+json")))]
async fn replay(_: Admin, State(st): State<AppState>, Path(q): Path<String>) -> Answer {
    let q = id("quarantine entry", &q)?;
    ok(st.pipeline.replay(q).await?)
}
