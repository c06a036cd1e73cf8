//! A local Microsoft Graph for the Graph source's tests: no Microsoft
//! endpoint is reachable from here, so this follows the documented request
//! and response shapes — the v2.0 token endpoint (client credentials,
//! `invalid_client` for a wrong or revoked secret), `mailFolders` by
//! well-known name, `$filter=displayName eq '…'` and `childFolders`,
//! `messages/delta` with `$select`, pages of `odata.maxpagesize` joined by
//! `@odata.nextLink` (`$skiptoken`) and ending in `@odata.deltaLink`
//! (`$deltatoken`), `@removed` for messages deleted or moved out, `410
//! Gone` for a delta token it no longer knows, `/messages/{id}/$value`,
//! PATCH `isRead`, POST `/move` (a moved message gets a new id, as in
//! Exchange), DELETE, `401 InvalidAuthenticationToken` for an expired
//! token and `429`/`503` with `Retry-After` when told to throttle.

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Msg {
    pub id: String,
    pub folder: String,
    pub raw: Vec<u8>,
    pub read: bool,
    seq: u64,
}

#[derive(Default)]
pub struct Box_ {
    pub messages: Vec<Msg>,
    /// (id, folder it left, seq).
    removed: Vec<(String, String, u64)>,
    seq: u64,
    next_id: u64,
    pub(super) tokens: HashMap<String, Instant>,
    rounds: HashMap<u64, Vec<Value>>,
    pub secret: String,
    pub token_life: Duration,
    /// The next this many Graph requests answer 429.
    pub throttle: u32,
    /// Requests answered 429 so far.
    pub throttled: u32,
    pub token_requests: u32,
    /// Delta tokens below this are forgotten (410).
    pub oldest_delta: u64,
    /// The next `$value` of this id finds it deleted first.
    pub vanish_on_fetch: Option<String>,
    /// `$value` of this id always answers 500 (Exchange cannot convert it).
    pub broken: Option<String>,
    /// Certificate credentials accepted: the RSA public key (PKCS#1 DER)
    /// and the certificate's `x5t` (SHA-1 thumbprint, base64url).
    pub certificate: Option<(Vec<u8>, String)>,
    pub(super) port: u16,
}

pub struct GraphStandIn {
    pub port: u16,
    pub state: Arc<Mutex<Box_>>,
    task: tokio::task::JoinHandle<()>,
}

/// (id, display name, parent): the inbox, a top-level folder and a child
/// folder of the inbox.
const FOLDERS: [(&str, &str, &str); 3] = [
    ("inbox", "Inbox", ""),
    ("imported-id", "Imported", ""),
    ("support-id", "Support", "inbox"),
];

