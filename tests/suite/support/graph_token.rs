//! The Microsoft identity platform's v2.0 token endpoint for the local
//! Graph (support::graph_stand_in): client credentials by secret or by a
//! client assertion (RS256 JWT naming the certificate by `x5t`), answered
//! as the platform documents, `invalid_client` with its AADSTS code when
//! refused.

use super::graph_stand_in::{reply, Box_};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

/// Answer a token request of `path` with form `body`.
pub fn grant(s: &mut Box_, path: &str, body: &[u8]) -> Response {
    s.token_requests += 1;
    let form: HashMap<String, String> = url_form(body);
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("scope").map(String::as_str) == Some("https://graph.microsoft.com/.default")
        && form.get("client_id").map(String::as_str) == Some("app-1");
    let url = format!("http://127.0.0.1:{}{path}", s.port);
    let (credentials, error) = match form.get("client_assertion") {
        Some(jwt) => (
            form.get("client_assertion_type").map(String::as_str)
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                && assertion_ok(s.certificate.as_ref(), jwt, &url),
            "AADSTS700027: Client assertion failed signature validation.",
        ),
        None => (
            form.get("client_secret") == Some(&s.secret),
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        ),
    };
    if !ok || !credentials {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": error}),
        );
    }
    let token = format!("tok-{}", rand::random::<u64>());
    let life = s.token_life;
    s.tokens.insert(token.clone(), Instant::now() + life);
    reply(
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": life.as_secs(), "ext_expires_in": life.as_secs(), "access_token": token}),
    )
}

/// A client assertion signed RS256 by the registered key, naming the
/// registered certificate, for this endpoint and client, not expired.
fn assertion_ok(cert: Option<&(Vec<u8>, String)>, jwt: &str, url: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some((public, x5t)) = cert else {
        return false;
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts[..] else { return false };
    let json = |p: &str| -> Value {
        b64.decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    let (header, claims) = (json(h), json(c));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public,
    );
    header["alg"] == "RS256"
        && header["x5t"] == x5t.as_str()
        && claims["aud"] == url
        && claims["iss"] == "app-1"
        && claims["sub"] == "app-1"
        && claims["exp"].as_u64().is_some_and(|e| e > now)
        && b64
            .decode(sig)
            .is_ok_and(|s| key.verify(format!("{h}.{c}").as_bytes(), &s).is_ok())
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
