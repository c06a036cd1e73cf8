//! A JMAP session: HTTP (reqwest over rustls) with basic or bearer auth,
//! session discovery, method calls and blob downloads, every request
//! bounded by the mailbox's timeout.

use super::JmapError;
use crate::config::MailboxConfig;
use crate::sources::session_error::LinkError;
use futures::StreamExt;
use reqwest::{RequestBuilder, StatusCode, Url};
use serde_json::{json, Value};
use std::time::Duration;

pub const CORE: &str = "urn:ietf:params:jmap:core";
pub const MAIL: &str = "urn:ietf:params:jmap:mail";

enum Auth {
    Basic(String, String),
    Bearer(String),
}

/// A discovered session.
pub struct Jmap {
    http: reqwest::Client,
    auth: Auth,
    pub api_url: Url,
    download_url: String,
    /// The EventSource endpoint template, when the server offers push.
    pub event_source_url: Option<String>,
    pub account: String,
    /// The server's `maxObjectsInGet` (and at most that many per `Email/set`).
    pub max_objects: usize,
}

/// The HTTP client of a mailbox: its timeout, and its `ca_file` trusted.
/// Over TLS connections are kept alive; plain http (allowed on loopback
/// only) opens one per request, which costs little there, while a local
/// Cyrus answers each request on a kept-alive connection about 2.5 times
/// slower than on a fresh one (docs/BENCHMARKS.md).
fn client(m: &MailboxConfig, dur: Duration) -> Result<reqwest::Client, JmapError> {
    let plain = m.url.as_deref().is_some_and(|u| u.starts_with("http:"));
    let mut b = reqwest::Client::builder()
        .connect_timeout(dur)
        .timeout(dur)
        .pool_max_idle_per_host(if plain { 0 } else { usize::MAX })
        .user_agent(concat!("intake/", env!("CARGO_PKG_VERSION")));
    if let Some(f) = &m.ca_file {
        let pem = std::fs::read(f).map_err(|e| LinkError::Connect(format!("ca_file {f}: {e}")))?;
        for c in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| LinkError::Connect(format!("ca_file {f}: {e}")))?
        {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| LinkError::Connect(format!("HTTP client: {e}")).into())
}

impl Jmap {
    /// Find the session and the mail account, authenticated.
    pub async fn open(m: &MailboxConfig) -> Result<Jmap, JmapError> {
        let dur = Duration::from_secs(m.timeout.max(1));
        let auth = if !m.bearer_token.is_unset() {
            Auth::Bearer(m.bearer_token.resolve().map_err(LinkError::Auth)?)
        } else {
            let pw = m.password.resolve().map_err(LinkError::Auth)?;
            Auth::Basic(m.username.clone(), pw)
        };
        let given = m.url.as_deref().unwrap_or_default();
        let given =
            Url::parse(given).map_err(|e| LinkError::Connect(format!("url {given:?}: {e}")))?;
        let mut j = Jmap {
            http: client(m, dur)?,
            auth,
            api_url: given.clone(),
            download_url: String::new(),
            event_source_url: None,
            account: String::new(),
            max_objects: 500,
        };
        // The session resource itself, or a base URL whose well-known
        // location redirects to it.
        let session = match j.get_session(&given).await? {
            Some(s) => s,
            None => {
                let wk = given
                    .join("/.well-known/jmap")
                    .map_err(|e| LinkError::Connect(e.to_string()))?;
                j.get_session(&wk).await?.ok_or_else(|| {
                    JmapError::Protocol(format!(
                        "neither {given} nor {wk} is a JMAP session resource"
                    ))
                })?
            }
        };
        let (base, s) = session;
        let join = |k: &str| -> Result<String, JmapError> {
            let v = s[k]
                .as_str()
                .ok_or_else(|| JmapError::Protocol(format!("the session has no {k}")))?;
            // Templates keep their braces: join only the part before them.
            let (head, tail) = v.split_at(v.find('{').unwrap_or(v.len()));
            let u = base
                .join(head)
                .map_err(|e| JmapError::Protocol(format!("{k}: {e}")))?;
            Ok(format!("{u}{tail}"))
        };
        j.api_url = Url::parse(&join("apiUrl")?).map_err(|e| JmapError::Protocol(e.to_string()))?;
        j.download_url = join("downloadUrl")?;
        j.event_source_url = join("eventSourceUrl").ok();
        let core = &s["capabilities"][CORE];
        let most = |k: &str| core[k].as_u64().unwrap_or(500).max(1) as usize;
        j.max_objects = most("maxObjectsInGet").min(most("maxObjectsInSet"));
        if s["capabilities"].get(MAIL).is_none() {
            return Err(JmapError::Protocol(
                "the server does not offer JMAP mail (urn:ietf:params:jmap:mail)".into(),
            ));
        }
        j.account = match s["primaryAccounts"][MAIL].as_str() {
            Some(a) => a.to_string(),
            None => s["accounts"]
                .as_object()
                .and_then(|a| a.keys().next().cloned())
                .ok_or_else(|| JmapError::Protocol("the session lists no account".into()))?,
        };
        Ok(j)
    }

