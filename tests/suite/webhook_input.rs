//! Hostile webhook input over real HTTP, on SQLite and PostgreSQL: signature
//! floods refused after a bounded amount of work without stalling
//! `/healthz`, control characters refused naming the field (never a 500,
//! never a row, retried or not), attachment names cleaned as mail's,
//! duplicate JSON keys refused, and a fuzz-style property test over the
//! whole handler.

use crate::common::{Db, Harness};
use crate::http_common::{assert_problem, now, parts, sign, Server, OLD_SECRET, SECRET};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// One source with a rotation secret and bodies up to 2 MiB.
fn extra() -> String {
    format!(
        "[http]\nmax_body_bytes = 2097152\n\
         [[webhook_sources]]\nname = \"voice\"\nsecret = \"{SECRET}\"\nprevious_secret = \"{OLD_SECRET}\"\n\
         rate_per_second = 100000\nburst = 100000\ndefault_channel = \"voice\"\n"
    )
}

async fn server(db: Db) -> Server {
    Server::with(db, &extra()).await
}

fn contact(message: &str) -> Value {
    json!({"contact": {"phone": "+1 415 555 0100", "name": "Ada"}, "subject": "Call", "message": message})
}

/// Rows in every table of the database (migrations bookkeeping excluded).
async fn all_rows(h: &Harness) -> Vec<(String, i64)> {
    let pool = h.store().pool();
    let sql = if h.db.url.starts_with("sqlite") {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name"
    } else {
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename <> '_sqlx_migrations' ORDER BY tablename"
    };
    let tables: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
    assert!(tables.len() >= 10, "tables: {tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
            .fetch_one(pool)
            .await
            .unwrap();
        out.push((t, n));
    }
    out
}

/// A contact post with this signature header and timestamp.
fn flood(s: &Server, body: &str, sig: &str, ts: i64) -> reqwest::RequestBuilder {
    s.client
        .post(s.url("/v1/contacts/voice"))
        .header("content-type", "application/json")
        .header("x-intake-timestamp", ts)
        .header("x-intake-signature", sig)
        .body(body.to_string())
}

/// `n` wrong full-length signatures.
fn wrong(n: usize) -> String {
    vec![format!("v1={}", "0".repeat(64)); n].join(",")
}

async fn signature_floods_are_refused_after_bounded_work(db: Db) {
    let s = server(db).await;
    let body = contact(&"x".repeat(1_000_000)).to_string();
    let before = all_rows(&s.h).await;
    // Thousands of candidates over 1 MB: refused without hashing them all
    // (before the fix: one HMAC over the body per candidate and secret).
    let t = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        flood(&s, &body, &wrong(5000), now()).send(),
    )
    .await
    .expect("hang guard: a signature flood took over 30 s")
    .unwrap();
    assert_problem(r, 401, "more than the 1024 allowed").await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    // Short candidates fit the header but not the count.
    let r = flood(&s, &body, &vec!["v1=00"; 20].join(","), now())
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "20 signatures, more than the 8 allowed").await;
    // Eight wrong candidates (the most allowed): two HMACs, refused quickly.
    let t = Instant::now();
    let r = flood(&s, &body, &wrong(8), now()).send().await.unwrap();
    assert_problem(r, 401, "bad signature").await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(all_rows(&s.h).await, before, "a refusal stored something");
    // A valid signature among a few candidates, old secret, 1 MB body: stored.
    let ts = now();
    let sig = format!(
        "v1=00,v1={},v1={}",
        "f".repeat(64),
        sign(OLD_SECRET, ts, body.as_bytes())
    );
    let r = flood(&s, &body, &sig, ts).send().await.unwrap();
    let (st, _, v) = parts(r).await;
    assert_eq!(st, 201, "{v}");
}

