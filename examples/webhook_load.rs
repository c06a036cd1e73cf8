//! Webhook load benchmark: signed contact posts for 1,000 distinct callers.
//!
//!   webhook_load serve DATABASE_URL [LISTEN]   # the server, prints its address and RSS every 10 s
//!   webhook_load load URL [SECS] [CONNS] [CALLERS] [--idempotency]
//!
//! `load` pre-signs one body per caller (each caller has its own phone number
//! and conversation), fires them from CONNS concurrent connections for SECS
//! seconds and prints one JSON line: accepted/s, p50/p99/max latency, errors.
//! Run the two modes as two processes (bench/webhooks.sh does).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(args.get(2).expect("DATABASE_URL"), args.get(3).map_or("127.0.0.1:0", |s| s)).await,
        Some("load") => {
            let n = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
            load(args.get(2).expect("URL"), n(3, 10), n(4, 64), n(5, 1000), args.iter().any(|a| a == "--idempotency")).await
        }
        _ => eprintln!("usage: webhook_load serve DATABASE_URL [LISTEN] | load URL [SECS] [CONNS] [CALLERS] [--idempotency]"),
    }
}

async fn serve(url: &str, listen: &str) {
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\n[logging]\nlevel = \"warn\"\n\
         [[webhook_sources]]\nname = \"voice\"\nsecret = \"{SECRET}\"\nrate_per_second = 1000000\nburst = 1000000\ndefault_channel = \"voice\"\n"
    );
    let cfg = Arc::new(intake::config::Config::from_toml(&text).expect("config"));
    let store = intake::store::Store::open(&cfg.database.url, cfg.database.max_connections)
        .await
        .expect("database");
    let pipeline =
        intake::pipeline::Pipeline::new(store, intake::pipeline::Settings::from_config(&cfg));
    let state = intake::http::AppState::new(pipeline, cfg).expect("state");
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
            let pages: u64 = statm
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            eprintln!("{{\"rss_mib\": {:.1}}}", pages as f64 * 4096.0 / 1048576.0);
        }
    });
    axum::serve(listener, intake::http::router(state))
        .await
        .expect("serve");
}

fn sign(ts: i64, body: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(format!("{ts}.{body}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

async fn load(url: &str, secs: u64, conns: u64, callers: u64, idem: bool) {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let reqs: Arc<Vec<(String, String)>> = Arc::new(
        (0..callers)
            .map(|i| {
                let body = serde_json::json!({
                    "contact": {"phone": format!("+1 415 {:03} {:04}", 300 + i / 10000, i % 10000), "name": format!("Caller {i}")},
                    "conversation_id": format!("call-{i}"), "subject": "Missed call", "message": "Caller asked about invoice 42"})
                .to_string();
                let sig = format!("v1={}", sign(ts, &body));
                (body, sig)
            })
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns as usize)
        .build()
        .unwrap();
    let endpoint = format!("{url}/v1/contacts/voice");
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, endpoint, reqs, counter, errors) = (
            client.clone(),
            endpoint.clone(),
            reqs.clone(),
            counter.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < end {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let (body, sig) = &reqs[(n % reqs.len() as u64) as usize];
                let mut r = client
                    .post(&endpoint)
                    .header("content-type", "application/json")
                    .header("x-intake-timestamp", ts.to_string())
                    .header("x-intake-signature", sig)
                    .body(body.clone());
                if idem {
                    r = r.header("idempotency-key", format!("req-{n}"));
                }
                let t = Instant::now();
                match r.send().await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    Ok(resp) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!(
                                "{} {}",
                                resp.status(),
                                resp.text().await.unwrap_or_default()
                            );
                        }
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("{e}");
                        }
                    }
                }
            }
            lat
        }));
    }
    let mut lat: Vec<u64> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{}",
        serde_json::json!({"bench": "webhooks", "callers": callers, "connections": conns, "idempotency": idem,
            "seconds": (elapsed * 10.0).round() / 10.0, "accepted": lat.len(), "errors": errors.load(Ordering::Relaxed),
            "accepted_per_s": (lat.len() as f64 / elapsed).round(), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0)})
    );
}
