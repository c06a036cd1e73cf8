//! Talking to Microsoft Graph: the app-only token (OAuth 2.0 client
//! credentials at the tenant's token endpoint, with the client secret),
//! refreshed when Graph says it expired; every request bounded by the
//! mailbox's timeout, `429`/`503` retried after their `Retry-After`; raw
//! MIME downloads kept up to a limit.

use super::GraphError;
use crate::config::MailboxConfig;
use crate::sources::session_error::LinkError;
use futures::StreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Microsoft's global cloud.
pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
const SCOPE: &str = "https://graph.microsoft.com/.default";
/// Throttled answers retried before the session gives up (and backs off).
const THROTTLE_RETRIES: u32 = 5;
/// The longest `Retry-After` honoured within a session.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// A Graph session for one mailbox.
pub struct Graph {
    http: reqwest::Client,
    cfg: MailboxConfig,
    token: String,
    /// `{graph_url}/users/{mailbox}`.
    pub user_url: String,
}

/// The token endpoint of a mailbox.
fn token_url(m: &MailboxConfig) -> String {
    m.token_url.clone().unwrap_or_else(|| {
        format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            m.tenant_id.as_deref().unwrap_or_default()
        )
    })
}

impl Graph {
    /// Get a token; the session is ready to call Graph.
    pub async fn open(m: &MailboxConfig) -> Result<Graph, GraphError> {
        let dur = Duration::from_secs(m.timeout.max(1));
        let mut b = reqwest::Client::builder().connect_timeout(dur).timeout(dur);
        if let Some(f) = &m.ca_file {
            let pem =
                std::fs::read(f).map_err(|e| LinkError::Connect(format!("ca_file {f}: {e}")))?;
            for c in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| LinkError::Connect(format!("ca_file {f}: {e}")))?
            {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| LinkError::Connect(format!("HTTP client: {e}")))?;
        let base = m.graph_url.clone().unwrap_or_else(|| GRAPH_URL.into());
        let mailbox = m.mailbox.as_deref().unwrap_or_default();
        let user_url = format!("{}/users/{}", base.trim_end_matches('/'), encode(mailbox));
        let mut g = Graph {
            http,
            cfg: m.clone(),
            token: String::new(),
            user_url,
        };
        g.refresh().await?;
        Ok(g)
    }

    /// A new access token by client credentials: the client secret, or an
    /// assertion signed with the certificate's key.
    async fn refresh(&mut self) -> Result<(), GraphError> {
        let m = &self.cfg;
        let url = token_url(m);
        let client_id = m.client_id.as_deref().unwrap_or_default();
        let mut form = vec![
            ("client_id", client_id.to_string()),
            ("scope", SCOPE.to_string()),
            ("grant_type", "client_credentials".to_string()),
        ];
        match (&m.client_certificate_file, &m.client_key_file) {
            (Some(cert), Some(key)) => {
                let jwt = super::assertion::client_assertion(cert, key, client_id, &url)
                    .inspect_err(|_| valid(m, false))?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", jwt));
            }
            _ => form.push((
                "client_secret",
                m.client_secret.resolve().map_err(LinkError::Auth)?,
            )),
        }
        let r = self.http.post(&url).form(&form).send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        match v["access_token"].as_str() {
            Some(t) if status.is_success() => {
                self.token = t.to_string();
                valid(m, true);
                Ok(())
            }
            _ => {
                valid(m, false);
                let why = v["error_description"]
                    .as_str()
                    .or(v["error"].as_str())
                    .unwrap_or("no token in the answer");
                let first = why.lines().next().unwrap_or(why);
                Err(LinkError::Auth(format!(
                    "the token endpoint refused the client credentials ({status}): {first}"
                ))
                .into())
            }
        }
    }

    /// Send a request, refreshing the token once when Graph says it
    /// expired, and waiting out throttling (`429`, `503` with
    /// `Retry-After`). Any other non-success status is an error.
    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, GraphError> {
        let mut refreshed = false;
        let mut throttled = 0;
        loop {
            let req = build(
                self.http
                    .request(method.clone(), url)
                    .bearer_auth(&self.token),
            );
            let r = req.send().await?;
            let status = r.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                tracing::info!(mailbox = %self.cfg.name, "Graph says the access token expired: getting a new one");
                self.refresh().await?;
                continue;
            }
            if matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) && throttled < THROTTLE_RETRIES
            {
                throttled += 1;
                let wait = retry_after(&r).min(MAX_RETRY_AFTER);
                tracing::info!(mailbox = %self.cfg.name, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "Graph throttles: waiting as told");
                metrics::counter!("intake_graph_throttled_total", "mailbox" => self.cfg.name.clone()).increment(1);
                tokio::time::sleep(wait).await;
                continue;
            }
            return checked(r, url).await;
        }
    }

    /// GET a JSON resource.
    pub async fn get_json(&mut self, url: &str) -> Result<Value, GraphError> {
        Ok(self.send(Method::GET, url, |r| r).await?.json().await?)
    }

    /// A message's MIME (`$value`) up to `limit` bytes (`true`: there was
    /// more); `None` when the message is gone (deleted since listing).
    pub async fn mime(
        &mut self,
        id: &str,
        limit: usize,
    ) -> Result<Option<(Vec<u8>, bool)>, GraphError> {
        let url = format!("{}/messages/{}/$value", self.user_url, encode(id));
        let r = match self.send(Method::GET, &url, |r| r).await {
            Err(GraphError::NotFound(_)) => return Ok(None),
            r => r?,
        };
        let mut out = Vec::new();
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > limit {
                out.extend_from_slice(&chunk[..limit - out.len()]);
                return Ok(Some((out, true)));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some((out, false)))
    }
}

/// `intake_oauth_token_valid` for the mailbox.
fn valid(m: &MailboxConfig, ok: bool) {
    metrics::gauge!("intake_oauth_token_valid", "mailbox" => m.name.clone())
        .set(f64::from(u8::from(ok)));
}

/// `Retry-After` in seconds (Graph sends seconds), 1 s when absent.
fn retry_after(r: &Response) -> Duration {
    let secs = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(secs)
}

/// A path segment, percent-encoded.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A status as an error, with Graph's own error code and message.
async fn checked(r: Response, url: &str) -> Result<Response, GraphError> {
    let status = r.status();
    if status.is_success() {
        return Ok(r);
    }
    let v: Value = r.json().await.unwrap_or_default();
    let code = v["error"]["code"].as_str().unwrap_or_default();
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    let what = format!("{url} answered {status}: {code} {msg}");
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => LinkError::Auth(what).into(),
        StatusCode::NOT_FOUND => GraphError::NotFound(what),
        StatusCode::GONE => GraphError::Gone(what),
        s if s.is_server_error() && s != StatusCode::INTERNAL_SERVER_ERROR => {
            LinkError::Connect(what).into()
        }
        _ => GraphError::Status(what),
    })
}