    fn authed(&self, r: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Auth::Basic(u, p) => r.basic_auth(u, Some(p)),
            Auth::Bearer(t) => r.bearer_auth(t),
        }
    }

    /// GET a session resource: `None` when the answer is not one.
    async fn get_session(&self, url: &Url) -> Result<Option<(Url, Value)>, JmapError> {
        let r = self.authed(self.http.get(url.clone())).send().await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = checked(r, url.as_str()).await?;
        let base = r.url().clone();
        let v: Value = match r.json().await {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        Ok(v.get("apiUrl").is_some().then_some((base, v)))
    }

    /// Call methods in one request; their responses as (name, arguments).
    /// A method error is a [`JmapError::Protocol`] naming its type.
    pub async fn call(&self, calls: Value) -> Result<Vec<(String, Value)>, JmapError> {
        self.call_allowing(calls, &[]).await
    }

    /// [`call`](Self::call), with the method errors of the types in
    /// `allowed` returned as responses (`("error", {"type": …})`).
    pub async fn call_allowing(
        &self,
        calls: Value,
        allowed: &[&str],
    ) -> Result<Vec<(String, Value)>, JmapError> {
        let body = json!({"using": [CORE, MAIL], "methodCalls": calls});
        let r = self
            .authed(self.http.post(self.api_url.clone()))
            .json(&body)
            .send()
            .await?;
        let v: Value = checked(r, "the API").await?.json().await?;
        let out: Vec<(String, Value)> = v["methodResponses"]
            .as_array()
            .ok_or_else(|| JmapError::Protocol(format!("no methodResponses in {v}")))?
            .iter()
            .map(|r| (r[0].as_str().unwrap_or_default().to_string(), r[1].clone()))
            .collect();
        for (name, args) in &out {
            let kind = args["type"].as_str().unwrap_or_default();
            if name == "error" && !allowed.contains(&kind) {
                return Err(JmapError::Protocol(format!(
                    "method error {kind}: {}",
                    args["description"].as_str().unwrap_or("")
                )));
            }
        }
        Ok(out)
    }

    /// A blob's bytes, kept up to `limit` (the rest is not read); with
    /// `true` when there was more.
    pub async fn download(&self, blob: &str, limit: usize) -> Result<(Vec<u8>, bool), JmapError> {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let u = self
            .download_url
            .replace("{accountId}", &enc(&self.account))
            .replace("{blobId}", &enc(blob))
            .replace("{name}", "message.eml")
            .replace("{type}", &enc("message/rfc822"));
        let r = self.authed(self.http.get(&u)).send().await?;
        let r = checked(r, "a download").await?;
        let mut out = Vec::new();
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > limit {
                out.extend_from_slice(&chunk[..limit - out.len()]);
                return Ok((out, true));
            }
            out.extend_from_slice(&chunk);
        }
        Ok((out, false))
    }

    /// An authenticated streaming GET (the EventSource), without the
    /// request timeout (the caller bounds it).
    pub async fn stream(&self, url: &str) -> Result<reqwest::Response, JmapError> {
        let r = self
            .authed(self.http.get(url))
            .header("Accept", "text/event-stream")
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await?;
        checked(r, "the event source").await
    }
}

/// An HTTP status as an error (401/403: authentication).
async fn checked(r: reqwest::Response, what: &str) -> Result<reqwest::Response, JmapError> {
    let status = r.status();
    if status.is_success() {
        return Ok(r);
    }
    let text: String = r
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            LinkError::Auth(format!("{what} answered {status}: {}", text.trim())).into()
        }
        _ => JmapError::Status(format!("{what} answered {status}: {}", text.trim())),
    })
}