async fn healthz_stays_prompt_during_signature_floods(db: Db) {
    let s = std::sync::Arc::new(server(db).await);
    let body = std::sync::Arc::new(contact(&"y".repeat(1_000_000)).to_string());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut floods = Vec::new();
    for i in 0..6 {
        let (s, body, stop) = (s.clone(), body.clone(), stop.clone());
        floods.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let candidates = if i % 2 == 0 { 3000 } else { 8 };
                let r = flood(&s, &body, &wrong(candidates), now())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 401);
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..15 {
        let t = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            s.client.get(s.url("/healthz")).send(),
        )
        .await
        .expect("hang guard: /healthz took over 20 s")
        .unwrap();
        assert_eq!(r.status(), 200);
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for f in floods {
        sent += tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("hang guard: a flood request never finished")
            .unwrap();
    }
    assert!(sent >= 6, "the floods sent only {sent} requests");
    assert!(
        worst < Duration::from_secs(1),
        "/healthz took {worst:?} while {sent} flood requests ran"
    );
}

/// Bodies with a control character in one field each, and the field the
/// answer must name.
fn control_cases() -> Vec<(Value, &'static str)> {
    let base = contact("hello");
    let with = |path: &[&str], v: Value| {
        let mut b = base.clone();
        let mut cur = &mut b;
        for p in &path[..path.len() - 1] {
            cur = &mut cur[*p];
        }
        cur[path[path.len() - 1]] = v;
        b
    };
    let att = |k: &str, v: &str| {
        let mut a = json!({"filename": "a.png", "content_type": "image/png", "url": "https://gw.example/a"});
        a[k] = json!(v);
        with(&["attachments"], json!([a]))
    };
    vec![
        (with(&["message"], json!("a\u{0}b")), "message"),
        (with(&["message"], json!("vertical\u{b}tab")), "message"),
        (with(&["subject"], json!("Re: \u{0}")), "subject"),
        (with(&["subject"], json!("two\r\nlines")), "subject"),
        (with(&["subject"], json!("form\u{c}feed")), "subject"),
        (
            with(&["conversation_id"], json!("c\u{0}1")),
            "conversation_id",
        ),
        (
            with(&["contact", "name"], json!("Ada\u{0}")),
            "contact.name",
        ),
        (
            with(&["contact", "email"], json!("a\u{0}@x.test")),
            "contact.email",
        ),
        (
            with(&["contact", "handle"], json!("whatsapp:1\u{0}")),
            "contact.handle",
        ),
        (with(&["channel"], json!("voice\u{0}")), "channel"),
        (
            with(&["occurred_at"], json!("2026-11-21T10:00:00Z\u{0}")),
            "occurred_at",
        ),
        (
            att("url", "https://gw.example/a\u{0}"),
            "attachments[0].url",
        ),
        (
            att("url", "https://gw.example/a\r\nX: y"),
            "attachments[0].url",
        ),
        (att("url", "file:///etc/passwd"), "attachments[0].url"),
        (
            att("content_type", "image/png\u{0}"),
            "attachments[0].content_type",
        ),
    ]
}

async fn control_characters_are_refused_and_store_nothing(db: Db) {
    let s = server(db).await;
    let before = all_rows(&s.h).await;
    for (i, (body, field)) in control_cases().into_iter().enumerate() {
        let key = format!("ctl-{i}");
        // Retried with the same key: the same answer, and still no row.
        for _ in 0..3 {
            let r = s.post("voice", &body.to_string(), Some(&key)).await;
            assert_problem(r, 422, field).await;
        }
    }
    assert_eq!(
        all_rows(&s.h).await,
        before,
        "a refused request stored a row"
    );
    // Tab and line breaks are text in a message.
    let ok = contact("line one\r\nline two\tend").to_string();
    let (st, _, v) = parts(s.post("voice", &ok, Some("ctl-ok")).await).await;
    assert_eq!(st, 201, "{v}");
    let doc = s.h.export().await;
    let body = doc["tickets"][0]["comments"][0]["body"]
        .as_str()
        .unwrap_or_default();
    assert!(body.contains("line two\tend"), "{doc}");
    let q: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
        .fetch_one(s.h.store().pool())
        .await
        .unwrap();
    assert_eq!(q, 0);
}

