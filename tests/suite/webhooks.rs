//! `POST /v1/contacts/{source}` over real HTTP, on SQLite and PostgreSQL:
//! every refusal stores nothing, signatures (with rotation), replay window,
//! rate limit, idempotent retries and concurrent posts.

use crate::common;
use crate::http_common;

use common::Db;
use http_common::*;
use serde_json::{json, Value};

fn call(phone: &str, conv: Option<&str>) -> String {
    let mut v = json!({"contact": {"phone": phone, "name": "Ada Lovelace"}, "subject": "Missed call",
                       "message": "Caller asked about invoice 42"});
    if let Some(c) = conv {
        v["conversation_id"] = json!(c);
    }
    v.to_string()
}

async fn assert_empty(s: &Server, what: &str) {
    assert_eq!(s.counts().await, (0, 0), "{what} stored something");
    let n: i64 = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_requests")
        .fetch_one(s.h.store().pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "{what} left an idempotency record");
}

/// POST `n` chunks of `size` bytes with chunked transfer encoding; the raw answer.
async fn chunked_post(s: &Server, n: usize, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = "POST /v1/contacts/voice HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let _ = c.write_all(head.as_bytes()).await;
    for _ in 0..n {
        let _ = c
            .write_all(format!("{size:x}\r\n{}\r\n", "x".repeat(size)).as_bytes())
            .await;
    }
    let _ = c.write_all(b"0\r\n\r\n").await;
    let mut out = String::new();
    let _ = c.read_to_string(&mut out).await;
    out
}

async fn refusals_store_nothing(db: Db) {
    let s = Server::start(db).await;
    let good = call("+1 415 555 0100", Some("c1"));
    let ts = now();
    let r = s
        .contact_req("nope", &good, SECRET, ts)
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "unknown webhook source \"nope\"").await;
    let sig = format!("v1={}", sign(SECRET, ts, good.as_bytes()));
    let plain = s
        .client
        .post(s.url("/v1/contacts/voice"))
        .header("x-intake-timestamp", ts)
        .header("x-intake-signature", &sig);
    let r = plain
        .try_clone()
        .unwrap()
        .header("content-type", "text/plain")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "unsupported Content-Type \"text/plain\"").await;
    let r = plain.body(good.clone()).send().await.unwrap();
    assert_problem(r, 415, "missing Content-Type").await;
    // A second, contradicting Content-Type is refused too.
    let r = s
        .contact_req("voice", &good, SECRET, ts)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "text/plain").await;
    let big =
        json!({"contact": {"phone": "+14155550100"}, "message": "x".repeat(5000)}).to_string();
    let r = s
        .contact_req("voice", &big, SECRET, ts)
        .header("idempotency-key", "k1")
        .send()
        .await
        .unwrap();
    assert_problem(r, 413, "4096").await;
    // Without Content-Length (chunked), the limit holds while reading.
    let raw = chunked_post(&s, 5, 1000).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.to_lowercase()
            .contains("content-type: application/problem+json"),
        "{raw}"
    );
    assert_empty(&s, "413").await;
    let r = s
        .client
        .post(s.url("/v1/contacts/voice"))
        .header("content-type", "application/json")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "missing X-Intake-Timestamp").await;
    let json_post = || {
        s.client
            .post(s.url("/v1/contacts/voice"))
            .header("content-type", "application/json")
            .header("x-intake-timestamp", ts)
    };
    let r = json_post().body(good.clone()).send().await.unwrap();
    assert_problem(r, 401, "missing X-Intake-Signature").await;
    let r = json_post()
        .header("x-intake-signature", "v1=00ff")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "bad signature").await;
    let r = json_post()
        .header("x-intake-signature", sig.replace("v1=", "sha256="))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "malformed X-Intake-Signature").await;
    let r = s
        .contact_req("voice", &good, "wrong-secret", ts)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "bad signature").await;
    // Signed over another body: the signature covers every byte.
    let r = s
        .contact_req("voice", &good, SECRET, ts)
        .body(good.replace("42", "43"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "bad signature").await;
    let r = s
        .contact_req("voice", &good, SECRET, ts - 301)
        .header("idempotency-key", "k1")
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "stale request").await;
    let r = s
        .contact_req("voice", &good, SECRET, ts + 400)
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "stale request").await;
    assert_empty(&s, "401").await;
    let r = s
        .contact_req("voice", "{\"contact\": ", SECRET, ts)
        .header("idempotency-key", "k1")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed JSON").await;
    let cases = [
        (
            json!({"contact": {"name": "Ada"}, "message": "hi"}),
            "at least one contact point",
        ),
        (json!({"message": "hi"}), "at least one contact point"),
        (
            json!({"contact": {"phone": "12"}, "message": "hi"}),
            "contact.phone: invalid phone number \"12\"",
        ),
        (
            json!({"contact": {"phone": 4155550100u64}, "message": "hi"}),
            "contact.phone must be a string, got a number",
        ),
        (
            json!({"contact": {"handle": "ada"}, "message": "hi"}),
            "contact.handle: invalid messaging handle",
        ),
        (
            json!({"contact": {"email": "not-an-email"}, "message": "hi"}),
            "contact.email: invalid email address",
        ),
        (
            json!({"contact": {"phone": "+14155550100"}}),
            "missing field message",
        ),
        (
            json!({"contact": {"phone": "+14155550100"}, "message": "hi", "public": "no"}),
            "public must be a boolean",
        ),
        (
            json!({"contact": {"phone": "+14155550100"}, "message": "hi", "occurred_at": "yesterday"}),
            "occurred_at",
        ),
        (
            json!({"contact": {"phone": "+14155550100"}, "message": "hi", "convesation_id": "x"}),
            "unknown field convesation_id",
        ),
        (json!([1, 2]), "must be a JSON object"),
    ];
    for (body, needle) in cases {
        let r = s
            .contact_req("voice", &body.to_string(), SECRET, ts)
            .header("idempotency-key", "k1")
            .send()
            .await
            .unwrap();
        assert_problem(r, 422, needle).await;
    }
    assert_empty(&s, "400/422").await;
    // The key used by every refused request is still free.
    let r = s.post("voice", &good, Some("k1")).await;
    assert_eq!(r.status(), 201);
    assert_eq!(s.counts().await, (1, 1));
}

