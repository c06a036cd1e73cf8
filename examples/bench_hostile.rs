//! Hostile-input benchmark: one worst-case input per process, its time and the
//! process's peak RSS (VmHWM from /proc/self/status) on one JSON line.
//!
//!   bench_hostile mail CASE N [DATABASE_URL]   # parse+classify (and the whole pipeline into DATABASE_URL)
//!   bench_hostile webhook CANDIDATES BODY_BYTES # one request to the real HTTP router on loopback
//!   bench_hostile cases                         # the mail cases and what N means for each
//!
//! `normal N` is an ordinary mail of N bytes, the yardstick for the others
//! (bench/hostile.sh runs it at each hostile mail's size).

use intake::model::{Inbound, Prepared, RawMail};
use intake::pipeline::{prepare, Pipeline, Settings};
use std::fmt::Write as _;
use std::time::Instant;

/// Every mail case: name, what N counts, generator.
/// (name, description, generator of a mail of about n bytes).
type Case = (&'static str, &'static str, fn(usize) -> Vec<u8>);

const CASES: &[Case] = &[
    ("normal", "bytes", normal),
    (
        "raw8bit_open_words",
        "bytes of `=?a` after a raw 8-bit byte in Subject",
        raw8bit_open_words,
    ),
    (
        "references",
        "References entries (long ids, shared prefix)",
        |n| id_list("References", n),
    ),
    (
        "in_reply_to",
        "In-Reply-To entries (long ids, shared prefix)",
        |n| id_list("In-Reply-To", n),
    ),
    (
        "encoded_word_run",
        "bytes of valid encoded words in Subject",
        encoded_word_run,
    ),
    (
        "open_q_words",
        "bytes of `=?ab?q?xx` (Q words never closed) in Subject",
        open_q_words,
    ),
    ("open_words", "bytes of `=?` without end in Subject", |n| {
        subject_of(&"=?".repeat(n / 2))
    }),
    ("huge_header_line", "bytes of one Subject line", |n| {
        subject_of(&"x".repeat(n))
    }),
    ("header_lines", "header lines", header_lines),
    ("cc", "Cc addresses", cc),
    ("deep_multipart", "nested multipart levels", deep_multipart),
    ("deep_rfc822", "nested message/rfc822 levels", deep_rfc822),
    ("attachments", "attachments", attachments),
    (
        "returned_ids",
        "Message-ID lines in a bounce body",
        returned_ids,
    ),
];

const HEAD: &str = "From: Ann <ann@example.com>\nTo: support@desk.test\nMessage-ID: <hostile@example.com>\nDate: Mon, 3 Mar 2025 10:00:00 +0100\n";

fn normal(n: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject: Printer on fire\n\n");
    let line = "The printer on the third floor has been making a strange noise since Monday.\n";
    while m.len() + line.len() <= n {
        m.push_str(line);
    }
    m.into_bytes()
}

fn subject_of(subject: &str) -> Vec<u8> {
    format!("{HEAD}Subject: {subject}\n\nbody\n").into_bytes()
}

fn raw8bit_open_words(n: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject: ").into_bytes();
    m.extend_from_slice(b"\xe9 ");
    m.extend(b"=?a".repeat(n / 3));
    m.extend_from_slice(b"\n\nbody\n");
    m
}

fn id_list(name: &str, n: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject: Re: thread\n{name}:");
    let prefix = "a".repeat(200);
    for i in 0..n {
        let _ = write!(m, "\n <{prefix}.{i}@mail.example.com>");
    }
    m.push_str("\n\nbody\n");
    m.into_bytes()
}

/// Folded every 60 bytes so that every line is within RFC 5322's limit.
fn folded_subject(unit: &str, n: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject:");
    let mut line = 0;
    for _ in 0..n / unit.len() {
        m.push_str(unit);
        line += unit.len();
        if line > 60 {
            m.push_str("\n ");
            line = 0;
        }
    }
    m.push_str("\n\nbody\n");
    m.into_bytes()
}

fn encoded_word_run(n: usize) -> Vec<u8> {
    folded_subject(" =?utf-8?q?caf=C3=A9?=", n)
}

fn open_q_words(n: usize) -> Vec<u8> {
    folded_subject("=?ab?q?xx", n)
}

fn header_lines(n: usize) -> Vec<u8> {
    let mut m = HEAD.to_string();
    for i in 0..n {
        let _ = writeln!(m, "X-Filler-{}: value", i % 1000);
    }
    m.push_str("Subject: many headers\n\nbody\n");
    m.into_bytes()
}

fn cc(n: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject: many copies\nCc:");
    for i in 0..n {
        let _ = write!(
            m,
            "{} user{i}@customer{}.example.com",
            if i > 0 { ",\n" } else { "" },
            i % 100
        );
    }
    m.push_str("\n\nbody\n");
    m.into_bytes()
}

fn deep_multipart(n: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject: deep\nMIME-Version: 1.0\n");
    for i in 0..n {
        let _ = write!(
            m,
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        );
    }
    m.push_str("Content-Type: text/plain\n\ninnermost\n");
    for i in (0..n).rev() {
        let _ = writeln!(m, "--b{i}--");
    }
    m.into_bytes()
}

fn deep_rfc822(n: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject: deep\nMIME-Version: 1.0\n");
    for _ in 0..n {
        m.push_str("Content-Type: message/rfc822\n\nSubject: inner\n");
    }
    m.push_str("Content-Type: text/plain\n\ninnermost\n");
    m.into_bytes()
}