async fn attachment_names_are_cleaned_as_mail_ones(db: Db) {
    let s = server(db).await;
    let names = [
        "../../etc/passwd",
        "a\u{0}b\r\n.txt",
        "..",
        "C:\\Users\\x\\report.pdf",
        "  spaced.txt  ",
    ];
    let atts: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"filename": n, "url": format!("https://gw.example/{i}")}))
        .chain([json!({"url": "HTTPS://gw.example/last"})])
        .collect();
    let mut body = contact("files");
    body["attachments"] = json!(atts);
    let (st, _, v) = parts(s.post("voice", &body.to_string(), None).await).await;
    assert_eq!(st, 201, "{v}");
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT filename, url FROM attachments ORDER BY id")
            .fetch_all(s.h.store().pool())
            .await
            .unwrap();
    let want: Vec<(String, String)> = vec![
        ("passwd".into(), "https://gw.example/0".into()),
        ("ab.txt".into(), "https://gw.example/1".into()),
        ("attachment-3".into(), "https://gw.example/2".into()),
        ("report.pdf".into(), "https://gw.example/3".into()),
        ("spaced.txt".into(), "https://gw.example/4".into()),
        ("attachment-6".into(), "HTTPS://gw.example/last".into()),
    ];
    assert_eq!(stored, want);
    // The same names in a mail are stored the same: one cleaner for both.
    let cleaned: Vec<String> = names
        .iter()
        .map(|n| intake::sanitize::clean_filename(n))
        .collect();
    assert_eq!(
        cleaned,
        ["passwd", "ab.txt", "", "report.pdf", "spaced.txt"]
    );
    let mail = "From: Bob <bob@cust.test>\nTo: support@desk.test\nSubject: files\n\
                Message-ID: <files@cust.test>\nMIME-Version: 1.0\n\
                Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee\n\
                --b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\n\nx\n\
                --b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=\"C:\\\\Users\\\\x\\\\report.pdf\"\n\ny\n--b--\n";
    s.h.mail(mail).await;
    let from_mail: Vec<String> =
        sqlx::query_scalar("SELECT filename FROM attachments WHERE url IS NULL ORDER BY id")
            .fetch_all(s.h.store().pool())
            .await
            .unwrap();
    assert_eq!(from_mail, ["passwd", "report.pdf"]);
}

async fn duplicate_json_keys_are_refused(db: Db) {
    let s = server(db).await;
    let before = all_rows(&s.h).await;
    let cases = [
        (
            r#"{"contact": {"phone": "+14155550100"}, "message": "hi", "public": true, "public": false}"#,
            "duplicate key \"public\"",
        ),
        (
            r#"{"contact": {"phone": "+14155550100", "phone": "+14155550199"}, "message": "hi"}"#,
            "duplicate key \"phone\"",
        ),
        (
            r#"{"contact": {"phone": "+14155550100"}, "message": "hi", "attachments": [{"url": "https://a.test", "url": "https://b.test"}]}"#,
            "duplicate key \"url\"",
        ),
    ];
    for (body, needle) in cases {
        let r = s.post("voice", body, Some("dup")).await;
        assert_problem(r, 400, needle).await;
    }
    assert_eq!(
        all_rows(&s.h).await,
        before,
        "a refused request stored a row"
    );
}

crate::both_backends!(
    signature_floods_are_refused_after_bounded_work,
    healthz_stays_prompt_during_signature_floods,
    control_characters_are_refused_and_store_nothing,
    attachment_names_are_cleaned_as_mail_ones,
    duplicate_json_keys_are_refused,
);

// ---- Fuzz-style property test over the whole handler ----

/// Text with a good share of control characters, quotes and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9 +@.:_-]{0,20}",
        1 => any::<String>(),
        1 =>
        prop::collection::vec(
            prop_oneof![
                Just('\0'),
                Just('\r'),
                Just('\n'),
                Just('\t'),
                Just('\u{b}'),
                Just('\u{85}'),
                Just('"'),
                Just('\\'),
                Just('/'),
                Just('.'),
                any::<char>()
            ],
            0..12
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

/// Mostly present.
fn often<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::weighted(0.9, s)
}