async fn contact_threads_and_rotation(db: Db) {
    let s = Server::start(db).await;
    let body = call("(415) 555-0100", Some("call-8812"));
    // Signed with the previous secret during a rotation.
    let r = s
        .contact_req("voice", &body, OLD_SECRET, now())
        .send()
        .await
        .unwrap();
    let (st, ct, first) = parts(r).await;
    assert_eq!((st, ct.as_str()), (201, "application/json"), "{first}");
    assert_eq!(first["created"], true);
    let again = call("+14155550100", Some("call-8812"));
    let (st, _, second) = parts(s.post("voice", &again, None).await).await;
    assert_eq!(st, 200, "{second}");
    assert_eq!(
        (second["created"].clone(), second["ticket_id"].clone()),
        (json!(false), first["ticket_id"].clone())
    );
    assert_eq!(second["user_id"], first["user_id"]);
    assert_ne!(second["comment_id"], first["comment_id"]);
    // Another conversation on another source with a handle: a new ticket.
    let chat = json!({"contact": {"phone": "+14155550100", "handle": "WhatsApp:4155550100"}, "conversation_id": "call-8812",
                      "message": "hello", "attachments": [{"filename": "a.png", "content_type": "image/png", "url": "https://gw.example/a.png"}]});
    let (st, _, third) = parts(s.post("slow", &chat.to_string(), None).await).await;
    assert_eq!(st, 201, "{third}");
    assert_eq!(third["user_id"], first["user_id"]);
    let doc = s.h.export().await;
    let users = doc["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    let ids: Vec<&Value> = users[0]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["value"])
        .collect();
    assert_eq!(ids, [&json!("+14155550100"), &json!("whatsapp:4155550100")]);
    assert_eq!(users[0]["name"], "Ada Lovelace");
    let t = &doc["tickets"][0];
    assert_eq!(
        (t["channel"].clone(), t["public"].clone()),
        (json!("voice"), json!(true))
    );
    assert_eq!(t["conversation_key"], "voice:call-8812");
    assert_eq!(t["comments"].as_array().unwrap().len(), 2);
    let t2 = &doc["tickets"][1];
    assert_eq!(
        (t2["channel"].clone(), t2["conversation_key"].clone()),
        (json!("chat"), json!("slow:call-8812"))
    );
    assert_eq!(
        t2["comments"][0]["attachments"][0]["url"],
        "https://gw.example/a.png"
    );
}

async fn private_contact_stays_internal(db: Db) {
    let s = Server::start(db).await;
    let mut v: Value = serde_json::from_str(&call("+14155550100", Some("c9"))).unwrap();
    v["public"] = json!(false);
    assert_eq!(s.post("voice", &v.to_string(), None).await.status(), 201);
    // A later contact in the same conversation asks to be public: still internal.
    assert_eq!(
        s.post("voice", &call("+14155550100", Some("c9")), None)
            .await
            .status(),
        200
    );
    let doc = s.h.export().await;
    let t = &doc["tickets"][0];
    assert_eq!(t["public"], false);
    assert!(
        t["comments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["public"] == false),
        "{t}"
    );
}

async fn idempotent_retry(db: Db) {
    let s = Server::start(db).await;
    let body = call("+14155550100", None);
    let r = s.post("voice", &body, Some("req-1")).await;
    assert!(r.headers().get("idempotent-replayed").is_none());
    let (st, _, first) = parts(r).await;
    assert_eq!(st, 201);
    let r = s.post("voice", &body, Some("req-1")).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let (st2, ct, again) = parts(r).await;
    assert_eq!(
        (st2, ct.as_str(), &again),
        (201, "application/json", &first)
    );
    // The same key on another source is another request.
    assert_eq!(s.post("slow", &body, Some("req-1")).await.status(), 201);
    let r = s
        .post("voice", &call("+14155550199", None), Some("req-1"))
        .await;
    assert_problem(r, 409, "already used").await;
    let doc = s.h.export().await;
    assert_eq!(
        doc["users"].as_array().unwrap().len(),
        1,
        "409 must not store the other caller"
    );
    let comments: usize = doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["comments"].as_array().unwrap().len())
        .sum();
    assert_eq!(comments, 2);
}

/// Keys older than 24 h are purged (opportunistically); younger ones stay.
async fn old_keys_are_purged(db: Db) {
    let s = Server::start(db).await;
    let now_ms = now() * 1000;
    let body = call("+14155550100", None);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
    for (key, age_h) in [("old", 25), ("young", 23)] {
        sqlx::query("INSERT INTO webhook_requests (source, idem_key, body_sha256, status, response, created_at) VALUES ('voice', $1, $2, 201, '{}', $3)")
            .bind(key)
            .bind(&sha)
            .bind(now_ms - age_h * 3600 * 1000)
            .execute(s.h.store().pool())
            .await
            .unwrap();
    }
    assert_eq!(
        s.post("voice", &call("+14155550100", None), Some("new"))
            .await
            .status(),
        201
    );
    let mut keys = Vec::new();
    for _ in 0..100 {
        keys = sqlx::query_scalar::<_, String>(
            "SELECT idem_key FROM webhook_requests ORDER BY idem_key",
        )
        .fetch_all(s.h.store().pool())
        .await
        .unwrap();
        if keys.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(keys, ["new", "young"]);
    // The purged key is free again; the young one still answers.
    assert_eq!(
        s.post("voice", &call("+14155550100", None), Some("old"))
            .await
            .status(),
        201
    );
    let (st, _, v) = parts(
        s.post("voice", &call("+14155550100", None), Some("young"))
            .await,
    )
    .await;
    assert_eq!((st, v), (201, json!({})));
}

both_backends!(
    refusals_store_nothing,
    contact_threads_and_rotation,
    private_contact_stays_internal,
    idempotent_retry,
    old_keys_are_purged,
);
