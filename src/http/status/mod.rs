//! `GET /status`: the status page for ops, server-rendered HTML readable on
//! a phone (see [`page`]), behind a login that exchanges the admin token for
//! a session cookie ([`session`]). Quarantine replay is a form posted with
//! the session's CSRF token. Without a configured admin token the page is
//! off, as the admin API is.

pub mod page;
pub mod session;

use super::AppState;
use crate::model::OutcomeKind;
use crate::status::{DaemonView, Report};
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(login_form, login))
        .routes(routes!(logout))
        .routes(routes!(replay))
        .routes(routes!(review_release))
        .routes(routes!(review_reject))
}

/// Who decided a review entry, as the entry records it.
const BY: &str = "status page";

const HTML: &str = "text/html; charset=utf-8";

/// An HTML answer that no cache or frame keeps.
fn html(code: StatusCode, body: String) -> Response {
    let mut r = (code, body).into_response();
    let h = r.headers_mut();
    for (k, v) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn disabled() -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        page::login(Some(
            "The status page is off: set http.admin_token_env (or http.admin_token_file) and restart the daemon.",
        )),
    )
}

/// The client's address (unknown when served without the listener of
/// [`super::server`], as in-process tests do).
fn peer(conn: &Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    conn.as_ref()
        .map(|c| c.0 .0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The page, for a logged-in session.
#[utoipa::path(get, path = "/status", operation_id = "status_page", tag = "ops",
    responses(
        (status = 200, description = "the status page", body = String, content_type = HTML),
        (status = 303, description = "no session: to `/status/login`"),
        (status = 503, description = "off: no admin token is configured", body = String, content_type = HTML),
    ))]
async fn show(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if st.admin_token.is_none() {
        return disabled();
    }
    let Some(s) = st.status_sessions.get(&headers) else {
        return see_other("/status/login");
    };
    let store = &st.pipeline.store;
    let view = DaemonView::of(store, &st.imap).await;
    match Report::gather(store, Ok(view)).await {
        Ok(r) => {
            let flash = s.flash.map(|(text, error)| page::Flash { text, error });
            html(StatusCode::OK, page::page(&r, &s.csrf, flash))
        }
        Err(e) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            page::login(Some(&format!("The database did not answer: {e}"))),
        ),
    }
}

/// The login form.
#[utoipa::path(get, path = "/status/login", operation_id = "status_login_form", tag = "ops",
    responses(
        (status = 200, description = "the form", body = String, content_type = HTML),
        (status = 303, description = "already logged in: to `/status`"),
        (status = 503, description = "off: no admin token is configured", body = String, content_type = HTML),
    ))]
async fn login_form(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if st.admin_token.is_none() {
        return disabled();
    }
    if st.status_sessions.get(&headers).is_some() {
        return see_other("/status");
    }
    html(StatusCode::OK, page::login(None))
}

/// The login form's fields.
#[derive(Deserialize, ToSchema)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

/// Exchange the admin token for a session cookie.
#[utoipa::path(post, path = "/status/login", operation_id = "status_login", tag = "ops",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "logged in: `Set-Cookie` and to `/status`"),
        (status = 401, description = "not the admin token: the form again", body = String, content_type = HTML),
        (status = 429, description = "too many attempts from this address, with `Retry-After`", body = String, content_type = HTML),
        (status = 503, description = "off: no admin token is configured", body = String, content_type = HTML),
    ))]
async fn login(
    State(st): State<AppState>,
    conn: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let Some(expected) = &st.admin_token else {
        return disabled();
    };
    if let Err(wait) = st.status_sessions.login_allowed(peer(&conn)) {
        let secs = wait.as_secs().max(1);
        let mut r = html(
            StatusCode::TOO_MANY_REQUESTS,
            page::login(Some(&format!(
                "Too many login attempts from your address: try again in {secs} s."
            ))),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let got: [u8; 32] = Sha256::digest(f.token.trim().as_bytes()).into();
    if !bool::from(got.ct_eq(expected.as_ref())) {
        tracing::warn!(peer = %peer(&conn), "status page login refused: wrong admin token");
        return html(
            StatusCode::UNAUTHORIZED,
            page::login(Some("That is not the admin token.")),
        );
    }
    let cookie = st.status_sessions.start();
    let mut r = see_other("/status");
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&cookie, session::over_tls(&headers)))
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// A state-changing form's fields.
#[derive(Deserialize, ToSchema)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// 403 for a form without its session or CSRF token.
fn forbidden(why: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        page::login(Some(&format!("Refused: {why}."))),
    )
}

/// End the session.
#[utoipa::path(post, path = "/status/logout", operation_id = "status_logout", tag = "ops",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "logged out: to `/status/login`"),
        (status = 403, description = "no session, or not its CSRF token", body = String, content_type = HTML),
    ))]