/// A JSON value of any type, shallow.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::from),
        prop::collection::vec(text().prop_map(Value::from), 0..3).prop_map(Value::from),
    ]
}

/// A value for a field: mostly plausible, sometimes anything.
fn field(plausible: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(plausible).prop_map(Value::from),
        1 => any_value(),
    ]
}

fn contact_body() -> impl Strategy<Value = Value> {
    let contact = (
        often(field(&[
            "+1 415 555 0100",
            "+14155550199",
            "(415) 555-0123",
        ])),
        prop::option::of(field(&["ada@cust.test", "bob@other.test", "Ada@Cust.Test"])),
        prop::option::of(field(&[
            "whatsapp:4155550100",
            "telegram:@ada",
            "sms:+14155550100",
        ])),
        prop::option::of(text()),
    )
        .prop_map(|(p, e, h, n)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [("phone", p), ("email", e), ("handle", h)] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            if let Some(n) = n {
                m.insert("name".into(), n.into());
            }
            Value::Object(m)
        });
    let attachment = (
        prop::option::of(text()),
        prop::option::of(field(&["image/png", "audio/mpeg", ""])),
        field(&[
            "https://gw.example/r/1",
            "http://gw.example",
            "ftp://x",
            "https://",
        ]),
    )
        .prop_map(|(f, c, u)| {
            let mut m = json!({"url": u});
            if let Some(f) = f {
                m["filename"] = f.into();
            }
            if let Some(c) = c {
                m["content_type"] = c;
            }
            m
        });
    (
        prop::option::of(field(&["voice", "chat", "Voice!"])),
        often(contact),
        prop::option::of(field(&["call-1", "call-2", ""])),
        prop::option::of(text()),
        often(text()),
        prop::option::of(field(&["true"]).prop_map(|v| match v {
            Value::String(_) => Value::Bool(false),
            v => v,
        })),
        prop::option::of(field(&["2026-11-21T10:00:00Z", "yesterday"])),
        prop::option::of(prop::collection::vec(attachment, 0..3)),
        prop::option::of(("[a-z_]{1,8}", any_value())),
    )
        .prop_map(|(ch, c, conv, subj, msg, public, at, atts, unknown)| {
            let mut m = serde_json::Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            };
            put("channel", ch);
            put("contact", c);
            put("conversation_id", conv);
            put("subject", subj.map(Value::from));
            put("message", msg.map(Value::from));
            put("public", public);
            put("occurred_at", at);
            put("attachments", atts.map(Value::from));
            if let Some((k, v)) = unknown {
                m.insert(k, v);
            }
            Value::Object(m)
        })
}

/// A valid contact whose free texts (name, subject, message, file names)
/// are arbitrary: reaches storage whenever the texts are acceptable.
fn nearly_valid() -> impl Strategy<Value = Vec<u8>> {
    (text(), text(), text(), prop::collection::vec(text(), 0..3)).prop_map(|(n, subj, msg, files)| {
        let atts: Vec<Value> = files
            .iter()
            .enumerate()
            .map(|(i, f)| json!({"filename": f, "url": format!("https://gw.example/{i}")}))
            .collect();
        json!({"contact": {"phone": "+14155550100", "name": n}, "subject": subj, "message": msg, "attachments": atts})
            .to_string()
            .into_bytes()
    })
}

/// The body bytes: a contact object (sometimes with a key repeated), any
/// JSON value, or raw bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => nearly_valid(),
        6 => (contact_body(), prop::bool::weighted(0.15)).prop_map(|(v, dup)| {
            let text = v.to_string();
            if dup && text.len() > 2 {
                format!("{}, \"message\": \"again\"}}", &text[..text.len() - 1]).into_bytes()
            } else {
                text.into_bytes()
            }
        }),
        1 => any_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// How the request is signed and labelled.
#[derive(Debug, Clone)]
struct Headers {
    signature: u8,
    timestamp: u8,
    content_type: u8,
    key: Option<String>,
    noise: Vec<(String, String)>,
}

