//! Ingestion benchmark: a directory of .eml files through the in-process
//! pipeline into a database, with a parse-only baseline measured in the same run.
//!
//!   cargo run --release --example bench_ingest -- DIR DATABASE_URL [BATCH]
//!
//! Prints one JSON line per measurement. A message counts once committed.

use intake::model::{Inbound, OutcomeKind, RawMail};
use intake::pipeline::{prepare, Pipeline, Settings};
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .expect("usage: bench_ingest DIR DATABASE_URL [BATCH]");
    let url = args
        .get(2)
        .expect("usage: bench_ingest DIR DATABASE_URL [BATCH]");
    let batch: usize = args
        .get(3)
        .map(|b| b.parse().expect("BATCH"))
        .unwrap_or(500);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let raws: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let n = raws.len();
    let bytes: usize = raws.iter().map(|r| r.len()).sum();
    let text = format!(
        "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\naddresses = [\"support@desk.test\"]\n[limits]\nbatch_size = {batch}\n"
    );
    let cfg = intake::config::Config::from_toml(&text).expect("config");
    let settings = Settings::from_config(&cfg);
    let items: Vec<Inbound> = raws
        .into_iter()
        .map(|raw| {
            Inbound::Mail(RawMail {
                raw,
                mailbox: Some("support".into()),
                source: "bench".into(),
            })
        })
        .collect();

    // Baseline: the pure stages alone (parse, classify, normalise), no database.
    let t = Instant::now();
    let prepared: Vec<_> = items.iter().map(|i| prepare(&settings, i)).collect();
    let parse_s = t.elapsed().as_secs_f64();
    drop(prepared);
    println!("{{\"stage\":\"parse_classify_only\",\"messages\":{n},\"seconds\":{parse_s:.3},\"per_second\":{:.0}}}", n as f64 / parse_s);

    let store = intake::store::Store::open(url, 8).await.expect("database");
    let p = Pipeline::new(store.clone(), settings);
    let t = Instant::now();
    let mut counts = std::collections::BTreeMap::new();
    // Feed in chunks the size of a source's fetch so peak memory stays bounded.
    for chunk in items.chunks(batch.max(1)) {
        for o in p.ingest(chunk.to_vec(), None).await.expect("ingest") {
            *counts.entry(format!("{:?}", o.outcome)).or_insert(0usize) += 1;
        }
    }
    let s = t.elapsed().as_secs_f64();
    let doc = store.export().await.unwrap();
    let tickets = doc["tickets"].as_array().unwrap().len();
    let follow: usize = doc["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["comments"].as_array().unwrap().len().saturating_sub(1))
        .sum();
    println!(
        "{{\"stage\":\"pipeline\",\"database\":\"{}\",\"batch\":{batch},\"messages\":{n},\"bytes\":{bytes},\"seconds\":{s:.3},\"per_second\":{:.0},\"outcomes\":{},\"tickets\":{tickets},\"appended\":{follow}}}",
        if url.starts_with("sqlite") { "sqlite" } else { "postgres" },
        n as f64 / s,
        serde_json::to_string(&counts).unwrap()
    );
    let _ = OutcomeKind::Created;
}
