//! A front for the test Cyrus that adds the two things Debian's build of
//! Cyrus 3.6 cannot show: bearer tokens (Cyrus here knows only passwords)
//! and push (built without it, its EventSource answers 204). Requests with
//! `Authorization: Bearer TOKEN` are passed to Cyrus with the user's
//! password; the EventSource (RFC 8620 §7.3) is served here, sending a
//! `state` event whenever the account's Email state on Cyrus changes
//! (looked at every 100 ms); and, when told, `Email/changes` answered
//! `cannotCalculateChanges` and the download of a blob holding some bytes
//! answered 500. Everything else is Cyrus's own answer.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
struct Front {
    upstream: String,
    token: String,
    user: String,
    pass: String,
    streams: Arc<AtomicUsize>,
    refuse_changes: Arc<std::sync::atomic::AtomicBool>,
    refuse_download: Refusal,
}

type Refusal = Arc<std::sync::Mutex<Option<Vec<u8>>>>;

pub struct JmapFront {
    pub port: u16,
    streams: Arc<AtomicUsize>,
    /// While set, `Email/changes` is answered `cannotCalculateChanges`, as a
    /// server does for a state older than it keeps changes for.
    pub refuse_changes: Arc<std::sync::atomic::AtomicBool>,
    /// While set, a download whose bytes hold these is answered 500, as a
    /// server does for a blob it cannot read.
    pub refuse_download: Refusal,
    task: tokio::task::JoinHandle<()>,
}

impl JmapFront {
    pub async fn start(cyrus_http: u16, token: &str, user: &str, pass: &str) -> JmapFront {
        let streams = Arc::new(AtomicUsize::new(0));
        let refuse_changes = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refuse_download = Refusal::default();
        let f = Front {
            refuse_changes: refuse_changes.clone(),
            refuse_download: refuse_download.clone(),
            upstream: format!("http://127.0.0.1:{cyrus_http}"),
            token: token.into(),
            user: user.into(),
            pass: pass.into(),
            streams: streams.clone(),
        };
        let app = axum::Router::new().fallback(handle).with_state(f);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        JmapFront {
            port,
            streams,
            refuse_changes,
            refuse_download,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/jmap/", self.port)
    }

    /// EventSource connections opened so far.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }
}

impl Drop for JmapFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn email_state(f: &Front) -> Option<String> {
    let body = serde_json::json!({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
        "methodCalls": [["Email/get", {"accountId": f.user, "ids": []}, "s"]]});
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/jmap/", f.upstream))
        .basic_auth(&f.user, Some(&f.pass))
        .json(&body)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["methodResponses"][0][1]["state"]
        .as_str()
        .map(str::to_string)
}

async fn handle(State(f): State<Front>, req: Request) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if auth != format!("Bearer {}", f.token) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .body(Body::from("bearer token required"))
            .unwrap();
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if path.starts_with("/jmap/eventsource/") {
        f.streams.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(8);
        tokio::spawn(async move {
            let mut last = email_state(&f).await;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = email_state(&f).await;
                if now.is_some() && now != last {
                    let data = serde_json::json!({"@type": "StateChange",
                        "changed": {f.user.clone(): {"Email": now.clone().unwrap()}}});
                    if tx
                        .send(Ok(format!("event: state\ndata: {data}\n\n")))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    last = now;
                }
            }
        });
        let stream = tokio_stream_from(rx);
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    let method = req.method().clone();
    let body = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    if f.refuse_changes.load(Ordering::SeqCst) && body.windows(13).any(|w| w == b"Email/changes") {
        let v = serde_json::json!({"methodResponses": [["error", {"type": "cannotCalculateChanges"}, "c"]], "sessionState": "0"});
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap();
    }
    let up = reqwest::Client::new()
        .request(method, format!("{}{path}", f.upstream))
        .basic_auth(&f.user, Some(&f.pass))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = up.status();
    let bytes = up.bytes().await.unwrap_or_default();
    let refused = f.refuse_download.lock().unwrap().clone();
    if let Some(marker) = refused {
        if path.starts_with("/jmap/download/") && bytes.windows(marker.len()).any(|w| w == marker) {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Body::from("cannot read this blob"))
                .unwrap();
        }
    }
    Response::builder()
        .status(status.as_u16())
        .body(Body::from(bytes))
        .unwrap()
}

/// An mpsc receiver as a stream of body chunks.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
