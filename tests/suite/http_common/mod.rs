//! HTTP test helpers: the real router served on 127.0.0.1:0 in-process,
//! a reqwest client, and request signing as a gateway does it.
#![allow(dead_code)]

use crate::common::{Db, Harness};
use hmac::{Hmac, Mac};
use intake::http::{router, AppState};
use serde_json::Value;
use sha2::Sha256;
use std::sync::Arc;

pub const SECRET: &str = "s3cret-current";
pub const OLD_SECRET: &str = "s3cret-previous";
pub const ADMIN: &str = "admin-t0ken";

/// Two sources: `voice` (generous rate, rotation secret) and `slow` (1/s, burst 2).
pub fn extra() -> String {
    format!(
        "[http]\nadmin_token = \"{ADMIN}\"\nmax_body_bytes = 4096\n\
         [[webhook_sources]]\nname = \"voice\"\nsecret = \"{SECRET}\"\nprevious_secret = \"{OLD_SECRET}\"\n\
         rate_per_second = 10000\nburst = 10000\ndefault_channel = \"voice\"\n\
         [[webhook_sources]]\nname = \"slow\"\nsecret = \"{SECRET}\"\nrate_per_second = 1\nburst = 2\ndefault_channel = \"chat\"\n"
    )
}

/// A running server over a fresh database.
pub struct Server {
    pub h: Harness,
    pub base: String,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start(db: Db) -> Server {
        Self::with(db, &extra()).await
    }

    pub async fn with(db: Db, extra: &str) -> Server {
        let h = Harness::with(db, extra).await;
        let state = AppState::new(h.pipeline.clone(), Arc::new(h.cfg.clone())).expect("app state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(200)
            .build()
            .unwrap();
        Server {
            h,
            base: format!("http://{addr}"),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A contact post signed with `secret` at `ts`.
    pub fn contact_req(
        &self,
        source: &str,
        body: &str,
        secret: &str,
        ts: i64,
    ) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(&format!("/v1/contacts/{source}")))
            .header("content-type", "application/json")
            .header("x-intake-timestamp", ts.to_string())
            .header(
                "x-intake-signature",
                format!("v1={}", sign(secret, ts, body.as_bytes())),
            )
            .body(body.to_string())
    }

    /// Post a correctly signed contact now; `key` is the Idempotency-Key.
    pub async fn post(&self, source: &str, body: &str, key: Option<&str>) -> reqwest::Response {
        let mut r = self.contact_req(source, body, SECRET, now());
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.send().await.unwrap()
    }

    /// An admin request with the right token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN)
    }

    /// (users, tickets) stored.
    pub async fn counts(&self) -> (usize, usize) {
        let doc = self.h.export().await;
        (
            doc["users"].as_array().unwrap().len(),
            doc["tickets"].as_array().unwrap().len(),
        )
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Hex HMAC-SHA256(secret, "<ts>.<body>").
pub fn sign(secret: &str, ts: i64, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("{ts}.").as_bytes());
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// Status, content type and JSON body of a response.
pub async fn parts(r: reqwest::Response) -> (u16, String, Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ct, v)
}

/// Assert a problem+json answer with `status` whose detail contains `needle`.
pub async fn assert_problem(r: reqwest::Response, status: u16, needle: &str) -> Value {
    let (s, ct, v) = parts(r).await;
    assert_eq!(s, status, "{v}");
    assert_eq!(ct, "application/problem+json", "{v}");
    assert_eq!(v["status"], status);
    let d = v["detail"].as_str().unwrap_or_default();
    assert!(d.contains(needle), "detail {d:?} should contain {needle:?}");
    v
}
