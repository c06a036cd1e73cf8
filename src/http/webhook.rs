//! `POST /v1/contacts/{source}`: signed, idempotent, rate-limited contacts
//! from voice, chat and SMS gateways.
//!
//! Checks run cheapest-first and nothing is stored unless all pass: known
//! source (404), JSON content type (415), body size (413), the signature
//! headers' size, the timestamp within ±5 minutes and the HMAC signature
//! over `"<timestamp>.<raw body>"` against the current and the previous
//! secret ([`super::signature`], 401), the source's rate (429), then the
//! JSON itself (400/422). The answer is sent only after the commit.

use super::batcher::{Batcher, Idem, Reply};
use super::contact::parse_contact;
use super::openapi::{ContactBody, ProblemDoc};
use super::problem::{parse_object, require_json, Problem};
use super::signature::verify;
use super::AppState;
use crate::config::Config;
use crate::store::{now_ms, Claim};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use super::signature::WINDOW_SECS;
/// How long a retry waits for a concurrent request with the same key.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);

/// One configured source: resolved secrets and its rate limiter.
pub struct Source {
    secrets: Arc<[Vec<u8>]>,
    limiter: DefaultDirectRateLimiter,
    default_channel: String,
}

/// Every webhook source, built once at start.
pub struct WebhookState {
    sources: HashMap<String, Source>,
    last_purge: AtomicI64,
    /// Group commit of accepted contacts.
    pub batcher: Batcher,
}

impl WebhookState {
    pub fn from_config(cfg: &Config) -> Result<Self, String> {
        let mut sources = HashMap::new();
        for w in &cfg.webhook_sources {
            let err = |k: &str, e: String| format!("webhook source {:?}: {k}: {e}", w.name);
            let mut secrets = vec![w
                .secret
                .resolve()
                .map_err(|e| err("secret", e))?
                .into_bytes()];
            let prev = &w.previous_secret;
            if !prev.is_unset() {
                secrets.push(
                    prev.resolve()
                        .map_err(|e| err("previous_secret", e))?
                        .into_bytes(),
                );
            }
            if secrets.iter().any(|s| s.is_empty()) {
                return Err(err("secret", "must not be empty".into()));
            }
            let rate = NonZeroU32::new(w.rate_per_second)
                .ok_or_else(|| err("rate_per_second", "must be at least 1".into()))?;
            let burst = NonZeroU32::new(w.burst)
                .ok_or_else(|| err("burst", "must be at least 1".into()))?;
            let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
            sources.insert(
                w.name.clone(),
                Source {
                    secrets: secrets.into(),
                    limiter,
                    default_channel: w.default_channel.clone(),
                },
            );
        }
        Ok(WebhookState {
            sources,
            last_purge: AtomicI64::new(0),
            batcher: Batcher::default(),
        })
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// Answer one request and count it in `intake_webhook_requests_total` by
/// source (a configured one, or `unknown`) and result.
#[utoipa::path(post, path = "/v1/contacts/{source}", tag = "gateways",
    params(
        ("source" = String, Path, description = "a configured `[[webhook_sources]]` name"),
        ("X-Intake-Timestamp" = i64, Header, description = "unix seconds when signed (within the source's tolerance)"),
        ("X-Intake-Signature" = String, Header, description = "`v1=<hex HMAC-SHA256 of \"{timestamp}.{body}\">`, several comma-separated during rotation"),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key answers the first result again (`Idempotent-Replayed: true`)"),
    ),
    request_body = ContactBody,
    responses(
        (status = 201, description = "a new ticket: `{\"ticket_id\", \"user_id\", \"comment_id\", \"created\": true}`", body = Object),
        (status = 200, description = "appended to an open ticket", body = Object),
        (status = 400, description = "malformed JSON or a duplicate key", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "missing or wrong signature, too many signatures, or a stale timestamp", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 408, description = "body not received within `[http] body_read_timeout`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such source", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "the idempotency key was used with another body (or is still in flight after 15 s)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "body over `[http] max_body_bytes`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "not application/json", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "a field is missing or invalid: `detail` names it", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "over the source's rate, with `Retry-After`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "the database is unavailable: retry", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn receive(
    State(st): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let known = st.webhooks.sources.contains_key(&source);
    let label = if known {
        source.clone()
    } else {
        crate::metrics::UNKNOWN_SOURCE.to_string()
    };
    let r = match handle(st, source, headers, body).await {
        Ok(r) => r,
        Err(p) => p.into_response(),
    };
    let result = if known {
        let replayed = r.headers().contains_key("idempotent-replayed");
        crate::metrics::webhook_result(r.status().as_u16(), replayed)
    } else {
        "unknown_source"
    };
    crate::metrics::webhook_request(&label, result);
    r
}

async fn handle(
    st: AppState,
    name: String,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let src = st.webhooks.sources.get(&name).ok_or_else(|| {
        Problem::not_found(format!(
            "unknown webhook source {name:?}: configure it as a [[webhook_sources]] entry"
        ))
    })?;
    require_json(&headers)?;
    let raw = read_limited(body, &headers, st.config.http.max_body_bytes).await?;
    verify(src.secrets.clone(), &headers, raw.clone(), now_ms() / 1000).await?;
    if let Err(not_until) = src.limiter.check() {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "source {name:?} is over its rate limit; retry in {} ms",
                wait.as_millis()
            ),
        );
        p.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        return Err(p);
    }
    let key = idempotency_key(&headers)?;
    let obj = parse_object(&raw)?;
    let domain = &st.config.desk.domain;
    let message_id = match &key {
        Some(k) => format!(
            "wh.{name}.{}@{domain}",
            hex::encode(Sha256::digest(k.as_bytes()))
        ),
        None => format!("wh.{name}.{:032x}@{domain}", rand::random::<u128>()),
    };
    let region = &st.config.identities.default_phone_region;
    let contact = parse_contact(&obj, &name, &src.default_channel, region, message_id)?;
    let idem = key.map(|k| Idem {
        key: k,
        sha: hex::encode(Sha256::digest(&raw)),
        claimed: false,
    });
    if idem.is_some() {
        maybe_purge(&st);
    }
    let batcher = &st.webhooks.batcher;
    let first = batcher
        .submit(&st.pipeline, contact.clone(), idem.clone())
        .await?;
    if let Reply::Stored(status, body) = first {
        return Ok(answer(status, body, false));
    }
    let mut idem = idem.expect("only keyed requests are not owned");
    if let Claim::Done { status, response } = wait_for_claim(&st, &name, &idem).await? {
        return Ok(answer(status, response, true));
    }
    // Taken over from a dead or failed owner: store it ourselves.
    idem.claimed = true;
    match batcher.submit(&st.pipeline, contact, Some(idem)).await? {
        Reply::Stored(status, body) => Ok(answer(status, body, false)),
        Reply::NotOwned => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "idempotency claim lost",
        )),
    }
}