impl GraphStandIn {
    pub async fn start(secret: &str) -> GraphStandIn {
        let state = Arc::new(Mutex::new(Box_ {
            secret: secret.into(),
            token_life: Duration::from_secs(3600),
            ..Default::default()
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        state.lock().unwrap().port = port;
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        GraphStandIn { port, state, task }
    }

    pub fn graph_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1.0", self.port)
    }
    pub fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/tenant-1/oauth2/v2.0/token", self.port)
    }

    /// New mail arrives in the inbox.
    pub fn deliver(&self, mails: &[Vec<u8>]) {
        self.deliver_to("inbox", mails)
    }

    /// New mail arrives in the folder with id `folder`.
    pub fn deliver_to(&self, folder: &str, mails: &[Vec<u8>]) {
        let mut s = self.state.lock().unwrap();
        for raw in mails {
            s.seq += 1;
            s.next_id += 1;
            let (id, seq) = (format!("AAMkAD{:06}", s.next_id), s.seq);
            s.messages.push(Msg {
                id,
                folder: folder.into(),
                raw: raw.clone(),
                read: false,
                seq,
            });
        }
    }

    /// (messages in `folder`, how many of them read).
    pub fn count(&self, folder: &str) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        let v: Vec<&Msg> = s.messages.iter().filter(|m| m.folder == folder).collect();
        (v.len(), v.iter().filter(|m| m.read).count())
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Box_) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl Drop for GraphStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) fn reply(status: StatusCode, v: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

async fn handle(
    State(st): State<Arc<Mutex<Box_>>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let max_page: usize = req
        .headers()
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("odata.maxpagesize="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let mut s = st.lock().unwrap();
    if path.ends_with("/oauth2/v2.0/token") {
        return super::graph_token::grant(&mut s, &path, &body);
    }
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    if s.tokens.get(token).is_none_or(|exp| *exp <= Instant::now()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        );
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        s.throttled += 1;
        // Alternately 429 and 503, both with Retry-After, as Graph sends them.
        let mut r = match s.throttled % 2 {
            1 => error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests, please try again later.",
            ),
            _ => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceNotAvailable",
                "The service is temporarily unavailable.",
            ),
        };
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
        return r;
    }
    let Some(rest) = path.strip_prefix("/v1.0/users/support@desk.test/") else {
        return error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            "The requested user is invalid.",
        );
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["mailFolders"]) | ("GET", ["mailFolders", _, "childFolders"]) => {
            let want = q
                .get("$filter")
                .and_then(|f| f.strip_prefix("displayName eq '"))
                .map(|f| f.trim_end_matches('\''));
            let parent = if parts.len() == 1 { "" } else { parts[1] };
            let v: Vec<Value> = FOLDERS
                .iter()
                .filter(|(id, name, up)| {
                    *up == parent && *id != "inbox" && want.is_none_or(|w| w == *name)
                })
                .map(|(id, name, _)| json!({"id": id, "displayName": name}))
                .collect();
            reply(StatusCode::OK, json!({"value": v}))
        }
        ("GET", ["mailFolders", name]) => match FOLDERS
            .iter()
            .find(|(id, _, _)| id.eq_ignore_ascii_case(name))
        {
            Some((id, display, _)) => {
                reply(StatusCode::OK, json!({"id": id, "displayName": display}))
            }
            None => error(
                StatusCode::NOT_FOUND,
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            ),
        },
        ("GET", ["mailFolders", folder, "messages", "delta"]) => {
            delta(&mut s, folder, &q, max_page)
        }
        ("GET", ["messages", id, "$value"]) => {
            if s.broken.as_deref() == Some(*id) {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ErrorInternalServerError",
                    "An internal server error occurred.",
                );
            }
            if s.vanish_on_fetch.as_deref() == Some(*id) {
                s.vanish_on_fetch = None;
                remove(&mut s, id);
            }
            match s.messages.iter().find(|m| m.id == *id) {
                Some(m) => Response::builder()
                    .header("content-type", "text/plain")
                    .body(Body::from(m.raw.clone()))
                    .unwrap(),
                None => error(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        ("PATCH", ["messages", id]) => {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            s.seq += 1;
            let seq = s.seq;
            match s.messages.iter_mut().find(|m| m.id == *id) {
                Some(m) => {
                    if let Some(r) = v["isRead"].as_bool() {
                        m.read = r;
                        m.seq = seq;
                    }
                    reply(StatusCode::OK, json!({"id": m.id, "isRead": m.read}))
                }
                None => error(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        ("POST", ["messages", id, "move"]) => {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let to = v["destinationId"].as_str().unwrap_or_default().to_string();
            let Some(mut m) = remove(&mut s, id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            s.seq += 1;
            s.next_id += 1;
            (m.id, m.folder, m.seq) = (format!("AAMkAD{:06}", s.next_id), to, s.seq);
            let out = json!({"id": m.id, "parentFolderId": m.folder});
            s.messages.push(m);
            reply(StatusCode::CREATED, out)
        }
        ("DELETE", ["messages", id]) => match remove(&mut s, id) {
            Some(_) => Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::empty())
                .unwrap(),
            None => error(
                StatusCode::NOT_FOUND,
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            ),
        },
        _ => error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("unsupported {method} {path}"),
        ),
    }
}

fn remove(s: &mut Box_, id: &str) -> Option<Msg> {
    let i = s.messages.iter().position(|m| m.id == id)?;
    let m = s.messages.remove(i);
    s.seq += 1;
    let seq = s.seq;
    s.removed.push((m.id.clone(), m.folder.clone(), seq));
    Some(m)
}

/// One page of a delta round: a new round (no token, or `$deltatoken`)
/// snapshots what changed since; `$skiptoken` pages through it.
fn delta(s: &mut Box_, folder: &str, q: &HashMap<String, String>, max_page: usize) -> Response {
    let base = format!(
        "http://127.0.0.1:{}/v1.0/users/support@desk.test/mailFolders/{folder}/messages/delta",
        s.port
    );
    let (round, offset) = match q.get("$skiptoken").and_then(|t| t.split_once('-')) {
        Some((r, o)) => (
            r.parse::<u64>().unwrap_or(0),
            o.parse::<usize>().unwrap_or(0),
        ),
        None => {
            let since: u64 = match q.get("$deltatoken") {
                Some(t) => match t.parse::<u64>() {
                    Ok(n) if n >= s.oldest_delta => n,
                    _ => {
                        return error(
                            StatusCode::GONE,
                            "SyncStateNotFound",
                            "The sync state generation is not found. Resync required.",
                        )
                    }
                },
                None => 0,
            };
            let mut items: Vec<(u64, Value)> = s
                .messages
                .iter()
                .filter(|m| m.folder == folder && m.seq > since)
                .map(|m| {
                    (
                        m.seq,
                        json!({"@odata.etag": format!("W/\"{}\"", m.seq), "id": m.id}),
                    )
                })
                .collect();
            if since > 0 {
                items.extend(s.removed.iter().filter(|(_, f, q)| f == folder && *q > since).map(|(id, _, q)| {
                    (*q, json!({"@odata.type": "#microsoft.graph.message", "id": id, "@removed": {"reason": "deleted"}}))
                }));
            }
            items.sort_by_key(|(q, _)| *q);
            let mut list: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
            list.push(json!({"__end": s.seq}));
            s.seq += 1;
            let round = s.seq;
            s.rounds.insert(round, list);
            (round, 0)
        }
    };
    let list = s.rounds.get(&round).cloned().unwrap_or_default();
    let end = list.last().and_then(|v| v["__end"].as_u64()).unwrap_or(0);
    let items = &list[..list.len().saturating_sub(1)];
    let page: Vec<Value> = items.iter().skip(offset).take(max_page).cloned().collect();
    let mut v = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(message)", "value": page});
    let next = offset + max_page;
    if next < items.len() {
        v["@odata.nextLink"] = json!(format!("{base}?$skiptoken={round}-{next}"));
    } else {
        v["@odata.deltaLink"] = json!(format!("{base}?$deltatoken={end}"));
    }
    reply(StatusCode::OK, v)
}