async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(why) = st.status_sessions.check(&headers, &f.csrf) {
        return forbidden(why);
    }
    st.status_sessions.end(&headers);
    let mut r = see_other("/status/login");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(session::over_tls(&headers))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Replay a quarantined message from the page.
#[utoipa::path(post, path = "/status/quarantine/{id}/replay", operation_id = "status_replay", tag = "ops",
    params(("id" = i64, Path, description = "the quarantine entry")),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "done: to `/status`, which says the outcome"),
        (status = 403, description = "no session, or not its CSRF token", body = String, content_type = HTML),
        (status = 503, description = "off: no admin token is configured", body = String, content_type = HTML),
    ))]
async fn replay(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if st.admin_token.is_none() {
        return disabled();
    }
    if let Err(why) = st.status_sessions.check(&headers, &f.csrf) {
        return forbidden(why);
    }
    let Ok(id) = id.parse::<i64>() else {
        return forbidden("no such quarantine entry");
    };
    let (msg, error) = match st.pipeline.replay(id).await {
        Ok(o) => {
            (
                match o.outcome {
                    OutcomeKind::Created => format!(
                        "Quarantine entry #{id} replayed: a new ticket #{}.",
                        o.ticket_id.unwrap_or_default()
                    ),
                    OutcomeKind::Appended => format!(
                        "Quarantine entry #{id} replayed: added to ticket #{}.",
                        o.ticket_id.unwrap_or_default()
                    ),
                    OutcomeKind::Duplicate => {
                        format!("Quarantine entry #{id} replayed: it was already stored.")
                    }
                    OutcomeKind::Review => format!(
                        "Quarantine entry #{id} replayed: held for review ({}).",
                        o.reason.unwrap_or_default()
                    ),
                    OutcomeKind::Quarantined => format!(
                        "Replay of #{id} quarantined it again: {}",
                        o.reason.unwrap_or_default()
                    ),
                    OutcomeKind::Kept => {
                        format!("Quarantine entry #{id} replayed: a delivery report, kept under bounces.")
                    }
                },
                o.outcome == OutcomeKind::Quarantined,
            )
        }
        Err(e) => (format!("Replay of #{id} failed: {e}"), true),
    };
    tracing::info!(quarantine_id = id, result = %msg, "quarantine replayed from the status page");
    st.status_sessions.flash(&headers, msg, error);
    see_other("/status")
}

/// Release or reject a review entry from a form carrying the session's
/// CSRF token; the outcome is the next page's message.
async fn decide(
    st: &AppState,
    headers: &HeaderMap,
    id: &str,
    csrf: &str,
    release: bool,
) -> Response {
    if st.admin_token.is_none() {
        return disabled();
    }
    if let Err(why) = st.status_sessions.check(headers, csrf) {
        return forbidden(why);
    }
    let Ok(id) = id.parse::<i64>() else {
        return forbidden("no such review entry");
    };
    let (msg, error) = if release {
        match st.pipeline.release(id, BY).await {
            Ok(o) => match o.ticket_id {
                Some(t) => (format!("Review entry #{id} released: ticket #{t}."), false),
                None => (
                    format!("Review entry #{id} released: {:?}.", o.outcome),
                    false,
                ),
            },
            Err(e) => (format!("Release of #{id} failed: {e}"), true),
        }
    } else {
        match st.pipeline.store.review_reject(id, BY).await {
            Ok(_) => (
                format!("Review entry #{id} rejected: a re-delivery is dropped."),
                false,
            ),
            Err(e) => (format!("Rejection of #{id} failed: {e}"), true),
        }
    };
    st.status_sessions.flash(headers, msg, error);
    see_other("/status")
}

/// Release a review entry from the page: its mail acts as its From address.
#[utoipa::path(post, path = "/status/review/{id}/release", operation_id = "status_review_release", tag = "ops",
    params(("id" = i64, Path, description = "the review entry")),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "done: to `/status`, which says the outcome"),
        (status = 403, description = "no session, or not its CSRF token", body = String, content_type = HTML),
        (status = 503, description = "off: no admin token is configured", body = String, content_type = HTML),
    ))]
async fn review_release(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    decide(&st, &headers, &id, &f.csrf, true).await
}

/// Reject a review entry from the page: its bytes are deleted.
#[utoipa::path(post, path = "/status/review/{id}/reject", operation_id = "status_review_reject", tag = "ops",
    params(("id" = i64, Path, description = "the review entry")),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "done: to `/status`, which says the outcome"),
        (status = 403, description = "no session, or not its CSRF token", body = String, content_type = HTML),
        (status = 503, description = "off: no admin token is configured", body = String, content_type = HTML),
    ))]
async fn review_reject(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    decide(&st, &headers, &id, &f.csrf, false).await
}