/// Wait while another request with the same key is in flight. Returns
/// `Done` (replay it) or `Owned` (the claim was released or went stale).
async fn wait_for_claim(st: &AppState, name: &str, idem: &Idem) -> Result<Claim, Problem> {
    let deadline = Instant::now() + IN_FLIGHT_WAIT;
    let store = &st.pipeline.store;
    let mut claim = store.webhook_claim(name, &idem.key, &idem.sha).await?;
    loop {
        match claim {
            Claim::Done { .. } | Claim::Owned => return Ok(claim),
            Claim::Mismatch => {
                return Err(Problem::conflict(format!(
                "Idempotency-Key {:?} was already used for source {name:?} with a different body",
                idem.key
            )))
            }
            Claim::InFlight if Instant::now() > deadline => {
                return Err(Problem::conflict(format!(
                    "a request with Idempotency-Key {:?} is still being processed; retry later",
                    idem.key
                )))
            }
            Claim::InFlight => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        claim = st
            .pipeline
            .store
            .webhook_claim(name, &idem.key, &idem.sha)
            .await?;
    }
}

fn answer(status: u16, body: String, replayed: bool) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut r = (code, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

fn maybe_purge(st: &AppState) {
    let now = now_ms();
    let last = st.webhooks.last_purge.load(Ordering::Relaxed);
    if now - last < 600_000
        || st
            .webhooks
            .last_purge
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let store = st.pipeline.store.clone();
    tokio::spawn(async move {
        match store.webhook_purge().await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "old idempotency keys purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot purge old idempotency keys"),
        }
    });
}

fn too_large(max: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body larger than {max} bytes (http.max_body_bytes)"),
    )
}

/// Read the body, refusing more than `max` bytes without buffering them.
pub(super) async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    max: usize,
) -> Result<Bytes, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            let e = e.into_inner();
            if super::conn::is_body_timeout(e.as_ref()) {
                Problem::new(StatusCode::REQUEST_TIMEOUT, e.to_string())
            } else {
                Problem::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        if buf.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// The optional `Idempotency-Key`: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v.to_str().unwrap_or("").trim();
    if k.is_empty() || k.len() > 255 || !k.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Problem::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(k.to_string()))
}
