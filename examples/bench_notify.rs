//! Notification benchmark: does an acknowledgement trigger slow ingestion?
//!
//!   cargo run --release --example bench_notify -- DIR SLOW_SMTP_PORT FAST_SMTP_PORT [ROUNDS] [BATCH] [DATABASE] [LIMIT]
//!
//! Each round ingests every .eml of DIR into a fresh database twice, in
//! alternating order (A B, then B A, ...): A without triggers, B with the
//! default acknowledgement trigger while the sender task delivers to the
//! SMTP server on SLOW_SMTP_PORT (slowed by the caller, e.g. 50 ms a message).
//! The sender runs in both cases. A round's ratio is B's throughput over A's,
//! measured back to back, so slow drifts of the machine's load cancel.
//! Then the outbox drain rate: 200 pending acknowledgements sent by one
//! sender to the slow server, then to FAST_SMTP_PORT.
//!
//! DATABASE is `sqlite` (default: a file per run in a temporary folder) or a
//! PostgreSQL server URL (a database per run is created and dropped). LIMIT
//! is `[notifications] per_recipient_limit` (default 10 per hour, as
//! shipped; the corpus' 300 senders then hit it and most acknowledgements
//! are recorded as suppressed; a large LIMIT queues every one as pending,
//! the costlier case).
//! Prints one JSON line per run and a summary line.

use intake::model::{Inbound, RawMail};
use intake::pipeline::{Pipeline, Settings};
use std::time::Instant;

/// An acknowledgement that quotes the customer's message (rendered at send time).
const ACK: &str = r#"
[[triggers]]
name = "acknowledge new request"
on = "ticket_created"
actions = [{ type = "notify_requester", subject = "We received your request: {{ ticket.subject }}", template = "Hello {{ requester.name }},\nyour request {{ ticket.tag }} is in.\n> {{ comment.body }}\n" }]
"#;

fn config(
    url: &str,
    smtp_port: u16,
    batch: usize,
    limit: u32,
    triggers: &str,
) -> intake::config::Config {
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n\
         [limits]\nbatch_size = {batch}\n[notifications]\nper_recipient_limit = {limit}\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\nfrom = \"support@desk.test\"\ntimeout = 10\n\
         [[mailboxes]]\nname = \"support\"\nhost = \"127.0.0.1\"\nport = 143\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\naddress = \"help@desk.test\"\n{triggers}"
    );
    intake::config::Config::from_toml(&text).expect("config")
}