/// `0` (the right thing) six times in ten, else any of `0..n`.
fn mostly_right(n: u8) -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(0u8), 4 => 0..n]
}

fn headers() -> impl Strategy<Value = Headers> {
    (
        mostly_right(6),
        mostly_right(5),
        mostly_right(4),
        prop::option::of(prop_oneof![4 => "[a-z0-9-]{1,12}", 1 => "[ -~]{0,300}"]),
        prop::collection::vec(("x-[a-z]{1,10}", "[ -~]{0,40}"), 0..3),
    )
        .prop_map(|(signature, timestamp, content_type, key, noise)| Headers {
            signature,
            timestamp,
            content_type,
            key,
            noise,
        })
}

fn request(s: &Server, h: &Headers, body: &[u8]) -> reqwest::RequestBuilder {
    let now = now();
    let ts = match h.timestamp {
        0 | 1 => Some(now.to_string()),
        2 => Some((now - 400).to_string()),
        3 => Some("soon".to_string()),
        _ => None,
    };
    let signed = |secret: &str| {
        let t: i64 = ts.as_deref().and_then(|t| t.parse().ok()).unwrap_or(now);
        sign(secret, t, body)
    };
    let sig = match h.signature {
        0 | 1 => Some(format!("v1={}", signed(SECRET))),
        2 => Some(format!("v1=00, v1={}", signed(OLD_SECRET))),
        3 => Some(vec!["v1=00"; 20].join(",")),
        4 => Some(format!("v1={}", signed("wrong"))),
        _ => None,
    };
    let mut r = s
        .client
        .post(s.url("/v1/contacts/voice"))
        .body(body.to_vec());
    match h.content_type {
        0 | 1 => r = r.header("content-type", "application/json"),
        2 => r = r.header("content-type", "application/json; charset=utf-8"),
        _ => r = r.header("content-type", "text/plain"),
    }
    if let Some(ts) = ts {
        r = r.header("x-intake-timestamp", ts);
    }
    if let Some(sig) = sig {
        r = r.header("x-intake-signature", sig);
    }
    if let Some(k) = &h.key {
        r = r.header("idempotency-key", k.as_str());
    }
    for (k, v) in &h.noise {
        r = r.header(k.as_str(), v.as_str());
    }
    r
}

fn fuzz(db: Db) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(server(db));
    let mut runner = TestRunner::new(PropConfig {
        cases: 96,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let stats = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
    let result = runner.run(&(headers(), body()), |(h, body)| {
        rt.block_on(async {
            let before = all_rows(&s.h).await;
            let r = tokio::time::timeout(Duration::from_secs(30), request(&s, &h, &body).send())
                .await
                .map_err(|_| TestCaseError::fail("hang guard: no answer in 30 s"))?
                .map_err(|e| TestCaseError::fail(format!("transport error: {e}")))?;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            *stats.borrow_mut().entry(status).or_default() += 1;
            prop_assert!(
                status < 500,
                "answer {status} {text} to {h:?} {}",
                String::from_utf8_lossy(&body)
            );
            if !(200..300).contains(&status) {
                let after = all_rows(&s.h).await;
                prop_assert_eq!(&after, &before, "refusal {} {} stored a row", status, text);
            }
            Ok::<(), TestCaseError>(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The server is still alive and the JSON paths were reached.
    let stats = stats.into_inner();
    eprintln!("webhook fuzz on {db:?}: answers {stats:?}");
    let reached = |code: u16| stats.get(&code).copied().unwrap_or(0);
    assert!(
        reached(201) + reached(200) > 0,
        "no case was stored: {stats:?}"
    );
    assert!(reached(422) > 0 && reached(401) > 0, "{stats:?}");
    let health = rt.block_on(async {
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(health, 200);
}

/// The strategies nest deeply: run on a thread with room for them.
fn with_stack(db: Db) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || fuzz(db))
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

#[test]
fn webhook_fuzz_sqlite() {
    with_stack(Db::Sqlite)
}

#[test]
fn webhook_fuzz_postgres() {
    with_stack(Db::Postgres)
}