fn attachments(n: usize) -> Vec<u8> {
    let mut m = format!("{HEAD}Subject: files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nsee attached\n");
    for i in 0..n {
        let _ = write!(m, "--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"f{i}.bin\"\nContent-Transfer-Encoding: base64\n\nAAECAwQFBgcICQ==\n");
    }
    m.push_str("--b--\n");
    m.into_bytes()
}

fn returned_ids(n: usize) -> Vec<u8> {
    let mut m = "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\nReturn-Path: <>\nTo: support@desk.test\nSubject: Undelivered Mail Returned to Sender\n\n".to_string();
    for i in 0..n {
        let _ = writeln!(m, "Message-ID: <{}.{i}@desk.test>", "b".repeat(100));
    }
    m.into_bytes()
}

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn settings(url: &str) -> Settings {
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n[limits]\nmax_message_bytes = 26214400\n"
    );
    Settings::from_config(&intake::config::Config::from_toml(&text).expect("config"))
}

fn outcome(p: &Prepared) -> String {
    match p {
        Prepared::Message(m) => format!("message ({:?}, {} refs)", m.class, m.refs.len()),
        Prepared::Quarantine(q) => format!(
            "quarantine: {}",
            q.reason.chars().take(80).collect::<String>()
        ),
        Prepared::Review(r) => format!("review: {}", r.reason),
    }
}

async fn mail(case: &str, n: usize, url: Option<&str>) {
    let Some((_, _, generate)) = CASES.iter().find(|c| c.0 == case) else {
        panic!("unknown case {case}: see `bench_hostile cases`");
    };
    let raw = generate(n);
    let bytes = raw.len();
    let item = Inbound::Mail(RawMail {
        raw,
        mailbox: Some("support".into()),
        source: "bench".into(),
    });
    let s = settings(url.unwrap_or("sqlite::memory:"));
    let t = Instant::now();
    let prepared = prepare(&s, &item);
    let secs = t.elapsed().as_secs_f64();
    let mut line = format!(
        "{{\"case\":\"{case}\",\"n\":{n},\"bytes\":{bytes},\"parse_classify_s\":{secs:.3},\"outcome\":{:?}",
        outcome(&prepared)
    );
    drop(prepared);
    if let Some(url) = url {
        let store = intake::store::Store::open(url, 4).await.expect("database");
        let p = Pipeline::new(store, s);
        let t = Instant::now();
        let out = p.ingest(vec![item], None).await.expect("ingest");
        let _ = write!(
            line,
            ",\"pipeline_s\":{:.3},\"stored\":\"{:?}\"",
            t.elapsed().as_secs_f64(),
            out[0].outcome
        );
    }
    println!("{line},\"peak_rss_mib\":{:.1}}}", peak_rss_mib());
}

async fn webhook(candidates: usize, body_bytes: usize) {
    let dir = std::env::temp_dir().join(format!("intake-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/wh.db", dir.display());
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\n[logging]\nlevel = \"warn\"\n\
         [http]\nmax_body_bytes = {}\n\
         [[webhook_sources]]\nname = \"voice\"\nsecret = \"bench-secret\"\nprevious_secret = \"old-secret\"\ndefault_channel = \"voice\"\n",
        body_bytes + 1024
    );
    let cfg = std::sync::Arc::new(intake::config::Config::from_toml(&text).expect("config"));
    let store = intake::store::Store::open(&url, 4).await.expect("database");
    let pipeline = Pipeline::new(store, Settings::from_config(&cfg));
    let state = intake::http::AppState::new(pipeline, cfg).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, intake::http::router(state)).await });
    let message = "x".repeat(body_bytes.saturating_sub(100));
    let body = format!("{{\"contact\":{{\"phone\":\"+14155550100\"}},\"message\":\"{message}\"}}");
    let signature = vec!["v1=00"; candidates].join(",");
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let client = reqwest::Client::new();
    let t = Instant::now();
    let resp = client
        .post(format!("http://{addr}/v1/contacts/voice"))
        .header("content-type", "application/json")
        .header("x-intake-timestamp", ts.to_string())
        .header("x-intake-signature", signature)
        .body(body.clone())
        .send()
        .await;
    let secs = t.elapsed().as_secs_f64();
    let status = resp.map_or_else(
        |e| format!("error: {e}"),
        |r| r.status().as_u16().to_string(),
    );
    println!(
        "{{\"case\":\"webhook_signature_candidates\",\"n\":{candidates},\"bytes\":{},\"request_s\":{secs:.3},\"status\":\"{status}\",\"peak_rss_mib\":{:.1}}}",
        body.len(),
        peak_rss_mib()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize| -> usize { args.get(i).and_then(|s| s.parse().ok()).expect("a number") };
    match args.get(1).map(String::as_str) {
        Some("mail") => mail(args.get(2).expect("CASE"), num(3), args.get(4).map(String::as_str)).await,
        Some("webhook") => webhook(num(2), num(3)).await,
        Some("cases") => {
            for (name, n, _) in CASES {
                println!("{name}\t{n}");
            }
        }
        _ => eprintln!("usage: bench_hostile mail CASE N [DATABASE_URL] | webhook CANDIDATES BODY_BYTES | cases"),
    }
}