/// A fresh database URL for run `n`, and how to drop it afterwards.
async fn fresh_db(kind: &str, dir: &std::path::Path, n: usize) -> (String, Option<String>) {
    if kind == "sqlite" {
        return (format!("sqlite://{}/run{n}.db", dir.display()), None);
    }
    let name = format!("intake_bench_notify_{}_{n}", std::process::id());
    let admin = sqlx::PgPool::connect(&format!("{kind}/postgres"))
        .await
        .expect("postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    (format!("{kind}/{name}"), Some(name))
}

async fn drop_db(kind: &str, name: Option<String>) {
    if let Some(name) = name {
        let admin = sqlx::PgPool::connect(&format!("{kind}/postgres"))
            .await
            .expect("postgres");
        let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
}

/// Ingest `raws` in batches with the sender running; messages per second.
async fn run(
    url: &str,
    cfg: intake::config::Config,
    raws: &[Vec<u8>],
    batch: usize,
) -> (f64, String) {
    let store = intake::store::Store::open(url, 8).await.expect("database");
    let app = intake::app::App::with_store(cfg, store.clone());
    let p = app.pipeline.clone();
    let (stop, rx) = tokio::sync::watch::channel(false);
    // BENCH_SENDER=off leaves the sender out (to tell its share of the cost
    // from the ingest transaction's).
    let sender_on = std::env::var("BENCH_SENDER").map_or(true, |v| v != "off");
    let sender = sender_on.then(|| {
        let s = app.sender().expect("[smtp] configured");
        tokio::spawn(intake::notify::run_sender(s, rx))
    });
    let t = Instant::now();
    for chunk in raws.chunks(batch) {
        let items = chunk
            .iter()
            .map(|r| {
                Inbound::Mail(RawMail {
                    raw: r.clone(),
                    mailbox: Some("support".into()),
                    source: "bench".into(),
                })
            })
            .collect();
        p.ingest(items, None).await.expect("ingest");
    }
    let rate = raws.len() as f64 / t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    if let Some(sender) = sender {
        sender.await.unwrap().expect("sender");
    }
    let doc = store.export().await.expect("export");
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    for n in doc["notifications"].as_array().unwrap() {
        *states
            .entry(n["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    store.close().await;
    (rate, serde_json::to_string(&states).unwrap())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let usage =
        "usage: bench_notify DIR SLOW_SMTP_PORT FAST_SMTP_PORT [ROUNDS] [BATCH] [DATABASE] [LIMIT]";
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect(usage);
    let slow: u16 = args.get(2).expect(usage).parse().expect(usage);
    let fast: u16 = args.get(3).expect(usage).parse().expect(usage);
    let rounds: usize = args.get(4).map(|r| r.parse().expect(usage)).unwrap_or(7);
    let batch: usize = args.get(5).map(|b| b.parse().expect(usage)).unwrap_or(200);
    let db = args.get(6).cloned().unwrap_or_else(|| "sqlite".into());
    let db = db.trim_end_matches('/').to_string();
    let limit: u32 = args.get(7).map(|l| l.parse().expect(usage)).unwrap_or(10);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("DIR")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let raws: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let backend = if db == "sqlite" { "sqlite" } else { "postgres" };

    let mut ratios = Vec::new();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut n = 0;
    for round in 0..rounds {
        // A B in even rounds, B A in odd ones.
        let order: [bool; 2] = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut rate = [0.0; 2];
        for ack in order {
            n += 1;
            let (url, name) = fresh_db(&db, tmp.path(), n).await;
            let cfg = config(&url, slow, batch, limit, if ack { ACK } else { "" });
            let (r, states) = run(&url, cfg, &raws, batch).await;
            drop_db(&db, name).await;
            println!(
                "{{\"round\":{round},\"database\":\"{backend}\",\"case\":\"{}\",\"messages\":{},\"batch\":{batch},\"per_second\":{r:.0},\"notifications\":{states}}}",
                if ack { "acknowledgement, sender on 50 ms SMTP" } else { "no triggers" },
                raws.len()
            );
            rate[ack as usize] = r;
        }
        without.push(rate[0]);
        with.push(rate[1]);
        ratios.push(rate[1] / rate[0]);
    }

    // Drain: 200 pending acknowledgements to distinct addresses, one sender.
    let mut drains = Vec::new();
    for (label, port) in [("50 ms server", slow), ("server not slowed", fast)] {
        n += 1;
        let (url, name) = fresh_db(&db, tmp.path(), n).await;
        let cfg = config(&url, port, batch, limit, ACK);
        let store = intake::store::Store::open(&url, 8).await.expect("database");
        let p = Pipeline::new(store.clone(), Settings::from_config(&cfg));
        let items = (0..200)
            .map(|i| {
                let raw = format!(
                    "From: Customer {i} <c{i}@drain{i}.test>\r\nTo: help@desk.test\r\nSubject: Drain {i}\r\n\
                     Message-ID: <drain{i}@drain{i}.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nHello\r\n"
                );
                Inbound::Mail(RawMail {
                    raw: raw.into_bytes(),
                    mailbox: Some("support".into()),
                    source: "bench".into(),
                })
            })
            .collect();
        p.ingest(items, None).await.expect("ingest");
        let t = Instant::now();
        let sent = intake::notify::drain_once(&store, &cfg)
            .await
            .expect("drain");
        let rate = sent as f64 / t.elapsed().as_secs_f64();
        store.close().await;
        drop_db(&db, name).await;
        println!("{{\"drain\":\"{label}\",\"database\":\"{backend}\",\"sent\":{sent},\"per_second\":{rate:.1}}}");
        drains.push(rate);
    }

    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{{\"summary\":\"{backend}\",\"rounds\":{rounds},\"per_recipient_limit\":{limit},\"messages\":{},\"median_no_triggers\":{:.0},\"median_acknowledgement\":{:.0},\"ratios\":[{}],\"median_ratio\":{:.3},\"min_ratio\":{:.3},\"drain_slow\":{:.1},\"drain_fast\":{:.1}}}",
        raws.len(),
        median(&without),
        median(&with),
        ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(","),
        median(&ratios),
        sorted[0],
        drains[0],
        drains[1]
    );
}
